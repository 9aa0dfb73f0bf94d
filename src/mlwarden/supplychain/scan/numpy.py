"""NumPy ``.npy`` arrays and ``.npz`` archives, read without NumPy.

Format: ``.npy`` is the magic ``\\x93NUMPY``, a version (1.0: 2-byte header length;
2.0 and 3.0: 4-byte), and a Python-literal header ``{'descr': ..., 'fortran_order':
..., 'shape': ...}``, followed by the raw array data or, for ``dtype=object``
(including structured dtypes with an object field), by a pickle of the whole array.
``.npz`` is a zip archive of ``.npy`` members (``numpy.savez``, ``savez_compressed``);
``numpy.load`` reads *any* member that starts with the ``.npy`` magic as an array.

Threat model: ``numpy.load(..., allow_pickle=True)`` (required for object arrays, and
the default before NumPy 1.16.3, CVE-2019-6446) unpickles the payload of an object
array, which runs code like any pickle. Numeric arrays hold only numbers: their data
is skipped after checking that its size matches the header. Object arrays are
reported as carrying an embedded pickle (MLW-SUP-004) when that pickle is unsafe,
alongside what the pickle scan found; benign object arrays pass with a note.
Headers are parsed with :func:`ast.literal_eval` (no code runs) after a size cap, so a
huge or hostile header gets an error verdict, never an allocation of its claimed size.
"""

from __future__ import annotations

import ast
import re
import struct
from dataclasses import dataclass
from typing import Any

from mlwarden.supplychain.rules import RULE_EMBEDDED_PICKLE
from mlwarden.supplychain.scan._context import FileScan, ZipView, human_bytes, join_member
from mlwarden.supplychain.scan.pickles import scan_pickle_stream

__all__ = ["MAX_HEADER", "NPY_MAGIC", "NpyHeader", "parse_npy_header", "scan_npy", "scan_npz"]

NPY_MAGIC = b"\x93NUMPY"
MAX_HEADER = 1 << 20
"""Largest ``.npy`` header accepted (NumPy's own default limit is 10,000 bytes)."""
MAX_STACKED = 10_000

_TYPESTR = re.compile(r"^([<>|=]?)([a-zA-Z?])(\d*)(\[\w+\])?$")
_FIXED = {"b": None, "i": None, "u": None, "f": None, "c": None, "?": 1}


@dataclass(frozen=True)
class NpyHeader:
    """A parsed ``.npy`` header.

    Parameters
    ----------
    version : tuple of int
        Format version.
    descr : object
        The dtype description.
    shape : tuple of int
        Array shape.
    data_offset : int
        Where the data (or the pickle) starts.
    has_object : bool
        The dtype holds Python objects: the data is a pickle.
    nbytes : int
        Size of the raw data (0 for object arrays).
    """

    version: tuple[int, int]
    descr: Any
    shape: tuple[int, ...]
    data_offset: int
    has_object: bool
    nbytes: int


def parse_npy_header(buf: bytes, total: int) -> NpyHeader:
    """Parse the header at the start of ``buf`` (a prefix of a ``total``-byte stream).

    Raises
    ------
    ValueError
        With a message that says what is wrong (truncated, too large, not a literal,
        missing keys, unsupported dtype).
    """
    if not buf.startswith(NPY_MAGIC) or len(buf) < 10:
        raise ValueError("not a .npy array (no \\x93NUMPY magic) or truncated")
    major, minor = buf[6], buf[7]
    if major == 1:
        (hlen,) = struct.unpack("<H", buf[8:10])
        start = 10
    elif major in (2, 3):
        if len(buf) < 12:
            raise ValueError("truncated .npy header")
        (hlen,) = struct.unpack("<I", buf[8:12])
        start = 12
    else:
        raise ValueError(f"unsupported .npy format version {major}.{minor}")
    if start + hlen > total:
        raise ValueError(
            f"the header claims {human_bytes(hlen)} but the array has only "
            f"{human_bytes(max(total - start, 0))} after the preamble (truncated or crafted)"
        )
    if hlen > MAX_HEADER:
        raise ValueError(
            f"the header is {human_bytes(hlen)}, over the {human_bytes(MAX_HEADER)} limit"
        )
    if start + hlen > len(buf):
        raise ValueError("truncated .npy header")
    raw = buf[start : start + hlen]
    try:
        text = raw.decode("utf-8" if major == 3 else "latin1")
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
        raise ValueError(f"the header is not a Python literal ({type(exc).__name__})") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ValueError(
            "the header must be a dict with exactly the keys descr, fortran_order, shape"
        )
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ValueError(f"invalid shape {shape!r:.80}")
    if not isinstance(header["fortran_order"], bool):
        raise ValueError("fortran_order must be True or False")
    descr = header["descr"]
    has_object = _has_object(descr)
    nbytes = 0
    if not has_object:
        itemsize = _itemsize(descr)
        count = 1
        for d in shape:
            count *= d
        nbytes = count * itemsize
    return NpyHeader((major, minor), descr, shape, start + hlen, has_object, nbytes)


def _has_object(descr: Any) -> bool:
    if isinstance(descr, str):
        m = _TYPESTR.match(descr)
        return bool(m and m.group(2) == "O")
    if isinstance(descr, list):
        for field in descr:
            if isinstance(field, tuple) and len(field) >= 2 and _has_object(field[1]):
                return True
    return False


def _itemsize(descr: Any, depth: int = 0) -> int:
    if depth > 32:
        raise ValueError("dtype nested too deeply")
    if isinstance(descr, str):
        m = _TYPESTR.match(descr)
        if not m:
            raise ValueError(f"unsupported dtype {descr!r:.60}")
        kind, digits = m.group(2), m.group(3)
        if kind == "?":
            return 1
        if not digits:
            raise ValueError(f"unsupported dtype {descr!r:.60} (no size)")
        n = int(digits)
        if kind in "biufcSaVMm":
            return n
        if kind == "U":
            return 4 * n
        raise ValueError(f"unsupported dtype kind {kind!r} in {descr!r:.60}")
    if isinstance(descr, list):
        total = 0
        for field in descr:
            if not (isinstance(field, tuple) and len(field) in (2, 3)):
                raise ValueError(f"invalid structured dtype field {field!r:.60}")
            size = _itemsize(field[1], depth + 1)
            if len(field) == 3:
                sub = field[2]
                dims = sub if isinstance(sub, tuple) else (sub,)
                for d in dims:
                    if not isinstance(d, int) or d < 0:
                        raise ValueError(f"invalid sub-array shape {sub!r:.60}")
                    size *= d
            total += size
        return total
    raise ValueError(f"unsupported dtype description {descr!r:.60}")


def scan_npy(
    ctx: FileScan,
    data: memoryview,
    *,
    member: str = "",
    total: int | None = None,
    depth: int = 0,
) -> bool:
    """Scan a ``.npy`` stream (arrays stacked by repeated ``numpy.save`` included).

    Parameters
    ----------
    data : memoryview
        The stream, or only a prefix of it when ``total`` is given (archive members
        whose numeric data need not be read).
    total : int or None
        The stream's full length when ``data`` is a prefix.

    Returns
    -------
    bool
        False when the header needs data that ``data`` does not hold (an object
        array given as a prefix): read the whole member and call again.
    """
    size = len(data) if total is None else total
    pos = 0
    count = 0
    while True:
        try:
            h = parse_npy_header(bytes(data[pos : pos + 12 + MAX_HEADER]), size - pos)
        except ValueError as exc:
            ctx.error(f"invalid .npy array at offset {pos}: {exc}", member)
            return True
        count += 1
        ctx.add_scanned(h.data_offset)
        start = pos + h.data_offset
        if h.has_object:
            if total is not None and len(data) < size:
                return False
            before = len(ctx.result.issues)
            scan_pickle_stream(ctx, data[start:], member=member, base_offset=start, depth=depth + 1)
            where = f"{member}@{start}" if member else f"@{start}"
            if len(ctx.result.issues) > before:
                ctx.issue(
                    RULE_EMBEDDED_PICKLE,
                    where,
                    f"object-dtype array (descr {h.descr!r:.40}) holding a pickle",
                    "numpy.load(allow_pickle=True) unpickles this array's data, and the "
                    "pickle is unsafe (see the other issues at this location).",
                )
            else:
                ctx.note(
                    f"{member + ': ' if member else ''}object-dtype array: its pickle "
                    "was scanned; loading it needs allow_pickle=True"
                )
            return True  # the pickle scan handled everything after it
        end = start + h.nbytes
        if end > size:
            ctx.error(
                f"truncated: the array needs {human_bytes(h.nbytes)} of data but "
                f"{human_bytes(max(size - start, 0))} follow the header",
                member,
            )
            return True
        if end == size:
            if count > 1:
                ctx.note(f"{member + ': ' if member else ''}{count} arrays stacked")
            return True
        if count >= MAX_STACKED:
            ctx.error(f"more than {MAX_STACKED} arrays stacked", member)
            return True
        nxt = bytes(data[end : end + len(NPY_MAGIC)])
        if total is not None and len(data) < end + len(NPY_MAGIC):
            ctx.malformed(
                member,
                f"{human_bytes(size - end)} after the array",
                f"{size - end} bytes follow the array data; numpy.load ignores them.",
            )
            return True
        if nxt != NPY_MAGIC:
            where = f"{member}@{end}" if member else f"@{end}"
            ctx.malformed(
                where,
                f"{human_bytes(size - end)} after the array",
                f"{size - end} bytes follow the array data and are not another array; "
                "numpy.load ignores them, but another reader may not.",
            )
            return True
        pos = end


def scan_npz(ctx: FileScan, zv: ZipView, *, prefix: str = "", depth: int = 0) -> None:
    """Scan an ``.npz`` archive: every member that starts with the ``.npy`` magic."""
    for name in zv.duplicates():
        ctx.malformed(
            join_member(prefix, name),
            f"duplicate member {name}",
            f"the archive holds several members named {name}; every copy was scanned.",
        )
    arrays = 0
    for m in zv:
        where = join_member(prefix, m.name)
        try:
            head, _ = zv.read(m, ctx.max_decompressed, prefix=12 + MAX_HEADER)
            if bytes(head[: len(NPY_MAGIC)]) != NPY_MAGIC:
                ctx.note(f"{where}: not an array; numpy.load returns its raw bytes")
                continue
            arrays += 1
            if scan_npy(ctx, head, member=where, total=m.info.file_size, depth=depth):
                continue
            content, crc_ok = zv.read(m, ctx.max_decompressed)
        except ValueError as exc:
            ctx.error(f"cannot read the member: {exc}", where)
            continue
        if not crc_ok:
            ctx.malformed(where, "CRC mismatch", f"the CRC-32 of {m.name} does not match.")
        scan_npy(ctx, content, member=where, depth=depth)
    if arrays == 0:
        ctx.note(f"{prefix + ': ' if prefix else ''}the archive holds no arrays")
