"""Spectral signatures, activation clustering, outliers, duplicates, sanitize."""

from __future__ import annotations

import numpy as np
import pytest

from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import FeatureSchema
from mlwarden.exceptions import InvalidParameterError
from mlwarden.poisoning import (
    ActivationClustering,
    Duplicates,
    IsolationForestOutliers,
    SpectralSignature,
    TabularBackdoor,
    sanitize,
    spectral_scores,
)


def _data(X: np.ndarray, y: np.ndarray) -> Dataset:
    return Dataset(X=X, y=y, schema=FeatureSchema.infer(X, [f"f{i}" for i in range(X.shape[1])]))


def test_spectral_score_is_squared_projection_on_top_singular_vector() -> None:
    rng = np.random.default_rng(0)
    R = rng.normal(size=(40, 5)) @ rng.normal(size=(5, 5))
    centred = R - R.mean(axis=0)
    # Power iteration gives the top right singular vector independently of numpy's SVD.
    v = np.ones(5)
    for _ in range(500):
        v = centred.T @ (centred @ v)
        v /= np.linalg.norm(v)
    ref = np.array([float(np.dot(row, v)) ** 2 for row in centred])
    np.testing.assert_allclose(spectral_scores(R), ref, rtol=1e-6)


def test_spectral_ranks_shifted_rows_first() -> None:
    rng = np.random.default_rng(1)
    reps = rng.normal(size=(200, 8))
    y = np.repeat([0, 1], 100)
    reps[:10, 3] += 6.0  # ten rows of class 0 stand out along one direction
    res = SpectralSignature(expected_rate=0.05, multiplier=2.0).detect(
        _data(np.zeros((200, 1)), y), representations=reps
    )
    assert res.flagged[:10].all()
    assert res.flagged.sum() == 20  # 10 per class: the rule flags every class


def _trigger_set(poison: bool) -> tuple[Dataset, np.ndarray]:
    rng = np.random.default_rng(0)
    X = np.round(rng.normal(size=(300, 4)), 2)
    y = (X[:, 0] > 0).astype(int)
    data = _data(X, y)
    if not poison:
        return data, np.zeros(0, dtype=int)
    res = TabularBackdoor(rate=0.08, target_class=0, trigger={"f3": 1.2345},
                          random_state=0).poison(data)  # fmt: skip
    return res.data, res.indices


def test_activation_clustering_finds_a_fixed_trigger() -> None:
    data, idx = _trigger_set(True)
    reps = np.column_stack([data.X, (np.abs(data.X[:, 3] - 1.2345) < 1e-9) * 5.0])
    res = ActivationClustering(random_state=0).detect(data, representations=reps)
    precision, recall, _ = res.precision_recall(idx)
    assert precision == 1.0 and recall == 1.0
    poisoned = [c for c in res.details["classes"] if c.get("poisoned")]
    assert poisoned[0]["trigger"] == {"f3": 1.2345}


def test_activation_clustering_flags_nothing_on_clean_data() -> None:
    data, _ = _trigger_set(False)
    res = ActivationClustering(random_state=0).detect(data, representations=data.X)
    assert not res.flagged.any()


def test_a_rare_value_genuine_rows_share_is_not_a_trigger() -> None:
    data, _ = _trigger_set(False)
    X = data.X.copy()
    rows = np.flatnonzero(data.labels == 0)[::3]  # a third of class 0, genuinely class 0
    X[rows, 3] = 7.777
    genuine = _data(X, data.labels)
    reps = np.column_stack([X, (X[:, 3] == 7.777) * 5.0])
    res = ActivationClustering(random_state=0).detect(genuine, representations=reps)
    assert not res.flagged.any()
    off = ActivationClustering(min_auc=0, random_state=0).detect(genuine, representations=reps)
    assert off.flagged.sum() == len(rows)  # without the test it would be taken for poison


def test_activation_clustering_parameter_errors() -> None:
    data, _ = _trigger_set(False)
    with pytest.raises(InvalidParameterError, match="confirm"):
        ActivationClustering(confirm="vibes").detect(data, representations=data.X)


def test_duplicates_and_conflicts() -> None:
    X = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0], [3.0, 4.0], [5.0, 6.0], [1.0, 2.0]])
    y = np.array([0, 0, 0, 1, 1, 0])
    res = Duplicates().detect(_data(X, y))
    np.testing.assert_array_equal(res.flagged, [False, True, True, True, False, True])
    assert "label conflict" in res.reasons[2]
    assert res.details["conflict_groups"] == 1 and res.details["repeats"] == 2
    shifted = X.copy()
    shifted[1, 0] += 1e-4
    near = Duplicates(tolerance=0.01).detect(_data(shifted, y))
    assert near.flagged[1]


def test_isolation_forest_flags_the_far_row() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    X[7] = [12.0, -12.0, 12.0]
    res = IsolationForestOutliers(contamination=0.01, n_estimators=50, random_state=0).detect(
        _data(X, np.arange(200) % 2)
    )
    assert res.flagged[7] and int(np.argmax(res.scores)) == 7


def test_sanitize_drops_conflicts_and_reports_reasons() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-3, 1, (60, 2)), rng.normal(3, 1, (60, 2))])
    y = np.repeat([0, 1], 60)
    X = np.vstack([X, X[:1]])
    y = np.append(y, 1)  # the same row as row 0 with the other label
    from sklearn.linear_model import LogisticRegression

    report = sanitize(
        _data(X, y), backdoor=False, outliers=False, estimator=LogisticRegression(), random_state=0
    )
    dropped = set(report.dropped.tolist())
    assert {0, 120} <= dropped
    assert report.clean.n_samples == len(X) - len(dropped)
    row = next(r for r in report.rows if r.index == 120)
    assert any("label conflict" in why for why in row.reasons)
    assert report.to_dict()["summary"]["dropped"] == len(dropped)
