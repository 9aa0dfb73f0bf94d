"""joblib files: uncompressed, compressed, and the old ``ZF`` format of joblib < 0.10.

Format: ``joblib.dump`` writes a pickle in which each NumPy array is a
``joblib.numpy_pickle.NumpyArrayWrapper`` followed, inside the pickle stream, by the
array's raw bytes (or, for object arrays, by a nested pickle). With ``compress=``
the whole stream is gzip/zlib/bz2/xz/lzma/lz4-compressed
(:mod:`~mlwarden.supplychain.scan.compressed`). joblib 0.8/0.9 wrote ``ZF`` files: the
magic ``ZF``, the decompressed length in hex padded to 19 characters (plus an extra
space in some versions) and a zlib stream; the arrays then lived in companion files
``<name>_01.npy.z`` (the same ``ZF`` container around a ``.npy``).

Threat model: joblib files are pickles, so loading one runs whatever callables it
names (joblib's own documentation warns never to load untrusted files; CVE-2024-34997
was filed, and disputed, for exactly this). The pickle, every inline frame and every
nested object-array pickle are scanned by
:func:`~mlwarden.supplychain.pickle_scan.scan_pickle` with ``joblib_frames=True``; a
``ZF`` file whose declared length disagrees with its content, or that expands past the
limit, gets an error verdict.
"""

from __future__ import annotations

import zlib

from mlwarden.supplychain.scan._context import FileScan, human_bytes

__all__ = ["ZF_HEADER", "scan_zfile"]

ZF_HEADER = 2 + 19
"""``ZF`` plus the hex length, left-justified to ``len(hex(2 ** 64))`` characters."""


def scan_zfile(ctx: FileScan, data: memoryview, depth: int = 0) -> str:
    """Scan a joblib < 0.10 ``ZF`` file; returns ``joblib-zf``."""
    from mlwarden.supplychain.scan.dispatch import dispatch

    header = bytes(data[:ZF_HEADER])
    try:
        length = int(header[2:].decode("ascii").strip(), 16)
    except (UnicodeDecodeError, ValueError):
        ctx.error(f"invalid ZF header {header!r}")
        return "joblib-zf"
    start = ZF_HEADER + (1 if bytes(data[ZF_HEADER : ZF_HEADER + 1]) == b" " else 0)
    limit = ctx.max_decompressed
    if length > limit:
        ctx.error(f"the ZF header declares {human_bytes(length)}, over the limit")
        return "joblib-zf"
    dec = zlib.decompressobj()
    try:
        out = dec.decompress(data[start:], limit + 1)
    except zlib.error as exc:
        ctx.error(f"corrupt zlib stream in the ZF file ({exc})")
        return "joblib-zf"
    ctx.add_scanned(len(data))
    if len(out) != length:
        ctx.error(
            f"the ZF header declares {length} bytes but the stream expands to {len(out)}"
            " (joblib refuses such a file); the decompressed part was scanned"
        )
    if not out:
        return "joblib-zf"
    inner = dispatch(ctx, memoryview(out), path=None, depth=depth + 1, container="ZF")
    if inner == "pickle" and any("NDArrayWrapper" in g for g in ctx.result.globals):
        ctx.note(
            "the arrays of this joblib<0.10 file live in companion files "
            "(<name>_NN.npy[.z]) next to it; scan them too"
        )
    return "joblib-zf" if inner in ("pickle", "joblib") else f"joblib-zf+{inner}"
