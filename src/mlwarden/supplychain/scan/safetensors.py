"""safetensors files: a length-prefixed JSON header and raw tensor bytes.

Format (Hugging Face safetensors): an unsigned 64-bit little-endian header length
``N``, ``N`` bytes of UTF-8 JSON (an object: tensor name → ``{"dtype", "shape",
"data_offsets": [begin, end]}``, plus an optional ``"__metadata__"`` map of strings to
strings), then the byte buffer that the offsets index. The format holds no code, so a
valid file is safe.

Threat model: the format cannot run code, but parsers can be attacked and scanners
fooled. A header length larger than the file (or than the 100 MB the reference
implementation accepts) is a memory-exhaustion attempt: it gets an error verdict and
nothing of that size is allocated. A header whose offsets overlap, leave holes, run
past the buffer, or disagree with dtype × shape, or that has duplicate names,
unknown fields or non-string metadata, is crafted or corrupt; such polyglot-style
files (one byte range read two ways) are reported as MLW-SUP-008, as are bytes after
the buffer. See Trail of Bits' 2023 security review of safetensors for the parser
rules this follows.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from mlwarden.supplychain.scan._context import FileScan, human_bytes

__all__ = ["DTYPE_BITS", "MAX_HEADER", "scan_safetensors"]

MAX_HEADER = 100_000_000
"""The reference implementation refuses headers over 100 MB; so does the scanner."""

DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}
"""Bits per element of every dtype safetensors defines."""

_FIELDS = {"dtype", "shape", "data_offsets"}


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKeyError(k)
        out[k] = v
    return out


def _is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def scan_safetensors(ctx: FileScan, data: memoryview, member: str = "") -> None:
    """Validate a safetensors file's header; the tensor bytes are not read."""
    size = len(data)
    if size < 8:
        ctx.error("truncated: shorter than the 8-byte header length", member)
        return
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER or 8 + n > size:
        ctx.error(
            f"the header length field claims {human_bytes(n)} ({n} bytes), "
            + (
                f"more than the {human_bytes(MAX_HEADER)} safetensors accepts"
                if n > MAX_HEADER
                else f"but the file has {human_bytes(size)}"
            )
            + "; the file is truncated or crafted to exhaust memory and was not parsed",
            member,
        )
        return
    raw = bytes(data[8 : 8 + n])
    ctx.add_scanned(8 + n)
    where = member or "header"

    def bad(construct: str, message: str) -> None:
        ctx.malformed(where, construct, message)

    try:
        text = raw.decode("utf-8")
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as exc:
        bad(f"duplicate key {exc}", f"the header names {exc} twice; readers may pick either.")
        return
    except UnicodeDecodeError:
        bad("header is not UTF-8", "the header is not valid UTF-8 JSON.")
        return
    except (ValueError, RecursionError):
        bad("header is not JSON", "the header is not valid JSON.")
        return
    if not isinstance(header, dict):
        bad("header is not a JSON object", "the header must be a JSON object.")
        return
    buffer_len = size - 8 - n
    spans: list[tuple[int, int, str]] = []
    problems: list[tuple[str, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                problems.append(
                    ("__metadata__ is not a map of strings", "metadata values must be strings.")
                )
            continue
        if not isinstance(info, dict):
            problems.append((f"tensor {name}", f"the entry for {name!r} is not an object."))
            continue
        if set(info) != _FIELDS:
            problems.append(
                (
                    f"tensor {name} fields",
                    f"the entry for {name!r} must have exactly dtype, shape and "
                    f"data_offsets, not {sorted(info)}.",
                )
            )
            continue
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        bits = DTYPE_BITS.get(dtype) if isinstance(dtype, str) else None
        if bits is None:
            problems.append((f"tensor {name} dtype", f"unknown dtype {dtype!r:.40}."))
            continue
        if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
            problems.append((f"tensor {name} shape", f"invalid shape {shape!r:.60}."))
            continue
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_uint(o) for o in offsets)
            or offsets[0] > offsets[1]
        ):
            problems.append((f"tensor {name} data_offsets", f"invalid offsets {offsets!r:.60}."))
            continue
        begin, end = offsets
        numel = 1
        for d in shape:
            numel *= d
        if (numel * bits) % 8:
            problems.append(
                (f"tensor {name} size", f"{numel} elements of {dtype} are not whole bytes.")
            )
            continue
        if end - begin != numel * bits // 8:
            problems.append(
                (
                    f"tensor {name} size",
                    f"shape {shape} of {dtype} needs {numel * bits // 8} bytes but the "
                    f"offsets span {end - begin}.",
                )
            )
            continue
        if end > buffer_len:
            problems.append(
                (
                    f"tensor {name} data_offsets",
                    f"offsets [{begin}, {end}] run past the {buffer_len}-byte buffer.",
                )
            )
            continue
        spans.append((begin, end, name))
    for construct, message in problems:
        bad(construct, message)
    if problems:
        return
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin < cursor:
            bad(
                f"tensor {name} overlaps",
                f"tensor {name!r} starts at {begin}, inside the previous tensor "
                f"(which ends at {cursor}): one byte range read as two tensors.",
            )
            return
        if begin > cursor:
            bad(
                f"hole before tensor {name}",
                f"bytes {cursor}..{begin} of the buffer belong to no tensor.",
            )
            return
        cursor = end
    if cursor != buffer_len:
        bad(
            f"{human_bytes(buffer_len - cursor)} after the last tensor",
            f"{buffer_len - cursor} bytes after the last tensor belong to no tensor; "
            "loaders ignore them, so they can only be meant for another reader.",
        )
        return
    ctx.note(
        f"{len(spans)} tensor{'s' if len(spans) != 1 else ''}, "
        f"{human_bytes(buffer_len)} of data (not read)"
    )
