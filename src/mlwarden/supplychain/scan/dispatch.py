"""Route bytes to the scanner of the format :func:`~.detect.detect` finds.

Containers (compressed streams, ZF files, archives) call back into :func:`dispatch`
for their content, one nesting level deeper, so a pickle inside gzip inside a zip is
scanned like a pickle file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

from mlwarden.supplychain.scan._context import MAX_NESTING, FileScan, ZipView
from mlwarden.supplychain.scan.detect import SUPPORTED, detect

__all__ = ["dispatch", "scan_zip"]


def dispatch(
    ctx: FileScan,
    data: memoryview,
    *,
    path: Path | None,
    fileobj: IO[bytes] | None = None,
    depth: int = 0,
    container: str = "",
) -> str:
    """Scan ``data`` as whatever format it is; returns the format's name.

    Parameters
    ----------
    ctx : FileScan
        Where the findings go.
    data : memoryview
        The bytes (a memory map of the file, or decompressed content).
    path : Path or None
        The file on disk when ``data`` is the whole file (HDF5 needs it; ONNX uses its
        folder to resolve external data); None for content inside a container.
    fileobj : binary file or None
        An open file over the same bytes (for the zip central directory).
    depth : int
        Container nesting depth.
    container : str
        What ``data`` came out of, for messages ("gzip-compressed").
    """
    from mlwarden.supplychain.scan import (
        compressed,
        gguf,
        joblib,
        jsonfile,
        keras,
        numpy,
        onnx,
        pickles,
        pytorch,
        safetensors,
    )

    found = detect(data)
    kind = found.kind
    inside = f"a {container} file holding " if container else ""
    if kind == "empty":
        ctx.error(f"{inside}no data: the file is empty")
        return "empty"
    if kind == "numpy":
        numpy.scan_npy(ctx, data, depth=depth)
        return "numpy"
    if kind == "pickle":
        return pickles.scan_pickle_file(ctx, data)
    if kind == "compressed":
        return compressed.scan_compressed(ctx, data, found.detail, depth)
    if kind == "joblib-zf":
        return joblib.scan_zfile(ctx, data, depth)
    if kind == "safetensors":
        safetensors.scan_safetensors(ctx, data)
        return "safetensors"
    if kind == "gguf":
        gguf.scan_gguf(ctx, data)
        return "gguf"
    if kind == "tar":
        return pytorch.scan_torch_tar(ctx, data)
    jinja = path is not None and not container and path.suffix.lower() in JINJA_SUFFIXES
    if kind == "json" and jinja:  # "{% for ... %}" starts like JSON
        gguf.scan_template_file(ctx, data, path.name if path is not None else "template")
        return "jinja-template"
    if kind == "json":
        jsonfile.scan_json(ctx, data)
        return "json"
    if kind == "onnx":
        onnx.scan_onnx(ctx, data, path.parent if path is not None else None)
        return "onnx"
    if kind == "hdf5":
        if path is None:
            ctx.error(f"{inside}an HDF5 file; HDF5 is only scanned as a file on disk")
            return "hdf5"
        return keras.scan_keras_h5(ctx, path)
    if kind == "zip":
        if depth >= MAX_NESTING:
            ctx.error(f"archives nested deeper than {MAX_NESTING}")
            return "zip"
        try:
            zv = ZipView(fileobj if fileobj is not None else io.BytesIO(bytes(data)), data)
        except Exception as exc:  # zipfile raises BadZipFile, ValueError, OSError, ...
            ctx.error(f"truncated or corrupt zip archive ({type(exc).__name__}: {exc})")
            return "zip"
        try:
            return scan_zip(ctx, zv, depth=depth)
        finally:
            zv.close()
    if jinja and path is not None:
        gguf.scan_template_file(ctx, data, path.name)
        return "jinja-template"
    ctx.error(f"unknown format: {inside}{found.detail}; supported: {SUPPORTED}")
    return "unknown"


JINJA_SUFFIXES = (".jinja", ".jinja2", ".j2")
"""Stand-alone chat templates (Hugging Face's ``chat_template.jinja``), checked by name
once the content is none of the binary formats."""


def scan_zip(ctx: FileScan, zv: ZipView, *, prefix: str = "", depth: int = 0) -> str:
    """Scan a zip archive as skops, Keras, PyTorch or ``.npz``, by its members."""
    from mlwarden.supplychain.scan import keras, numpy, pytorch, skops

    names = zv.names
    if not names:
        ctx.error("an empty zip archive")
        return "zip"
    if skops.is_skops_zip(names):
        skops.scan_skops(ctx, zv, prefix=prefix, depth=depth)
        return "skops"
    if keras.is_keras_zip(names):
        keras.scan_keras_zip(ctx, zv, prefix=prefix, depth=depth)
        return "keras"
    if pytorch.is_torch_zip(names):
        return pytorch.scan_torch_zip(ctx, zv, prefix=prefix, depth=depth)
    if any(n.endswith(".npy") for n in names):
        numpy.scan_npz(ctx, zv, prefix=prefix, depth=depth)
        return "numpy-npz"
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    ctx.error(
        "unknown format: a zip archive that is none of skops, Keras, PyTorch or NumPy "
        f".npz (members: {shown}); supported: {SUPPORTED}"
    )
    pickles = [m for m in zv if m.name.endswith((".pkl", ".pickle", ".joblib"))]
    if pickles:  # still worth a verdict of their own: a loader may read them
        from mlwarden.supplychain.scan.pickles import scan_pickle_stream

        for m in pickles:
            try:
                content, _ = zv.read(m, ctx.max_decompressed)
            except ValueError as exc:
                ctx.error(f"cannot read the member: {exc}", m.name)
                continue
            scan_pickle_stream(ctx, content, member=m.name, depth=depth)
    return "zip"
