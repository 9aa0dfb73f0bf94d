"""Confident learning: vectorised joint and pruning against a per-row reference loop."""

from __future__ import annotations

import numpy as np
import pytest

from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import FeatureSchema
from mlwarden.exceptions import DataError
from mlwarden.poisoning import ConfidentLearning, LabelFlip, confident_joint, find_label_issues


def _slow_joint(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = p.shape[1]
    t = np.array([np.mean([p[i, j] for i in range(len(y)) if y[i] == j]) for j in range(k)])
    C = np.zeros((k, k), dtype=int)
    for i in range(len(y)):
        best, best_p = -1, -1.0
        for j in range(k):
            if p[i, j] >= t[j] and p[i, j] > best_p:
                best, best_p = j, p[i, j]
        if best >= 0:
            C[y[i], best] += 1
    return C, t


def _slow_prune(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    C, _ = _slow_joint(y, p)
    k = p.shape[1]
    counts = np.bincount(y, minlength=k)
    issues = np.zeros(len(y), dtype=bool)
    for i in range(k):
        total = C[i].sum()
        for j in range(k):
            if i == j or total == 0:
                continue
            n_ij = round(C[i, j] / total * counts[i])
            rows = [r for r in range(len(y)) if y[r] == i]
            rows.sort(key=lambda r: -(p[r, j] - p[r, i]))
            for r in rows[:n_ij]:
                issues[r] = True
    return issues


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_joint_and_pruning_match_reference_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k, n = 3, 60
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    C, t, _ = confident_joint(y, p)
    C_ref, t_ref = _slow_joint(y, p)
    np.testing.assert_allclose(t, t_ref)
    np.testing.assert_array_equal(C, C_ref)
    np.testing.assert_array_equal(find_label_issues(y, p), _slow_prune(y, p))


def test_finds_flipped_labels_on_separable_data() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-2, 1, (150, 2)), rng.normal(2, 1, (150, 2))])
    y = np.repeat([0, 1], 150)
    data = Dataset(X=X, y=y, schema=FeatureSchema.infer(X, ["a", "b"]))
    poisoned = LabelFlip(rate=0.1, random_state=0).poison(data)
    from sklearn.linear_model import LogisticRegression

    res = ConfidentLearning(estimator=LogisticRegression(), random_state=0).detect(poisoned.data)
    precision, recall, _ = res.precision_recall(poisoned.indices)
    assert recall >= 0.8 and precision >= 0.8
    assert res.scores.shape == (300,)
    assert set(res.reasons) == set(np.flatnonzero(res.flagged).tolist())


def test_clean_data_has_few_issues() -> None:
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
    data = Dataset(X=X, y=np.repeat([0, 1], 100), schema=FeatureSchema.infer(X, ["a", "b"]))
    from sklearn.linear_model import LogisticRegression

    res = ConfidentLearning(estimator=LogisticRegression(), random_state=0).detect(data)
    assert res.flagged.sum() <= 2


def test_bad_probabilities_shape() -> None:
    with pytest.raises(DataError):
        confident_joint(np.array([0, 1]), np.ones((3, 2)))


def test_trusted_rows_set_the_thresholds() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6], [0.9, 0.1]])
    trusted = np.array([True, True, True, True, True, False])
    _, t, _ = confident_joint(y, p, trusted=trusted)
    np.testing.assert_allclose(t, [0.8, 0.7])  # row 5 (a likely flip) left out of t_1
    _, t_all, _ = confident_joint(y, p)
    assert t_all[1] < t[1]


def test_later_rounds_are_reported_and_one_round_is_plain_cl() -> None:
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(-2, 1, (100, 2)), rng.normal(2, 1, (100, 2))])
    data = Dataset(X=X, y=np.repeat([0, 1], 100), schema=FeatureSchema.infer(X, ["a", "b"]))
    poisoned = LabelFlip(rate=0.1, random_state=1).poison(data)
    from sklearn.linear_model import LogisticRegression

    one = ConfidentLearning(estimator=LogisticRegression(), rounds=1, random_state=0)
    res = one.detect(poisoned.data)
    assert res.details["rounds"] == 1
    probs = res.probabilities
    y = np.unique(poisoned.data.labels, return_inverse=True)[1]
    np.testing.assert_array_equal(res.flagged, find_label_issues(y, probs))
    many = ConfidentLearning(estimator=LogisticRegression(), rounds=3, random_state=0)
    assert 1 <= many.detect(poisoned.data).details["rounds"] <= 3


def test_fold_left_with_one_class_predicts_it() -> None:
    from sklearn.linear_model import LogisticRegression

    from mlwarden.poisoning import out_of_fold_probabilities

    X = np.arange(20, dtype=float).reshape(10, 2)
    y = np.array([0] * 5 + [1] * 5)
    mask = y == 0  # no class-1 row may be trained on
    p = out_of_fold_probabilities(X, y, estimator=LogisticRegression(), cv=2, train_mask=mask)
    np.testing.assert_array_equal(p, np.tile([1.0, 0.0], (10, 1)))
