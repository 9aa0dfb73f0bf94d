"""Targets for PyTorch modules, and TorchScript files that carry mlwarden metadata.

This is the only module of :mod:`mlwarden.models` that imports :mod:`torch`, and it
does so when it is imported; :mod:`mlwarden.models` loads it lazily.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
from mlwarden.models.base import Capability, InputSpec, Target, check_loss

try:
    import torch
    import torch.nn.functional as nnf
    from torch import nn
except ImportError:  # pragma: no cover - exercised only without torch
    raise MissingDependencyError(
        "PyTorch models need the 'torch' extra: pip install 'mlwarden[torch]'"
    ) from None

__all__ = ["TorchTarget", "save_torchscript"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Bound = float | npt.ArrayLike | None

METADATA_FILE = "mlwarden.json"
"""Name of the extra file holding mlwarden's metadata inside a TorchScript archive."""
_METADATA_FORMAT = "mlwarden.torchscript"
_OUTPUTS = ("logits", "probabilities")
_DLR_EPS = 1e-12


class TorchTarget(Target):
    """A PyTorch classifier seen as a :class:`~mlwarden.models.base.Target`.

    Rows arrive as flattened ``float64`` numpy arrays in *raw* feature space; the
    wrapper reshapes them to ``input_shape``, applies ``preprocessing`` and runs the
    module in ``float32`` on the CPU, so attacks and their gradients live in the same
    space as the data.

    Parameters
    ----------
    module : torch.nn.Module
        The classifier. It is moved to the CPU and to ``float32`` in place if needed;
        each forward pass runs in eval mode (the module's train/eval flags are
        restored afterwards).
    n_classes : int or None, default=None
        Number of classes; inferred from one forward pass on a row of zeros.
    input_shape : sequence of int or None, default=None
        Shape of one row as the module expects it, e.g. ``(1, 8, 8)`` for a CNN on
        8x8 images. Inferred as ``(in_features,)`` when the first layer is linear.
    lower, upper : float, array-like or None, default=None
        Declared valid input range (scalars or one value per feature), reported in
        :attr:`input_spec`. They are not enforced.
    preprocessing : (mean, std) or None, default=None
        Normalisation applied inside the wrapper: the module sees
        ``(x - mean) / std``. Each may be a scalar, one value per feature, or any
        array that broadcasts against ``input_shape`` (e.g. ``(C, 1, 1)``).
    output : {"logits", "probabilities"}, default="logits"
        What the module returns. A module with a single output unit is a binary
        classifier whose output is the logit (or probability) of class 1; it is
        exposed as two classes with logits ``[0, z]`` (probabilities ``[1 - p, p]``).
    classes : array-like or None, default=None
        Class labels in output order; ``range(n_classes)`` by default.
    feature_names : sequence of str or None, default=None
        One name per flattened feature, reported in :attr:`input_spec`.
    batch_size : int, default=4096
        Rows per forward pass.
    name : str, default="model"
        Short name used in reports.
    source : str or None, default=None
        The file the module was loaded from, if any.
    training : dict or None, default=None
        How the module was trained (see :attr:`~mlwarden.models.base.Target.training`).

    Raises
    ------
    InvalidParameterError
        If a parameter is invalid, the input shape cannot be inferred, or the module
        fails on a row of the declared shape.

    Notes
    -----
    Capabilities are ``LABELS``, ``SCORES``, ``GRADIENTS``, ``TRAINABLE`` and, when
    ``output="logits"``, ``LOGITS``. With ``output="probabilities"`` the losses of
    :meth:`loss_gradient` use log-probabilities in place of logits, whose gradients
    vanish where the model saturates.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        n_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
        lower: Bound = None,
        upper: Bound = None,
        preprocessing: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
        output: Literal["logits", "probabilities"] = "logits",
        classes: npt.ArrayLike | None = None,
        feature_names: Sequence[str] | None = None,
        batch_size: int = 4096,
        name: str = "model",
        source: str | None = None,
        training: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name=name, source=source, training=dict(training or {}))
        if not isinstance(module, nn.Module):
            raise InvalidParameterError(
                f"TorchTarget needs a torch.nn.Module, got {type(module).__name__}"
            )
        if output not in _OUTPUTS:
            raise InvalidParameterError(
                f"output must be 'logits' or 'probabilities', got {output!r}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidParameterError(
                f"batch_size must be a positive integer, got {batch_size!r}"
            )
        self.module = module
        self.output: Literal["logits", "probabilities"] = output
        self.batch_size = batch_size
        _to_cpu_float32(module)

        shape = _input_shape(module, input_shape)
        n_features = math.prod(shape)
        self.input_shape: tuple[int, ...] = shape
        self._mean, self._std = _preprocessing(preprocessing, shape)
        lo = _bound(lower, n_features, "lower")
        hi = _bound(upper, n_features, "upper")
        if lo is not None and hi is not None and np.any(lo > hi):
            j = int(np.argmax(lo > hi))
            raise InvalidParameterError(
                f"lower bound {lo[j]} is above upper bound {hi[j]} for feature {j}"
            )

        n_out = self._dry_run()
        self._binary = n_out == 1
        k = 2 if self._binary else n_out
        if n_classes is not None and int(n_classes) != k:
            raise InvalidParameterError(
                f"n_classes={n_classes} but the module has {n_out} output unit(s) ({k} classes)"
            )
        if classes is None:
            labels: npt.NDArray[Any] = np.arange(k)
        else:
            labels = np.asarray(classes)
            if labels.ndim != 1 or len(labels) != k:
                raise InvalidParameterError(
                    f"{len(labels.reshape(-1))} classes given but the module has {k} classes"
                )
        names = None
        if feature_names is not None:
            names = tuple(str(f) for f in feature_names)
            if len(names) != n_features:
                raise InvalidParameterError(f"{len(names)} feature names for {n_features} features")
        self._spec = InputSpec(
            n_features=n_features,
            classes=labels,
            shape=shape,
            lower=lo,
            upper=hi,
            feature_names=names,
        )
        caps = Capability.LABELS | Capability.SCORES | Capability.GRADIENTS | Capability.TRAINABLE
        if output == "logits":
            caps |= Capability.LOGITS
        self._capabilities = caps

    @property
    def capabilities(self) -> Capability:
        """``LABELS|SCORES|GRADIENTS|TRAINABLE``, plus ``LOGITS`` for logit outputs."""
        return self._capabilities

    @property
    def input_spec(self) -> InputSpec:
        """Feature count, row shape, declared bounds and classes."""
        return self._spec

    @property
    def preprocessing(self) -> tuple[FloatArray, FloatArray] | None:
        """The ``(mean, std)`` applied inside the wrapper, or ``None``."""
        if self._mean is None or self._std is None:
            return None
        return (
            self._mean.numpy().astype(np.float64),
            self._std.numpy().astype(np.float64),
        )

    # ------------------------------------------------------------------ internals
    def _dry_run(self) -> int:
        x = torch.zeros((1, *self.input_shape), dtype=torch.float32)
        try:
            with torch.no_grad(), _eval_mode(self.module):
                out = self._module_out(x)
        except IncompatibleModelError as exc:
            raise InvalidParameterError(str(exc)) from None
        except Exception as exc:  # any framework error means a bad shape
            raise InvalidParameterError(
                f"the module fails on one input of shape {self.input_shape}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        return int(out.shape[1])

    def _module_out(self, x: torch.Tensor) -> torch.Tensor:
        """Run the module on shaped rows; return its outputs as ``(n, k)``."""
        if self._mean is not None and self._std is not None:
            x = (x - self._mean) / self._std
        out = self.module(x)
        if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise IncompatibleModelError(
                f"{self.name!r}: the module returned {type(out).__name__}, not a tensor"
            )
        return out.reshape(out.shape[0], -1)

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        """Logits or probabilities, ``(n, n_classes)``, for flattened rows ``x``."""
        out = self._module_out(x.reshape((x.shape[0], *self.input_shape)))
        if self._binary:
            z = out[:, 0]
            if self.output == "logits":
                return torch.stack([torch.zeros_like(z), z], dim=1)
            return torch.stack([1.0 - z, z], dim=1)
        return out

    def _batched(self, x: FloatArray) -> FloatArray:
        parts = []
        with torch.no_grad(), _eval_mode(self.module):
            for start in range(0, len(x), self.batch_size):
                xt = torch.as_tensor(x[start : start + self.batch_size], dtype=torch.float32)
                parts.append(self._scores(xt).numpy().astype(np.float64))
        if not parts:
            return np.zeros((0, self.n_classes), dtype=np.float64)
        return np.concatenate(parts, axis=0)

    def _logits(self, x: FloatArray) -> FloatArray:
        return self._batched(x)

    def _predict_proba(self, x: FloatArray) -> FloatArray:
        s = self._batched(x)
        if self.output == "probabilities":
            return s
        s = s - s.max(axis=1, keepdims=True)
        e = np.exp(s)
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)

    def _predict_labels(self, x: FloatArray) -> IntArray:
        return np.asarray(np.argmax(self._batched(x), axis=1), dtype=np.int64)

    def _loss_gradient(
        self, x: FloatArray, y: IntArray, loss: str, target_class: IntArray | None = None
    ) -> tuple[FloatArray, FloatArray]:
        values, grads, _ = self._loss_gradient_labels(x, y, loss, target_class)
        return values, grads

    def _loss_gradient_labels(
        self, x: FloatArray, y: IntArray, loss: str, target_class: IntArray | None
    ) -> tuple[FloatArray, FloatArray, IntArray]:
        check_loss(loss, self.n_classes, targeted=target_class is not None)
        values = np.zeros(len(x), dtype=np.float64)
        grads = np.zeros(x.shape, dtype=np.float64)
        labels = np.zeros(len(x), dtype=np.int64)
        with torch.enable_grad(), _eval_mode(self.module):
            for start in range(0, len(x), self.batch_size):
                stop = start + self.batch_size
                xt = torch.tensor(x[start:stop], dtype=torch.float32, requires_grad=True)
                yt = torch.as_tensor(y[start:stop], dtype=torch.int64)
                tt = None
                if target_class is not None:
                    tt = torch.as_tensor(target_class[start:stop], dtype=torch.int64)
                z = self._scores(xt)
                labels[start:stop] = z.detach().argmax(dim=1).numpy()
                if self.output == "probabilities":
                    z = torch.log(z.clamp_min(1e-30))
                per_row = _torch_loss(z, yt, loss, tt)
                (g,) = torch.autograd.grad(per_row.sum(), xt)
                values[start:stop] = per_row.detach().numpy()
                grads[start:stop] = g.numpy()
        return values, grads, labels


def _torch_loss(
    z: torch.Tensor, y: torch.Tensor, loss: str, t: torch.Tensor | None
) -> torch.Tensor:
    """Per-row attack losses on logits ``z`` (see :meth:`Target.loss_gradient`)."""
    if loss == "ce":
        return nnf.cross_entropy(z, y, reduction="none")
    if loss == "ce-targeted":
        assert t is not None
        return -nnf.cross_entropy(z, t, reduction="none")
    z_true = z.gather(1, y[:, None])[:, 0]
    if t is None:
        others = z.masked_fill(nnf.one_hot(y, z.shape[1]).bool(), float("-inf"))
        z_other = others.max(dim=1).values
    else:
        z_other = z.gather(1, t[:, None])[:, 0]
    num = z_other - z_true
    if loss in ("margin", "margin-targeted"):
        return num
    top = z.sort(dim=1, descending=True).values
    # dlr: z_(1) - z_(3); dlr-targeted: z_(1) - (z_(3) + z_(4)) / 2.
    den = top[:, 0] - (top[:, 2] if loss == "dlr" else 0.5 * (top[:, 2] + top[:, 3]))
    return num / (den + _DLR_EPS)


def save_torchscript(
    module: nn.Module,
    path: str | Path,
    *,
    classes: npt.ArrayLike,
    lower: Bound = None,
    upper: Bound = None,
    feature_names: Sequence[str] | None = None,
    input_shape: Sequence[int] | None = None,
    output: Literal["logits", "probabilities"] = "logits",
    preprocessing: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    training: dict[str, Any] | None = None,
) -> Path:
    """Save a module as TorchScript with the metadata that :func:`load_model` restores.

    The module is compiled with :func:`torch.jit.script`, or traced on a row of zeros
    when scripting fails. The metadata (classes, input shape, bounds, feature names,
    output kind, preprocessing) is stored as ``mlwarden.json`` inside the archive.

    Parameters
    ----------
    module : torch.nn.Module
        The classifier (an already scripted module is saved as is).
    path : str or Path
        Destination file, conventionally ``*.pt``.
    classes : array-like
        Class labels in output order (JSON-serialisable values).
    lower, upper : float, array-like or None
        Declared valid input range.
    feature_names : sequence of str or None
        One name per (flattened) feature.
    input_shape : sequence of int or None
        Shape of one row as the module expects it (see :class:`TorchTarget`).
    output : {"logits", "probabilities"}
        What the module returns.
    preprocessing : (mean, std) or None
        Normalisation applied before the module (see :class:`TorchTarget`).
    training : dict or None
        How the model was trained, as JSON (e.g. ``{"differential_privacy": {...}}``);
        restored as :attr:`~mlwarden.models.base.Target.training`.

    Returns
    -------
    Path
        The file written.
    """
    # Validate everything (shape, classes, bounds) through the target itself.
    tgt = TorchTarget(
        module,
        input_shape=input_shape,
        lower=lower,
        upper=upper,
        preprocessing=preprocessing,
        output=output,
        classes=classes,
        feature_names=feature_names,
    )
    spec = tgt.input_spec
    names = None if spec.feature_names is None else list(spec.feature_names)
    pre = tgt.preprocessing
    meta = {
        "format": _METADATA_FORMAT,
        "version": 1,
        "classes": [_jsonable(c) for c in spec.classes.tolist()],
        "input_shape": list(spec.shape),
        "output": output,
        "lower": _json_floats(spec.lower),
        "upper": _json_floats(spec.upper),
        "feature_names": names,
        "preprocessing": None
        if pre is None
        else {
            "mean": pre[0].tolist(),
            "mean_shape": list(pre[0].shape),
            "std": pre[1].tolist(),
            "std_shape": list(pre[1].shape),
        },
    }
    if training:
        meta["training"] = dict(training)
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"classes and training must be JSON-serialisable: {exc}"
        ) from None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated
        scripted: Any
        if isinstance(module, torch.jit.ScriptModule):
            scripted = module
        else:
            try:
                scripted = torch.jit.script(module)
            except Exception:  # any scripting failure: fall back to tracing
                scripted = _trace(tgt)
        out = Path(path)
        torch.jit.save(scripted, str(out), _extra_files={METADATA_FILE: text})
    return out


def _trace(tgt: TorchTarget) -> Any:
    """Trace ``tgt.module`` on one row, then check the trace on rows it has not seen.

    ``torch.jit.trace``'s own ``check_trace`` costs ~2 s on first use; comparing the
    outputs on a different batch (size 3, random values) is cheaper and also catches
    batch sizes and data-dependent branches baked into the trace.
    """
    module = tgt.module
    shape = tgt.input_shape
    example = torch.zeros((1, *shape), dtype=torch.float32)
    probe = torch.randn((3, *shape), generator=torch.Generator().manual_seed(0))
    try:
        with _eval_mode(module), torch.no_grad():
            traced = torch.jit.trace(module, example, check_trace=False)  # type: ignore[no-untyped-call]
            same = torch.allclose(traced(probe), module(probe), rtol=1e-4, atol=1e-5)
    except Exception as exc:
        raise InvalidParameterError(
            f"cannot save the module as TorchScript: scripting and tracing both failed "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if not same:
        raise InvalidParameterError(
            "cannot save the module as TorchScript: it is not scriptable, and its trace "
            "gives different outputs on new inputs (data-dependent control flow or a "
            "batch size baked into the forward pass?)"
        )
    return traced


def load_torchscript(path: str | Path, *, name: str | None = None) -> TorchTarget:
    """Load a TorchScript file into a :class:`TorchTarget`, restoring its metadata.

    Framework errors are *not* wrapped here; :func:`mlwarden.models.load_model`
    turns them into :class:`~mlwarden.exceptions.ModelLoadError`.
    """
    p = Path(path)
    extra = {METADATA_FILE: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(  # type: ignore[no-untyped-call]
            str(p), map_location="cpu", _extra_files=extra
        )
    raw = extra[METADATA_FILE]
    kwargs: dict[str, Any] = {}
    if raw:
        try:
            meta = json.loads(raw)
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
            kwargs = _kwargs_from_metadata(meta)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelLoadError(
                f"{p}: invalid mlwarden metadata in the TorchScript file: {exc}"
            ) from None
    try:
        return TorchTarget(module, name=name or p.stem, source=str(p), **kwargs)
    except InvalidParameterError as exc:
        hint = "" if raw else " (the file has no mlwarden metadata; save it with save_torchscript)"
        raise ModelLoadError(f"{p}: {exc}{hint}") from None


# ---------------------------------------------------------------------- helpers
@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Run in eval mode, then restore every submodule's train/eval flag."""
    modes = [(m, m.training) for m in module.modules()]
    if not any(mode for _, mode in modes):
        yield
        return
    module.train(False)
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _to_cpu_float32(module: nn.Module) -> None:
    tensors = [*module.parameters(), *module.buffers()]
    if any(t.device.type != "cpu" for t in tensors):
        module.to("cpu")
    if any(t.is_floating_point() and t.dtype != torch.float32 for t in tensors):
        module.float()


def _input_shape(module: nn.Module, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    if input_shape is not None:
        try:
            shape = tuple(int(s) for s in input_shape)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"input_shape must be a sequence of integers, got {input_shape!r}"
            ) from None
        if not shape or any(s < 1 for s in shape):
            raise InvalidParameterError(
                f"input_shape must hold positive sizes, got {tuple(input_shape)}"
            )
        return shape
    for m in module.modules():
        params = list(m.parameters(recurse=False))
        if not params:
            continue
        in_features = getattr(m, "in_features", None)
        if isinstance(in_features, int) and in_features > 0:
            return (in_features,)
        break
    raise InvalidParameterError(
        "cannot infer the input shape of the module (its first layer is not linear); "
        "pass input_shape, e.g. input_shape=(1, 28, 28)"
    )


def _preprocessing(
    preprocessing: tuple[npt.ArrayLike, npt.ArrayLike] | None, shape: tuple[int, ...]
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if preprocessing is None:
        return None, None
    try:
        mean_raw, std_raw = preprocessing
        mean = np.asarray(mean_raw, dtype=np.float64)
        std = np.asarray(std_raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            "preprocessing must be a (mean, std) pair of numbers or arrays"
        ) from None
    n = math.prod(shape)
    out = []
    for label, arr in (("mean", mean), ("std", std)):
        if arr.size == n and arr.shape != shape and arr.ndim <= 1:
            arr = arr.reshape(shape)
        try:
            np.broadcast_shapes(arr.shape, shape)
        except ValueError:
            raise InvalidParameterError(
                f"preprocessing {label} of shape {arr.shape} does not fit inputs of shape {shape}"
            ) from None
        if not np.all(np.isfinite(arr)):
            raise InvalidParameterError(f"preprocessing {label} must be finite")
        out.append(arr)
    if np.any(out[1] <= 0):
        raise InvalidParameterError("preprocessing std must be positive")
    return (
        torch.as_tensor(out[0], dtype=torch.float32),
        torch.as_tensor(out[1], dtype=torch.float32),
    )


def _bound(value: Bound, n_features: int, label: str) -> FloatArray | None:
    if value is None:
        return None
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{label} must be a number or an array of numbers") from None
    if np.any(np.isnan(arr)):
        raise InvalidParameterError(f"{label} contains NaN")
    if arr.ndim == 0:
        return np.full(n_features, float(arr))
    arr = arr.reshape(-1)
    if arr.size != n_features:
        raise InvalidParameterError(
            f"{label} has {arr.size} values but the model takes {n_features} features"
        )
    return arr.copy()


def _json_floats(arr: FloatArray | None) -> list[float | None] | None:
    if arr is None:
        return None
    return [float(v) if np.isfinite(v) else None for v in arr.tolist()]


def _from_json_floats(values: Any, fill: float) -> FloatArray | None:
    if values is None:
        return None
    return np.array([fill if v is None else float(v) for v in values], dtype=np.float64)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _kwargs_from_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    output = meta.get("output", "logits")
    kwargs: dict[str, Any] = {
        "classes": np.asarray(meta["classes"]),
        "input_shape": tuple(int(s) for s in meta["input_shape"]),
        "output": output,
        "lower": _from_json_floats(meta.get("lower"), -np.inf),
        "upper": _from_json_floats(meta.get("upper"), np.inf),
        "feature_names": meta.get("feature_names"),
    }
    training = meta.get("training")
    if isinstance(training, dict):
        kwargs["training"] = training
    pre = meta.get("preprocessing")
    if pre is not None:
        mean = np.asarray(pre["mean"], dtype=np.float64).reshape(pre["mean_shape"])
        std = np.asarray(pre["std"], dtype=np.float64).reshape(pre["std_shape"])
        kwargs["preprocessing"] = (mean, std)
    return kwargs
