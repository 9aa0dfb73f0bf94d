"""Load pickle, joblib and ``torch.save`` files only after the scanner vetted them.

Threat model
------------
Loading a pickle runs whatever the file says (see :mod:`.pickle_scan`). ``safe_load``
therefore (1) scans the exact bytes the loader will read with
:func:`~mlwarden.supplychain.pickle_scan.scan_pickle` and refuses the file
(:class:`~mlwarden.exceptions.UnsafeModelError`) when anything is found or when
the scan is incomplete, and (2) loads it with a restricted unpickler whose
``find_class`` applies :func:`mlwarden.supplychain.allowlist.decide`, the very
function the scanner uses, so the two can never disagree on a name (defence in
depth: a scanner bug alone does not lead to code execution). This is the
"restricting globals" pattern of the :mod:`pickle` documentation, applied to
``pickle.load``, to joblib's ``NumpyUnpickler`` (whose object arrays are read with
the same ``find_class``) and to ``torch.load`` through its ``pickle_module``
argument. ``builtins.getattr`` is never handed out: the loader gets a guarded
version that only resolves ``getattr(<global it imported>, "name")`` when
``<global>.name`` is itself allowed, which is what the scanner accepts statically.

Parser differentials are avoided by scanning what the loader reads: torch archives
are read with torch's own zip reader (which ignores CRCs and handles duplicate names
differently from :mod:`zipfile`), compressed joblib files are decompressed once and
the same buffer is scanned and loaded, and files with data after the pickle are
refused. Formats that would load unscanned data are refused: TorchScript archives
(``torch.load`` hands them to ``torch.jit.load``), torch's legacy tar format, and
joblib < 0.10 files that name companion files.

References: the :mod:`pickle` documentation ("Restricting Globals"); Trail of Bits,
*fickling*; the JFrog and Sonatype advisories on picklescan bypasses; PyTorch's
``weights_only`` unpickler.
"""

from __future__ import annotations

import bz2
import contextlib
import io
import lzma
import mmap
import pickle
import types
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwarden.exceptions import MlwardenError, ModelLoadError, UnsafeModelError
from mlwarden.supplychain.allowlist import GETATTR, Decision, decide, normalize
from mlwarden.supplychain.pickle_scan import PickleScan, scan_pickle
from mlwarden.supplychain.policy import Policy
from mlwarden.supplychain.result import ScanIssue
from mlwarden.supplychain.scan.detect import compression

__all__ = [
    "LoadedModel",
    "RefusedGlobalError",
    "load_vetted",
    "restricted_pickle_module",
    "safe_load",
]

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_DEFAULT_MAX_DECOMPRESSED = 4 << 30
_ALTERNATIVES = (
    "save models in a format that cannot run code instead: .skops for scikit-learn "
    "(mlwarden.models.save_skops), safetensors for tensors, TorchScript .pt "
    "(mlwarden.models.save_torchscript) or .onnx"
)


class RefusedGlobalError(pickle.UnpicklingError):
    """The restricted unpickler refused a global (raised from ``find_class``)."""

    def __init__(self, decision: Decision):
        super().__init__(f"refused to import {decision.name}: {decision.reason}")
        self.decision = decision


@dataclass
class LoadedModel:
    """What :func:`safe_load` read, with the format it detected.

    Parameters
    ----------
    obj : object
        The loaded object.
    format : str
        ``pickle``, ``joblib``, ``joblib+<codec>``, ``pytorch-zip`` or
        ``pytorch-legacy``.
    scans : list of PickleScan
        The scans of every pickle stream that was loaded.
    """

    obj: Any
    format: str
    scans: list[PickleScan]


def safe_load(path: str | Path, *, policy: Policy | None = None) -> Any:
    """Load a pickle, joblib or ``torch.save`` file after scanning it.

    Parameters
    ----------
    path : str or Path
        The file.
    policy : Policy or None, default=None
        Extra allowed or denied globals (e.g. the user's own model class).

    Returns
    -------
    object
        The deserialised object (tensors are mapped to the CPU).

    Raises
    ------
    UnsafeModelError
        When the scanner finds anything, cannot scan the file completely, or the
        restricted unpickler refuses a global; the message names the file and the
        offending globals.
    ModelLoadError
        When the file is missing, empty, too large for the policy, in an unsupported
        format, or corrupt.
    MissingDependencyError
        When the file is a ``torch.save`` checkpoint and torch is not installed.
    """
    return load_vetted(path, policy=policy).obj


def load_vetted(path: str | Path, *, policy: Policy | None = None) -> LoadedModel:
    """:func:`safe_load`, also returning the detected format and the scans."""
    p = Path(path)
    pol = policy if policy is not None else Policy()
    try:
        size = p.stat().st_size
        if p.is_dir():
            raise ModelLoadError(f"{p}: is a directory, not a model file")
    except FileNotFoundError:
        raise ModelLoadError(f"{p}: model file not found") from None
    except OSError as exc:
        raise ModelLoadError(f"{p}: cannot read the file: {exc.strerror or exc}") from None
    if size == 0:
        raise ModelLoadError(f"{p}: the file is empty")
    if pol.max_file_bytes is not None and size > pol.max_file_bytes:
        raise ModelLoadError(
            f"{p}: the file has {size} bytes, more than the policy's max_file_bytes "
            f"({pol.max_file_bytes})"
        )
    with _mapped(p) as view:
        head = bytes(view[:512])
        if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            return _load_torch_zip(p, pol)
        if head.startswith(b"ZF0x"):
            raise UnsafeModelError(
                f"{p}: refusing to load a joblib < 0.10 file: joblib reads the companion "
                "files it names with numpy.load(allow_pickle=True), unscanned; " + _ALTERNATIVES
            )
        codec = compression(head)
        if codec is not None:
            data = _decompress(p, view, codec, pol)
            return _load_joblib(p, pol, data, f"joblib+{codec}")
        if len(head) > 262 and head[257:262] == b"ustar":
            raise ModelLoadError(
                f"{p}: torch's legacy tar format is not supported by safe_load; re-save "
                "the checkpoint with a current torch.save"
            )
        if _is_legacy_torch(head):
            return _load_torch_legacy(p, pol, view)
        first = _scan(p, view, pol, joblib_frames=False)
        if any(g in _JOBLIB_WRAPPERS for g in first.globals):
            return _load_joblib(p, pol, None, "joblib")
        _refuse_if_unsafe(p, [first], total=len(view))
        with p.open("rb") as fh:
            obj = _run_loader(p, lambda: _make_unpickler(pol, p)(fh).load())
        return LoadedModel(obj, "pickle", [first])


# ------------------------------------------------------------------- restricted
def restricted_pickle_module(
    policy: Policy | None = None, *, path: str | Path = "<memory>"
) -> types.ModuleType:
    """A module-like object for ``torch.load(..., pickle_module=...)``.

    It exposes ``Unpickler`` (a :class:`pickle.Unpickler` whose ``find_class``
    enforces :func:`~mlwarden.supplychain.allowlist.decide`), ``load`` and ``loads``,
    plus ``UnpicklingError`` and ``__name__`` as torch expects.

    Parameters
    ----------
    policy : Policy or None
        Extra allowed or denied globals.
    path : str or Path
        The file, for error messages.

    Returns
    -------
    module
        Use it only on data the scanner has vetted; it is the second line of defence.
    """
    pol = policy if policy is not None else Policy()
    unpickler = _make_unpickler(pol, Path(path))
    mod = types.ModuleType("mlwarden_restricted_pickle")
    mod.Unpickler = unpickler  # type: ignore[attr-defined]
    mod.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]

    def load(file: Any, **kwargs: Any) -> Any:
        return unpickler(file, **kwargs).load()

    def loads(data: bytes, /, **kwargs: Any) -> Any:
        return unpickler(io.BytesIO(data), **kwargs).load()

    mod.load = load  # type: ignore[attr-defined]
    mod.loads = loads  # type: ignore[attr-defined]
    return mod


class _Guard:
    """The ``find_class`` logic shared by the pickle, joblib and torch unpicklers."""

    def __init__(self, policy: Policy, path: Path, base_find: Callable[[str, str], Any]):
        self.policy = policy
        self.path = path
        self.base_find = base_find
        # id -> (object, module, qualname) of every global handed out, so that the
        # guarded getattr can name what it is applied to exactly as the scanner does.
        self.found: dict[int, tuple[Any, str, str]] = {}

    def find_class(self, module: str, name: str) -> Any:
        nmodule, nname = normalize(module, name)
        if f"{nmodule}.{nname}" == GETATTR:
            return self.getattr
        d = decide(module, name, self.policy)
        if not d.allowed:
            raise RefusedGlobalError(d)
        obj = self.base_find(nmodule, nname)
        self.found[id(obj)] = (obj, nmodule, nname)
        return obj

    def getattr(self, obj: Any, name: Any, *default: Any) -> Any:
        entry = self.found.get(id(obj))
        if default or entry is None or entry[0] is not obj or type(name) is not str:
            d = decide("builtins", "getattr", self.policy)
            if not d.allowed:
                raise RefusedGlobalError(d)
            return getattr(obj, name, *default)
        _, module, qual = entry
        d = decide(module, f"{qual}.{name}", self.policy)
        if not d.allowed:
            raise RefusedGlobalError(d)
        value = getattr(obj, name)
        self.found[id(value)] = (value, module, f"{qual}.{name}")
        return value


def _make_unpickler(policy: Policy, path: Path) -> type[pickle.Unpickler]:
    class RestrictedUnpickler(pickle.Unpickler):
        """:class:`pickle.Unpickler` that only imports what the allowlist accepts."""

        def __init__(self, file: Any, **kwargs: Any) -> None:
            super().__init__(file, **kwargs)
            self._mlw_guard = _Guard(policy, path, super().find_class)

        def find_class(self, module: str, name: str) -> Any:
            return self._mlw_guard.find_class(module, name)

    return RestrictedUnpickler


# ---------------------------------------------------------------------- formats
_JOBLIB_WRAPPERS = frozenset(
    {
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
    }
)


@contextmanager
def _mapped(p: Path) -> Iterator[memoryview]:
    with p.open("rb") as fh:
        try:
            m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # pragma: no cover - special files
            yield memoryview(fh.read())
            return
        view = memoryview(m)
        try:
            yield view
        finally:
            view.release()
            with contextlib.suppress(BufferError):  # a view is still exported
                m.close()


def _decompress(p: Path, view: memoryview, codec: str, policy: Policy) -> bytes:
    limit = policy.max_file_bytes or _DEFAULT_MAX_DECOMPRESSED
    dec: Any
    if codec == "gzip":
        dec = zlib.decompressobj(wbits=31)
    elif codec == "zlib":
        dec = zlib.decompressobj()
    elif codec == "bz2":
        dec = bz2.BZ2Decompressor()
    else:
        dec = lzma.LZMADecompressor()
    out = bytearray()
    try:
        step = 1 << 24
        for start in range(0, len(view), step):
            chunk = view[start : start + step]
            out += dec.decompress(chunk, max(limit - len(out) + 1, 1))
            if len(out) > limit:
                break
            while getattr(dec, "unconsumed_tail", b"") and len(out) <= limit:
                out += dec.decompress(dec.unconsumed_tail, max(limit - len(out) + 1, 1))
            if getattr(dec, "eof", False):
                break
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise ModelLoadError(f"{p}: corrupt {codec}-compressed file ({exc})") from None
    if len(out) > limit:
        raise ModelLoadError(
            f"{p}: decompresses to more than {limit} bytes (a decompression bomb?); raise "
            "the policy's max_file_bytes to load it"
        )
    return bytes(out)


def _is_legacy_torch(head: bytes) -> bool:
    """``torch.save(..., _use_new_zipfile_serialization=False)`` starts with its magic."""
    if len(head) < 14 or head[0] != 0x80:
        return False
    i = 2
    if head[i] == 0x95:  # FRAME (protocol 4+)
        i += 9
    if head[i : i + 2] != b"\x8a\x0a":
        return False
    return int.from_bytes(head[i + 2 : i + 12], "little", signed=True) == _TORCH_MAGIC


def _scan(
    p: Path,
    data: bytes | memoryview,
    policy: Policy,
    *,
    joblib_frames: bool,
    member: str = "",
    base: int = 0,
) -> PickleScan:
    return scan_pickle(
        data, path=str(p), member=member, base_offset=base, policy=policy,
        joblib_frames=joblib_frames,
    )  # fmt: skip


def _refuse_if_unsafe(p: Path, scans: list[PickleScan], *, total: int | None = None) -> None:
    issues: list[ScanIssue] = [i for s in scans for i in s.issues]
    if issues:
        shown = sorted({i.construct for i in issues})
        rules = sorted({i.rule_id for i in issues})
        listed = ", ".join(shown[:8]) + (f" and {len(shown) - 8} more" if len(shown) > 8 else "")
        raise UnsafeModelError(
            f"{p}: refusing to load: the model-file scanner found {len(issues)} issue(s) "
            f"({', '.join(rules)}): {listed}. pickle/joblib files can execute code when "
            f"loaded; allow a global only if you trust it (Policy(allow=...)), or "
            f"{_ALTERNATIVES}"
        )
    for s in scans:
        if not s.complete:
            raise UnsafeModelError(
                f"{p}: refusing to load: the file could not be scanned completely "
                f"({s.error}); a file that cannot be vetted is not loaded"
            )
    if total is not None and scans and scans[-1].end != total:
        raise UnsafeModelError(
            f"{p}: refusing to load: {total - scans[-1].end} byte(s) follow the end of the "
            "pickle (MLW-SUP-008: loaders and scanners disagree on such files)"
        )


def _run_loader(p: Path, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except RefusedGlobalError as exc:
        d = exc.decision
        raise UnsafeModelError(
            f"{p}: refusing to load: the restricted unpickler refused {d.name} "
            f"({d.rule.id if d.rule else 'policy'}): {d.reason}"
        ) from None
    except MlwardenError:
        raise
    except MemoryError:
        raise ModelLoadError(f"{p}: not enough memory to load the file") from None
    except Exception as exc:  # any deserialisation error of a vetted file
        text = str(exc).strip().splitlines()
        first = text[0] if text else type(exc).__name__
        raise ModelLoadError(f"{p}: corrupt or unsupported file ({first})") from None


def _load_joblib(p: Path, policy: Policy, data: bytes | None, fmt: str) -> LoadedModel:
    from joblib.numpy_pickle import NumpyUnpickler

    if data is None:
        with _mapped(p) as view:
            scan = _scan(p, view, policy, joblib_frames=True)
            total = len(view)
    else:
        scan = _scan(p, data, policy, joblib_frames=True)
        total = len(data)
    _refuse_if_unsafe(p, [scan], total=total)

    class RestrictedNumpyUnpickler(NumpyUnpickler):  # type: ignore[misc]
        """joblib's unpickler with the allowlist's ``find_class``."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._mlw_guard = _Guard(policy, p, super().find_class)

        def find_class(self, module: str, name: str) -> Any:
            return self._mlw_guard.find_class(module, name)

    def run() -> Any:
        if data is None:
            with p.open("rb") as fh:
                return RestrictedNumpyUnpickler(str(p), fh, True, mmap_mode=None).load()
        return RestrictedNumpyUnpickler(str(p), io.BytesIO(data), True, mmap_mode=None).load()

    obj = _run_loader(p, run)
    return LoadedModel(obj, fmt, [scan])


def _import_torch(p: Path) -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without torch
        from mlwarden.exceptions import MissingDependencyError

        raise MissingDependencyError(
            f"{p}: torch.save checkpoints need the 'torch' extra: pip install 'mlwarden[torch]'"
        ) from None
    return torch


def _load_torch_zip(p: Path, policy: Policy) -> LoadedModel:
    torch = _import_torch(p)
    from torch.serialization import _open_zipfile_reader

    try:
        with p.open("rb") as fh, _open_zipfile_reader(fh) as reader:
            records = set(reader.get_all_records())
            if "constants.pkl" in records or any(r.startswith("code/") for r in records):
                raise ModelLoadError(
                    f"{p}: is a TorchScript archive; load it with "
                    "mlwarden.models.load_model (safe_load reads torch.save checkpoints)"
                )
            if "data.pkl" not in records:
                raise ModelLoadError(f"{p}: a zip archive without data.pkl is not a checkpoint")
            data = reader.get_record("data.pkl")
    except MlwardenError:
        raise
    except Exception as exc:  # torch's reader raises RuntimeError on bad archives
        raise ModelLoadError(f"{p}: truncated or corrupt zip archive ({exc})") from None
    scan = _scan(p, memoryview(data), policy, joblib_frames=False, member="data.pkl")
    _refuse_if_unsafe(p, [scan], total=len(data))
    module = restricted_pickle_module(policy, path=p)

    def run() -> Any:
        with p.open("rb") as fh:
            return torch.load(fh, map_location="cpu", weights_only=False, pickle_module=module)

    obj = _run_loader(p, run)
    return LoadedModel(obj, "pytorch-zip", [scan])


def _load_torch_legacy(p: Path, policy: Policy, view: memoryview) -> LoadedModel:
    torch = _import_torch(p)
    scans: list[PickleScan] = []
    offset = 0
    # magic number, protocol version, system info, the object, the storage keys;
    # raw storage bytes follow.
    for _ in range(5):
        scan = _scan(p, view[offset:], policy, joblib_frames=False, base=offset)
        scans.append(scan)
        if not scan.complete or scan.issues:
            break
        offset += scan.end
    _refuse_if_unsafe(p, scans)
    module = restricted_pickle_module(policy, path=p)

    def run() -> Any:
        with p.open("rb") as fh:
            return torch.load(fh, map_location="cpu", weights_only=False, pickle_module=module)

    obj = _run_loader(p, run)
    return LoadedModel(obj, "pytorch-legacy", scans)
