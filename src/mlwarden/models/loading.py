"""Load model files into targets, detecting the format from the file's content.

Every file passes the model-file scanner (:func:`mlwarden.supplychain.scan_file`)
before anything reads it as a model. Safe formats are then loaded: scikit-learn models
saved with skops (only when every type the file needs comes from scikit-learn, NumPy or
SciPy), TorchScript and ONNX.
Formats that execute code when loaded (pickle, joblib, ``torch.save`` checkpoints)
go through :func:`mlwarden.supplychain.safe_load`: the model-file scanner vets them
first and refuses them with :class:`~mlwarden.exceptions.UnsafeModelError` when it
finds anything it cannot prove harmless, and the file is then read with an
unpickler restricted to the same allowlist. Every other problem (missing, empty,
truncated or unknown file) raises :class:`~mlwarden.exceptions.ModelLoadError`
naming the file.
"""

from __future__ import annotations

import bz2
import lzma
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwarden.exceptions import (
    InvalidParameterError,
    MlwardenError,
    ModelLoadError,
    UnsafeModelError,
)
from mlwarden.models.base import Target
from mlwarden.supplychain.scan.detect import compression, looks_like_pickle

if TYPE_CHECKING:
    from mlwarden.supplychain.policy import Policy

__all__ = ["load_model", "save_skops"]

SKOPS_TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.")
"""Modules whose types a skops file may need and still be loaded without asking."""
SKOPS_TRUSTED_TYPES: frozenset[str] = frozenset(
    {"collections.OrderedDict", "collections.defaultdict"}
)
"""Further types, outside :data:`SKOPS_TRUSTED_MODULES`, that a skops file may need."""

_SUPPORTED = (
    "supported formats: scikit-learn models saved with skops (.skops, see "
    "mlwarden.models.save_skops), TorchScript (.pt, saved with torch.jit.save or "
    "mlwarden.models.save_torchscript), ONNX (.onnx), and pickle/joblib/torch.save "
    "files that pass the model-file scanner"
)
_HEAD_BYTES = 1 << 20
_PEEK_BYTES = 1 << 16
_PICKLE_EXTS = {".pkl", ".pickle", ".joblib", ".jl", ".sav", ".dill", ".cloudpickle"}


@dataclass(frozen=True)
class _Sniffed:
    """What :func:`_sniff` found: ``skops``, ``torchscript``, ``onnx``, ``pickle``,
    ``joblib``, ``torch-pickle`` or ``unknown`` (with a ``detail`` for messages)."""

    kind: str
    detail: str = ""


def load_model(
    path: str | Path, *, name: str | None = None, policy: Policy | None = None
) -> Target:
    """Load a model file into a :class:`~mlwarden.models.base.Target`.

    The format is detected from the content, not the extension (``.onnx`` is used
    only as a hint): skops archives become
    :class:`~mlwarden.models.sklearn.SklearnTarget`, TorchScript archives
    :class:`~mlwarden.models.torch.TorchTarget` (with the metadata written by
    :func:`~mlwarden.models.torch.save_torchscript`), ONNX files
    :class:`~mlwarden.models.onnx.OnnxTarget`. Pickle and joblib files holding a
    scikit-learn classifier become :class:`~mlwarden.models.sklearn.SklearnTarget`
    and ``torch.save`` checkpoints holding a whole ``torch.nn.Module`` become
    :class:`~mlwarden.models.torch.TorchTarget` (with default metadata: classes
    ``0..k-1``, input shape from the first linear layer, no declared input range),
    after :func:`mlwarden.supplychain.safe_load` has vetted them.

    Parameters
    ----------
    path : str or Path
        The model file.
    name : str or None, default=None
        Name used in reports; defaults to the file name without its extension.
    policy : Policy or None, default=None
        Extra globals a pickle may import (e.g. your own model class), see
        :class:`mlwarden.supplychain.Policy`.

    Returns
    -------
    Target
        The loaded model; its :attr:`~mlwarden.models.base.Target.source` is ``path``.

    Raises
    ------
    UnsafeModelError
        For pickle, joblib and ``torch.save`` files that the scanner flags or cannot
        scan completely, and for skops files that need types from outside
        scikit-learn, NumPy and SciPy.
    ModelLoadError
        If the file is missing, empty, a directory, truncated, corrupt or in an
        unsupported format, if a pickle holds something other than a model, or if a
        checkpoint holds only a ``state_dict``.
    MissingDependencyError
        If the file needs an optional extra (``mlwarden[torch]``, ``mlwarden[onnx]``).
    """
    p = Path(path)
    label = name if name is not None else p.stem or p.name
    sniffed = _sniff(p)
    if sniffed.kind in ("skops", "torchscript", "onnx"):
        _scan_gate(p, policy)
    try:
        if sniffed.kind == "skops":
            return _load_skops(p, label)
        if sniffed.kind == "torchscript":
            return _load_torchscript(p, label)
        if sniffed.kind == "onnx":
            return _load_onnx(p, label)
    except InvalidParameterError as exc:
        raise ModelLoadError(_with_path(p, str(exc))) from None
    if sniffed.kind in ("pickle", "joblib", "torch-pickle"):
        return _load_vetted(p, label, sniffed, policy)
    raise ModelLoadError(f"{p}: {sniffed.detail or 'unrecognised model file format'}; {_SUPPORTED}")


def save_skops(estimator: Any, path: str | Path) -> Path:
    """Save a scikit-learn estimator with skops, the safe format :func:`load_model` reads.

    Parameters
    ----------
    estimator : object
        A fitted scikit-learn estimator or pipeline.
    path : str or Path
        Destination file, conventionally ``*.skops``.

    Returns
    -------
    Path
        The file written.
    """
    import skops.io as sio

    out = Path(path)
    sio.dump(estimator, out)
    return out


# --------------------------------------------------------------------- sniffing
def _sniff(p: Path) -> _Sniffed:
    try:
        with p.open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except FileNotFoundError:
        raise ModelLoadError(f"{p}: model file not found") from None
    except IsADirectoryError:
        raise ModelLoadError(f"{p}: is a directory, not a model file") from None
    except OSError as exc:
        raise ModelLoadError(f"{p}: cannot read the file: {exc.strerror or exc}") from None
    if p.is_dir():  # pragma: no cover - platforms where open() succeeds on directories
        raise ModelLoadError(f"{p}: is a directory, not a model file")
    if not head:
        raise ModelLoadError(f"{p}: the file is empty")

    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _sniff_zip(p)
    if looks_like_pickle(head):
        return _Sniffed("pickle")
    if head.startswith(b"ZF0x"):  # joblib < 0.10 compressed pickle
        return _Sniffed("joblib", "zlib")
    codec = compression(head)
    if codec is not None:
        inner = _decompress_prefix(head, codec, p)
        if looks_like_pickle(inner):
            return _Sniffed("joblib", codec)
        return _Sniffed(
            "unknown", f"a {codec}-compressed file that holds no model format mlwarden reads"
        )
    if p.suffix.lower() == ".onnx" or _looks_like_onnx(head):
        return _Sniffed("onnx")
    if p.suffix.lower() in _PICKLE_EXTS:
        return _Sniffed(
            "unknown", f"the file has a {p.suffix} extension but is neither pickle nor joblib"
        )
    return _Sniffed("unknown")


def _sniff_zip(p: Path) -> _Sniffed:
    try:
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{p}: truncated or corrupt zip archive ({exc})") from None
    if "schema.json" in names:
        return _Sniffed("skops")
    # torch.jit.save writes <root>/code/..., <root>/constants.pkl, <root>/data.pkl
    # and <root>/version; torch.save writes <root>/data.pkl (+ data/) without code/.
    if any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names):
        return _Sniffed("torchscript")
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return _Sniffed("torch-pickle")
    return _Sniffed("unknown", "a zip archive that is neither skops nor TorchScript")


def _decompress_prefix(head: bytes, codec: str, p: Path) -> bytes:
    """Decompress at most ``_PEEK_BYTES`` of ``head`` (never the whole file)."""
    try:
        if codec == "gzip":
            return zlib.decompressobj(wbits=31).decompress(head, _PEEK_BYTES)
        if codec == "zlib":
            return zlib.decompressobj().decompress(head, _PEEK_BYTES)
        if codec == "bz2":
            return bz2.BZ2Decompressor().decompress(head, _PEEK_BYTES)
        return lzma.LZMADecompressor().decompress(head, _PEEK_BYTES)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise ModelLoadError(f"{p}: corrupt {codec}-compressed file ({exc})") from None


def _looks_like_onnx(head: bytes) -> bool:
    """ONNX files are ``ModelProto`` messages, which start with ``ir_version`` (field 1)."""
    return head[:1] == b"\x08" and len(head) > 2 and 1 <= head[1] <= 20


# ---------------------------------------------------------------------- loaders
def _with_path(p: Path, msg: str) -> str:
    return msg if str(p) in msg else f"{p}: {msg}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _skops_type_allowed(name: str) -> bool:
    return name in SKOPS_TRUSTED_TYPES or name.startswith(SKOPS_TRUSTED_MODULES)


def _load_skops(p: Path, name: str) -> Target:
    import skops.io as sio

    from mlwarden.models.sklearn import SklearnTarget

    try:
        untrusted = sio.get_untrusted_types(file=p)
    except Exception as exc:  # skops raises many types on bad files
        raise ModelLoadError(f"{p}: corrupt skops file ({_first_line(exc)})") from None
    refused = sorted(t for t in untrusted if not _skops_type_allowed(t))
    if refused:
        raise UnsafeModelError(
            f"{p}: the skops file needs types from outside scikit-learn, NumPy and SciPy, "
            f"which mlwarden will not load: {', '.join(refused)}. Loading them could run "
            "their code; inspect them with skops.io.get_untrusted_types and load the file "
            "yourself (then pass the estimator to mlwarden.target) only if you trust it"
        )
    try:
        estimator = sio.load(p, trusted=list(untrusted))
    except MlwardenError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"{p}: corrupt skops file ({_first_line(exc)})") from None
    return SklearnTarget(estimator, name=name, source=str(p))


def _load_torchscript(p: Path, name: str) -> Target:
    from mlwarden.models.torch import load_torchscript

    try:
        return load_torchscript(p, name=name)
    except MlwardenError:
        raise
    except Exception as exc:  # torch raises RuntimeError and friends
        raise ModelLoadError(
            f"{p}: corrupt or unsupported TorchScript file ({_first_line(exc)})"
        ) from None


def _scan_gate(p: Path, policy: Policy | None) -> None:
    """Refuse a skops, TorchScript or ONNX file the model-file scanner does not pass.

    These loaders run no pickle, but each has its own ways to do harm (a skops type
    outside the allowlist, an ONNX external-data path that reads a host file, a
    TorchScript archive with a stray pickle): the scanner checks them all, and a file
    it cannot scan completely is not loaded either (fail closed).
    """
    from mlwarden.supplychain.result import Verdict
    from mlwarden.supplychain.scanner import scan_file

    result = scan_file(p, policy=policy)
    if result.verdict is Verdict.UNSAFE:
        shown = "; ".join(
            f"{i.rule_id} {i.construct}" + (f" at {i.location}" if i.location else "")
            for i in result.issues[:5]
        )
        more = f" (and {len(result.issues) - 5} more)" if len(result.issues) > 5 else ""
        raise UnsafeModelError(
            f"{p}: the model-file scanner refused the {result.format} file: {shown}{more}; "
            f"run `mlwarden scan {p}` for details"
        )
    if result.verdict is Verdict.ERROR:
        raise ModelLoadError(
            f"{p}: the model-file scanner could not scan the file completely, so it is not "
            f"loaded: {'; '.join(result.errors)}"
        )


def _load_vetted(p: Path, name: str, sniffed: _Sniffed, policy: Policy | None) -> Target:
    """Scan, then load, a pickle/joblib/torch.save file (see :mod:`.supplychain.safe_load`)."""
    from mlwarden.supplychain.safe_load import load_vetted

    what = {
        "pickle": "pickle",
        "joblib": f"joblib ({sniffed.detail}-compressed pickle)",
        "torch-pickle": "torch.save checkpoint (a pickle inside a zip archive)",
    }[sniffed.kind]
    try:
        loaded = load_vetted(p, policy=policy)
    except UnsafeModelError as exc:
        raise UnsafeModelError(f"{exc} ({what} file)") from None
    obj = loaded.obj
    if loaded.format.startswith("pytorch") or _is_torch_module(obj):
        return _torch_from_checkpoint(p, obj, name)
    if not (hasattr(obj, "predict") and hasattr(obj, "fit")):
        raise ModelLoadError(
            f"{p}: the {what} file holds a {type(obj).__name__}, not a scikit-learn model"
        )
    from mlwarden.models.sklearn import SklearnTarget

    try:
        return SklearnTarget(obj, name=name, source=str(p))
    except InvalidParameterError as exc:
        raise ModelLoadError(_with_path(p, str(exc))) from None


def _is_torch_module(obj: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


_STATE_DICT_HINT = (
    "a state_dict holds weights only; the model's code is not in the file. Build the "
    "model in Python, call model.load_state_dict(mlwarden.supplychain.safe_load(path)) "
    "and pass the model to mlwarden.target, or save the whole model with "
    "mlwarden.models.save_torchscript"
)


def _torch_from_checkpoint(p: Path, obj: Any, name: str) -> Target:
    import torch

    from mlwarden.models.torch import TorchTarget

    module = obj
    if isinstance(obj, dict):
        found = [v for k, v in obj.items() if isinstance(v, torch.nn.Module)]
        if len(found) == 1:
            module = found[0]
        elif found:
            raise ModelLoadError(
                f"{p}: the checkpoint holds several modules ({len(found)}); load it with "
                "mlwarden.supplychain.safe_load and pass the one to audit to mlwarden.target"
            )
        else:
            raise ModelLoadError(f"{p}: {_STATE_DICT_HINT}")
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(
            f"{p}: the torch.save file holds a {type(obj).__name__}, not a torch.nn.Module"
        )
    try:
        return TorchTarget(module, name=name, source=str(p))
    except InvalidParameterError as exc:
        raise ModelLoadError(
            f"{p}: {exc} (a torch.save checkpoint carries no metadata such as the input "
            "shape, classes or input range: save the model with "
            "mlwarden.models.save_torchscript to keep them)"
        ) from None


def _load_onnx(p: Path, name: str) -> Target:
    from mlwarden.models.onnx import OnnxTarget

    return OnnxTarget(p, name=name, source=str(p))
