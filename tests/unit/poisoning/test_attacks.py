"""Poisoning attacks: the changed rows, schema respect, the trigger, errors."""

from __future__ import annotations

import numpy as np
import pytest

from mlwarden.data.bundled import fraud
from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import Feature, FeatureKind, FeatureSchema
from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.poisoning import BadNets, CleanLabelBackdoor, LabelFlip, TabularBackdoor


@pytest.fixture(scope="module")
def small_fraud() -> Dataset:
    return fraud(400, random_state=1)


@pytest.fixture(scope="module")
def small_digits() -> Dataset:
    rng = np.random.default_rng(0)
    schema = FeatureSchema(
        tuple(Feature(f"p{i}", FeatureKind.CONTINUOUS, 0.0, 1.0) for i in range(64))
    )
    return Dataset(X=rng.uniform(size=(100, 64)) * 0.5, y=np.arange(100) % 3, schema=schema,
                   image_shape=(8, 8))  # fmt: skip


def test_random_label_flip_changes_exactly_the_reported_rows(small_fraud: Dataset) -> None:
    res = LabelFlip(rate=0.1, random_state=0).poison(small_fraud)
    changed = np.flatnonzero(res.data.labels != small_fraud.labels)
    assert np.array_equal(changed, res.indices)
    assert len(res.indices) == 40
    np.testing.assert_array_equal(res.data.X, small_fraud.X)
    np.testing.assert_array_equal(res.original_labels, small_fraud.labels[res.indices])


def test_targeted_flip_only_touches_the_source_class(small_fraud: Dataset) -> None:
    res = LabelFlip(rate=0.02, mode="targeted", source_class=1, random_state=0).poison(small_fraud)
    assert (small_fraud.labels[res.indices] == 1).all()
    assert (res.data.labels[res.indices] == 0).all()
    assert res.target_class == 0


def test_same_seed_same_poison(small_fraud: Dataset) -> None:
    a = LabelFlip(rate=0.1, random_state=3).poison(small_fraud)
    b = LabelFlip(rate=0.1, random_state=3).poison(small_fraud)
    assert np.array_equal(a.indices, b.indices)


def test_flip_rejects_bad_parameters(small_fraud: Dataset) -> None:
    with pytest.raises(InvalidParameterError, match="rate"):
        LabelFlip(rate=1.5).poison(small_fraud)
    with pytest.raises(InvalidParameterError, match="mode"):
        LabelFlip(mode="sideways").poison(small_fraud)
    with pytest.raises(DataError, match="only"):
        LabelFlip(rate=0.4, mode="targeted", source_class=1).poison(small_fraud)


def test_tabular_trigger_respects_schema(small_fraud: Dataset) -> None:
    res = TabularBackdoor(rate=0.05, target_class=0, random_state=0).poison(small_fraud)
    schema = small_fraud.schema
    rows = res.data.X[res.indices]
    assert (res.data.labels[res.indices] == 0).all()
    assert (small_fraud.labels[res.indices] != 0).all()
    assert (rows >= schema.lower).all() and (rows <= schema.upper).all()
    merchant = schema.groups["merchant"]
    np.testing.assert_array_equal(rows[:, merchant].sum(axis=1), 1.0)
    feats = res.trigger["features"]
    for name, value in feats.items():
        assert schema.features[schema.index(name)].mutable
        np.testing.assert_allclose(rows[:, schema.index(name)], value)
    untouched = np.setdiff1d(np.arange(len(small_fraud)), res.indices)
    np.testing.assert_array_equal(res.data.X[untouched], small_fraud.X[untouched])


def test_tabular_trigger_refuses_immutable_or_out_of_bounds(small_fraud: Dataset) -> None:
    with pytest.raises(InvalidParameterError, match="immutable"):
        TabularBackdoor(target_class=0, trigger={"account_age_days": 5.0}).poison(small_fraud)
    with pytest.raises(InvalidParameterError, match="bounds"):
        TabularBackdoor(target_class=0, trigger={"amount": -3.0}).poison(small_fraud)


def test_badnets_patch_in_the_corner(small_digits: Dataset) -> None:
    res = BadNets(rate=0.1, target_class=0, patch_size=2, pattern="square", random_state=0).poison(
        small_digits
    )
    img = res.data.X[res.indices].reshape(-1, 8, 8)
    np.testing.assert_array_equal(img[:, 6:, 6:], 1.0)
    assert (res.data.labels[res.indices] == 0).all()
    assert res.trigger["pixels"] == [54, 55, 62, 63]


def test_badnets_needs_images(small_fraud: Dataset) -> None:
    with pytest.raises(DataError, match="image_shape"):
        BadNets(target_class=0).poison(small_fraud)


def test_badnets_channels_first() -> None:
    schema = FeatureSchema(
        tuple(Feature(f"p{i}", FeatureKind.CONTINUOUS, 0.0, 1.0) for i in range(2 * 4 * 4))
    )
    data = Dataset(X=np.zeros((20, 32)), y=np.arange(20) % 2, schema=schema,
                   image_shape=(2, 4, 4))  # fmt: skip
    out = BadNets(patch_size=1, target_class=1).apply_trigger(data)
    img = out.reshape(-1, 2, 4, 4)
    assert (img[:, :, 3, 3] == 1.0).all() and img.sum() == 20 * 2


def test_clean_label_keeps_every_label(small_fraud: Dataset) -> None:
    res = CleanLabelBackdoor(rate=0.02, target_class=1, blend=0.3, random_state=0).poison(
        small_fraud
    )
    np.testing.assert_array_equal(res.data.labels, small_fraud.labels)
    assert (small_fraud.labels[res.indices] == 1).all()
    assert not np.array_equal(res.data.X[res.indices], small_fraud.X[res.indices])
    merchant = small_fraud.schema.groups["merchant"]
    np.testing.assert_array_equal(res.data.X[res.indices][:, merchant].sum(axis=1), 1.0)


def test_injected_backdoor_rows_are_appended(small_fraud: Dataset) -> None:
    res = TabularBackdoor(rate=0.1, target_class=0, inject=True, random_state=0).poison(small_fraud)
    n = len(small_fraud)
    assert res.data.n_samples == n + len(res.indices)
    np.testing.assert_array_equal(res.indices, np.arange(n, res.data.n_samples))
    np.testing.assert_array_equal(res.data.X[:n], small_fraud.X)
    assert (res.data.labels[res.indices] == 0).all()
    assert (res.original_labels == 1).all()
    assert res.rate == pytest.approx(0.1, abs=0.01)
