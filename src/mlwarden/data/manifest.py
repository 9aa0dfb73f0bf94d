"""Tamper-evident dataset manifests: sign a table, later name the rows that changed.

A manifest records a table's schema (column names and Arrow types), its row count and a
Merkle tree over its rows, and is signed with an Ed25519 key (``cryptography``).
:func:`verify_dataset` recomputes everything from the data and, when the data no longer
matches, names what changed: columns added, removed, renamed, retyped or reordered, and
rows changed, inserted, removed or moved, by row number (0-based data rows, the first
row after a CSV header is row 0).

Threat model: someone who can write to the data set's storage (a bucket, a share, a
pipeline step) edits, adds, drops or reorders training rows to poison a model (ATLAS
AML.T0020, AML.T0010.002, AML.T0059; OWASP ML02, ML06). They do not hold the signing key.

How rows are hashed (``mlwarden-row-v1``)
-----------------------------------------
The table is read with pyarrow (CSV/TSV, optionally gzip-compressed, and Parquet) and
every value is encoded by its *value*, not by the file's bytes:

* each field gets a type tag (1 byte) and 8 payload bytes (big-endian): ``N`` missing
  (null, empty numeric field, NaN) with zero payload; ``B`` boolean; ``I`` integer
  (int64); ``U`` uint64; ``F`` float (IEEE-754 binary64); ``T`` timestamp (ns since
  the epoch, UTC); ``D`` date (days); ``H`` time of day (ns); ``Z`` duration (ns);
  ``S`` text, ``Y`` bytes and ``X`` any other type (its JSON text), whose payload is
  the byte length of the value;
* the row's encoding is the payloads of all columns, in the manifest's column order,
  then their tags in the same order, then the bytes of the variable-length values in
  the same order.

Every field has a fixed-size part and the lengths of the variable parts are in it, so
the encoding is unambiguous. Row digest: SHA-256 of the encoding. Merkle
leaf of a chunk of ``chunk_rows`` rows: ``SHA-256(0x00 || digest_1 || ... || digest_k)``;
inner nodes ``SHA-256(0x01 || left || right)``, tree shape as RFC 6962 (section 2.1).

Consequences of hashing values: reformatting a file without changing its values
(``1.50`` → ``1.5``, CSV → Parquet with the same column types, different quoting or line
endings) still verifies; a value that changes type (Parquet ``float32`` vs ``float64``,
or a date stored as text in CSV and as a timestamp in Parquet) does not. For the same
file format the encoding is always stable: at verification a CSV is read with the column
types recorded in the manifest.

Locating changes: the manifest also stores the first 8 bytes of every row digest. The
signed Merkle root (over full SHA-256 digests) decides whether the data is intact; the
short digests, aligned with a diff (common prefix and suffix, unique-row anchors,
:class:`difflib.SequenceMatcher` on what is left), only say *where* it changed.

Mixed types: a CSV column that holds numbers and text is read as text (no row is lost
or coerced) and reported in :attr:`SignResult.warnings`; an in-memory pandas column
that holds values of different Python types is refused with a
:class:`~mlwarden.exceptions.DataError` naming the column.
"""

from __future__ import annotations

import base64
import bisect
import csv
import datetime as _dt
import gzip
import hashlib
import json
import re
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mlwarden._keys import fingerprint as key_fingerprint
from mlwarden._keys import write_new_key_file
from mlwarden.data.io import (
    _CSV_SUFFIXES,
    _GZIP_MAGIC,
    _PARQUET_MAGIC,
    _PARQUET_SUFFIXES,
    _SUPPORTED,
    _first_line,
    _listing,
    _suffixes,
)
from mlwarden.exceptions import DataError, DataFileError, InvalidParameterError

if TYPE_CHECKING:
    import pandas as pd

    from mlwarden.findings.finding import Finding

__all__ = [
    "MANIFEST_FORMAT",
    "ROW_ENCODING",
    "DataVerifyResult",
    "RowDiff",
    "SignResult",
    "default_manifest_path",
    "diff_rows",
    "generate_data_key",
    "manifest_finding",
    "merkle_root",
    "read_arrow_table",
    "row_digests",
    "sign_dataset",
    "verify_dataset",
]

MANIFEST_FORMAT = "mlwarden.dataset-manifest"
"""Value of the ``format`` field of every manifest."""
MANIFEST_VERSION = 1
ROW_ENCODING = "mlwarden-row-v1"
"""Id of the canonical row encoding (see the module docstring)."""
MERKLE_SCHEME = "rfc6962-sha256"
SIGNATURE_ALGORITHM = "ed25519"
MANIFEST_SUFFIX = ".manifest.json"
DEFAULT_CHUNK_ROWS = 1024
SHORT_HASH_BYTES = 8
_SIGNING_CONTEXT = b"mlwarden-dataset-manifest-v1\n"
_KEYGEN_HINT = "create a key pair with 'mlwarden data keygen' (Ed25519)"
_CHECK = "data.manifest"
_HEAD = 9
_BLOCK_ROWS = 1 << 17
_PADDED_BYTES = 1 << 27
_CSV_BLOCK = 1 << 22
_SMALL_DIFF = 2000
_MAX_LISTED = 1000

Table = Any  # pyarrow.Table (pyarrow ships no type stubs)
Array = Any  # pyarrow.Array


# ------------------------------------------------------------------------ results
@dataclass(frozen=True)
class SignResult:
    """What :func:`sign_dataset` wrote.

    Parameters
    ----------
    manifest : Path
        The manifest file.
    rows : int
        Rows signed.
    columns : list of str
        Column names, in order.
    merkle_root : str
        Hex Merkle root of the rows.
    key_fingerprint : str
        ``sha256:<hex>`` of the signer's public key (PEM SubjectPublicKeyInfo).
    warnings : list of str
        Problems worth knowing that did not stop signing (a column mixing numbers and
        text, for instance).
    """

    manifest: Path
    rows: int
    columns: list[str]
    merkle_root: str
    key_fingerprint: str
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RowDiff:
    """Where two sequences of rows differ (row numbers are 0-based).

    Parameters
    ----------
    changed : list of (int, int)
        ``(signed_row, current_row)``: a row whose content differs, at the place of the
        signed one.
    inserted : list of int
        Current rows that were not signed.
    removed : list of int
        Signed rows that are gone.
    moved : list of (int, int)
        ``(signed_row, current_row)``: a signed row present unchanged at another place,
        out of order with its neighbours.
    """

    changed: list[tuple[int, int]] = field(default_factory=list)
    inserted: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    moved: list[tuple[int, int]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when no row differs."""
        return not (self.changed or self.inserted or self.removed or self.moved)

    def to_dict(self, limit: int = _MAX_LISTED) -> dict[str, Any]:
        """JSON form; each list is cut at ``limit`` entries (the counts are exact)."""
        return {
            "counts": {
                "changed": len(self.changed),
                "inserted": len(self.inserted),
                "removed": len(self.removed),
                "moved": len(self.moved),
            },
            "changed": [{"signed_row": i, "row": j} for i, j in self.changed[:limit]],
            "inserted": self.inserted[:limit],
            "removed": self.removed[:limit],
            "moved": [{"signed_row": i, "row": j} for i, j in self.moved[:limit]],
            "truncated": any(
                len(x) > limit for x in (self.changed, self.inserted, self.removed, self.moved)
            ),
        }

    def summary(self) -> str:
        """``2 changed, 1 inserted`` (only the kinds present)."""
        parts = [
            f"{len(v)} {k}"
            for k, v in (
                ("changed", self.changed),
                ("inserted", self.inserted),
                ("removed", self.removed),
                ("moved", self.moved),
            )
            if v
        ]
        return ", ".join(parts) or "no row differs"


@dataclass(frozen=True)
class DataVerifyResult:
    """The outcome of :func:`verify_dataset`.

    Parameters
    ----------
    ok : bool
        True only when the signature is valid for the key, the schema is unchanged
        and every row is present, unchanged and in place.
    path : str
        The data verified.
    manifest : str
        The manifest file.
    reason : str
        ``verified``, ``modified`` (schema or rows differ) or ``invalid-signature``
        (the manifest was signed with another key, or altered after signing).
    message : str
        Sentences for a person, naming the columns and rows.
    key_fingerprint : str
        Fingerprint of the public key given.
    signed_by : str or None
        Fingerprint recorded in the manifest.
    rows_signed, rows_now : int
        Row counts in the manifest and in the data (``rows_now`` is -1 when the data
        was not read because the signature failed).
    schema_changes : list of str
        One sentence per column added, removed, renamed, retyped or moved.
    rows_compared : bool
        Whether rows could be compared (not when a signed column is missing).
    diff : RowDiff
        The rows that differ.
    changed_chunks : list of int
        Merkle leaves (chunks of ``chunk_rows`` rows) whose hash differs, when the row
        count is unchanged.
    warnings : list of str
        Reading notes (e.g. a column that now mixes numbers and text).
    """

    ok: bool
    path: str
    manifest: str
    reason: str
    message: str
    key_fingerprint: str = ""
    signed_by: str | None = None
    rows_signed: int = 0
    rows_now: int = -1
    schema_changes: list[str] = field(default_factory=list)
    rows_compared: bool = False
    diff: RowDiff = field(default_factory=RowDiff)
    changed_chunks: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 0 verified, 1 not verified."""
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``mlwarden data verify --format json``)."""
        return {
            "ok": self.ok,
            "reason": self.reason,
            "path": self.path,
            "manifest": self.manifest,
            "message": self.message,
            "key_fingerprint": self.key_fingerprint,
            "signed_by": self.signed_by,
            "rows_signed": self.rows_signed,
            "rows_now": self.rows_now,
            "schema_changes": list(self.schema_changes),
            "rows_compared": self.rows_compared,
            "rows": self.diff.to_dict(),
            "changed_chunks": self.changed_chunks[:_MAX_LISTED],
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------- keys
def generate_data_key(
    private_path: str | Path, public_path: str | Path, *, password: str | None = None
) -> str:
    """Create an Ed25519 key pair for dataset manifests, as PEM files.

    Parameters
    ----------
    private_path : str or Path
        Private key to create (PKCS #8 PEM, mode ``0600``). Keep it secret.
    public_path : str or Path
        Public key to create (SubjectPublicKeyInfo PEM). Give it to whoever verifies.
    password : str or None, default=None
        Encrypt the private key with this password.

    Returns
    -------
    str
        The public key's fingerprint, ``sha256:<hex>``.

    Raises
    ------
    InvalidParameterError
        If a file already exists (keys are never overwritten), both paths are the same,
        the password is empty, or a file cannot be written.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    priv, pub = Path(private_path), Path(public_path)
    if priv.resolve() == pub.resolve():
        raise InvalidParameterError(f"{priv}: the private and public key paths are the same")
    for p in (priv, pub):
        if p.exists() or p.is_symlink():
            raise InvalidParameterError(f"{p}: already exists; refusing to overwrite a key")
    if password == "":
        raise InvalidParameterError("keygen: the password is empty")
    key = ed25519.Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password is not None
        else serialization.NoEncryption()
    )
    write_new_key_file(
        priv,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ),
        0o600,
    )
    try:
        write_new_key_file(
            pub,
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            0o644,
        )
    except InvalidParameterError:
        priv.unlink(missing_ok=True)
        raise
    return key_fingerprint(key.public_key())


def _load_private(path: Path, password: str | None) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from mlwarden._keys import load_pem_private

    key = load_pem_private(path, password, _KEYGEN_HINT)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise InvalidParameterError(
            f"{path}: unsupported private key ({type(key).__name__.lstrip('_')}); dataset "
            f"manifests are signed with Ed25519 keys; {_KEYGEN_HINT}"
        )
    return key


def _load_public(path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from mlwarden._keys import load_pem_public

    key = load_pem_public(path, _KEYGEN_HINT)
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise InvalidParameterError(
            f"{path}: unsupported public key ({type(key).__name__.lstrip('_')}); dataset "
            f"manifests are signed with Ed25519 keys; {_KEYGEN_HINT}"
        )
    return key


# ------------------------------------------------------------------------ reading
_CONV_COLUMN = re.compile(r"CSV column #(\d+)")
_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def _csv_header(path: Path, sep: str, gz: bool) -> list[str]:
    try:
        fh: Any = (
            gzip.open(path, "rt", encoding="utf-8-sig", newline="")  # noqa: SIM115
            if gz
            else open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
        )
        with fh:
            for rec in csv.reader(fh, delimiter=sep):
                if rec and any(f.strip() for f in rec):
                    return rec
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(f"{path}: cannot read the CSV header: {_first_line(exc)}") from None
    raise DataFileError(f"{path}: empty file (no header and no rows)")


def _read_csv(
    path: Path,
    sep: str,
    gz: bool,
    types: dict[str, Any],
    warnings: list[str],
    text: bool,
    as_text: list[str],
) -> Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = _csv_header(path, sep, gz)
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise DataError(f"{path}: duplicate column name(s): {_listing(dupes)}")
    forced = {k: v for k, v in types.items() if k in header}
    if text:
        forced = {h: pa.string() for h in header}
    newlines = False
    for _ in range(len(header) + 2):
        try:
            source: Any = gzip.open(path, "rb") if gz else str(path)  # noqa: SIM115
            try:
                return pacsv.read_csv(
                    source,
                    read_options=pacsv.ReadOptions(use_threads=True, block_size=_CSV_BLOCK),
                    parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=newlines),
                    convert_options=pacsv.ConvertOptions(
                        column_types=forced,
                        strings_can_be_null=text,
                        quoted_strings_can_be_null=text,
                    ),
                )
            finally:
                if gz:
                    source.close()
        except pa.ArrowInvalid as exc:
            msg = str(exc)
            match = _CONV_COLUMN.search(msg)
            if "conversion error" in msg and match and int(match.group(1)) < len(header):
                name = header[int(match.group(1))]
                if name not in as_text:
                    as_text.append(name)
                    forced[name] = pa.string()
                    if name not in types:
                        detail = _first_line(exc).split("conversion error ", 1)[-1]
                        warnings.append(
                            f"column {name!r} mixes numbers and text (conversion {detail}); "
                            "it is read and hashed as text"
                        )
                    continue
            if not newlines and "parse error" in msg.lower():
                newlines = True  # a quoted field may span lines: parse serially
                continue
            raise DataFileError(f"{path}: cannot parse as CSV: {_first_line(exc)}") from None
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DataFileError(f"{path}: cannot read: {_first_line(exc)}") from None
        except Exception as exc:  # pyarrow raises many types; none may escape
            raise DataFileError(f"{path}: cannot parse as CSV: {_first_line(exc)}") from None
    raise DataFileError(f"{path}: cannot parse as CSV")  # pragma: no cover - loop bound


def read_arrow_table(
    path: str | Path, *, column_types: dict[str, Any] | None = None, text: bool = False
) -> tuple[Table, str, list[str]]:
    """Read a CSV, TSV (optionally ``.gz``) or Parquet file as a pyarrow Table.

    Parameters
    ----------
    path : str or Path
        The file. Parquet is recognised by its magic bytes, CSV/TSV by the extension.
    column_types : dict, optional
        Column name → pyarrow type to read CSV columns as (the manifest's types at
        verification). A column whose values do not fit is read as text.
    text : bool, default=False
        Read every CSV column as text, exactly as written (empty fields and the usual
        NA markers become nulls); Parquet keeps its types.

    Returns
    -------
    table : pyarrow.Table
    kind : str
        ``csv`` or ``parquet``.
    warnings : list of str
        Columns that mix numbers and text.

    Raises
    ------
    DataFileError
        Missing, empty, unreadable or unparsable file, or an unsupported extension.
    DataError
        Duplicate column names.
    """
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"{p}: file not found")
    if p.is_dir():
        raise DataFileError(f"{p}: is a directory, not a data file")
    try:
        with p.open("rb") as fh:
            head = fh.read(4)
        size = p.stat().st_size
    except OSError as exc:
        raise DataFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise DataFileError(f"{p}: empty file")
    warnings: list[str] = []
    suffix, gz = _suffixes(p)
    if head == _PARQUET_MAGIC:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(p)
        except Exception as exc:  # pyarrow raises many types; none may escape
            raise DataFileError(f"{p}: cannot read as Parquet: {_first_line(exc)}") from None
        names = list(table.column_names)
        dupes = sorted({c for c in names if names.count(c) > 1})
        if dupes:
            raise DataError(f"{p}: duplicate column name(s): {_listing(dupes)}")
        return table, "parquet", warnings
    if suffix in _PARQUET_SUFFIXES:
        raise DataFileError(
            f"{p}: not a Parquet file (it does not start with the magic bytes PAR1)"
        )
    if suffix not in _CSV_SUFFIXES:
        raise DataFileError(
            f"{p}: unsupported file type {suffix or '(no extension)'!r}; "
            f"mlwarden reads {_SUPPORTED}"
        )
    gz = gz or head[:2] == _GZIP_MAGIC
    retried: list[str] = []
    types = dict(column_types or {})
    table = _read_csv(p, _CSV_SUFFIXES[suffix], gz, types, warnings, text, retried)
    if not text:
        warnings.extend(_mixed_text_columns(table, set(types) | set(retried)))
    return table, "csv", warnings


def _mixed_text_columns(table: Table, skip: set[str]) -> list[str]:
    """Warnings for text columns whose values are nearly all numbers (at least 90 %):
    a number column with a few text values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = []
    for name in table.column_names:
        col = table.column(name)
        if name in skip or not pa.types.is_string(col.type) or len(col) == 0:
            continue
        numeric = pc.match_substring_regex(col, _NUMBER)
        n_num = pc.sum(numeric).as_py() or 0
        n_val = len(col) - col.null_count
        if n_val and n_num >= 0.9 * n_val and n_num < n_val:
            first = pc.index(numeric, False).as_py()
            out.append(
                f"column {name!r} mixes numbers and text ({n_val - n_num} of {n_val} values "
                f"are not numbers, first {col[first].as_py()!r} at row {first}); it is read "
                "and hashed as text"
            )
    return out


def _table_from_pandas(frame: pd.DataFrame) -> Table:
    import pyarrow as pa

    names = [str(c) for c in frame.columns]
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise DataError(f"table: duplicate column name(s): {_listing(dupes)}")
    arrays = []
    for name, col in zip(names, frame.columns, strict=True):
        try:
            arrays.append(pa.array(frame[col], from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            kinds = sorted({type(v).__name__ for v in frame[col].dropna()})
            raise DataError(
                f"table: column {name!r} mixes value types ({', '.join(kinds)}); convert it to "
                "one type (e.g. .astype(str) or pandas.to_numeric) before signing"
            ) from None
    return pa.table(arrays, names=names)


def _as_table(data: Any) -> Table:
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return _table_from_pandas(data)
    raise InvalidParameterError(
        f"data must be a file path, a pandas DataFrame or a pyarrow Table, "
        f"got {type(data).__name__}"
    )


# ----------------------------------------------------------------------- encoding
@dataclass
class _Enc:
    """One column's encoding: per row a type tag and 8 payload bytes (``N`` and zeros
    where the value is missing) and, for text, the variable parts."""

    tags: npt.NDArray[np.uint8]  # (n,)
    payload: npt.NDArray[np.uint64]  # (n,) the big-endian payload bytes, viewed as uint64
    lens: npt.NDArray[np.int64] | None = None  # (n,) bytes in the variable part
    data: npt.NDArray[np.uint8] | None = None  # variable parts, row order, no gaps


def _fixed(tag: bytes, payload: npt.NDArray[Any], null: npt.NDArray[np.bool_]) -> _Enc:
    n = len(payload)
    tags = np.full(n, tag[0], dtype=np.uint8)
    words = np.ascontiguousarray(payload).view(np.uint64)  # a fresh array: change in place
    if null.any():
        tags[null] = ord("N")
        words[null] = 0
    return _Enc(tags, words)


def _variable(tag: bytes, arr: Array, null: npt.NDArray[np.bool_]) -> _Enc:
    import pyarrow as pa

    big = pa.large_binary() if tag in (b"Y",) else pa.large_string()
    filled = arr.cast(big).fill_null(b"" if tag == b"Y" else "")
    n = len(filled)
    bufs = filled.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[filled.offset : filled.offset + n + 1]
    lens = np.diff(offsets).astype(np.int64)
    if bufs[2] is None or n == 0:
        data = np.zeros(0, dtype=np.uint8)
    else:
        data = np.frombuffer(bufs[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    enc = _fixed(tag, lens.astype(">u8"), null)
    return _Enc(enc.tags, enc.payload, lens, data)


def _encode_array(arr: Array) -> _Enc:
    """The tags, payloads and variable parts of one column (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.types as pt

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pt.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    n = len(arr)
    null = (
        np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if arr.null_count
        else np.zeros(n, dtype=bool)
    )
    if pt.is_null(t):
        return _fixed(b"N", np.zeros(n, dtype=">u8"), np.ones(n, dtype=bool))
    if pt.is_floating(t):
        vals = arr.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        null = null | np.isnan(vals)
        return _fixed(b"F", vals.astype(">f8"), null)
    if pt.is_uint64(t):
        vals = arr.fill_null(0).to_numpy(zero_copy_only=False)
        return _fixed(b"U", vals.astype(">u8"), null)
    if pt.is_integer(t):
        vals = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        return _fixed(b"I", vals.astype(">i8"), null)
    if pt.is_boolean(t):
        vals = arr.fill_null(False).to_numpy(zero_copy_only=False)
        return _fixed(b"B", np.asarray(vals, dtype=bool).astype(">u8"), null)
    for test, tag, target in (
        (pt.is_timestamp, b"T", lambda: pa.timestamp("ns", tz=t.tz)),
        (pt.is_date, b"D", pa.date32),
        (pt.is_time, b"H", lambda: pa.time64("ns")),
        (pt.is_duration, b"Z", lambda: pa.duration("ns")),
    ):
        if test(t):
            try:
                ints = arr.cast(target()).cast(pa.int64() if tag != b"D" else pa.int32())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                break  # out of the ns range: fall back to the text form
            vals = ints.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
            return _fixed(tag, vals.astype(">i8"), null)
    if pt.is_string(t) or pt.is_large_string(t):
        return _variable(b"S", arr, null)
    if pt.is_binary(t) or pt.is_large_binary(t) or pt.is_fixed_size_binary(t):
        return _variable(b"Y", arr, null)
    text = pa.array([None if v is None else _text_form(v) for v in arr.to_pylist()], pa.string())
    return _variable(b"X", text, null)


def _text_form(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _convert_to(arr: Array, target: Any) -> tuple[Array, npt.NDArray[np.bool_]]:
    """``arr`` as ``target`` where its values convert exactly; the mask marks the rest."""
    import pyarrow as pa
    import pyarrow.types as pt

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    try:
        return arr.cast(target, safe=True), np.zeros(n, dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    values = arr.to_pylist()
    failed = np.zeros(n, dtype=bool)
    out: list[Any] = [None] * n
    for i, v in enumerate(values):
        if v is None:
            continue
        try:
            if pt.is_integer(target):
                c: Any = int(v.strip()) if isinstance(v, str) else v
                if isinstance(c, float):
                    if not c.is_integer():
                        raise ValueError
                    c = int(c)
                if not isinstance(c, int) or isinstance(c, bool):
                    raise ValueError
            elif pt.is_floating(target):
                c = float(v)
            elif pt.is_string(target) or pt.is_large_string(target):
                c = v if isinstance(v, str) else str(v)
            else:
                c = pa.scalar(v).cast(target, safe=True).as_py()
            pa.array([c], type=target)
            out[i] = c
        except Exception:  # any value that does not convert is reported as changed
            failed[i] = True
    return pa.array(out, type=target), failed


def _encode_aligned(arr: Array, target: Any | None) -> _Enc:
    """Encode ``arr``; when its type differs from the signed ``target``, values that
    convert exactly are encoded as the signed type, the others in their text form."""
    if target is None or _type_name(arr.type) == _type_name(target):
        return _encode_array(arr)
    import pyarrow as pa

    converted, failed = _convert_to(arr, target)
    enc = _encode_array(converted)
    if not failed.any():
        return enc
    rest = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    text = pa.array(
        [_text_form(v) if f else None for v, f in zip(rest.to_pylist(), failed, strict=True)],
        type=pa.string(),
    )
    other = _encode_array(text)
    tags = np.where(failed, other.tags, enc.tags)
    payload = np.where(failed, other.payload, enc.payload)
    if enc.lens is None:
        return _Enc(tags, payload, other.lens, other.data)
    # A text target never fails to convert; keep the signed type's variable parts.
    return _Enc(tags, payload, enc.lens, enc.data)  # pragma: no cover


def _row_buffers(encs: list[_Enc], n: int) -> tuple[npt.NDArray[np.uint8], list[int], list[int]]:
    """A buffer holding every row's encoding, and each row's start and end offset in it.

    A row is the payloads of all columns (8 bytes each), their tags (1 byte each), then
    the variable parts. Rows are laid out at a fixed stride, a multiple of 8 bytes (so
    payloads are copied as whole words), when that stays small; otherwise back to back.
    """
    k = len(encs)
    width = _HEAD * k
    var = [e for e in encs if e.lens is not None]
    tails = np.zeros(n, dtype=np.int64)
    for e in var:
        assert e.lens is not None
        tails += e.lens
    stride = -(-(width + (int(tails.max()) if n and var else 0)) // 8) * 8
    if n * stride <= _PADDED_BYTES:
        out = np.empty((n, stride), dtype=np.uint8)
        words = out.view(np.uint64)
        for j, e in enumerate(encs):
            words[:, j] = e.payload
            out[:, 8 * k + j] = e.tags
        starts = np.arange(n, dtype=np.int64) * stride
        buf = out.reshape(-1)
    else:
        row_len = tails + width
        ends = np.cumsum(row_len, dtype=np.int64)
        starts = ends - row_len
        buf = np.empty(int(ends[-1]) if n else 0, dtype=np.uint8)
        heads = np.empty((n, width), dtype=np.uint8)
        heads[:, : 8 * k] = np.stack([e.payload for e in encs], axis=1).view(np.uint8)
        heads[:, 8 * k :] = np.stack([e.tags for e in encs], axis=1)
        seg = np.empty(2 * n, dtype=np.int64)
        seg[0::2] = width
        seg[1::2] = tails
        flags = np.zeros(2 * n, dtype=bool)
        flags[0::2] = True
        buf[np.repeat(flags, seg)] = heads.reshape(-1)
    # variable parts: each column's bytes after the heads and the earlier columns' parts
    within = starts + width
    for e in var:
        assert e.lens is not None and e.data is not None
        total = int(e.lens.sum())
        if total:
            excl = np.cumsum(e.lens) - e.lens
            dest = np.repeat(within - excl, e.lens) + np.arange(total, dtype=np.int64)
            buf[dest] = e.data[:total]
        within = within + e.lens
    return buf, starts.tolist(), (starts + width + tails).tolist()


def _digests(encs_for: Callable[[int, int], list[_Enc]], n: int) -> bytes:
    """32-byte SHA-256 digests of the rows, concatenated (computed in blocks)."""
    sha = hashlib.sha256
    out: list[bytes] = []
    for r0 in range(0, n, _BLOCK_ROWS):
        r1 = min(n, r0 + _BLOCK_ROWS)
        buf, s, e = _row_buffers(encs_for(r0, r1), r1 - r0)
        mv = buf.data
        out.append(b"".join([sha(mv[a:b]).digest() for a, b in zip(s, e, strict=True)]))
    return b"".join(out)


def _slice(enc: _Enc, r0: int, r1: int) -> _Enc:
    if enc.lens is None:
        return _Enc(enc.tags[r0:r1], enc.payload[r0:r1])
    assert enc.data is not None
    a = int(enc.lens[:r0].sum())
    b = a + int(enc.lens[r0:r1].sum())
    return _Enc(enc.tags[r0:r1], enc.payload[r0:r1], enc.lens[r0:r1], enc.data[a:b])


def _table_digests(table: Table, columns: Sequence[str], types: Sequence[Any | None]) -> bytes:
    encs = [_encode_aligned(table.column(c), t) for c, t in zip(columns, types, strict=True)]
    return _digests(lambda r0, r1: [_slice(e, r0, r1) for e in encs], table.num_rows)


def row_digests(data: Any, columns: Sequence[str] | None = None) -> list[bytes]:
    """SHA-256 digest of every row's canonical encoding (``mlwarden-row-v1``).

    Parameters
    ----------
    data : str, Path, pandas.DataFrame or pyarrow.Table
        A CSV/TSV/Parquet file or an in-memory table.
    columns : sequence of str, optional
        Columns to encode, in this order (default: all, in the table's order).

    Returns
    -------
    list of bytes
        One 32-byte digest per row.
    """
    table = read_arrow_table(data)[0] if isinstance(data, str | Path) else _as_table(data)
    cols = list(columns) if columns is not None else list(table.column_names)
    missing = [c for c in cols if c not in table.column_names]
    if missing:
        raise DataError(f"columns not in the table: {_listing(missing)}")
    blob = _table_digests(table, cols, [None] * len(cols))
    return [blob[i : i + 32] for i in range(0, len(blob), 32)]


# ------------------------------------------------------------------------- merkle
def _leaves(digests: bytes, chunk_rows: int) -> list[bytes]:
    step = 32 * chunk_rows
    return [
        hashlib.sha256(b"\x00" + digests[i : i + step]).digest()
        for i in range(0, len(digests), step)
    ]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash over leaf hashes (``SHA-256(0x01 || left || right)``).

    ``leaves`` are already leaf hashes (``SHA-256(0x00 || leaf data)``). The tree
    splits at the largest power of two below the number of leaves, as RFC 6962
    section 2.1; an empty tree hashes to ``SHA-256("")``.
    """
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        nxt = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _short(digests: bytes, nbytes: int = SHORT_HASH_BYTES) -> npt.NDArray[np.uint64]:
    n = len(digests) // 32
    full = np.frombuffer(digests, dtype=np.uint8).reshape(n, 32)
    return np.ascontiguousarray(full[:, :nbytes]).view(np.uint64).reshape(n)


# --------------------------------------------------------------------------- diff
Op = tuple[str, int, int, int, int]


def _diff_range(
    a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64], a0: int, a1: int, b0: int, b1: int
) -> list[Op]:
    """The non-equal opcodes aligning ``a[a0:a1]`` with ``b[b0:b1]``."""
    lim = min(a1 - a0, b1 - b0)
    ne = np.flatnonzero(a[a0 : a0 + lim] != b[b0 : b0 + lim])
    p = int(ne[0]) if ne.size else lim
    k = lim - p
    ne = np.flatnonzero(a[a1 - k : a1][::-1] != b[b1 - k : b1][::-1]) if k else ne[:0]
    s = int(ne[0]) if ne.size else k
    return _align(a, b, a0 + p, a1 - s, b0 + p, b1 - s)


def _longest_increasing(values: list[int]) -> list[int]:
    """Indices of a longest strictly increasing subsequence (patience sorting)."""
    tails: list[int] = []
    tails_at: list[int] = []
    parent = [-1] * len(values)
    for idx, v in enumerate(values):
        pos = bisect.bisect_left(tails, v)
        if pos == len(tails):
            tails.append(v)
            tails_at.append(idx)
        else:
            tails[pos] = v
            tails_at[pos] = idx
        parent[idx] = tails_at[pos - 1] if pos else -1
    chain: list[int] = []
    cur = tails_at[-1] if tails_at else -1
    while cur != -1:
        chain.append(cur)
        cur = parent[cur]
    chain.reverse()
    return chain


def _align(
    a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64], a0: int, a1: int, b0: int, b1: int
) -> list[Op]:
    na, nb = a1 - a0, b1 - b0
    if na == 0 and nb == 0:
        return []
    if na == 0 or nb == 0:
        return [("replace", a0, a1, b0, b1)]
    if na * nb <= _SMALL_DIFF * _SMALL_DIFF:
        sm = SequenceMatcher(None, a[a0:a1].tolist(), b[b0:b1].tolist(), autojunk=False)
        return [
            (t, i + a0, j + a0, k + b0, m + b0)
            for t, i, j, k, m in sm.get_opcodes()
            if t != "equal"
        ]
    # patience: rows unique on both sides anchor the alignment
    ua, ia, ca = np.unique(a[a0:a1], return_index=True, return_counts=True)
    ub, ib, cb = np.unique(b[b0:b1], return_index=True, return_counts=True)
    _, xa, xb = np.intersect1d(ua[ca == 1], ub[cb == 1], return_indices=True)
    if not len(xa):
        return [("replace", a0, a1, b0, b1)]
    pa_ = ia[ca == 1][xa]
    pb_ = ib[cb == 1][xb]
    order = np.argsort(pa_)
    pa_, pb_ = pa_[order], pb_[order]
    if not np.all(np.diff(pb_) > 0):
        chain = np.asarray(_longest_increasing(pb_.tolist()), dtype=np.int64)
        pa_, pb_ = pa_[chain], pb_[chain]
    # gaps between consecutive anchors (and the ends) that are not empty
    lo_a = np.concatenate([[a0], a0 + pa_ + 1])
    hi_a = np.concatenate([a0 + pa_, [a1]])
    lo_b = np.concatenate([[b0], b0 + pb_ + 1])
    hi_b = np.concatenate([b0 + pb_, [b1]])
    ops: list[Op] = []
    for g in np.flatnonzero((hi_a > lo_a) | (hi_b > lo_b)).tolist():
        ops.extend(_diff_range(a, b, int(lo_a[g]), int(hi_a[g]), int(lo_b[g]), int(hi_b[g])))
    return ops


def diff_rows(
    signed: Sequence[int] | npt.NDArray[Any], current: Sequence[int] | npt.NDArray[Any]
) -> RowDiff:
    """Align two sequences of row hashes and say which rows changed, moved, came or went.

    Parameters
    ----------
    signed, current : sequence of int or array of uint64
        Row hashes (any hashable integers) of the signed and the current table.

    Returns
    -------
    RowDiff
        A change at row *i* is reported as ``changed (i, i)``; a row that appears
        unchanged out of order as ``moved``; the rest as ``inserted`` / ``removed``.
        Equal rows are interchangeable: with duplicate rows the position reported is
        one of the equal rows.
    """
    a = np.asarray(signed, dtype=np.uint64)
    b = np.asarray(current, dtype=np.uint64)
    ops = _diff_range(a, b, 0, len(a), 0, len(b))
    gone: dict[int, deque[int]] = defaultdict(deque)
    for _, i1, i2, _, _ in ops:
        for i in range(i1, i2):
            gone[int(a[i])].append(i)
    used_a: set[int] = set()
    used_b: set[int] = set()
    moved: list[tuple[int, int]] = []
    for _, _, _, j1, j2 in ops:
        for j in range(j1, j2):
            q = gone.get(int(b[j]))
            if q:
                i = q.popleft()
                moved.append((i, j))
                used_a.add(i)
                used_b.add(j)
    changed: list[tuple[int, int]] = []
    inserted: list[int] = []
    removed: list[int] = []
    for _, i1, i2, j1, j2 in ops:
        left = [i for i in range(i1, i2) if i not in used_a]
        right = [j for j in range(j1, j2) if j not in used_b]
        changed.extend(zip(left, right, strict=False))
        removed.extend(left[len(right) :])
        inserted.extend(right[len(left) :])
    return RowDiff(changed=changed, inserted=inserted, removed=sorted(removed), moved=sorted(moved))


# ------------------------------------------------------------------------ manifest
def default_manifest_path(data: str | Path) -> Path:
    """``<data>.manifest.json`` next to the data file."""
    p = Path(data)
    return p.with_name(p.name + MANIFEST_SUFFIX)


def _canonical(body: dict[str, Any]) -> bytes:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _SIGNING_CONTEXT + text.encode("ascii")


def _build_body(
    table: Table, *, name: str, kind: str, chunk_rows: int, fingerprint: str, warnings: list[str]
) -> dict[str, Any]:
    columns = list(table.column_names)
    digests = _table_digests(table, columns, [None] * len(columns))
    leaves = _leaves(digests, chunk_rows)
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "source": {"name": name, "format": kind},
        "schema": [{"name": c, "type": _type_name(table.schema.field(c).type)} for c in columns],
        "rows": table.num_rows,
        "row_encoding": ROW_ENCODING,
        "chunk_rows": chunk_rows,
        "merkle": {
            "scheme": MERKLE_SCHEME,
            "root": merkle_root(leaves).hex(),
            "leaves": [leaf.hex() for leaf in leaves],
        },
        "row_hashes": {
            "bytes": SHORT_HASH_BYTES,
            "encoding": "base64",
            "data": base64.b64encode(_short(digests).tobytes()).decode("ascii"),
        },
        "signer": {"algorithm": SIGNATURE_ALGORITHM, "key_fingerprint": fingerprint},
        "warnings": list(warnings),
    }


def sign_dataset(
    data: str | Path | Any,
    *,
    key: str | Path,
    out: str | Path | None = None,
    password: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> SignResult:
    """Write a signed manifest of a table: schema, row count, Merkle tree, row hashes.

    Parameters
    ----------
    data : str, Path, pandas.DataFrame or pyarrow.Table
        A CSV/TSV (optionally ``.gz``) or Parquet file, or an in-memory table.
    key : str or Path
        Ed25519 private key (PEM), from :func:`generate_data_key`.
    out : str or Path, optional
        Manifest to write; default ``<data>.manifest.json`` (required for an
        in-memory table). An existing manifest is replaced.
    password : str, optional
        Password of an encrypted private key.
    chunk_rows : int, default=1024
        Rows per Merkle leaf.

    Returns
    -------
    SignResult

    Raises
    ------
    DataFileError
        Missing, empty or unreadable data file; a table without rows.
    DataError
        Duplicate column names; an in-memory column mixing value types.
    InvalidParameterError
        Unusable key, ``chunk_rows`` < 1, or no ``out`` for an in-memory table.
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InvalidParameterError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    private = _load_private(Path(key), password)
    warnings: list[str]
    if isinstance(data, str | Path):
        table, kind, warnings = read_arrow_table(data)
        name = Path(data).name
        target = Path(out) if out is not None else default_manifest_path(data)
        if target.resolve() == Path(data).resolve():
            raise InvalidParameterError(f"{target}: the manifest would overwrite the data file")
    else:
        table, kind, warnings, name = _as_table(data), "table", [], "table"
        if out is None:
            raise InvalidParameterError("out: give the manifest path for an in-memory table")
        target = Path(out)
    where = name if kind == "table" else str(data)
    if table.num_columns == 0:
        raise DataFileError(f"{where}: no columns")
    if table.num_rows == 0:
        raise DataFileError(
            f"{where}: no data rows (only a header with columns "
            f"{_listing(list(table.column_names))}); there is nothing to sign"
        )
    fingerprint = key_fingerprint(private.public_key())
    body = _build_body(
        table,
        name=name,
        kind=kind,
        chunk_rows=chunk_rows,
        fingerprint=fingerprint,
        warnings=warnings,
    )
    signature = private.sign(_canonical(body))
    manifest = {**body, "signature": base64.b64encode(signature).decode("ascii")}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"{target}: cannot write the manifest ({exc.strerror})") from None
    return SignResult(
        manifest=target,
        rows=table.num_rows,
        columns=list(table.column_names),
        merkle_root=body["merkle"]["root"],
        key_fingerprint=fingerprint,
        warnings=warnings,
    )


def _load_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise DataFileError(f"{path}: manifest not found; create it with 'mlwarden data sign'")
    if not path.is_file():
        raise DataFileError(f"{path}: the manifest is not a file")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFileError(
            f"{path}: not a mlwarden dataset manifest (cannot read it as JSON: {_first_line(exc)})"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise DataFileError(
            f"{path}: not a mlwarden dataset manifest (no 'format': {MANIFEST_FORMAT!r})"
        )
    return doc


def _check_body(path: Path, body: dict[str, Any]) -> None:
    """The fields verification relies on exist and agree with each other."""
    try:
        ok = (
            body["version"] == MANIFEST_VERSION
            and body["row_encoding"] == ROW_ENCODING
            and body["merkle"]["scheme"] == MERKLE_SCHEME
            and isinstance(body["rows"], int)
            and isinstance(body["chunk_rows"], int)
            and body["chunk_rows"] >= 1
            and body["row_hashes"]["bytes"] == SHORT_HASH_BYTES
            and all(isinstance(c["name"], str) for c in body["schema"])
            and len(body["merkle"]["leaves"]) == -(-body["rows"] // body["chunk_rows"])
            and len(base64.b64decode(body["row_hashes"]["data"])) == body["rows"] * SHORT_HASH_BYTES
        )
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise DataFileError(
            f"{path}: unsupported or inconsistent manifest (format version "
            f"{body.get('version')!r}); sign the data again with this version of mlwarden"
        )


def _type_name(t: Any) -> str:
    """The type as the manifest records it: Arrow's name, with ``large_string`` and
    ``large_binary`` recorded as ``string`` and ``binary`` (their values encode alike)."""
    text = str(t)
    return {"large_string": "string", "large_binary": "binary"}.get(text, text)


def _arrow_type(text: str) -> Any | None:
    """The pyarrow type written as ``text`` in a manifest, or None when unknown."""
    import pyarrow as pa

    simple = {
        "bool": pa.bool_(),
        "int8": pa.int8(),
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "uint8": pa.uint8(),
        "uint16": pa.uint16(),
        "uint32": pa.uint32(),
        "uint64": pa.uint64(),
        "halffloat": pa.float16(),
        "float": pa.float32(),
        "double": pa.float64(),
        "string": pa.string(),
        "large_string": pa.large_string(),
        "binary": pa.binary(),
        "large_binary": pa.large_binary(),
        "date32[day]": pa.date32(),
        "date64[ms]": pa.date64(),
    }
    if text in simple:
        return simple[text]
    m = re.fullmatch(r"timestamp\[(s|ms|us|ns)(?:, tz=(.+))?\]", text)
    if m:
        return pa.timestamp(m.group(1), tz=m.group(2))
    return None


def _schema_changes(
    signed: list[dict[str, str]], table: Table
) -> tuple[list[str], dict[str, str], bool]:
    """Sentences describing schema changes, signed → current column mapping, and
    whether every signed column is still there (possibly renamed)."""
    names = [c["name"] for c in signed]
    types = {c["name"]: c["type"] for c in signed}
    current = list(table.column_names)
    ctypes = {c: _type_name(table.schema.field(c).type) for c in current}
    removed = [c for c in names if c not in ctypes]
    added = [c for c in current if c not in types]
    mapping = {c: c for c in names if c in ctypes}
    changes: list[str] = []
    for r in list(removed):
        i = names.index(r)
        if i < len(current) and current[i] in added and ctypes[current[i]] == types[r]:
            changes.append(f"column {r!r} renamed to {current[i]!r}")
            mapping[r] = current[i]
            removed.remove(r)
            added.remove(current[i])
    changes += [f"column {c!r} removed" for c in removed]
    changes += [f"column {c!r} added ({ctypes[c]})" for c in added]
    for c in names:
        if c in mapping and c == mapping[c] and ctypes[c] != types[c]:
            changes.append(f"column {c!r} changed type: {types[c]} -> {ctypes[c]}")
    order_now = [mapping[c] for c in names if c in mapping]
    order_current = [c for c in current if c in order_now]
    if order_now != order_current:
        changes.append(
            "columns reordered: signed order " + ", ".join(repr(c) for c in names if c in mapping)
        )
    return changes, mapping, not removed


def verify_dataset(
    data: str | Path | Any, *, manifest: str | Path | None = None, key: str | Path
) -> DataVerifyResult:
    """Check data against its signed manifest and name what changed.

    Parameters
    ----------
    data : str, Path, pandas.DataFrame or pyarrow.Table
        The data, as a file (read like :func:`sign_dataset` reads it) or in memory.
    manifest : str or Path, optional
        The manifest; default ``<data>.manifest.json``.
    key : str or Path
        The signer's Ed25519 public key (PEM).

    Returns
    -------
    DataVerifyResult
        ``ok`` only when the signature is valid for ``key`` and schema and rows are
        unchanged. A manifest signed with another key, or altered after signing,
        gives ``reason="invalid-signature"`` ("signature does not match key") and the
        data is not compared.

    Raises
    ------
    DataFileError
        Missing or unreadable data or manifest file, or a file that is not a manifest.
    InvalidParameterError
        Missing or unusable key file.
    """
    from cryptography.exceptions import InvalidSignature

    if manifest is None:
        if not isinstance(data, str | Path):
            raise InvalidParameterError("manifest: give the manifest of an in-memory table")
        manifest = default_manifest_path(data)
    mpath = Path(manifest)
    if isinstance(data, str | Path) and not Path(data).exists():
        raise DataFileError(f"{data}: file not found")
    public = _load_public(Path(key))
    fingerprint = key_fingerprint(public)
    doc = _load_manifest(mpath)
    where = str(data) if isinstance(data, str | Path) else "table"
    body = {k: v for k, v in doc.items() if k != "signature"}
    signer = body.get("signer")
    signed_by = signer.get("key_fingerprint") if isinstance(signer, dict) else None
    base: dict[str, Any] = {
        "path": where,
        "manifest": str(mpath),
        "key_fingerprint": fingerprint,
        "signed_by": signed_by if isinstance(signed_by, str) else None,
    }
    try:
        signature = base64.b64decode(str(doc.get("signature", "")), validate=True)
        public.verify(signature, _canonical(body))
    except (InvalidSignature, ValueError):
        if signed_by and signed_by != fingerprint:
            why = (
                f"the manifest was signed by key {signed_by}, not by the key given ({fingerprint})"
            )
        else:
            why = "the manifest was altered after signing, or its signature is corrupt"
        return DataVerifyResult(
            ok=False,
            reason="invalid-signature",
            message=f"{mpath}: signature does not match key: {why}; the data was not compared",
            rows_signed=body.get("rows", 0) if isinstance(body.get("rows"), int) else 0,
            **base,
        )
    _check_body(mpath, body)
    schema: list[dict[str, str]] = body["schema"]
    signed_types = {c["name"]: _arrow_type(c["type"]) for c in schema}
    if isinstance(data, str | Path):
        forced = {k: v for k, v in signed_types.items() if v is not None}
        table, _, warnings = read_arrow_table(data, column_types=forced)
    else:
        table, warnings = _as_table(data), []
    n_signed: int = body["rows"]
    changes, mapping, comparable = _schema_changes(schema, table)
    diff = RowDiff()
    changed_chunks: list[int] = []
    rows_ok = False
    if comparable:
        cols = [mapping[c["name"]] for c in schema]
        digests = _table_digests(table, cols, [signed_types[c["name"]] for c in schema])
        leaves = _leaves(digests, body["chunk_rows"])
        rows_ok = table.num_rows == n_signed and merkle_root(leaves).hex() == body["merkle"]["root"]
        if not rows_ok:
            signed_short = np.frombuffer(
                base64.b64decode(body["row_hashes"]["data"]), dtype=np.uint64
            )
            diff = diff_rows(signed_short, _short(digests))
            if table.num_rows == n_signed:
                changed_chunks = [
                    k
                    for k, (x, y) in enumerate(zip(body["merkle"]["leaves"], leaves, strict=True))
                    if x != y.hex()
                ]
    ok = rows_ok and not changes
    message = _verify_message(
        where,
        n_signed,
        table.num_rows,
        changes,
        comparable,
        rows_ok,
        diff,
        changed_chunks,
        body["chunk_rows"],
    )
    return DataVerifyResult(
        ok=ok,
        reason="verified" if ok else "modified",
        message=message,
        rows_signed=n_signed,
        rows_now=table.num_rows,
        schema_changes=changes,
        rows_compared=comparable,
        diff=diff,
        changed_chunks=changed_chunks,
        warnings=warnings,
        **base,
    )


def _rows_text(values: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... ({len(values) - limit} more)" if len(values) > limit else "")


def _verify_message(
    where: str,
    n_signed: int,
    n_now: int,
    changes: list[str],
    comparable: bool,
    rows_ok: bool,
    diff: RowDiff,
    chunks: list[int],
    chunk_rows: int,
) -> str:
    if rows_ok and not changes:
        return f"{where}: verified: {n_signed} row(s), schema and every row as signed"
    parts = [f"{where}: does not match its manifest"]
    if changes:
        parts.append("schema: " + "; ".join(changes))
    if not comparable:
        parts.append("rows not compared: a signed column is missing")
    elif not rows_ok:
        detail = [f"{n_signed} row(s) signed, {n_now} now: {diff.summary()}"]
        if diff.changed:
            detail.append("changed rows " + _rows_text([i for _, i in diff.changed]))
        if diff.inserted:
            detail.append("inserted rows " + _rows_text(diff.inserted))
        if diff.removed:
            detail.append("removed signed rows " + _rows_text(diff.removed))
        if diff.moved:
            detail.append("moved rows " + _rows_text([f"{i}->{j}" for i, j in diff.moved]))
        if diff.empty and chunks:
            detail.append(
                "rows in chunk(s) "
                + _rows_text(
                    [f"{k} (rows {k * chunk_rows}-{(k + 1) * chunk_rows - 1})" for k in chunks]
                )
            )
        parts.append("; ".join(detail))
    return ". ".join(parts)


# ------------------------------------------------------------------------- finding
def manifest_finding(result: DataVerifyResult, *, target: str | None = None) -> Finding:
    """The MLW-DAT-003 finding for one verification (passed or failed).

    Metric ``manifest_verified``: 1 when verified, 0 otherwise (threshold 1); the
    evidence is :meth:`DataVerifyResult.to_dict`.
    """
    from mlwarden.data.rules import RULE_MANIFEST
    from mlwarden.findings.finding import Finding

    return Finding.from_rule(
        RULE_MANIFEST,
        target=target or result.path,
        check=_CHECK,
        metric="manifest_verified",
        value=1.0 if result.ok else 0.0,
        threshold=1.0,
        description=result.message
        if result.ok
        else f"{RULE_MANIFEST.description} {result.message}",
        evidence=result.to_dict(),
        location=result.path,
    )
