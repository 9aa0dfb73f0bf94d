"""Membership-inference metrics: exact values on hand-made scores."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.privacy.metrics import (
    balanced_accuracy,
    clopper_pearson,
    log_roc_points,
    membership_metrics,
    resolvable,
    risk_ranking,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)

# 4 members, 10 non-members; one non-member (0.95) outranks three members.
MEM = [0.99, 0.97, 0.9, 0.5]
NON = [0.95, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0]
SCORES = np.array(MEM + NON)
LABELS = np.array([True] * 4 + [False] * 10)


def test_tpr_at_fpr_exact_on_hand_made_scores():
    zero = tpr_at_fpr(SCORES, LABELS, 0.0)
    assert zero.tpr == 0.5  # 0.99 and 0.97 are above every non-member
    assert zero.threshold == 0.97
    assert zero.achieved_fpr == 0.0
    tenth = tpr_at_fpr(SCORES, LABELS, 0.1)  # one false positive allowed
    assert tenth.tpr == 0.75
    assert tenth.threshold == 0.9
    assert tenth.achieved_fpr == pytest.approx(0.1)
    fifth = tpr_at_fpr(SCORES, LABELS, 0.2)  # two allowed: still 0.75
    assert fifth.tpr == 0.75
    assert tpr_at_fpr(SCORES, LABELS, 0.4).tpr == 1.0  # threshold 0.5: 4 FP of 10
    assert tpr_at_fpr(SCORES, LABELS, 0.39).tpr == 0.75


def test_tpr_at_zero_fpr_is_zero_when_a_non_member_scores_highest():
    res = tpr_at_fpr([0.5, 0.4, 0.9], [1, 1, 0], 0.0)
    assert res.tpr == 0.0
    assert res.threshold == np.inf


def test_ties_between_members_and_non_members_count_as_false_positives():
    # A member tied with a non-member cannot be called without the false positive.
    res = tpr_at_fpr([1.0, 1.0, 0.2], [1, 0, 0], 0.0)
    assert res.tpr == 0.0
    assert tpr_at_fpr([1.0, 1.0, 0.2], [1, 0, 0], 0.5).tpr == 1.0


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, size=200).astype(float)
    lab = rng.random(200) < 0.4
    assert roc_auc(s, lab) == pytest.approx(roc_auc_score(lab, s), abs=1e-12)
    assert roc_auc(SCORES, LABELS) == pytest.approx(roc_auc_score(LABELS, SCORES), abs=1e-12)


def test_balanced_accuracy_best_threshold():
    # At threshold 0.5: TPR 1, TNR 6/10 -> 0.8; at 0.9: TPR .75, TNR .9 -> 0.825.
    assert balanced_accuracy(SCORES, LABELS) == pytest.approx(0.825)
    assert balanced_accuracy([1, 1, 0, 0], [1, 1, 0, 0]) == 1.0


def test_roc_curve_runs_from_origin_to_one():
    fpr, tpr, thr = roc_curve(SCORES, LABELS)
    assert (fpr[0], tpr[0], thr[0]) == (0.0, 0.0, np.inf)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)


@pytest.mark.parametrize(
    ("n", "fpr", "expected"),
    [
        (100, 0.01, True),
        (99, 0.01, False),
        (1000, 0.001, True),
        (999, 0.001, False),
        (10, 0.1, True),
        (1, 0.0, True),
        (0, 0.0, False),
        (0, 0.5, False),
    ],
)
def test_resolvable(n, fpr, expected):
    assert resolvable(n, fpr) is expected


def test_resolved_flag_follows_the_number_of_non_members():
    m = membership_metrics(SCORES, LABELS, fprs=(0.1, 0.01, 0.0))
    assert m.tpr(0.1).resolved
    assert not m.tpr(0.01).resolved
    assert m.tpr(0.0).resolved
    assert m.n_members == 4 and m.n_nonmembers == 10


def test_clopper_pearson_known_values_and_edges():
    low, high = clopper_pearson(5, 10, 0.95)
    assert low == pytest.approx(0.18708, abs=1e-4)
    assert high == pytest.approx(0.81292, abs=1e-4)
    assert clopper_pearson(0, 10)[0] == 0.0
    assert clopper_pearson(10, 10)[1] == 1.0
    with pytest.raises(InvalidParameterError, match="exceeds"):
        clopper_pearson(3, 2)


def test_confidence_interval_contains_point_estimate():
    rng = np.random.default_rng(1)
    for _ in range(20):
        s = rng.normal(size=80) + np.r_[np.ones(40), np.zeros(40)]
        lab = np.r_[np.ones(40, bool), np.zeros(40, bool)]
        for f in (0.1, 0.01, 0.0):
            r = tpr_at_fpr(s, lab, f, confidence=0.9)
            assert r.ci_low <= r.tpr <= r.ci_high


def test_log_roc_points_agree_with_tpr_at_fpr():
    rng = np.random.default_rng(2)
    s = rng.normal(size=300) + np.r_[np.full(100, 0.5), np.zeros(200)]
    lab = np.r_[np.ones(100, bool), np.zeros(200, bool)]
    fpr, tpr = log_roc_points(s, lab, n_points=30)
    assert fpr[0] == pytest.approx(1 / 200) and fpr[-1] == pytest.approx(1.0)
    assert np.all(np.diff(tpr) >= 0)
    for f, t in zip(fpr[::7], tpr[::7], strict=True):
        assert t == tpr_at_fpr(s, lab, float(f)).tpr


def test_risk_ranking_returns_most_exposed_members():
    ids, top = risk_ranking(SCORES, LABELS, k=3, index=np.arange(100, 114))
    assert ids.tolist() == [100, 101, 102]
    assert top.tolist() == [0.99, 0.97, 0.9]
    ids, _ = risk_ranking(SCORES, LABELS, k=10)
    assert ids.tolist() == [0, 1, 2, 3]  # only members, at most their number


def test_metrics_to_dict_is_json():
    m = membership_metrics(SCORES, LABELS)
    out = json.loads(json.dumps(m.to_dict()))
    assert out["tpr_at_fpr"][0]["ci_method"] == "clopper-pearson"
    with pytest.raises(InvalidParameterError, match="not computed"):
        m.tpr(0.5)


def test_bad_inputs_are_named():
    with pytest.raises(DataError, match="both members and non-members"):
        roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(DataError, match="entries"):
        roc_auc([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(DataError, match="NaN"):
        roc_auc([np.nan, 0.2], [1, 0])
    with pytest.raises(DataError, match="boolean or 0/1"):
        roc_auc([0.1, 0.2], [2, 0])
    with pytest.raises(InvalidParameterError, match="fpr"):
        tpr_at_fpr(SCORES, LABELS, 1.5)
    with pytest.raises(InvalidParameterError, match="k"):
        risk_ranking(SCORES, LABELS, k=0)
