"""The bundled data sets: the seeded fraud generator and the scikit-learn classics."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mlwarden.data import (
    Dataset,
    FeatureKind,
    breast_cancer,
    digits,
    fraud,
    load_builtin,
)
from mlwarden.data.bundled import BUILTIN_NAMES, FRAUD_FEATURES
from mlwarden.exceptions import InvalidParameterError

MERCHANT_COLUMNS = [
    "merchant_grocery",
    "merchant_restaurant",
    "merchant_fuel",
    "merchant_travel",
    "merchant_electronics",
    "merchant_digital_goods",
    "merchant_gambling",
]
EXPECTED_COLUMNS = [
    "amount",
    "hour",
    *MERCHANT_COLUMNS,
    "card_present",
    "distance_from_home_km",
    "foreign",
    "tx_last_24h",
    "avg_amount_30d",
    "account_age_days",
    "new_device",
]
IMMUTABLE = {
    "distance_from_home_km",
    "foreign",
    "tx_last_24h",
    "avg_amount_30d",
    "account_age_days",
    "new_device",
}


@pytest.fixture(scope="module")
def data() -> Dataset:
    return fraud(4000, random_state=3)


def col(ds: Dataset, name: str) -> np.ndarray:
    return ds.X[:, ds.schema.index(name)]


# ------------------------------------------------------------------ fraud: seeds
def test_same_seed_gives_identical_data() -> None:
    a, b = fraud(1500, random_state=11), fraud(1500, random_state=11)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.schema == b.schema
    assert a.fingerprint() == b.fingerprint()


def test_different_seeds_differ() -> None:
    a, b = fraud(1500, random_state=1), fraud(1500, random_state=2)
    assert not np.array_equal(a.X, b.X)
    assert a.fingerprint() != b.fingerprint()


def test_generator_seed_is_accepted() -> None:
    a = fraud(500, random_state=np.random.default_rng(5))
    b = fraud(500, random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(a.X, b.X)


def test_default_parameters_and_speed() -> None:
    start = time.perf_counter()
    ds = fraud()
    elapsed = time.perf_counter() - start
    assert ds.X.shape == (20_000, 16)
    assert int(ds.y.sum()) == 1000
    assert elapsed < 1.0  # ~0.04 s here; the budget is 0.3 s, with slack for a busy machine


# ----------------------------------------------------------- fraud: the labels
@pytest.mark.parametrize(
    ("n", "rate"), [(100, 0.05), (101, 0.3), (1000, 0.01), (2345, 0.07), (999, 0.499)]
)
def test_fraud_rate_is_exact(n: int, rate: float) -> None:
    ds = fraud(n, fraud_rate=rate, random_state=0)
    assert ds.n_samples == n
    assert int(ds.y.sum()) == round(n * rate)
    assert ds.y.dtype == np.int64
    assert set(np.unique(ds.y)) <= {0, 1}


def test_frauds_are_shuffled(data: Dataset) -> None:
    pos = np.flatnonzero(data.y == 1)
    # Not all at the start or the end: their mean position is near the middle.
    assert 0.3 < pos.mean() / data.n_samples < 0.7


def test_metadata(data: Dataset) -> None:
    assert data.name == "fraud"
    assert data.positive_label == 1
    assert "fraud" in data.description.lower()
    assert data.image_shape is None
    assert data.source is not None
    assert data.source.startswith("builtin:fraud")


# ----------------------------------------------------------- fraud: the schema
def test_columns_and_kinds(data: Dataset) -> None:
    assert data.feature_names == EXPECTED_COLUMNS == list(FRAUD_FEATURES)
    kinds = {f.name: f.kind for f in data.schema.features}
    assert kinds["amount"] is FeatureKind.CONTINUOUS
    assert kinds["distance_from_home_km"] is FeatureKind.CONTINUOUS
    assert kinds["avg_amount_30d"] is FeatureKind.CONTINUOUS
    for name in ("hour", "tx_last_24h", "account_age_days"):
        assert kinds[name] is FeatureKind.INTEGER
    for name in ("card_present", "foreign", "new_device"):
        assert kinds[name] is FeatureKind.BINARY
    for name in MERCHANT_COLUMNS:
        assert kinds[name] is FeatureKind.CATEGORICAL
    assert data.schema.groups == {"merchant": [data.schema.index(c) for c in MERCHANT_COLUMNS]}


def test_mutability(data: Dataset) -> None:
    immutable = {f.name for f in data.schema.features if not f.mutable}
    assert immutable == IMMUTABLE


def test_bounds(data: Dataset) -> None:
    feats = {f.name: f for f in data.schema.features}
    assert (feats["amount"].lower, feats["amount"].upper) == (0.5, 25_000.0)
    assert (feats["hour"].lower, feats["hour"].upper) == (0.0, 23.0)
    assert feats["distance_from_home_km"].lower == 0.0
    assert feats["tx_last_24h"].lower == 0.0
    assert feats["account_age_days"].lower == 0.0
    for f in data.schema.features:
        assert np.isfinite(f.lower)
        assert np.isfinite(f.upper)
        if f.kind in (FeatureKind.BINARY, FeatureKind.CATEGORICAL):
            assert (f.lower, f.upper) == (0.0, 1.0)


def test_every_row_satisfies_the_schema(data: Dataset) -> None:
    assert not data.schema.violations(data.X).any()
    assert not data.schema.violations(data.X, data.X).any()
    onehot = data.X[:, [data.schema.index(c) for c in MERCHANT_COLUMNS]]
    assert np.all(onehot.sum(axis=1) == 1.0)
    assert set(np.unique(onehot)) == {0.0, 1.0}
    hour = col(data, "hour")
    assert hour.min() >= 0
    assert hour.max() <= 23
    assert np.all(hour == np.round(hour))
    amount = col(data, "amount")
    np.testing.assert_allclose(amount, np.round(amount, 2))  # cents


def test_scales_and_descriptions(data: Dataset) -> None:
    for j, f in enumerate(data.schema.features):
        assert f.description, f.name
        if f.kind in (FeatureKind.BINARY, FeatureKind.CATEGORICAL):
            assert f.scale == 1.0
        else:
            assert f.scale >= 1.0
            assert f.scale == pytest.approx(max(float(data.X[:, j].std()), 1.0))


def test_every_category_and_hour_occurs(data: Dataset) -> None:
    onehot = data.X[:, [data.schema.index(c) for c in MERCHANT_COLUMNS]]
    assert np.all(onehot.sum(axis=0) > 0)
    assert len(np.unique(col(data, "hour"))) == 24


def test_fraud_patterns_point_the_right_way(data: Dataset) -> None:
    fr, ok = data.y == 1, data.y == 0
    ratio = col(data, "amount") / np.maximum(col(data, "avg_amount_30d"), 1.0)
    night = np.isin(col(data, "hour"), [0, 1, 2, 3, 4, 5])
    risky = (
        data.X[
            :,
            [
                data.schema.index(f"merchant_{m}")
                for m in ("electronics", "digital_goods", "gambling")
            ],
        ].sum(axis=1)
        == 1
    )
    assert np.median(ratio[fr]) > 1.5 * np.median(ratio[ok])
    assert night[fr].mean() > 3 * night[ok].mean()
    assert risky[fr].mean() > 1.5 * risky[ok].mean()
    assert col(data, "card_present")[fr].mean() < col(data, "card_present")[ok].mean()
    assert col(data, "foreign")[fr].mean() > 3 * col(data, "foreign")[ok].mean()
    assert col(data, "new_device")[fr].mean() > 3 * col(data, "new_device")[ok].mean()
    assert col(data, "tx_last_24h")[fr].mean() > col(data, "tx_last_24h")[ok].mean()
    young = col(data, "account_age_days") < 90
    assert young[fr].mean() > young[ok].mean()


def test_no_single_feature_gives_fraud_away(data: Dataset) -> None:
    for j, name in enumerate(data.feature_names):
        auc = roc_auc_score(data.y, data.X[:, j])
        assert max(auc, 1 - auc) < 0.85, name
    # ...and every pattern also occurs in legitimate traffic.
    ok = data.y == 0
    assert col(data, "foreign")[ok].sum() > 0
    assert col(data, "new_device")[ok].sum() > 0
    assert np.isin(col(data, "hour")[ok], [0, 1, 2, 3, 4]).sum() > 0


def test_learnable_by_trees_less_by_a_linear_model() -> None:
    ds = fraud(5000, random_state=0)
    train, test = ds.split(random_state=0)
    with threadpool_limits(1):  # stable timing on a shared machine
        hgb = HistGradientBoostingClassifier(max_iter=50, random_state=0)
        hgb.fit(train.X, train.y)
        lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        lr.fit(train.X, train.y)
    auc_hgb = roc_auc_score(test.y, hgb.predict_proba(test.X)[:, 1])
    auc_lr = roc_auc_score(test.y, lr.predict_proba(test.X)[:, 1])
    assert 0.9 <= auc_hgb <= 0.995
    assert auc_lr < auc_hgb - 0.03


# ---------------------------------------------------------- fraud: parameters
@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n_samples": 99}, "n_samples"),
        ({"n_samples": -5}, "n_samples"),
        ({"n_samples": 1000.0}, "n_samples"),
        ({"n_samples": True}, "n_samples"),
        ({"n_samples": "1000"}, "n_samples"),
        ({"fraud_rate": 0.0}, "fraud_rate"),
        ({"fraud_rate": 0.5}, "fraud_rate"),
        ({"fraud_rate": -0.1}, "fraud_rate"),
        ({"fraud_rate": float("nan")}, "fraud_rate"),
        ({"fraud_rate": "0.1"}, "fraud_rate"),
        ({"n_samples": 100, "fraud_rate": 0.001}, "fraud_rate"),
        ({"random_state": -1}, "random_state"),
        ({"random_state": 1.5}, "random_state"),
    ],
)
def test_bad_parameters(kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidParameterError, match=param):
        fraud(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------- scikit-learn
def test_breast_cancer() -> None:
    ds = breast_cancer()
    assert ds.X.shape == (569, 30)
    assert ds.y.dtype == np.int64
    assert ds.positive_label == 0  # malignant
    assert int((ds.y == 0).sum()) == 212
    assert ds.name == "breast_cancer"
    assert ds.feature_names[0] == "mean radius"
    assert ds.schema.mutable.all()
    np.testing.assert_array_equal(ds.schema.lower, ds.X.min(axis=0))
    np.testing.assert_array_equal(ds.schema.upper, ds.X.max(axis=0))
    assert not ds.schema.violations(ds.X).any()
    assert "malignant" in ds.description


def test_digits() -> None:
    ds = digits()
    assert ds.X.shape == (1797, 64)
    assert ds.image_shape == (8, 8)
    assert ds.X.min() == 0.0
    assert ds.X.max() == 1.0
    assert sorted(np.unique(ds.y)) == list(range(10))
    assert ds.y.dtype == np.int64
    assert ds.positive_label is None
    assert all(f.kind is FeatureKind.CONTINUOUS for f in ds.schema.features)
    assert np.all(ds.schema.lower == 0.0)
    assert np.all(ds.schema.upper == 1.0)
    assert np.all(ds.schema.scale == 1.0)
    assert ds.schema.mutable.all()
    # Scaled from 0-16: every value is a multiple of 1/16.
    np.testing.assert_array_equal(ds.X * 16, np.round(ds.X * 16))


# ------------------------------------------------------------- load_builtin
@pytest.mark.parametrize("name", ["fraud", "breast_cancer", "digits"])
def test_load_builtin(name: str) -> None:
    ds = load_builtin(name)
    assert ds.name == name
    assert name in BUILTIN_NAMES


def test_load_builtin_passes_parameters() -> None:
    ds = load_builtin("fraud", n_samples=300, fraud_rate=0.1, random_state=4)
    np.testing.assert_array_equal(ds.X, fraud(300, fraud_rate=0.1, random_state=4).X)


def test_load_builtin_unknown_name_lists_the_names() -> None:
    with pytest.raises(InvalidParameterError, match="nope") as err:
        load_builtin("nope")
    for name in ("fraud", "breast_cancer", "digits"):
        assert name in str(err.value)


def test_load_builtin_unknown_parameter() -> None:
    with pytest.raises(InvalidParameterError, match="n_samples"):
        load_builtin("digits", n_samples=10)
    with pytest.raises(InvalidParameterError, match="sample_count"):
        load_builtin("fraud", sample_count=10)
