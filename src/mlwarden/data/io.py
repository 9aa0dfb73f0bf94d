"""Reading and writing tabular data sets (CSV, TSV, gzip-compressed CSV, Parquet).

Every problem with a file becomes a :class:`~mlwarden.exceptions.DataFileError` (the
file cannot be found, read or parsed) or a :class:`~mlwarden.exceptions.DataError`
(the table is readable but unusable: a missing label column, text in a feature
column, a missing value). Messages name the file, the column and, for CSV, the line,
so a user can fix the file without reading a traceback.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from mlwarden.data.bundled import BUILTIN_NAMES, load_builtin
from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import FeatureKind, FeatureSchema
from mlwarden.exceptions import DataError, DataFileError, InvalidParameterError

if TYPE_CHECKING:  # pandas is imported when a file is read or written: it is slow to import
    import pandas as pd

__all__ = ["BUILTIN_PREFIX", "load_dataset", "read_table", "write_table"]

BUILTIN_PREFIX = "builtin:"
"""Prefix of a :func:`load_dataset` spec naming a bundled data set (``builtin:fraud``)."""

_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
_PARQUET_SUFFIXES = (".parquet", ".pq")
_SUPPORTED = ".csv, .csv.gz, .tsv, .tsv.gz, .parquet"
_MAX_LISTED = 12


def _listing(names: Sequence[Any], limit: int = _MAX_LISTED) -> str:
    """``a, b, c`` or ``a, b, ... (N more)`` for long lists."""
    shown = ", ".join(str(n) for n in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    return shown


def _suffixes(path: Path) -> tuple[str, bool]:
    """The data suffix (``.csv``) and whether the name ends in ``.gz``."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[: -len(".gz")]
    return Path(name).suffix, gz


def _stem(path: Path) -> str:
    """File name without data and compression suffixes (``tx.csv.gz`` → ``tx``)."""
    name = path.name
    if name.lower().endswith(".gz"):
        name = name[: -len(".gz")]
    suffix = Path(name).suffix
    if suffix.lower() in _CSV_SUFFIXES or suffix.lower() in _PARQUET_SUFFIXES:
        name = name[: -len(suffix)]
    return name or path.name


# ---------------------------------------------------------------- reading
class _Source:
    """Where a table came from; knows how to turn a row index into a file line."""

    def __init__(
        self,
        path: Path,
        kind: str,
        sep: str = ",",
        compression: Literal["gzip"] | None = None,
    ) -> None:
        self.path = path
        self.kind = kind
        self.sep = sep
        self.compression = compression

    def where(self, row: int) -> str:
        """``row 12, line 14`` for CSV, ``row 12`` for Parquet."""
        text = f"row {row}"
        line = self._line_of(row) if self.kind == "csv" else None
        if line is not None:
            text += f", line {line}"
        return text

    def _line_of(self, row: int) -> int | None:
        """1-based line of data row ``row`` (0-based), counting as pandas does.

        Only called on the error path. Blank lines are skipped like pandas does, and
        quoted fields spanning lines are handled by the :mod:`csv` module.
        """
        try:
            if self.compression == "gzip":
                fh: Any = gzip.open(self.path, "rt", encoding="utf-8-sig", newline="")  # noqa: SIM115
            else:
                fh = open(self.path, encoding="utf-8-sig", newline="")  # noqa: SIM115
            with fh:
                reader = csv.reader(fh, delimiter=self.sep)
                start, seen_header, data_row = 1, False, -1
                for rec in reader:
                    blank = not rec or (len(rec) == 1 and not rec[0].strip())
                    if not blank:
                        if not seen_header:
                            seen_header = True
                        else:
                            data_row += 1
                            if data_row == row:
                                return start
                    start = reader.line_num + 1
        except (OSError, EOFError, UnicodeDecodeError, csv.Error, zlib.error):
            return None
        return None


def _head(path: Path, n: int = 4) -> bytes:
    with path.open("rb") as fh:
        return fh.read(n)


def _read_frame(path: Path) -> tuple[pd.DataFrame, _Source]:
    """Read ``path`` into a DataFrame; every failure becomes a DataFileError."""
    import pandas as pd

    if not path.exists():
        raise DataFileError(f"{path}: file not found")
    if path.is_dir():
        raise DataFileError(f"{path}: is a directory, not a data file")
    try:
        head = _head(path)
        size = path.stat().st_size
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise DataFileError(f"{path}: empty file")
    suffix, gz = _suffixes(path)

    if head == _PARQUET_MAGIC:
        source = _Source(path, "parquet")
        try:
            frame = pd.read_parquet(path, engine="pyarrow")
        except Exception as exc:  # pyarrow raises many types; none may escape as a traceback
            raise DataFileError(f"{path}: cannot read as Parquet: {_first_line(exc)}") from None
        return frame, source
    if suffix in _PARQUET_SUFFIXES:
        raise DataFileError(
            f"{path}: not a Parquet file (it does not start with the magic bytes PAR1)"
        )
    if suffix not in _CSV_SUFFIXES:
        raise DataFileError(
            f"{path}: unsupported file type {suffix or '(no extension)'!r}; "
            f"mlwarden reads {_SUPPORTED}"
        )
    compression: Literal["gzip"] | None = "gzip" if (gz or head[:2] == _GZIP_MAGIC) else None
    source = _Source(path, "csv", _CSV_SUFFIXES[suffix], compression)
    try:
        with warnings.catch_warnings():
            # pandas only warns when the first data row is longer than the header
            # and silently drops the extra fields: treat that as the error it is.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                sep=source.sep,
                compression=compression,
                index_col=False,
                encoding="utf-8-sig",
            )
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{path}: empty file (no header and no rows)") from None
    except pd.errors.ParserWarning:
        raise DataFileError(
            f"{path}: cannot parse as CSV: the first data row has more fields than the header"
        ) from None
    except pd.errors.ParserError as exc:
        raise DataFileError(f"{path}: cannot parse as CSV: {_first_line(exc)}") from None
    except UnicodeDecodeError as exc:
        raise DataFileError(
            f"{path}: not UTF-8 text (invalid byte at position {exc.start}); "
            f"is it really a {'TSV' if source.sep == chr(9) else 'CSV'} file?"
        ) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFileError(f"{path}: cannot read: {_first_line(exc)}") from None
    except Exception as exc:  # anything else pandas raises: still the file's fault
        raise DataFileError(f"{path}: cannot parse as CSV: {_first_line(exc)}") from None
    return frame, source


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _as_float_column(series: pd.Series) -> npt.NDArray[np.float64] | None:
    """The column as float64 (booleans as 0/1, missing as NaN), or None if not numeric."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        return np.asarray(series.astype("float64").to_numpy(na_value=np.nan), dtype=np.float64)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_complex_dtype(
        series.dtype
    ):
        return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    if series.dtype == object:
        values = series.dropna()
        if len(values) and all(isinstance(v, bool | np.bool_) for v in values):
            return np.array([np.nan if pd.isna(v) else float(v) for v in series], dtype=np.float64)
    return None


def _any_number(series: pd.Series) -> bool:
    """True when some non-missing value of a text column reads as a number."""
    import pandas as pd

    return bool(pd.to_numeric(series, errors="coerce").notna().any())


def _first_text(series: pd.Series, source: _Source) -> str:
    """`` (first non-number 'abc' at row 3, line 5)`` for a text column."""
    for row, value in enumerate(series.to_numpy(dtype=object)):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            return f" ({value!r} at {source.where(row)})"
    return ""


def _features(frame: pd.DataFrame, columns: list[str], source: _Source) -> npt.NDArray[np.float64]:
    """Numeric, finite feature matrix from ``columns``; errors name columns and rows."""
    path = source.path
    arrays: list[npt.NDArray[np.float64]] = []
    text_cols: list[str] = []
    for col in columns:
        arr = _as_float_column(frame[col])
        if arr is None:
            text_cols.append(f"{col!r}{_first_text(frame[col], source)}")
            arrays.append(np.zeros(len(frame)))
        else:
            arrays.append(arr)
    if text_cols:
        raise DataError(
            f"{path}: non-numeric feature column(s): {_listing(text_cols)}. mlwarden needs "
            "numeric features: one-hot encode categorical columns (e.g. pandas.get_dummies), "
            "convert dates to numbers, or drop the column, then save the file again"
        )
    X = np.column_stack(arrays) if arrays else np.zeros((len(frame), 0))
    bad = ~np.isfinite(X)
    if bad.any():
        parts = []
        bad_cols = np.flatnonzero(bad.any(axis=0))
        for j in bad_cols[:5]:
            rows = np.flatnonzero(bad[:, j])
            kind = "missing" if np.isnan(X[rows[0], j]) else "infinite"
            parts.append(
                f"column {columns[j]!r}: {len(rows)} value(s), first {kind} at "
                f"{source.where(int(rows[0]))}"
            )
        more = f"; and {len(bad_cols) - 5} more column(s)" if len(bad_cols) > 5 else ""
        raise DataError(
            f"{path}: missing (NaN/empty) or infinite feature values - "
            + "; ".join(parts)
            + more
            + ". Impute or drop those rows first"
        )
    return X


def _labels(series: pd.Series, source: _Source) -> npt.NDArray[Any]:
    """Labels keeping their type: integers stay integers, strings stay strings."""
    import pandas as pd

    path, name = source.path, series.name
    missing = series.isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        raise DataError(
            f"{path}: {len(rows)} missing label(s) in column {name!r} "
            f"(first at {source.where(int(rows[0]))}); drop unlabelled rows or pass no label"
        )
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        series = series.astype(dtype.categories.dtype)
        dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return series.to_numpy(dtype=bool).astype(np.int64)
    if pd.api.types.is_integer_dtype(dtype):
        return series.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(dtype):
        y = series.to_numpy(dtype=np.float64)
        if not np.isfinite(y).all():
            row = int(np.flatnonzero(~np.isfinite(y))[0])
            raise DataError(
                f"{path}: infinite label in column {name!r} (first at {source.where(row)})"
            )
        return y
    values = series.to_numpy(dtype=object)
    if all(isinstance(v, str) for v in values):
        return np.asarray(values, dtype=str)
    if all(isinstance(v, bool | np.bool_) for v in values):
        return np.asarray(values, dtype=bool).astype(np.int64)
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    # Mixed types: compare them as text, the only order they all share.
    return np.asarray([str(v) for v in values], dtype=str)


def _resolve_positive(positive_label: Any, y: npt.NDArray[Any] | None, where: str) -> Any:
    """``positive_label`` as a value of ``y`` (``"1"`` matches integer label 1)."""
    if positive_label is None:
        return None
    if y is None:
        raise DataError(f"{where}: positive_label={positive_label!r} needs a label column")
    classes = np.unique(y)
    candidates: list[Any] = [positive_label]
    text = str(positive_label).strip()
    if y.dtype.kind in "iu":
        with contextlib.suppress(ValueError):
            candidates.append(int(text))
    elif y.dtype.kind == "f":
        with contextlib.suppress(ValueError):
            candidates.append(float(text))
    elif y.dtype.kind == "U":
        candidates.append(text)
    for cand in candidates:
        if isinstance(cand, str) != (y.dtype.kind == "U"):
            continue
        if np.any(classes == cand):
            return cand
    raise DataError(
        f"{where}: positive_label {positive_label!r} is not one of the labels "
        f"({_listing([c.item() if isinstance(c, np.generic) else c for c in classes])})"
    )


def _check_against_schema(
    X: npt.NDArray[np.float64], schema: FeatureSchema, where: str, source: _Source | None
) -> None:
    """Raise DataError when rows break the schema's bounds, kinds or one-hot groups."""
    lower, upper = schema.lower, schema.upper
    problems: list[str] = []

    def at(row: int) -> str:
        return source.where(row) if source is not None else f"row {row}"

    for j, feat in enumerate(schema.features):
        col = X[:, j]
        low = np.flatnonzero(col < lower[j])
        high = np.flatnonzero(col > upper[j])
        if low.size or high.size:
            r = int(min(low[0] if low.size else len(col), high[0] if high.size else len(col)))
            bound = (
                f"< lower bound {feat.lower:g}"
                if col[r] < lower[j]
                else f"> upper bound {feat.upper:g}"
            )
            problems.append(f"column {feat.name!r} out of bounds at {at(r)} ({col[r]:g} {bound})")
        elif feat.kind is not FeatureKind.CONTINUOUS:
            frac = np.flatnonzero(col != np.round(col))
            if frac.size:
                r = int(frac[0])
                problems.append(
                    f"{feat.kind.value} column {feat.name!r} holds a fraction at {at(r)} "
                    f"({col[r]:g})"
                )
    for group, idx in schema.groups.items():
        sums = X[:, idx].sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1.0) > 1e-9)
        if off.size:
            problems.append(
                f"categorical group {group!r} is not one-hot at {at(int(off[0]))} "
                f"(columns sum to {sums[off[0]]:g})"
            )
    if problems:
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise DataError(
            f"{where}: data does not match the schema - " + "; ".join(problems[:5]) + more
        )


def _coerce_schema(schema: FeatureSchema | str | Path) -> FeatureSchema:
    if isinstance(schema, FeatureSchema):
        return schema
    if isinstance(schema, str | Path):
        return FeatureSchema.load(schema)
    raise InvalidParameterError(
        f"schema must be a FeatureSchema or the path of a schema JSON file, "
        f"got {type(schema).__name__}"
    )


def read_table(
    path: str | Path,
    *,
    label: str | None = None,
    schema: FeatureSchema | str | Path | None = None,
    name: str | None = None,
    positive_label: Any = None,
    drop_text: bool = False,
) -> Dataset:
    """Read a CSV, TSV or Parquet file into a :class:`~mlwarden.data.Dataset`.

    Parquet is recognised by its magic bytes (``PAR1``), whatever the file is called;
    otherwise the extension decides: ``.csv`` (comma), ``.tsv`` (tab), optionally
    gzip-compressed (``.csv.gz``). Boolean columns become 0/1. Feature columns must be
    numeric and finite: one-hot encoding, imputation and the like are the user's job,
    and a column that needs them is reported by name (and, for CSV, with the line of
    the first bad row).

    Parameters
    ----------
    path : str or Path
        The file.
    label : str, optional
        Name of the label column; every other column is a feature. Without it the
        data set has no labels.
    schema : FeatureSchema or str or Path, optional
        The feature schema, or the path of a schema JSON file
        (:meth:`FeatureSchema.save`). The feature columns must be exactly the
        schema's (they are put in the schema's order) and every row must satisfy it.
        Without a schema one is inferred (:meth:`FeatureSchema.infer`): every feature
        mutable, bounds the observed range.
    name : str, optional
        Name for reports; defaults to the file name without its extensions.
    positive_label : object, optional
        The label of the class the model exists to catch. A string is matched
        against integer labels too (``"1"`` selects label ``1``).
    drop_text : bool, default=False
        Without a schema, leave text columns (names, emails, free text) out of the
        features instead of refusing the file; the data set's ``description`` names
        them. For tools that look at the numeric columns only (``mlwarden data check``).

    Returns
    -------
    Dataset
        ``X`` as ``float64``; ``y`` keeps its type (``int64`` for integer labels,
        strings for text labels, ``float64`` for real-valued ones, 0/1 for booleans).

    Raises
    ------
    DataFileError
        The file is missing, a directory, empty, not UTF-8, or cannot be parsed.
    DataError
        A missing label column, columns that do not match the schema, text in a
        feature column, missing or infinite values, missing labels, rows outside
        the schema, or an unknown ``positive_label``.
    """
    import pandas as pd

    p = Path(path)
    frame, source = _read_frame(p)
    columns = [str(c) for c in frame.columns]
    frame.columns = pd.Index(columns)
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise DataError(f"{p}: duplicate column name(s): {_listing(dupes)}")
    if len(frame) == 0:
        raise DataFileError(f"{p}: no data rows (only a header with columns {_listing(columns)})")

    if label is not None and label not in columns:
        raise DataError(
            f"{p}: label column {label!r} not found; the file has columns: {_listing(columns)}"
        )
    feature_cols = [c for c in columns if c != label]

    resolved = _coerce_schema(schema) if schema is not None else None
    if resolved is not None:
        expected = resolved.names
        missing = [c for c in expected if c not in feature_cols]
        extra = [c for c in feature_cols if c not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing column(s) the schema expects: {_listing(missing)}")
            if extra:
                hint = " (pass label=... if one of them is the label)" if label is None else ""
                parts.append(f"column(s) not in the schema: {_listing(extra)}{hint}")
            raise DataError(f"{p}: columns do not match the schema - " + "; ".join(parts))
        feature_cols = list(expected)

    description = ""
    if drop_text and resolved is None:
        # Only columns with no number at all: a column that mixes numbers and text is
        # an error in the data, reported by _features with the first bad row.
        text = [
            c for c in feature_cols
            if _as_float_column(frame[c]) is None and not _any_number(frame[c])
        ]  # fmt: skip
        if text:
            feature_cols = [c for c in feature_cols if c not in text]
            description = f"text columns not used as features: {_listing(text)}"
        if not feature_cols:
            raise DataError(f"{p}: no numeric feature column (text only: {_listing(text)})")
    X = _features(frame, feature_cols, source)
    y = _labels(frame[label], source) if label is not None else None
    if resolved is None:
        resolved = FeatureSchema.infer(X, feature_cols)
    else:
        _check_against_schema(X, resolved, str(p), source)
    pos = _resolve_positive(positive_label, y, str(p))
    return Dataset(
        X=X,
        y=y,
        schema=resolved,
        name=name or _stem(p),
        positive_label=pos,
        description=description,
        source=str(p),
    )


# ---------------------------------------------------------------- writing
def write_table(dataset: Dataset, path: str | Path, *, label: str | None = "label") -> Path:
    """Write a data set as CSV, TSV or Parquet, chosen by the file extension.

    Integer, binary and categorical features are written as integers, continuous
    ones with full precision, so :func:`read_table` gives back the same numbers.
    The schema is not part of the table: save it next to it with
    :meth:`FeatureSchema.save` and pass it to :func:`read_table`.

    Parameters
    ----------
    dataset : Dataset
        The data to write.
    path : str or Path
        Target file: ``.csv``, ``.csv.gz``, ``.tsv``, ``.tsv.gz``, ``.parquet`` or
        ``.pq``. Its folder must exist.
    label : str or None, default="label"
        Name of the label column (the last column); ``None`` writes no labels.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InvalidParameterError
        For an unsupported extension or a label name that is also a feature name.
    DataFileError
        When the file cannot be written.
    """
    import pandas as pd

    p = Path(path)
    suffix, gz = _suffixes(p)
    if suffix not in (".csv", ".tsv", *_PARQUET_SUFFIXES) or (gz and suffix in _PARQUET_SUFFIXES):
        raise InvalidParameterError(
            f"path: cannot tell the format of {p.name!r}; use one of {_SUPPORTED}"
        )
    if label is not None and label in dataset.feature_names:
        raise InvalidParameterError(
            f"label: {label!r} is also a feature name; pick another label column name"
        )
    columns: dict[str, Any] = {}
    discrete = dataset.schema.mask(FeatureKind.INTEGER, FeatureKind.BINARY, FeatureKind.CATEGORICAL)
    for j, fname in enumerate(dataset.feature_names):
        col = dataset.X[:, j]
        if discrete[j] and np.all(col == np.round(col)) and np.all(np.abs(col) < 2**53):
            columns[fname] = col.astype(np.int64)
        else:
            columns[fname] = col
    if label is not None and dataset.y is not None:
        columns[label] = dataset.y
    frame = pd.DataFrame(columns, index=pd.RangeIndex(dataset.n_samples))
    try:
        if suffix in _PARQUET_SUFFIXES:
            frame.to_parquet(p, engine="pyarrow", index=False)
        else:
            frame.to_csv(
                p,
                sep=_CSV_SUFFIXES[suffix],
                index=False,
                compression="gzip" if gz else None,
            )
    except OSError as exc:
        raise DataFileError(f"{p}: cannot write: {exc.strerror or _first_line(exc)}") from None
    return p


# ---------------------------------------------------------------- specs
def load_dataset(
    spec: str | Path,
    *,
    label: str | None = None,
    schema: FeatureSchema | str | Path | None = None,
    positive_label: Any = None,
) -> Dataset:
    """Load a data set from a spec: ``builtin:<name>`` or a file path.

    Parameters
    ----------
    spec : str or Path
        ``builtin:fraud``, ``builtin:breast_cancer``, ``builtin:digits`` (default
        parameters), or the path of a file :func:`read_table` reads.
    label : str, optional
        Label column of a file. Built-in data sets carry their labels, so it must be
        omitted for them.
    schema : FeatureSchema or str or Path, optional
        Schema (or schema JSON path) for a file, or a replacement schema for a
        built-in data set (for instance one that makes different features mutable);
        its feature names must match.
    positive_label : object, optional
        The class the model must catch (``"1"`` matches integer label 1); replaces a
        built-in data set's own.

    Returns
    -------
    Dataset

    Raises
    ------
    InvalidParameterError
        An unknown built-in name, or ``label`` given for a built-in data set.
    DataFileError, DataError
        As :func:`read_table`, or a schema that does not fit a built-in data set.
    """
    if isinstance(spec, str) and spec.startswith(BUILTIN_PREFIX):
        which = spec[len(BUILTIN_PREFIX) :].strip()
        if which not in BUILTIN_NAMES:
            raise InvalidParameterError(
                f"unknown built-in data set {spec!r}; available: "
                + ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_NAMES)
            )
        if label is not None:
            raise InvalidParameterError(
                f"label: {spec} carries its own labels; label= only applies to files"
            )
        data = load_builtin(which)
        if positive_label is not None:
            data = replace(data, positive_label=_resolve_positive(positive_label, data.y, spec))
        if schema is None:
            return data
        resolved = _coerce_schema(schema)
        if resolved.names != data.feature_names:
            missing = [n for n in data.feature_names if n not in resolved.names]
            extra = [n for n in resolved.names if n not in data.feature_names]
            detail = []
            if missing:
                detail.append(f"missing {_listing(missing)}")
            if extra:
                detail.append(f"unknown {_listing(extra)}")
            raise DataError(
                f"{spec}: the schema's features do not match the data set's "
                f"({'; '.join(detail) or 'different order'})"
            )
        _check_against_schema(data.X, resolved, spec, None)
        return Dataset(
            X=data.X,
            y=data.y,
            schema=resolved,
            name=data.name,
            positive_label=data.positive_label,
            description=data.description,
            source=data.source,
            image_shape=data.image_shape,
        )
    if not isinstance(spec, str | Path):
        raise InvalidParameterError(
            f"spec must be 'builtin:<name>' or a file path, got {type(spec).__name__}"
        )
    return read_table(spec, label=label, schema=schema, positive_label=positive_label)
