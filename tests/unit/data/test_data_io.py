"""Reading and writing tables: round trips, label types, and every bad input."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlwarden.data import (
    Dataset,
    FeatureKind,
    FeatureSchema,
    fraud,
    load_dataset,
    read_table,
    write_table,
)
from mlwarden.exceptions import DataError, DataFileError, InvalidParameterError


@pytest.fixture(scope="module")
def data() -> Dataset:
    return fraud(400, random_state=5)


@pytest.fixture
def schema_file(data: Dataset, tmp_path: Path) -> Path:
    path = tmp_path / "fraud.schema.json"
    data.schema.save(path)
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_no_chained_traceback(exc: BaseException) -> None:
    """Errors are raised ``from None``: no pandas or pyarrow traceback is attached."""
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__


# --------------------------------------------------------------- round trips
@pytest.mark.parametrize("ext", ["csv", "csv.gz", "tsv", "tsv.gz", "parquet", "pq"])
def test_round_trip_with_schema(data: Dataset, schema_file: Path, tmp_path: Path, ext: str) -> None:
    path = write_table(data, tmp_path / f"tx.{ext}", label="is_fraud")
    assert path == tmp_path / f"tx.{ext}"
    back = read_table(path, label="is_fraud", schema=schema_file, positive_label=1)
    np.testing.assert_array_equal(back.X, data.X)
    np.testing.assert_array_equal(back.y, data.y)
    assert back.y.dtype == np.int64
    assert back.schema == data.schema
    assert back.fingerprint() == data.fingerprint()
    assert back.name == "tx"
    assert back.source == str(path)
    assert back.positive_label == 1


def test_round_trip_with_schema_object_and_inference(data: Dataset, tmp_path: Path) -> None:
    path = write_table(data, tmp_path / "tx.parquet")
    back = read_table(path, label="label", schema=data.schema)
    assert back.schema == data.schema
    inferred = read_table(path, label="label").schema
    assert inferred.names == data.feature_names
    kinds = {f.name: f.kind for f in inferred.features}
    assert kinds["amount"] is FeatureKind.CONTINUOUS
    assert kinds["hour"] is FeatureKind.INTEGER
    assert kinds["card_present"] is FeatureKind.BINARY
    assert inferred.mutable.all()  # the worst case without a schema


def test_round_trip_random_floats_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)) * 10.0 ** rng.integers(-200, 200, size=(300, 3))
    ds = Dataset(X=X, y=rng.random(300), schema=FeatureSchema.infer(X))
    for ext in ("csv", "parquet"):
        back = read_table(write_table(ds, tmp_path / f"r.{ext}"), label="label")
        np.testing.assert_array_equal(back.X, X)
        np.testing.assert_array_equal(back.y, ds.y)
        assert back.y.dtype == np.float64


def test_csv_writes_discrete_features_as_integers(data: Dataset, tmp_path: Path) -> None:
    path = write_table(data, tmp_path / "tx.csv")
    header, first = path.read_text().splitlines()[:2]
    cells = dict(zip(header.split(","), first.split(","), strict=True))
    for name in ("hour", "merchant_grocery", "card_present", "tx_last_24h", "label"):
        assert "." not in cells[name], (name, cells[name])
    assert list(cells)[-1] == "label"


def test_write_without_labels(data: Dataset, tmp_path: Path) -> None:
    path = write_table(data, tmp_path / "x.csv", label=None)
    back = read_table(path)
    assert back.y is None
    assert back.feature_names == data.feature_names
    unlabelled = Dataset(X=data.X, y=None, schema=data.schema)
    assert read_table(write_table(unlabelled, tmp_path / "u.csv")).y is None


def test_parquet_is_detected_by_magic_bytes(data: Dataset, tmp_path: Path) -> None:
    pq = write_table(data, tmp_path / "tx.parquet")
    disguised = tmp_path / "really_parquet.csv"
    shutil.copy(pq, disguised)
    back = read_table(disguised, label="label")
    np.testing.assert_array_equal(back.X, data.X)
    assert back.name == "really_parquet"


def test_gzip_is_detected_by_magic_bytes(tmp_path: Path) -> None:
    path = tmp_path / "zipped.csv"
    path.write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n"))
    assert read_table(path).X.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_name_defaults_to_stem_and_can_be_set(tmp_path: Path) -> None:
    path = tmp_path / "my.data.csv.gz"
    pd.DataFrame({"a": [1.0, 2.0]}).to_csv(path, index=False)
    assert read_table(path).name == "my.data"
    assert read_table(path, name="custom").name == "custom"


# --------------------------------------------------------------- label types
def test_integer_labels_stay_integers(tmp_path: Path) -> None:
    ds = read_table(write(tmp_path, "i.csv", "a,y\n1.5,3\n2.5,7\n"), label="y")
    assert ds.y.dtype == np.int64
    assert ds.y.tolist() == [3, 7]


def test_string_labels_stay_strings(tmp_path: Path) -> None:
    ds = read_table(write(tmp_path, "s.csv", "a,y\n1,cat\n2,dog\n3,cat\n"), label="y")
    assert ds.y.dtype.kind == "U"
    assert ds.y.tolist() == ["cat", "dog", "cat"]
    pq = tmp_path / "s.parquet"
    pd.DataFrame({"a": [1.0, 2.0], "y": ["yes", "no"]}).to_parquet(pq)
    assert read_table(pq, label="y").y.tolist() == ["yes", "no"]


def test_numeric_looking_string_labels(tmp_path: Path) -> None:
    ds = read_table(write(tmp_path, "m.csv", "a,y\n1,1\n2,x\n"), label="y")
    assert ds.y.tolist() == ["1", "x"]


def test_boolean_columns_become_0_1(tmp_path: Path) -> None:
    path = write(tmp_path, "b.csv", "flag,a,y\nTrue,1,True\nFalse,2,False\nTrue,3,True\n")
    ds = read_table(path, label="y")
    assert ds.X[:, 0].tolist() == [1.0, 0.0, 1.0]
    assert ds.schema.features[0].kind is FeatureKind.BINARY
    assert ds.y.dtype == np.int64
    assert ds.y.tolist() == [1, 0, 1]
    pq = tmp_path / "b.parquet"
    pd.DataFrame({"flag": [True, False], "y": [False, True]}).to_parquet(pq)
    back = read_table(pq, label="y")
    assert back.X[:, 0].tolist() == [1.0, 0.0]
    assert back.y.tolist() == [0, 1]


def test_nullable_parquet_integers(tmp_path: Path) -> None:
    pq = tmp_path / "n.parquet"
    frame = pd.DataFrame(
        {"a": pd.array([1, 2], dtype="Int64"), "y": pd.array([0, 1], dtype="Int64")}
    )
    frame.to_parquet(pq)
    ds = read_table(pq, label="y")
    assert ds.X[:, 0].tolist() == [1.0, 2.0]
    assert ds.y.dtype == np.int64


def test_positive_label_matching(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "a,y\n1,0\n2,1\n")
    assert read_table(path, label="y", positive_label="1").positive_label == 1
    assert read_table(path, label="y", positive_label=0).positive_label == 0
    spath = write(tmp_path, "ps.csv", "a,y\n1,ham\n2,spam\n")
    assert read_table(spath, label="y", positive_label="spam").positive_label == "spam"
    with pytest.raises(DataError, match=r"'eggs' is not one of the labels \(ham, spam\)"):
        read_table(spath, label="y", positive_label="eggs")
    with pytest.raises(DataError, match="needs a label column"):
        read_table(path, positive_label=1)


# --------------------------------------------------------------- bad files
def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataFileError) as err:
        read_table(path)
    assert str(err.value) == f"{path}: file not found"


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(DataFileError, match="is a directory") as err:
        read_table(folder)
    assert str(folder) in str(err.value)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.csv", b"", "empty file"),
        ("blank.csv", b"\n\n", "empty file"),
        ("header.csv", b"a,b,label\n", "no data rows"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5\n", "line 3"),
        ("long_first.csv", b"a,b\n1,2,3\n", "more fields than the header"),
        ("binary.csv", b"\x00\xff\xfe\x01garbage\x80\n", "not UTF-8"),
        ("fake.parquet", b"a,b\n1,2\n", "not a Parquet file"),
        ("truncated.csv.gz", b"\x1f\x8b\x08\x00garbage", "cannot read"),
        ("plain.csv.gz", b"a,b\n1,2\n", "cannot read"),
        ("table.xlsx", b"PK\x03\x04", "unsupported file type '.xlsx'"),
        ("noext", b"a,b\n1,2\n", "unsupported file type"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=expected) as err:
        read_table(path)
    assert str(err.value).startswith(f"{path}: ")
    assert_no_chained_traceback(err.value)


def test_truncated_parquet(data: Dataset, tmp_path: Path) -> None:
    good = write_table(data, tmp_path / "ok.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(good.read_bytes()[:300])
    with pytest.raises(DataFileError, match="cannot read as Parquet") as err:
        read_table(bad)
    assert str(err.value).startswith(f"{bad}: ")
    assert_no_chained_traceback(err.value)


# --------------------------------------------------------------- bad tables
def test_missing_label_column_names_label_file_and_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "amount,hour,is_fraud\n1,2,0\n")
    with pytest.raises(DataError) as err:
        read_table(path, label="label")
    msg = str(err.value)
    assert str(path) in msg
    assert "'label'" in msg
    assert "amount, hour, is_fraud" in msg


def test_long_column_lists_are_shortened(tmp_path: Path) -> None:
    frame = pd.DataFrame(np.zeros((2, 40)), columns=[f"c{i}" for i in range(40)])
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"c0, c1, .*\(28 more\)"):
        read_table(path, label="y")


def test_schema_mismatch_names_missing_and_extra(
    data: Dataset, schema_file: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(write_table(data, tmp_path / "full.csv"))
    frame = frame.drop(columns=["hour"]).assign(shoe_size=42)
    path = tmp_path / "changed.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        read_table(path, label="label", schema=schema_file)
    msg = str(err.value)
    assert str(path) in msg
    assert "missing column(s) the schema expects: hour" in msg
    assert "not in the schema: shoe_size" in msg


def test_schema_hints_at_label(data: Dataset, schema_file: Path, tmp_path: Path) -> None:
    path = write_table(data, tmp_path / "full.csv", label="is_fraud")
    with pytest.raises(DataError, match=r"is_fraud \(pass label=\.\.\."):
        read_table(path, schema=schema_file)


def test_columns_are_reordered_to_the_schema(data: Dataset, tmp_path: Path) -> None:
    frame = pd.read_csv(write_table(data, tmp_path / "full.csv"))
    path = tmp_path / "shuffled.csv"
    frame[list(reversed(frame.columns))].to_csv(path, index=False)
    back = read_table(path, label="label", schema=data.schema)
    np.testing.assert_array_equal(back.X, data.X)


def test_rows_outside_the_schema(data: Dataset, tmp_path: Path) -> None:
    frame = pd.read_csv(write_table(data, tmp_path / "full.csv"))
    frame.loc[3, "amount"] = 30_000.0
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"'amount' out of bounds at row 3, line 5 \(30000 >"):
        read_table(path, label="label", schema=data.schema)
    frame = pd.read_csv(write_table(data, tmp_path / "full.csv"))
    frame.loc[7, [c for c in frame.columns if c.startswith("merchant_")]] = 0
    frame["hour"] = frame["hour"].astype(float)
    frame.loc[9, "hour"] = 3.5
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        read_table(path, label="label", schema=data.schema)
    assert "integer column 'hour' holds a fraction at row 9" in str(err.value)
    assert "group 'merchant' is not one-hot at row 7" in str(err.value)


def test_non_numeric_features_are_named_with_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "amount,city,y\n1,Paris,0\n2,Rome,1\n")
    with pytest.raises(DataError) as err:
        read_table(path, label="y")
    msg = str(err.value)
    assert str(path) in msg
    assert "'city'" in msg
    assert "'Paris'" in msg
    assert "one-hot" in msg
    assert "'amount'" not in msg


def test_non_numeric_value_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "amount,y\n1,0\n2,1\n\n3x,0\n")
    with pytest.raises(DataError, match=r"'amount' \('3x' at row 2, line 5\)"):
        read_table(path, label="y")


def test_nan_features_name_column_row_and_line(tmp_path: Path) -> None:
    text = 'a,b,y\n1,2,0\n\n"3",,1\n4,5,0\n'
    with pytest.raises(DataError) as err:
        read_table(write(tmp_path, "t.csv", text), label="y")
    msg = str(err.value)
    assert "column 'b'" in msg
    assert "first missing at row 1, line 4" in msg
    assert "column 'a'" not in msg


def test_nan_line_accounts_for_quoted_newlines(tmp_path: Path) -> None:
    text = "note,a,y\n1,2,0\n2,3,1\n4,,0\n"
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(DataError, match="row 2, line 4"):
        read_table(path, label="y")
    frame = pd.DataFrame({"a": [1.0, 2.0, np.nan], "y": ["multi\nline", "x", "y"]})
    path = tmp_path / "q.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="row 2, line 5"):
        read_table(path, label="y")


def test_infinite_features(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"column 'a'.*first infinite at row 1, line 3"):
        read_table(write(tmp_path, "t.csv", "a,y\n1,0\ninf,1\n"), label="y")


def test_nan_in_parquet_names_row(tmp_path: Path) -> None:
    pq = tmp_path / "n.parquet"
    pd.DataFrame({"a": [1.0, 2.0, np.nan], "y": [0, 1, 0]}).to_parquet(pq)
    with pytest.raises(DataError, match=r"column 'a'.*first missing at row 2\b"):
        read_table(pq, label="y")


def test_missing_labels(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "a,y\n1,0\n2,\n3,1\n")
    with pytest.raises(DataError) as err:
        read_table(path, label="y")
    msg = str(err.value)
    assert str(path) in msg
    assert "1 missing label(s) in column 'y'" in msg
    assert "row 1, line 3" in msg
    pq = tmp_path / "t.parquet"
    pd.DataFrame({"a": [1.0, 2.0], "y": ["a", None]}).to_parquet(pq)
    with pytest.raises(DataError, match="missing label"):
        read_table(pq, label="y")


def test_duplicate_columns_in_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as papq

    pq = tmp_path / "dup.parquet"
    papq.write_table(pa.table([[1.0], [2.0]], names=["a", "a"]), pq)
    with pytest.raises(DataError) as err:  # pyarrow refuses it; pandas would keep both
        read_table(pq)
    assert str(err.value).startswith(f"{pq}: ")


def test_bad_schema_argument(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "a\n1\n")
    with pytest.raises(DataFileError, match="schema file not found"):
        read_table(path, schema=tmp_path / "missing.json")
    with pytest.raises(InvalidParameterError, match="schema"):
        read_table(path, schema=42)  # type: ignore[arg-type]


# --------------------------------------------------------------- write errors
def test_write_errors(data: Dataset, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match=r"x\.json"):
        write_table(data, tmp_path / "x.json")
    with pytest.raises(InvalidParameterError, match=r"x\.parquet\.gz"):
        write_table(data, tmp_path / "x.parquet.gz")
    with pytest.raises(InvalidParameterError, match="'amount' is also a feature"):
        write_table(data, tmp_path / "x.csv", label="amount")
    target = tmp_path / "no" / "such" / "dir" / "x.csv"
    with pytest.raises(DataFileError, match="cannot write") as err:
        write_table(data, target)
    assert str(target) in str(err.value)


# --------------------------------------------------------------- load_dataset
@pytest.mark.parametrize("name", ["fraud", "breast_cancer", "digits"])
def test_load_dataset_builtin(name: str) -> None:
    assert load_dataset(f"builtin:{name}").name == name


def test_load_dataset_file(data: Dataset, schema_file: Path, tmp_path: Path) -> None:
    path = write_table(data, tmp_path / "tx.csv")
    back = load_dataset(str(path), label="label", schema=schema_file)
    np.testing.assert_array_equal(back.X, data.X)
    assert load_dataset(path, label="label").n_samples == data.n_samples


def test_load_dataset_builtin_with_schema(tmp_path: Path) -> None:
    base = load_dataset("builtin:fraud")
    frozen = base.schema.with_mutable(["merchant", "hour"], mutable=False)
    path = tmp_path / "frozen.json"
    frozen.save(path)
    ds = load_dataset("builtin:fraud", schema=path)
    assert ds.schema == frozen
    np.testing.assert_array_equal(ds.X, base.X)
    other = FeatureSchema.infer(np.zeros((2, 3)), ["a", "b", "c"])
    with pytest.raises(DataError, match="builtin:fraud: the schema's features do not match"):
        load_dataset("builtin:fraud", schema=other)


def test_load_dataset_errors() -> None:
    with pytest.raises(InvalidParameterError) as err:
        load_dataset("builtin:mnist")
    assert "builtin:mnist" in str(err.value)
    assert "builtin:fraud" in str(err.value)
    with pytest.raises(InvalidParameterError, match="label"):
        load_dataset("builtin:fraud", label="is_fraud")
    with pytest.raises(DataFileError, match="file not found"):
        load_dataset("no/such/file.csv")
