"""Keras models: ``.keras`` archives (Keras 3) and HDF5 ``.h5`` files (Keras 2).

Formats:

- ``.keras``: a zip archive with ``config.json`` (the model as nested serialised
  objects ``{"module", "class_name", "config", "registered_name"}``),
  ``metadata.json`` and ``model.weights.h5`` (weights only).
- ``.h5``: an HDF5 file whose root attributes ``model_config`` and
  ``training_config`` hold the model as JSON; read with h5py, attributes only, never
  the weights, in a separate process under a time and memory limit (libhdf5 hangs or
  crashes on some crafted files), started only when an HDF5 signature is seen.

Threat model: a ``Lambda`` layer stores Python bytecode (base64 of ``marshal``) that
Keras rebuilds into a function and calls, i.e. code execution when the model is
loaded or first called (CVE-2024-3660: arbitrary code injection in Keras < 2.13 via
Lambda layers; ``safe_mode`` only protects Keras 3 ``.keras`` loads). Keras 3 also
imports the ``module`` and looks up the ``class_name`` that a config names, so a
config that points outside Keras (``{"module": "os", "class_name": "system"}`` or
``"builtins"``) makes loading import and call arbitrary callables (CVE-2025-1550,
safe_mode bypass). The whole JSON tree is walked at any depth (nested
Sequential/Functional models, ``TimeDistributed`` and ``Bidirectional`` wrappers,
optimizers, losses, custom objects). Reported as MLW-SUP-005:

- any ``Lambda`` layer (and Keras 3's ``__lambda__`` serialised functions),
  ``TFSMLayer`` (loads an external TensorFlow SavedModel);
- any ``module`` that is not ``keras`` / ``keras.*``;
- any ``registered_name`` of a custom object (``Package>Name``) outside ``keras``;
- any ``class_name`` with a dotted path or an unknown dunder name.

A name the user trusts (``module.ClassName``, or a module) can be allowed with the
policy's ``allow`` list.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from mlwarden.supplychain.rules import RULE_KERAS_CODE
from mlwarden.supplychain.scan._context import FileScan, ZipView, join_member

__all__ = ["check_config", "is_keras_zip", "scan_keras_h5", "scan_keras_zip"]

CODE_LAYERS = {
    "Lambda": "Lambda layer (serialised Python bytecode run by Keras)",
    "TFSMLayer": "TFSMLayer (loads and runs an external TensorFlow SavedModel)",
}
KERAS_SPECIAL = frozenset(
    {
        "__tensor__",
        "__numpy__",
        "__bytes__",
        "__tuple__",
        "__slice__",
        "__ellipsis__",
        "__typespec__",
        "__keras_tensor__",
    }
)
"""Keras 3's own markers for plain values (``__lambda__`` is not one of them)."""

MAX_JSON = 64 << 20
"""Largest ``config.json`` / HDF5 config attribute parsed (64 MiB)."""


def is_keras_zip(names: list[str]) -> bool:
    """True for a Keras 3 ``.keras`` archive."""
    return "config.json" in names and (
        "metadata.json" in names or any(n.startswith("model.weights.") for n in names)
    )


def _keras_module(module: str) -> bool:
    return module == "keras" or module.startswith("keras.")


def check_config(ctx: FileScan, config: Any, where: str) -> int:
    """Walk a Keras JSON config at any depth; returns the number of objects seen.

    Parameters
    ----------
    ctx : FileScan
        Where issues go.
    config : object
        The parsed JSON.
    where : str
        The member or attribute it came from (prefix of every location).
    """
    allow = ctx.policy.allow
    n_objects = 0
    stack: list[tuple[Any, str]] = [(config, "")]
    while stack:
        node, path = stack.pop()
        loc = f"{where}:{path}" if path else where
        if isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(node))))
            continue
        if not isinstance(node, dict):
            continue
        class_name = node.get("class_name")
        module = node.get("module")
        registered = node.get("registered_name")
        if isinstance(class_name, str):
            n_objects += 1
            qual = f"{module}.{class_name}" if isinstance(module, str) else class_name
            allowed = qual in allow or (isinstance(module, str) and module in allow)
            if not allowed:
                _check_object(ctx, loc, class_name, module, registered, node)
        stack.extend(
            (v, f"{path}.{k}" if path else str(k))
            for k, v in reversed(list(node.items()))
            if isinstance(v, dict | list)
        )
    return n_objects


def _check_object(
    ctx: FileScan, loc: str, class_name: str, module: Any, registered: Any, node: dict[str, Any]
) -> None:
    short = class_name.rsplit(">", 1)[-1]
    if short in CODE_LAYERS:
        ctx.issue(
            RULE_KERAS_CODE,
            loc,
            CODE_LAYERS[short],
            f"the model contains a {short} layer; loading or calling the model runs code "
            "stored in the file.",
        )
    elif class_name == "__lambda__":
        ctx.issue(
            RULE_KERAS_CODE,
            loc,
            "serialised Python lambda (__lambda__)",
            "a Python function is stored as marshalled bytecode and rebuilt when the model "
            "is loaded.",
        )
    elif (class_name.startswith("__") and class_name not in KERAS_SPECIAL) or "." in class_name:
        ctx.issue(
            RULE_KERAS_CODE,
            loc,
            f"class_name {class_name}",
            f"class_name {class_name!r} is not a Keras class; loading resolves it as a "
            "Python object path.",
        )
    if isinstance(module, str) and not _keras_module(module):
        ctx.issue(
            RULE_KERAS_CODE,
            loc,
            f"module {module} ({class_name})",
            f"the config makes Keras import module {module!r} and use {class_name!r} from "
            "it: loading the model imports and calls code outside Keras.",
        )
    elif module is not None and not isinstance(module, str):
        ctx.issue(
            RULE_KERAS_CODE,
            loc,
            f"module {module!r:.40}",
            "the module field is not a string.",
        )
    if isinstance(registered, str) and ">" in registered:
        package = registered.split(">", 1)[0]
        if not _keras_module(package):
            ctx.issue(
                RULE_KERAS_CODE,
                loc,
                f"custom object {registered}",
                f"the model needs custom object {registered!r}: code registered outside "
                "Keras runs when it is loaded.",
            )


def _parse(ctx: FileScan, raw: bytes | str, where: str) -> Any:
    if len(raw) > MAX_JSON:
        ctx.error(f"the model config is {len(raw)} bytes, over the {MAX_JSON} limit", where)
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        ctx.error(f"the model config is not valid JSON ({type(exc).__name__})", where)
        return None


def scan_keras_zip(ctx: FileScan, zv: ZipView, *, prefix: str = "", depth: int = 0) -> None:
    """Scan a ``.keras`` archive's ``config.json`` (and weights in ``.npz`` if any)."""
    from mlwarden.supplychain.scan.numpy import scan_npz

    for name in zv.duplicates():
        ctx.malformed(
            join_member(prefix, name),
            f"duplicate member {name}",
            f"the archive holds several members named {name}; every copy was scanned.",
        )
    for m in zv:
        where = join_member(prefix, m.name)
        if m.name in ("config.json", "metadata.json"):
            try:
                content, crc_ok = zv.read(m, min(ctx.max_decompressed, MAX_JSON))
            except ValueError as exc:
                ctx.error(f"cannot read the member: {exc}", where)
                continue
            if not crc_ok:
                ctx.malformed(where, "CRC mismatch", f"the CRC-32 of {m.name} does not match.")
            ctx.add_scanned(len(content))
            parsed = _parse(ctx, bytes(content), where)
            if m.name == "config.json" and parsed is not None:
                n = check_config(ctx, parsed, where)
                ctx.note(f"{where}: {n} serialised objects checked")
        elif m.name.endswith(".npz"):
            try:
                content, _ = zv.read(m, ctx.max_decompressed)
                inner = ZipView(io.BytesIO(bytes(content)), content)
            except Exception as exc:  # zipfile raises several types on bad archives
                ctx.error(f"cannot read the weights archive ({type(exc).__name__})", where)
                continue
            try:
                scan_npz(ctx, inner, prefix=where, depth=depth + 1)
            finally:
                inner.close()
        elif m.name.endswith(".h5"):
            ctx.note(f"{where}: weights (HDF5 datasets), not read")


H5_TIMEOUT = 30.0
"""Seconds the HDF5 reader process may take before the file gets an error verdict."""
H5_MEMORY = 4 << 30
"""Address-space limit of the HDF5 reader process (bytes)."""

_H5_READER = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
import h5py
for line in sys.stdin:
    out = {}
    try:
        with h5py.File(line.rstrip("\n"), "r", locking=False) as f:
            for key in ("model_config", "training_config", "keras_version"):
                if key in f.attrs:
                    v = f.attrs[key]
                    if isinstance(v, bytes):
                        v = v.decode("utf-8", "replace")
                    out[key] = v if isinstance(v, str) else None
        reply = {"ok": out}
    except Exception as exc:
        reply = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


class _H5Reader:
    """One HDF5 reader process, reused for every HDF5 file a scan meets.

    Starting Python, h5py and NumPy costs a quarter of a second; the process is started
    on the first HDF5 file and kept until the scanner's process exits. A reader that
    times out, crashes or dies is killed and the next file gets a fresh one.
    """

    def __init__(self) -> None:
        self._proc: Any = None

    def _start(self) -> Any:
        import atexit
        import subprocess
        import sys

        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _H5_READER, str(H5_MEMORY)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        atexit.register(self.close)
        return self._proc

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def read(self, path: Path) -> dict[str, str | None]:
        import selectors

        if "\n" in str(path):
            raise ValueError("the file name contains a newline")
        proc = self._proc if self._proc is not None and self._proc.poll() is None else None
        try:
            proc = proc or self._start()
            proc.stdin.write(str(path).encode("utf-8", "surrogateescape") + b"\n")
            proc.stdin.flush()
        except OSError as exc:
            self.close()
            raise ValueError(f"cannot start the HDF5 reader ({exc})") from None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            ready = sel.select(timeout=H5_TIMEOUT)
        if not ready:
            self.close()
            raise ValueError(f"the HDF5 reader gave up after {H5_TIMEOUT:.0f} s")
        line = proc.stdout.readline()
        if not line:
            self.close()
            raise ValueError("the HDF5 reader crashed on the file")
        try:
            reply = json.loads(line)
        except ValueError:
            self.close()
            raise ValueError("the HDF5 reader returned no result") from None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok", {}), dict):
            raise ValueError("the HDF5 reader returned no result")
        if "error" in reply:
            raise ValueError(str(reply["error"]))
        attrs: dict[str, str | None] = reply.get("ok", {})
        return attrs


_READER = _H5Reader()


def _read_h5_attrs(path: Path) -> dict[str, str | None]:
    """Read the root attributes in a child process.

    libhdf5 is C code with a long record of crashes, hangs and memory corruption on
    crafted files; running it in its own process, under a time and memory limit, keeps
    a hostile file from hanging or crashing the scan (and keeps h5py and NumPy out of
    the scanner's process).

    Raises
    ------
    ValueError
        When the reader fails, crashes or runs out of time; the message says why.
    """
    return _READER.read(path.resolve())


def scan_keras_h5(ctx: FileScan, path: Path) -> str:
    """Scan an HDF5 file's Keras attributes; returns ``keras-h5`` or ``hdf5``."""
    try:
        attrs = _read_h5_attrs(path)
    except ValueError as exc:
        ctx.error(f"cannot read the HDF5 file ({exc})")
        return "hdf5"
    configs = {k: v for k, v in attrs.items() if k in ("model_config", "training_config")}
    if not configs:
        ctx.note("HDF5 file without a Keras model config: datasets only, not read")
        return "hdf5"
    for key, raw in configs.items():
        if not isinstance(raw, str):
            ctx.error(f"the {key} attribute is not a string", key)
            continue
        ctx.add_scanned(len(raw))
        parsed = _parse(ctx, raw, key)
        if parsed is not None:
            n = check_config(ctx, parsed, key)
            ctx.note(f"{key}: {n} serialised objects checked")
    version = attrs.get("keras_version")
    if isinstance(version, str):
        ctx.note(f"saved by Keras {version}")
    return "keras-h5"
