"""What every format scanner shares: the per-file accumulator, limits and zip reading.

A format scanner receives a :class:`FileScan` (where issues, errors, notes and
globals go) and the file's bytes as a read-only :class:`memoryview` (a memory map of
the file, or bytes that were decompressed or read from an archive member). It reads
only what it needs: slicing a memory map touches no page that is not read, so tensor
storage that a scanner skips is never read from disk.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from mlwarden.findings.taxonomy import Rule, Severity
from mlwarden.supplychain.policy import Policy
from mlwarden.supplychain.result import FileResult, ScanIssue
from mlwarden.supplychain.rules import RULE_MALFORMED

if TYPE_CHECKING:
    from mlwarden.supplychain.pickle_scan import PickleScan

__all__ = [
    "DEFAULT_MAX_DECOMPRESSED",
    "MAX_NESTING",
    "FileScan",
    "ZipMember",
    "ZipView",
    "human_bytes",
    "join_member",
]

DEFAULT_MAX_DECOMPRESSED = 4 << 30
"""Largest decompressed stream or archive member a scan expands in memory (4 GiB).

A policy's ``max_file_bytes``, when smaller, is used instead, so that a small
compressed file can not expand into a memory exhaustion (decompression bomb)."""

MAX_NESTING = 8
"""How deep containers may nest (a zip in a zip, a compressed stream in a zip ...)."""

_ZIP_LOCAL = b"PK\x03\x04"


def human_bytes(n: int) -> str:
    """``1536`` → ``'1.5 KiB'``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def join_member(parent: str, child: str) -> str:
    """``'a.zip'`` + ``'b.npy'`` → ``'a.zip/b.npy'`` (either may be empty)."""
    if not parent:
        return child
    if not child:
        return parent
    return f"{parent}/{child}"


@dataclass
class FileScan:
    """The scan of one file while it runs: scanners add to :attr:`result`.

    Parameters
    ----------
    path : str
        The file on disk (used in every issue and error).
    policy : Policy
        The user's allow and deny lists and limits.
    result : FileResult
        Where issues, errors, notes and globals are collected.
    external_data : list of str
        Resolved paths of files the scanned file makes its loader read as raw data
        (ONNX external tensors inside the model's folder).
    """

    path: str
    policy: Policy
    result: FileResult
    external_data: list[str] = field(default_factory=list)
    _globals_seen: set[str] = field(default_factory=set)

    @property
    def max_decompressed(self) -> int:
        """The most bytes a stream or member may expand to."""
        limit = self.policy.max_file_bytes
        return DEFAULT_MAX_DECOMPRESSED if limit is None else min(limit, DEFAULT_MAX_DECOMPRESSED)

    def issue(
        self,
        rule: Rule,
        location: str,
        construct: str,
        message: str,
        *,
        severity: Severity | None = None,
    ) -> None:
        """Record one dangerous construct (with the rule's severity unless given)."""
        self.result.issues.append(
            ScanIssue(
                rule_id=rule.id,
                severity=severity if severity is not None else rule.severity,
                path=self.path,
                location=location,
                construct=construct,
                message=message,
            )
        )

    def malformed(self, location: str, construct: str, message: str) -> None:
        """Record a structural problem that loaders tolerate (MLW-SUP-008)."""
        self.issue(RULE_MALFORMED, location, construct, message)

    def error(self, message: str, member: str = "") -> None:
        """Record why (part of) the file could not be scanned; names the file and member."""
        if message.startswith(self.path):  # already names the file (pickle scanner)
            self.result.errors.append(message)
            return
        where = f"{self.path}: {member}: " if member else f"{self.path}: "
        self.result.errors.append(where + message)

    def note(self, message: str) -> None:
        """Record a fact that is not a verdict."""
        if message not in self.result.notes:
            self.result.notes.append(message)

    def add_globals(self, names: Iterable[str]) -> None:
        """Record globals in order of first appearance."""
        for name in names:
            if name not in self._globals_seen:
                self._globals_seen.add(name)
                self.result.globals.append(name)

    def add_scanned(self, n: int) -> None:
        """Count bytes read and parsed."""
        self.result.bytes_scanned += max(0, n)

    def add_pickle(self, ps: PickleScan, member: str) -> None:
        """Merge the scan of one pickle: issues, globals, notes, and its error if any."""
        self.result.issues.extend(ps.issues)
        self.add_globals(ps.globals)
        for n in ps.notes:
            self.note(f"{member}: {n}" if member else n)
        if not ps.complete:
            self.error(ps.error or "the pickle could not be parsed to its end", member)


# --------------------------------------------------------------------------- zip
@dataclass(frozen=True)
class ZipMember:
    """One entry of a zip archive's central directory."""

    info: zipfile.ZipInfo
    index: int

    @property
    def name(self) -> str:
        """The member's name."""
        return self.info.filename


class ZipView:
    """A zip archive read without :mod:`zipfile`'s member reader.

    The central directory is parsed by :mod:`zipfile` (it handles ZIP64 and data
    before the archive); member data is located through each member's *local* header,
    as loaders such as torch's miniz do, so that a CRC mismatch (which zipfile refuses
    and torch ignores) does not hide a member from the scan.

    Parameters
    ----------
    fileobj : binary file
        The archive, seekable (for the central directory).
    data : memoryview
        The same bytes, for member data (a memory map: members never read stay on disk).
    """

    def __init__(self, fileobj: IO[bytes], data: memoryview) -> None:
        self._zf = zipfile.ZipFile(fileobj)
        self.data = data
        self.members = [ZipMember(info, i) for i, info in enumerate(self._zf.infolist())]

    def close(self) -> None:
        """Release the central directory."""
        self._zf.close()

    @property
    def names(self) -> list[str]:
        """Member names in central-directory order (duplicates included)."""
        return [m.name for m in self.members]

    def duplicates(self) -> list[str]:
        """Names that appear more than once."""
        return sorted(n for n, c in Counter(self.names).items() if c > 1)

    def find(self, name: str) -> list[ZipMember]:
        """Every entry called ``name``."""
        return [m for m in self.members if m.name == name]

    def __iter__(self) -> Iterator[ZipMember]:
        return iter(self.members)

    def _data_span(self, member: ZipMember) -> tuple[int, int]:
        info = member.info
        off = info.header_offset
        local = bytes(self.data[off : off + 30])
        if len(local) < 30 or local[:4] != _ZIP_LOCAL:
            raise ValueError(f"no local file header at offset {off} (archive truncated or corrupt)")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = off + 30 + name_len + extra_len
        end = start + info.compress_size
        if end > len(self.data):
            raise ValueError(
                f"member data runs past the end of the archive ({end} > {len(self.data)} bytes)"
            )
        return start, end

    def read(
        self, member: ZipMember, limit: int, prefix: int | None = None
    ) -> tuple[memoryview, bool]:
        """The member's bytes and whether their CRC matches the central directory.

        Parameters
        ----------
        member : ZipMember
            The entry to read.
        limit : int
            Refuse members that expand past this many bytes.
        prefix : int or None
            Read only this many bytes from the start (no CRC check; ``True`` returned).

        Raises
        ------
        ValueError
            Truncated, encrypted, too large or using an unsupported compression method;
            the message says which.
        """
        info = member.info
        if info.flag_bits & 0x1:
            raise ValueError("the member is encrypted")
        start, end = self._data_span(member)
        raw = self.data[start:end]
        want = info.file_size if prefix is None else min(prefix, info.file_size)
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                raise ValueError(
                    f"stored member has compressed size {info.compress_size} but size "
                    f"{info.file_size}"
                )
            if prefix is not None:
                return raw[:want], True
            content: memoryview = raw
        else:
            cap = limit if prefix is None else want
            try:
                content = memoryview(_inflate(info.compress_type, raw, cap))
            except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
                raise ValueError(f"corrupt compressed data ({exc})") from None
            if prefix is not None:
                return content[:want], True
            if len(content) > limit:
                raise ValueError(f"the member expands past the {human_bytes(limit)} limit")
            if len(content) != info.file_size:
                raise ValueError(
                    f"the member expands to {len(content)} bytes, not the {info.file_size} "
                    "the archive declares"
                )
        return content, (zlib.crc32(content) & 0xFFFFFFFF) == info.CRC


def _inflate(method: int, raw: memoryview, cap: int) -> bytes:
    """Decompress a zip member's data, stopping once ``cap + 1`` bytes came out."""
    if method == zipfile.ZIP_DEFLATED:
        return zlib.decompressobj(-15).decompress(raw, cap + 1)
    if method == zipfile.ZIP_BZIP2:
        return bz2.BZ2Decompressor().decompress(raw, cap + 1)
    if method == zipfile.ZIP_LZMA:
        # zip's LZMA: 2-byte version, 2-byte properties size, properties, raw stream.
        b = bytes(raw[:4])
        if len(b) < 4:
            raise ValueError("truncated LZMA member header")
        (psize,) = struct.unpack("<H", b[2:4])
        props = bytes(raw[4 : 4 + psize])
        filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
        dec = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
        return dec.decompress(raw[4 + psize :], cap + 1)
    raise ValueError(f"unsupported zip compression method {method}")
