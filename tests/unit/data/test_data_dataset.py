"""Dataset: validation, fingerprints, description, subsets and stratified splits."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from mlwarden.data import Dataset, FeatureSchema
from mlwarden.exceptions import DataError, InvalidParameterError

X3 = np.array([[0.0, 1.5], [2.0, -3.25], [4.0, 1e-3]])
# SHA-256 of names "a\x1fb", X3 as little-endian float64 and labels "0", "1", "1" as
# UTF-32 text: a change here changes every report's data fingerprint.
X3_SHA_LABELLED = "ea65545d6ab0f2dced38f0ed1d6d3b40cdbeac2a161d50b0ba8f79654c99eaf9"
X3_SHA_UNLABELLED = "a4605fbd086eaff4e8c0c9cdf4f3c9144c85f3903334f393a32c207bb21c1a7a"


def make(
    X: np.ndarray = X3, y: object = (0, 1, 1), names: list[str] | None = None, **kwargs: object
) -> Dataset:
    X = np.asarray(X, dtype=np.float64)
    schema = FeatureSchema.infer(X, names or [chr(ord("a") + i) for i in range(X.shape[1])])
    return Dataset(X=X, y=None if y is None else np.asarray(y), schema=schema, **kwargs)  # type: ignore[arg-type]


def balanced(n: int = 200, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = np.where(np.arange(n) < n // 4, "rare", "common")  # 25% / 75%
    return Dataset(X=X, y=y, schema=FeatureSchema.infer(X), name="toy")


# ---------------------------------------------------------------- validation
def test_valid_dataset_and_properties() -> None:
    ds = make(name="toy", positive_label=1, description="d", source="f.csv")
    assert ds.X.dtype == np.float64
    assert ds.feature_names == ["a", "b"]
    assert (ds.n_samples, ds.n_features, len(ds)) == (3, 2, 3)
    assert ds.labels.tolist() == [0, 1, 1]


def test_integer_and_boolean_features_become_float() -> None:
    schema = FeatureSchema.infer(np.zeros((2, 2)))
    assert Dataset(X=np.array([[1, 2], [3, 4]]), y=None, schema=schema).X.dtype == np.float64
    ds = Dataset(X=np.array([[True, False], [False, True]]), y=None, schema=schema)
    assert ds.X.tolist() == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.zeros(3), "2-D matrix"),
        (np.zeros((1, 2, 2)), "2-D matrix"),
        (np.array([["a", "b"]]), "numeric"),
        (np.zeros((3, 3)), "schema has 2 features but data has 3"),
    ],
)
def test_bad_feature_matrix(X: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match):
        Dataset(X=X, y=None, schema=FeatureSchema.infer(np.zeros((1, 2))), name="toy")


def test_nan_features_name_column_and_row() -> None:
    X = X3.copy()
    X[2, 1] = np.nan
    X[1, 1] = np.inf
    with pytest.raises(DataError, match=r"toy: 2 NaN or infinite .*row 1, column 'b'"):
        Dataset(X=X, y=None, schema=FeatureSchema.infer(X3, ["a", "b"]), name="toy")


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.array([0, 1]), "one per row"),
        (np.zeros((3, 1)), "one per row"),
        (np.array([0.0, np.nan, 1.0]), "NaN or infinite"),
        (np.array([0.0, np.inf, 1.0]), "NaN or infinite"),
        (np.array(["a", None, "b"], dtype=object), "missing values"),
        (np.array(["a", float("nan"), "b"], dtype=object), "missing values"),
    ],
)
def test_bad_labels(y: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match):
        make(y=y)


def test_image_shape_must_fit() -> None:
    assert make(image_shape=(1, 2)).image_shape == (1, 2)
    with pytest.raises(DataError, match=r"image_shape \(2, 2\)"):
        make(image_shape=(2, 2))


def test_labels_property_without_labels() -> None:
    ds = make(y=None, name="toy")
    with pytest.raises(DataError, match="toy: this operation needs labels"):
        ds.labels  # noqa: B018


# --------------------------------------------------------------- fingerprint
def test_fingerprint_is_a_stable_known_value() -> None:
    assert make().fingerprint() == X3_SHA_LABELLED
    assert make(y=None).fingerprint() == X3_SHA_UNLABELLED
    ref = hashlib.sha256(b"a\x1fb" + X3.astype("<f8").tobytes()).hexdigest()
    assert ref == X3_SHA_UNLABELLED


def test_fingerprint_ignores_label_width_and_metadata() -> None:
    base = make().fingerprint()
    assert make(y=np.array([0, 1, 1], dtype=np.int32)).fingerprint() == base
    assert make(y=np.array(["0", "1", "1"])).fingerprint() == base
    assert make(name="other", description="x", source="s.csv").fingerprint() == base


def test_fingerprint_changes_with_content() -> None:
    base = make().fingerprint()
    X = X3.copy()
    X[0, 0] = 1e-300
    assert make(X=X).fingerprint() != base
    assert make(y=(0, 1, 0)).fingerprint() != base
    assert make(names=["a", "c"]).fingerprint() != base
    assert make(y=None).fingerprint() != base


def test_replace_recomputes_the_fingerprint() -> None:
    ds = make()
    first = ds.fingerprint()
    other = dataclasses.replace(ds, X=ds.X * 2)
    assert other.fingerprint() != first
    assert ds.fingerprint() == first


# ---------------------------------------------------------------- describe
def test_describe_is_json_ready() -> None:
    ds = make(name="toy", positive_label=np.int64(1), source="f.csv")
    d = ds.describe()
    json.dumps(d)
    assert d["name"] == "toy"
    assert d["source"] == "f.csv"
    assert d["sha256"] == ds.fingerprint()
    assert (d["n_samples"], d["n_features"]) == (3, 2)
    assert d["feature_names"] == ["a", "b"]
    assert d["label_counts"] == {"0": 1, "1": 2}
    assert d["positive_label"] == 1
    assert type(d["positive_label"]) is int
    assert "label_counts" not in make(y=None).describe()


# ---------------------------------------------------------------- subset/split
def test_subset_by_index_and_mask_keeps_metadata() -> None:
    ds = make(name="toy", positive_label=1, description="d", source="s")
    sub = ds.subset([2, 0])
    assert sub.X.tolist() == [X3[2].tolist(), X3[0].tolist()]
    assert sub.y.tolist() == [1, 0]
    assert (sub.name, sub.positive_label, sub.description, sub.source) == ("toy", 1, "d", "s")
    assert sub.schema is ds.schema
    masked = ds.subset(np.array([True, False, True]), name="m")
    assert masked.n_samples == 2
    assert masked.name == "m"
    assert make(y=None).subset([0]).y is None


def test_split_is_stratified_disjoint_and_complete() -> None:
    ds = balanced(200)
    train, test = ds.split(test_size=0.3, random_state=1)
    assert (train.name, test.name) == ("toy-train", "toy-test")
    assert test.n_samples == round(50 * 0.3) + round(150 * 0.3)
    assert int((test.y == "rare").sum()) == 15
    assert int((test.y == "common").sum()) == 45
    assert int((train.y == "rare").sum()) == 35
    rows = {tuple(r) for r in np.vstack([train.X, test.X])}
    assert len(rows) == 200
    assert rows == {tuple(r) for r in ds.X}


def test_split_is_deterministic() -> None:
    ds = balanced(100)
    _a_train, a_test = ds.split(random_state=3)
    _b_train, b_test = ds.split(random_state=3)
    np.testing.assert_array_equal(a_test.X, b_test.X)
    _, c_test = ds.split(random_state=4)
    assert not np.array_equal(a_test.X, c_test.X)


def test_split_without_labels() -> None:
    ds = Dataset(
        X=np.arange(40.0).reshape(20, 2), y=None, schema=FeatureSchema.infer(np.zeros((1, 2)))
    )
    train, test = ds.split(test_size=0.25, random_state=0)
    assert (train.n_samples, test.n_samples) == (15, 5)
    assert test.y is None


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.5, 1.5])
def test_split_rejects_bad_test_size(test_size: float) -> None:
    with pytest.raises(InvalidParameterError, match="test_size"):
        balanced(20).split(test_size=test_size)
