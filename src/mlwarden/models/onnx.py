"""Targets for ONNX models run with onnxruntime.

Handles classifiers converted by skl2onnx (a label output plus a probability tensor,
or a ZipMap list of dicts) and networks exported from deep-learning frameworks (one
float output holding logits or probabilities). :mod:`onnxruntime` is imported when
this module is imported; :mod:`onnx` (used only to read class labels out of the
graph) is imported lazily and is optional.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mlwarden.exceptions import (
    IncompatibleModelError,
    InvalidParameterError,
    MissingDependencyError,
    ModelLoadError,
)
from mlwarden.models.base import Capability, InputSpec, Target

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover - exercised only without onnxruntime
    raise MissingDependencyError(
        "ONNX models need the 'onnx' extra: pip install 'mlwarden[onnx]'"
    ) from None

__all__ = ["CLASSES_METADATA_KEY", "OnnxTarget"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CLASSES_METADATA_KEY = "mlwarden.classes"
"""``metadata_props`` key holding the class labels as a JSON list."""

_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}
_OUTPUTS = ("auto", "probabilities", "logits")
_BATCH = 4096
_PROBE_ROWS = 8


class OnnxTarget(Target):
    """An ONNX classifier seen as a :class:`~mlwarden.models.base.Target`.

    Parameters
    ----------
    session_or_path : str, Path, bytes, onnx.ModelProto or onnxruntime.InferenceSession
        The model: a file, its serialized bytes, a loaded ``ModelProto`` or a session.
    classes : array-like or None, default=None
        Class labels in output order. By default they come from the
        ``mlwarden.classes`` metadata property (a JSON list), else from the class
        labels a skl2onnx classifier stores, else ``range(n_outputs)``.
    output : {"auto", "probabilities", "logits"}, default="auto"
        What the score output holds. ``"auto"`` takes the probabilities of skl2onnx
        classifiers (tensor or ZipMap); for a single float output it probes the model
        on a few random rows and picks probabilities when every row is non-negative and
        sums to 1, logits otherwise (a single-unit output is a logit unless the graph
        ends in a ``Sigmoid``).
    name : str, default="model"
        Short name used in reports.
    source : str or None, default=None
        The file the model came from; set automatically when a path is given.

    Raises
    ------
    ModelLoadError
        If a file cannot be read or parsed.
    InvalidParameterError
        If the model has several inputs, a non-float input, an input shape with
        unknown non-batch dimensions, no usable output, or ``classes`` of the wrong
        length.

    Notes
    -----
    Capabilities are ``LABELS`` and ``SCORES``, plus ``LOGITS`` when the output
    holds logits. Predicted labels are the arg-max of the scores.
    """

    def __init__(
        self,
        session_or_path: Any,
        *,
        classes: npt.ArrayLike | None = None,
        output: Literal["auto", "probabilities", "logits"] = "auto",
        name: str = "model",
        source: str | None = None,
    ) -> None:
        if output not in _OUTPUTS:
            raise InvalidParameterError(
                f"output must be 'auto', 'probabilities' or 'logits', got {output!r}"
            )
        if isinstance(session_or_path, str | Path) and source is None:
            source = str(session_or_path)
        super().__init__(name=name, source=source)
        self.session, proto = _open(session_or_path)
        where = source or name

        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InvalidParameterError(
                f"{where}: the ONNX model has {len(inputs)} inputs "
                f"({', '.join(i.name for i in inputs)}); mlwarden needs one input tensor"
            )
        inp = inputs[0]
        if inp.type not in _FLOAT_TYPES:
            raise InvalidParameterError(
                f"{where}: the ONNX input {inp.name!r} has type {inp.type}; "
                "mlwarden needs a float or double tensor"
            )
        self._input_name: str = inp.name
        self._dtype = _FLOAT_TYPES[inp.type]
        shape = _row_shape(inp.shape, where)
        self._shape = shape

        # Pick the score output.
        outs = self.session.get_outputs()
        zipmaps = [o.name for o in outs if str(o.type).startswith("seq(map(")]
        floats = [o.name for o in outs if o.type in _FLOAT_TYPES]
        has_label = any(o.name not in floats and o.name not in zipmaps for o in outs)
        if output == "logits" or (output == "probabilities" and not zipmaps):
            if not floats:
                raise InvalidParameterError(f"{where}: the ONNX model has no float output")
            score, zipmap = floats[0], False
        elif zipmaps:
            score, zipmap = zipmaps[0], True
        elif floats:
            score, zipmap = floats[0], False
        else:
            raise InvalidParameterError(
                f"{where}: no ONNX output holds scores "
                f"(outputs: {', '.join(f'{o.name}: {o.type}' for o in outs)})"
            )
        self._score_name = score
        self._zipmap = zipmap
        self._zip_keys: list[Any] = []

        # One probe on random rows: number of outputs, ZipMap keys, and for "auto"
        # whether a plain float output holds probabilities.
        rng = np.random.default_rng(0)
        probe = rng.standard_normal((_PROBE_ROWS, math.prod(shape)))
        try:
            raw = self._run(probe)
        except Exception as exc:  # any runtime failure
            raise InvalidParameterError(
                f"{where}: the ONNX model fails on inputs of shape "
                f"(n, {', '.join(map(str, shape))}): {type(exc).__name__}: {exc}"
            ) from None
        if zipmap:
            if not raw or not isinstance(raw[0], dict):
                raise InvalidParameterError(f"{where}: the ZipMap output holds no dictionaries")
            self._zip_keys = list(raw[0].keys())
            n_out = len(self._zip_keys)
        else:
            n_out = int(np.asarray(raw).reshape(_PROBE_ROWS, -1).shape[1])
        if output == "auto":
            if zipmap or has_label:
                kind = "probabilities"
            elif n_out == 1:
                kind = "probabilities" if _ends_in(proto, score, "Sigmoid") else "logits"
            else:
                p = np.asarray(raw, dtype=np.float64).reshape(_PROBE_ROWS, -1)
                is_proba = bool(np.all(p >= 0) and np.allclose(p.sum(axis=1), 1.0, atol=1e-4))
                kind = "probabilities" if is_proba else "logits"
        else:
            kind = output
        self.output: Literal["probabilities", "logits"] = (
            "logits" if kind == "logits" else "probabilities"
        )
        self._binary = n_out == 1
        k = 2 if self._binary else n_out

        labels = _resolve_classes(classes, self.session, proto, self._zip_keys, k, where)
        self._spec = InputSpec(n_features=math.prod(shape), classes=labels, shape=shape)
        caps = Capability.LABELS | Capability.SCORES
        if self.output == "logits":
            caps |= Capability.LOGITS
        self._capabilities = caps

    @property
    def capabilities(self) -> Capability:
        """``LABELS|SCORES``, plus ``LOGITS`` when the output holds logits."""
        return self._capabilities

    @property
    def input_spec(self) -> InputSpec:
        """Feature count, row shape and classes."""
        return self._spec

    # ------------------------------------------------------------------ internals
    def _run(self, x: FloatArray) -> Any:
        xs = np.ascontiguousarray(x.reshape((len(x), *self._shape)), dtype=self._dtype)
        return self.session.run([self._score_name], {self._input_name: xs})[0]

    def _scores(self, x: FloatArray) -> FloatArray:
        parts = []
        for start in range(0, len(x), _BATCH):
            raw = self._run(x[start : start + _BATCH])
            if self._zipmap:
                keys = self._zip_keys
                s = np.array([[row[c] for c in keys] for row in raw], dtype=np.float64)
            else:
                s = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
            if self._binary:
                z = s[:, 0]
                s = np.column_stack(
                    [np.zeros_like(z), z] if self.output == "logits" else [1.0 - z, z]
                )
            if s.shape[1] != self.n_classes:
                raise IncompatibleModelError(
                    f"{self.name!r}: the ONNX model returned {s.shape[1]} scores per row, "
                    f"expected {self.n_classes}"
                )
            parts.append(s)
        if not parts:
            return np.zeros((0, self.n_classes), dtype=np.float64)
        return np.concatenate(parts, axis=0)

    def _logits(self, x: FloatArray) -> FloatArray:
        return self._scores(x)

    def _predict_proba(self, x: FloatArray) -> FloatArray:
        s = self._scores(x)
        if self.output == "probabilities":
            return s
        s = s - s.max(axis=1, keepdims=True)
        e = np.exp(s)
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)

    def _predict_labels(self, x: FloatArray) -> IntArray:
        return np.asarray(np.argmax(self._scores(x), axis=1), dtype=np.int64)


# ---------------------------------------------------------------------- helpers
def _open(obj: Any) -> tuple[Any, Any]:
    """Return ``(session, ModelProto or None)`` for any accepted model object."""
    providers = ["CPUExecutionProvider"]
    if isinstance(obj, ort.InferenceSession):
        return obj, _proto_of_session(obj)
    onnx = _onnx_module()
    proto = None
    if onnx is not None and isinstance(obj, onnx.ModelProto):
        data, where, proto = obj.SerializeToString(), "ONNX model", obj
    elif isinstance(obj, bytes):
        data, where = obj, "ONNX bytes"
    elif isinstance(obj, str | Path):
        p = Path(obj)
        if not p.exists():
            raise ModelLoadError(f"{p}: model file not found")
        if p.is_dir():
            raise ModelLoadError(f"{p}: is a directory, not a model file")
        try:  # from the path, so that external data files next to it are found
            session = ort.InferenceSession(str(p), providers=providers)
        except Exception as exc:  # onnxruntime raises several private types
            raise ModelLoadError(f"{p}: not a valid ONNX model ({_first_line(exc)})") from None
        return session, _proto_of_session(session)
    else:
        raise InvalidParameterError(
            "OnnxTarget needs a file path, bytes, an onnx.ModelProto or an "
            f"onnxruntime.InferenceSession, got {type(obj).__name__}"
        )
    try:
        session = ort.InferenceSession(data, providers=providers)
    except Exception as exc:  # onnxruntime raises several private types
        raise ModelLoadError(f"{where}: not a valid ONNX model ({_first_line(exc)})") from None
    return session, proto if proto is not None else _parse_proto(data)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _onnx_module() -> Any:
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is in the same extra
        return None
    return onnx


def _parse_proto(data: bytes) -> Any:
    onnx = _onnx_module()
    if onnx is None:
        return None
    try:
        return onnx.load_model_from_string(data)
    except Exception:  # the graph is only a source of hints
        return None


def _proto_of_session(session: Any) -> Any:
    """The graph behind a session, read from what onnxruntime kept (best effort)."""
    data = getattr(session, "_model_bytes", None)
    if isinstance(data, bytes):
        return _parse_proto(data)
    path = getattr(session, "_model_path", None)
    onnx = _onnx_module()
    if isinstance(path, str) and onnx is not None:
        try:
            return onnx.load(path, load_external_data=False)
        except Exception:
            return None
    return None


def _row_shape(dims: Any, where: str) -> tuple[int, ...]:
    dims = list(dims or [])
    rest = dims[1:]
    if not rest or not all(isinstance(d, int) and d > 0 for d in rest):
        raise InvalidParameterError(
            f"{where}: the ONNX input has shape {dims}; mlwarden needs a batch dimension "
            "followed by fixed sizes, e.g. [batch, 8]"
        )
    return tuple(int(d) for d in rest)


def _ends_in(proto: Any, output_name: str, op_type: str) -> bool:
    if proto is None:
        return False
    return any(node.op_type == op_type and output_name in node.output for node in proto.graph.node)


def _resolve_classes(
    classes: npt.ArrayLike | None,
    session: Any,
    proto: Any,
    zip_keys: list[Any],
    k: int,
    where: str,
) -> npt.NDArray[Any]:
    if classes is not None:
        labels = np.asarray(classes)
        if labels.ndim != 1 or len(labels) != k:
            raise InvalidParameterError(
                f"{len(labels.reshape(-1))} classes given but the ONNX model has {k} classes"
            )
        return labels
    meta = session.get_modelmeta().custom_metadata_map
    if CLASSES_METADATA_KEY in meta:
        try:
            values = json.loads(meta[CLASSES_METADATA_KEY])
        except json.JSONDecodeError:
            raise ModelLoadError(
                f"{where}: the {CLASSES_METADATA_KEY} metadata is not a JSON list"
            ) from None
        if not isinstance(values, list) or len(values) != k:
            raise ModelLoadError(
                f"{where}: the {CLASSES_METADATA_KEY} metadata must be a JSON list of {k} labels"
            )
        return np.asarray(values)
    if zip_keys and len(zip_keys) == k:
        return np.asarray(zip_keys)
    from_graph = _graph_classes(proto)
    if from_graph is not None and len(from_graph) == k:
        return np.asarray(from_graph)
    return np.arange(k)


def _graph_classes(proto: Any) -> list[Any] | None:
    """Class labels stored by skl2onnx in a classifier (or ZipMap) node."""
    if proto is None:
        return None
    for node in proto.graph.node:
        for attr in node.attribute:
            if attr.name == "classlabels_strings" and attr.strings:
                return [s.decode() for s in attr.strings]
            if attr.name.startswith("classlabels_") and attr.ints:
                return [int(v) for v in attr.ints]
    return None
