"""Output hardening: each defense's effect on answers, and its costs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from mlwarden.exceptions import CapabilityError, InvalidParameterError
from mlwarden.models import Capability, Target, target
from mlwarden.theft import (
    GaussianNoise,
    HardenedTarget,
    ReverseSigmoid,
    attacker_cost,
    harden_outputs,
    honest_cost,
)

X, Y = make_classification(
    n_samples=900, n_features=5, n_informative=4, n_redundant=0, n_classes=3, random_state=0
)


@pytest.fixture(scope="module")
def model() -> Any:
    return LogisticRegression(max_iter=500).fit(X[:400], Y[:400])


@pytest.fixture
def victim(model: Any) -> Target:
    return target(model, name="lr")


def test_label_only_removes_scores_and_keeps_labels(victim: Target) -> None:
    hard = harden_outputs(victim, "label-only")
    assert isinstance(hard, HardenedTarget)
    assert hard.capabilities == Capability.LABELS
    np.testing.assert_array_equal(hard.classes, victim.classes)
    np.testing.assert_array_equal(hard.predict(X), victim.predict(X))
    with pytest.raises(CapabilityError):
        hard.predict_proba(X[:2])
    assert Capability.GRADIENTS not in hard.capabilities
    assert hard.describe()["defense"]["name"] == "label-only"


@pytest.mark.parametrize(
    ("name", "params"),
    [("top-k", {"k": 2}), ("rounding", {"decimals": 1}), ("noise", {"scale": 0.2}),
     ("reverse-sigmoid", {"beta": 0.8, "gamma": 0.2})],
)  # fmt: skip
def test_score_defenses_keep_argmax_and_change_probabilities(
    victim: Target, name: str, params: dict[str, Any]
) -> None:
    hard = harden_outputs(victim, name, random_state=0, **params)
    p0, p1 = victim.predict_proba(X), hard.predict_proba(X)
    np.testing.assert_array_equal(np.argmax(p1, axis=1), np.argmax(p0, axis=1))
    np.testing.assert_array_equal(hard.predict(X), victim.predict(X))
    assert np.abs(p1 - p0).mean() > 0.01
    assert np.all(p1 >= 0)


def test_top_k_and_rounding_shapes(victim: Target) -> None:
    top1 = harden_outputs(victim, "top-k", k=1).predict_proba(X[:50])
    assert np.all((top1 > 0).sum(axis=1) == 1)
    np.testing.assert_allclose(top1.sum(axis=1), 1.0)
    top2 = harden_outputs(victim, "top-k", k=2).predict_proba(X[:50])
    assert np.all((top2 > 0).sum(axis=1) <= 2)
    rounded = harden_outputs(victim, "rounding", decimals=1).predict_proba(X[:50])
    assert np.allclose(rounded * 10, np.round(rounded * 10), atol=1e-6)


def test_reverse_sigmoid_matches_lee_et_al(victim: Target) -> None:
    p = victim.predict_proba(X[:20])
    beta, gamma = 0.5, 0.3
    q = np.clip(p, 1e-9, 1 - 1e-9)
    r = beta * (1 / (1 + np.exp(-gamma * np.log(q / (1 - q)))) - 0.5)
    expect = np.clip(p - r, 0, 1)
    expect /= expect.sum(axis=1, keepdims=True)
    got = ReverseSigmoid(beta=beta, gamma=gamma).apply(p, np.random.default_rng(0))
    same = np.argmax(expect, axis=1) == np.argmax(p, axis=1)
    np.testing.assert_allclose(got[same], expect[same])


def test_noise_is_seeded_and_can_change_labels_when_asked(victim: Target) -> None:
    a = harden_outputs(victim, "noise", scale=0.3, random_state=3).predict_proba(X[:100])
    b = harden_outputs(victim, "noise", scale=0.3, random_state=3).predict_proba(X[:100])
    np.testing.assert_array_equal(a, b)
    free = harden_outputs(victim, GaussianNoise(scale=0.5, preserve_argmax=False), random_state=0)
    assert np.mean(free.predict(X) != victim.predict(X)) > 0.02


def test_queries_are_counted_on_both(victim: Target) -> None:
    hard = harden_outputs(victim, "rounding")
    hard.predict_proba(X[:7])
    hard.predict(X[:3])
    assert hard.n_queries == 10
    assert victim.n_queries == 10


def test_bad_parameters(victim: Target) -> None:
    with pytest.raises(InvalidParameterError, match="defense"):
        harden_outputs(victim, "shuffle")
    with pytest.raises(InvalidParameterError, match="k"):
        harden_outputs(victim, "top-k", k=0)
    with pytest.raises(InvalidParameterError, match="decimals"):
        harden_outputs(victim, "rounding", decimals=-1)
    with pytest.raises(InvalidParameterError, match="unexpected"):
        harden_outputs(victim, "rounding", digits=2)
    labels_only = harden_outputs(victim, "label-only")
    with pytest.raises(CapabilityError):
        harden_outputs(labels_only, "rounding")


def test_honest_cost(victim: Target) -> None:
    cost = honest_cost(victim, harden_outputs(victim, "label-only"), X[400:], Y[400:])
    assert cost.accuracy_loss == 0
    assert cost.label_agreement == 1.0
    assert cost.auc_loss > 0.01  # hard labels rank worse than probabilities
    fine = honest_cost(victim, harden_outputs(victim, "rounding", decimals=3), X[400:], Y[400:])
    assert abs(fine.auc_loss) < 0.005


def test_attacker_cost_label_only_slows_extraction(victim: Target) -> None:
    cost = attacker_cost(
        victim, harden_outputs(victim, "label-only"), pool=X[400:750], test=(X[750:], Y[750:]),
        fidelity=0.9, budgets=(10, 20, 40, 80, 160, 320),
        surrogate=LogisticRegression(max_iter=300), random_state=0,
    )  # fmt: skip
    # Soft labels of a linear model pin down a linear copy in a few queries (Tramèr et
    # al.'s equation solving); labels alone need many more.
    assert cost.queries_undefended is not None and cost.queries_undefended <= 20
    assert cost.reached
    assert cost.multiplier >= 4
    # A decision tree cannot use soft labels better than hard ones by much.
    tree = attacker_cost(
        victim, harden_outputs(victim, "label-only"), pool=X[400:750], test=(X[750:], Y[750:]),
        budgets=(20, 80, 320), surrogate=DecisionTreeClassifier(max_depth=4), random_state=0,
    )  # fmt: skip
    assert tree.to_dict()["max_budget"] == 320
