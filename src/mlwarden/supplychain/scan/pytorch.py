"""PyTorch checkpoints: the zip format, legacy stacked pickles, legacy tar files.

Formats:

- **zip** (``torch.save`` since 1.6, TorchScript ``torch.jit.save``): an archive
  ``<root>/data.pkl`` (the object, with tensors as persistent ids), ``<root>/data/<key>``
  (raw tensor storage), ``version``, ``byteorder``; TorchScript adds ``constants.pkl``
  and ``code/``. Every member whose name ends in ``pkl`` is scanned (``data.pkl``,
  ``constants.pkl``, any other ``.pkl``, ``.debug_pkl``); storage members are skipped
  without being read, so a multi-GB checkpoint scans in milliseconds.
- **legacy** (``_use_new_zipfile_serialization=False``): five pickles back to back
  (magic number, protocol version, ``sys_info``, the object, the list of storage
  keys) followed by the raw storages, each an int64 element count and the bytes.
  The element size of each storage comes from the storage type in the object's
  persistent ids; the raw data is skipped by those sizes, never parsed as pickle.
- **tar** (torch < 0.1.10): a tar archive with ``sys_info``, ``pickle`` (the object),
  ``storages`` (a count, then per storage a pickled ``(key, location, type)`` and the
  raw data) and ``tensors`` (a count, then per tensor a pickle and fixed-size
  shape/stride records).

Threat model: ``torch.load`` (with ``weights_only=False``, the default before torch
2.6 and still common) unpickles every one of these pickles, so any of them can run
code (JFrog's 2024 report on malicious Hugging Face models was mostly such files;
Trail of Bits' Fickling injects payloads into PyTorch files). Attackers hide payloads
where scanners do not look: a second ``.pkl`` member, a member whose CRC is wrong
(zipfile refuses it, torch ignores CRCs: reported as MLW-SUP-008 and still scanned),
duplicate member names (MLW-SUP-008, every copy is scanned), or a later pickle of
the legacy stack.
"""

from __future__ import annotations

import struct
import tarfile
from typing import Any

from mlwarden.supplychain.scan._context import FileScan, ZipView, human_bytes, join_member
from mlwarden.supplychain.scan._pickle_values import (
    Global,
    MemoryReader,
    PickleValues,
    evaluate,
)
from mlwarden.supplychain.scan.detect import looks_like_pickle
from mlwarden.supplychain.scan.pickles import scan_pickle_stream

__all__ = [
    "LEGACY_MAGIC",
    "STORAGE_ELEMENT_SIZES",
    "TORCHSCRIPT_RUNTIME",
    "is_legacy_torch",
    "is_torch_tar",
    "is_torch_zip",
    "scan_legacy",
    "scan_torch_tar",
    "scan_torch_zip",
]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
"""The first pickle of a legacy ``torch.save`` file holds this number."""

_LEGACY_PROTOCOL = 1001

STORAGE_ELEMENT_SIZES: dict[str, int] = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QUInt8Storage": 1,
    "QInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
    "UntypedStorage": 1,
}
"""Bytes per element of each ``torch.*Storage`` type a legacy checkpoint can name."""

_LEGACY_PICKLES = ("magic number", "protocol version", "sys_info", "object", "storage keys")
_TAR_MEMBERS = ("sys_info", "pickle", "storages", "tensors")


# ----------------------------------------------------------------------------- zip
def is_torch_zip(names: list[str]) -> bool:
    """True for a ``torch.save`` / ``torch.jit.save`` archive's member names."""
    for n in names:
        parts = n.split("/")
        if parts[-1] in ("data.pkl", "constants.pkl") and len(parts) <= 2:
            return True
    return False


def scan_torch_zip(ctx: FileScan, zv: ZipView, *, prefix: str = "", depth: int = 0) -> str:
    """Scan a torch zip archive; returns ``pytorch-zip`` or ``torchscript``."""
    for name in zv.duplicates():
        ctx.malformed(
            join_member(prefix, name),
            f"duplicate member {name}",
            f"the archive holds {len(zv.find(name))} members named {name}; loaders may "
            "read any of them, so every copy was scanned.",
        )
    # torch.load hands archives with a constants.pkl to torch.jit.load (TorchScript),
    # whose C++ unpickler resolves a fixed set of names and never imports Python.
    torchscript = any(m.name.rsplit("/", 1)[-1] == "constants.pkl" for m in zv)
    first_issue = len(ctx.result.issues)
    n_storage = 0
    storage_bytes = 0
    n_pickles = 0
    for m in zv:
        name = m.name
        base = name.rsplit("/", 1)[-1]
        where = join_member(prefix, name)
        if name.endswith("pkl"):
            n_pickles += 1
            try:
                content, crc_ok = zv.read(m, ctx.max_decompressed)
            except ValueError as exc:
                ctx.error(f"cannot read the member: {exc}", where)
                continue
            if not crc_ok:
                ctx.malformed(
                    where,
                    "CRC mismatch",
                    f"the CRC-32 of {name} does not match the archive's directory; torch "
                    "ignores CRCs and loads it anyway (scanned regardless).",
                )
            scan_pickle_stream(ctx, content, member=where, joblib_frames=False, depth=depth)
        elif _is_storage(name):
            n_storage += 1
            storage_bytes += m.info.file_size
        elif base in ("version", "byteorder", ".format_version", ".storage_alignment"):
            ctx.add_scanned(min(m.info.file_size, 64))
    if n_pickles == 0:
        ctx.error("the archive has no data.pkl or other pickle member to scan", prefix)
    if n_storage:
        ctx.note(
            f"{prefix + ': ' if prefix else ''}tensor storage skipped: {n_storage} "
            f"member{'s' if n_storage != 1 else ''}, {human_bytes(storage_bytes)} "
            "(raw numbers, never unpickled)"
        )
    if torchscript:
        _resolve_torchscript_names(ctx, first_issue)
        ctx.note(
            "TorchScript archive: code/ holds TorchScript (compiled by torch.jit, which "
            "calls registered operators only); it is not analysed"
        )
        return "torchscript"
    return "pytorch-zip"


TORCHSCRIPT_RUNTIME = frozenset(
    {
        "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_tensorlist",
        "torch.jit._pickle.build_doublelist",
        "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensor_from_id",
        "torch.jit._pickle.restore_type_tag",
    }
)
"""Names torch.jit's C++ unpickler handles itself (identity functions in Python too)."""


def _resolve_torchscript_names(ctx: FileScan, first_issue: int) -> None:
    """Drop refusals of names that TorchScript's unpickler resolves without Python.

    ``__torch__.*`` are classes compiled from the archive's own TorchScript code, and
    :data:`TORCHSCRIPT_RUNTIME` are list-building functions implemented in C++; neither
    imports a Python module. Any other refusal stands.
    """
    kept = ctx.result.issues[:first_issue]
    dropped = 0
    for issue in ctx.result.issues[first_issue:]:
        name = issue.construct
        resolved = name in TORCHSCRIPT_RUNTIME or (
            name.startswith("__torch__.")
            and all(p.isidentifier() for p in name.split("."))
            and issue.rule_id in ("MLW-SUP-002",)
        )
        if resolved:
            dropped += 1
        else:
            kept.append(issue)
    ctx.result.issues[:] = kept
    if dropped:
        ctx.note(
            f"{dropped} TorchScript name(s) (__torch__.* classes compiled from the archive, "
            "torch.jit._pickle list builders) are resolved by torch.jit's C++ unpickler, "
            "which imports no Python module"
        )


def _is_storage(name: str) -> bool:
    parts = name.split("/")
    return len(parts) >= 2 and parts[-2] == "data"


# -------------------------------------------------------------------------- legacy
def is_legacy_torch(data: memoryview) -> bool:
    """True when the stream's first pickle is torch's legacy magic number."""
    head = bytes(data[:512])
    if not looks_like_pickle(head):
        return False
    # In a binary protocol the 10-byte magic number can only be a LONG1 (0x8a, length 10)
    # near the start: skip the full evaluation for every other pickle.
    if head[:1] == b"\x80" and b"\x8a\n" not in head[:24]:
        return False
    try:
        return bool(evaluate(head, max_ops=16).value == LEGACY_MAGIC)
    except ValueError:
        return False


def scan_legacy(ctx: FileScan, data: memoryview) -> None:
    """Scan a legacy ``torch.save`` file: five pickles, then raw storage."""
    from mlwarden.supplychain.pickle_scan import scan_pickle

    pos = 0
    values: list[PickleValues] = []
    for label in _LEGACY_PICKLES:
        ps = scan_pickle(
            data[pos:],
            path=ctx.path,
            member="",
            base_offset=pos,
            policy=ctx.policy,
            joblib_frames=False,
            depth=0,
        )
        ctx.add_pickle(ps, "")
        ctx.add_scanned(ps.end)
        if not ps.complete:  # add_pickle recorded why; say which of the five it was
            ctx.note(f"legacy torch checkpoint: the {label} pickle at offset {pos} is broken")
            return
        try:
            values.append(evaluate(data[pos : pos + ps.end]))
        except ValueError as exc:
            ctx.error(f"legacy torch checkpoint: cannot read the {label} pickle ({exc})")
            return
        pos += ps.end
    if values[1].value != _LEGACY_PROTOCOL:
        ctx.note(f"legacy torch checkpoint with protocol version {values[1].value!r}")
    sizes = _storage_types(values[3].persistent_ids)
    keys = values[4].value
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        ctx.error("legacy torch checkpoint: the storage keys pickle is not a list of keys")
        return
    end = _skip_storages(ctx, data, pos, keys, sizes)
    if end is None:
        return
    ctx.note(
        f"tensor storage skipped: {len(keys)} storage{'s' if len(keys) != 1 else ''}, "
        f"{human_bytes(end - pos)} (raw numbers, never unpickled)"
    )
    _trailing(ctx, data, end, "", "the last tensor storage")


def _storage_types(pids: list[Any]) -> dict[str, int | None]:
    """Storage key → element size (None when the type is not known) from persistent ids."""
    out: dict[str, int | None] = {}
    for pid in pids:
        if isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage":
            key = pid[2]
            if isinstance(key, str) and key not in out:
                out[key] = _element_size(pid[1])
    return out


def _element_size(storage_type: Any) -> int | None:
    if isinstance(storage_type, Global) and storage_type.module in ("torch", "torch.storage"):
        return STORAGE_ELEMENT_SIZES.get(storage_type.name)
    return None


def _skip_storages(
    ctx: FileScan,
    data: memoryview,
    pos: int,
    keys: list[str],
    sizes: dict[str, int | None],
    member: str = "",
) -> int | None:
    """Walk raw storages (int64 count + data) in ``keys`` order; the end offset or None."""
    for key in keys:
        size = sizes.get(key)
        if size is None:
            ctx.error(
                f"cannot tell the element size of storage {key!r}, so the raw tensor data "
                "after the pickles could not be walked (every pickle was scanned)",
                member,
            )
            return None
        head = bytes(data[pos : pos + 8])
        if len(head) < 8:
            ctx.error(f"truncated: the data of storage {key!r} is missing", member)
            return None
        (numel,) = struct.unpack("<q", head)
        nbytes = numel * size
        if numel < 0 or pos + 8 + nbytes > len(data):
            ctx.error(
                f"truncated or corrupt: storage {key!r} claims {numel} elements "
                f"({human_bytes(max(nbytes, 0))}) past the end of the data",
                member,
            )
            return None
        ctx.add_scanned(8)
        pos += 8 + nbytes
    return pos


def _trailing(ctx: FileScan, data: memoryview, end: int, member: str, after: str) -> None:
    rest = len(data) - end
    if rest <= 0:
        return
    where = f"{member}@{end}" if member else f"@{end}"
    if looks_like_pickle(bytes(data[end : end + (1 << 16)])):
        # torch never reads it, but a pickle hidden there is worth a verdict of its own.
        scan_pickle_stream(ctx, data[end:], member=member, base_offset=end, joblib_frames=False)
    ctx.malformed(
        where,
        f"{human_bytes(rest)} after {after}",
        f"{rest} bytes follow {after}; torch never reads them, so they can only be "
        "meant for another reader.",
    )


# ----------------------------------------------------------------------------- tar
def is_torch_tar(names: list[str]) -> bool:
    """True when a tar archive has the members of a torch < 0.1.10 checkpoint."""
    return "pickle" in names and ("storages" in names or "tensors" in names)


def scan_torch_tar(ctx: FileScan, data: memoryview) -> str:
    """Scan a legacy tar checkpoint (or report an unknown tar archive)."""
    try:
        with tarfile.open(fileobj=MemoryReader(data), mode="r:") as tar:  # type: ignore[call-overload]
            members = tar.getmembers()
    except (tarfile.TarError, ValueError, EOFError, OSError) as exc:
        ctx.error(f"truncated or corrupt tar archive ({exc})")
        return "tar"
    names = [m.name for m in members]
    if not is_torch_tar(names):
        ctx.error(
            "a tar archive that is not a legacy torch checkpoint (no 'pickle' and "
            f"'storages' members); unknown format; members: {', '.join(names[:8])}"
        )
        return "tar"
    seen: set[str] = set()
    storage_sizes: dict[str, int | None] = {}
    for m in members:
        if m.name in seen:
            ctx.malformed(
                m.name,
                f"duplicate member {m.name}",
                f"the tar archive holds several members named {m.name}; every copy was scanned.",
            )
        seen.add(m.name)
        if not m.isfile():
            ctx.note(f"tar member {m.name} is not a regular file; not read")
            continue
        start, size = m.offset_data, m.size
        if start + size > len(data):
            ctx.error("truncated: the member's data runs past the end of the file", m.name)
            continue
        body = data[start : start + size]
        if m.name == "storages":
            storage_sizes = _scan_tar_storages(ctx, body)
        elif m.name == "tensors":
            _scan_tar_tensors(ctx, body)
        elif m.name in _TAR_MEMBERS or looks_like_pickle(bytes(body[: 1 << 16])):
            scan_pickle_stream(ctx, body, member=m.name, joblib_frames=False)
        else:
            ctx.note(f"tar member {m.name} is not a pickle and torch does not read it")
    if storage_sizes:
        ctx.note(f"tensor storage skipped: {len(storage_sizes)} storages (raw numbers)")
    return "pytorch-tar"


def _scan_one(ctx: FileScan, body: memoryview, pos: int, member: str, label: str) -> Any:
    """Scan the pickle at ``pos``; its inert value and end, or None when broken."""
    from mlwarden.supplychain.pickle_scan import scan_pickle

    ps = scan_pickle(
        body[pos:],
        path=ctx.path,
        member=member,
        base_offset=pos,
        policy=ctx.policy,
        joblib_frames=False,
        depth=0,
    )
    ctx.add_pickle(ps, member)
    ctx.add_scanned(ps.end)
    if not ps.complete:
        return None
    try:
        return evaluate(body[pos : pos + ps.end]).value, pos + ps.end
    except ValueError as exc:
        ctx.error(f"cannot read the {label} pickle at offset {pos} ({exc})", member)
        return None


def _scan_tar_storages(ctx: FileScan, body: memoryview) -> dict[str, int | None]:
    member = "storages"
    got = _scan_one(ctx, body, 0, member, "storage count")
    if got is None:
        return {}
    count, pos = got
    if not isinstance(count, int) or count < 0 or count > len(body):
        ctx.error(f"the storage count {count!r} is not a sane number", member)
        return {}
    sizes: dict[str, int | None] = {}
    for i in range(count):
        got = _scan_one(ctx, body, pos, member, f"storage {i} header")
        if got is None:
            return sizes
        args, pos = got
        if not (isinstance(args, tuple) and len(args) == 3):
            ctx.error(f"storage {i}: expected (key, location, type), got {args!r:.80}", member)
            return sizes
        key = str(args[0])
        sizes[key] = _element_size(args[2])
        end = _skip_storages(ctx, body, pos, [key], sizes, member)
        if end is None:
            return sizes
        pos = end
    got = _scan_one(ctx, body, pos, member, "storage views")
    if got is None:
        return sizes
    _, pos = got
    _trailing(ctx, body, pos, member, "the storage views")
    return sizes


def _scan_tar_tensors(ctx: FileScan, body: memoryview) -> None:
    member = "tensors"
    got = _scan_one(ctx, body, 0, member, "tensor count")
    if got is None:
        return
    count, pos = got
    if not isinstance(count, int) or count < 0 or count > len(body):
        ctx.error(f"the tensor count {count!r} is not a sane number", member)
        return
    for i in range(count):
        got = _scan_one(ctx, body, pos, member, f"tensor {i} header")
        if got is None:
            return
        _, pos = got
        head = bytes(body[pos : pos + 4])
        if len(head) < 4:
            ctx.error(f"truncated: tensor {i} has no shape record", member)
            return
        (ndim,) = struct.unpack("<i", head)
        record = 8 + 16 * ndim + 8
        if ndim < 0 or ndim > 64 or pos + record > len(body):
            ctx.error(f"tensor {i}: corrupt shape record (ndim {ndim})", member)
            return
        ctx.add_scanned(record)
        pos += record
    _trailing(ctx, body, pos, member, "the last tensor record")
