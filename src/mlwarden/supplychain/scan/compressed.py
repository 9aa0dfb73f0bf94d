"""Compressed streams: gzip, bz2, xz, lzma ("alone") and zlib, with a pickle inside.

Format: joblib (``joblib.dump(obj, f, compress=...)``) and hand-rolled pipelines
(``pickle.dump`` into ``gzip.open``) write a compressed stream whose content is a
pickle, a joblib pickle with inline array frames, or a ``.npy`` array. The stream is
decompressed in memory up to a limit (4 GiB, or the policy's ``max_file_bytes`` when
smaller), and its content is detected and scanned like a file. lz4 streams (joblib's
``compress='lz4'``) need the optional ``lz4`` package.

Threat model: compression hides a pickle's opcodes from scanners that only look at
raw bytes, and a tiny file can expand to exhaust memory (a decompression bomb); a
stream that expands past the limit gets an error verdict, as does a truncated stream
(whose decompressed part is still scanned, so a payload before the break is
found). Multi-member gzip, bz2 and xz files are read to the end, as their readers do.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from typing import Any

from mlwarden.supplychain.scan._context import MAX_NESTING, FileScan, human_bytes

__all__ = ["decompress", "scan_compressed"]


_NEXT_MEMBER = {"gzip": b"\x1f\x8b", "bz2": b"BZ", "xz": b"\xfd7"}


class _LimitError(ValueError):
    pass


def _new(codec: str) -> Any:
    if codec == "gzip":
        return zlib.decompressobj(wbits=31)
    if codec == "zlib":
        return zlib.decompressobj()
    if codec == "bz2":
        return bz2.BZ2Decompressor()
    if codec == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    if codec == "lzma":
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)
    raise ValueError(f"unknown codec {codec}")


def decompress(codec: str, data: memoryview, limit: int) -> tuple[bytes, str | None]:
    """Decompress a whole stream; returns the bytes and a problem (truncated, trailing
    garbage) or None.

    Raises
    ------
    ValueError
        When the output would exceed ``limit`` bytes or the stream is corrupt from
        its first byte.
    """
    if codec == "lz4":
        return _lz4(data, limit)
    chunks: list[bytes] = []
    size = 0
    rest: bytes | memoryview = data
    problem: str | None = None
    while True:
        dec = _new(codec)
        try:
            chunk = dec.decompress(rest, limit + 1 - size)
        except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            if not chunks:
                raise ValueError(f"corrupt {codec} stream ({exc})") from None
            problem = f"corrupt data after {len(chunks)} {codec} member(s) ({exc})"
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or (not dec.eof and _more_output(codec, dec)):
            raise _LimitError(f"the stream expands past the {human_bytes(limit)} limit")
        if not dec.eof:
            problem = f"truncated {codec} stream"
            break
        unused = dec.unused_data
        if not unused:
            break
        if unused[:2] == _NEXT_MEMBER.get(codec):
            rest = unused
            continue
        if codec in ("gzip", "xz", "zlib", "lzma") and not unused.strip(b"\x00"):
            break  # zero padding
        problem = f"{len(unused)} bytes of data after the end of the {codec} stream"
        break
    # One member (the usual case) is returned as is: no second copy of a large stream.
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), problem


def _more_output(codec: str, dec: Any) -> bool:
    """True when the decompressor stopped at the output cap with more to give."""
    if codec in ("gzip", "zlib"):
        return bool(dec.unconsumed_tail)
    return getattr(dec, "needs_input", True) is False


def _lz4(data: memoryview, limit: int) -> tuple[bytes, str | None]:
    try:
        import lz4.frame  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ValueError(
            "an lz4-compressed file (joblib compress='lz4'); install the lz4 package to scan it"
        ) from None
    dec = lz4.frame.LZ4FrameDecompressor()
    try:
        out = dec.decompress(bytes(data), max_length=limit + 1)
    except RuntimeError as exc:
        raise ValueError(f"corrupt lz4 stream ({exc})") from None
    if len(out) > limit:
        raise _LimitError(f"the stream expands past the {human_bytes(limit)} limit")
    if not dec.eof:
        return bytes(out), "truncated lz4 stream"
    return bytes(out), None


def scan_compressed(ctx: FileScan, data: memoryview, codec: str, depth: int = 0) -> str:
    """Decompress and scan the content; returns ``<codec>+<inner format>``."""
    from mlwarden.supplychain.scan.dispatch import dispatch

    try:
        out, problem = decompress(codec, data, ctx.max_decompressed)
    except ValueError as exc:
        ctx.error(str(exc))
        return f"{codec}+unknown"
    ctx.add_scanned(len(data))
    if problem is not None:
        if problem.startswith(("truncated", "corrupt")):
            ctx.error(f"{problem}; the {human_bytes(len(out))} decompressed were scanned")
        else:
            ctx.malformed(
                "",
                f"data after the {codec} stream",
                f"{problem}; decompressors stop before it, so it can only be meant for "
                "another reader.",
            )
    if not out:
        ctx.error(f"the {codec} stream is empty")
        return f"{codec}+empty"
    if depth >= MAX_NESTING:
        ctx.error(f"compressed streams nested deeper than {MAX_NESTING}")
        return f"{codec}+unknown"
    view = memoryview(out)
    inner = dispatch(ctx, view, path=None, depth=depth + 1, container=f"{codec}-compressed")
    return f"{codec}+{inner}"
