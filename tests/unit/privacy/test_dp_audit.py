"""The one-run DP audit (Steinke, Nasr and Jagielski 2023): the bound against a
brute-force binomial computation, and the audit end to end (MLW-PRI-005)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from mlwarden.data import breast_cancer, fraud
from mlwarden.exceptions import InvalidParameterError
from mlwarden.privacy.dp_audit import (
    DPAuditResult,
    audit_one_run,
    dp_audit_finding,
    eps_ceiling,
    eps_lower_bound,
    p_value,
)


def brute_p_value(r: int, v: int, m: int, eps: float, delta: float) -> float:
    """Theorem 5.2 of Steinke et al. with exact binomial sums (math.comb)."""
    q = Fraction(1) / (1 + Fraction(math.exp(-eps)))

    def f(k: int) -> Fraction:  # P[Binomial(r, q) >= k]
        return sum(
            (math.comb(r, j) * q**j * (1 - q) ** (r - j) for j in range(max(k, 0), r + 1)),
            Fraction(0),
        )

    tail = f(v)
    alpha = max((((f(v - i) - tail) / i) for i in range(1, v + 1)), default=Fraction(0))
    return min(float(tail + alpha * Fraction(delta) * 2 * m), 1.0)


@pytest.mark.parametrize(
    ("r", "v", "m", "eps", "delta"),
    [
        (20, 15, 40, 0.5, 0.0),
        (20, 18, 40, 1.3, 1e-3),
        (30, 30, 30, 2.0, 1e-5),
        (10, 3, 50, 0.1, 0.01),
    ],
)
def test_p_value_matches_brute_force(r, v, m, eps, delta):
    assert p_value(r, v, m, eps, delta) == pytest.approx(
        brute_p_value(r, v, m, eps, delta), rel=1e-9
    )


@pytest.mark.parametrize(("r", "v", "m", "delta"), [(20, 18, 40, 0.0), (30, 27, 60, 1e-4)])
def test_bound_is_the_largest_rejected_epsilon(r, v, m, delta):
    beta = 0.05
    eps = eps_lower_bound(r, v, m, delta, beta)
    assert eps > 0
    assert brute_p_value(r, v, m, eps, delta) < beta
    assert brute_p_value(r, v, m, eps + 1e-6, delta) >= beta


def test_known_values():
    beta = 0.05
    # All correct equals the ceiling; with delta = 0 the ceiling is log(q / (1 - q)),
    # q = beta ** (1 / r) (Theorem 3.1: P[W = r] = p ** r).
    for r in (10, 100):
        q = beta ** (1 / r)
        assert eps_lower_bound(r, r, r, 0.0, beta) == pytest.approx(math.log(q / (1 - q)), 1e-8)
        assert eps_lower_bound(r, r, 1000, 1e-5, beta) == eps_ceiling(r, 1000, 1e-5, beta)
    assert eps_ceiling(100, 100, 0.0, beta) == pytest.approx(3.4929654, abs=1e-6)
    # Half right is chance: no evidence of leakage.
    assert eps_lower_bound(100, 50, 100, 0.0, beta) == 0.0
    assert eps_lower_bound(0, 0, 10, 0.0, beta) == 0.0
    # Monotone in correct guesses, and delta only weakens the bound.
    bounds = [eps_lower_bound(100, v, 1000, 1e-5, beta) for v in range(50, 101, 5)]
    assert all(a <= b for a, b in itertools.pairwise(bounds))
    assert bounds[-1] > bounds[0] == 0.0
    assert eps_lower_bound(100, 90, 1000, 1e-3, beta) < eps_lower_bound(100, 90, 1000, 0.0, beta)
    # Higher confidence, lower bound.
    assert eps_lower_bound(100, 90, 100, 0.0, 0.01) < eps_lower_bound(100, 90, 100, 0.0, 0.05)


def test_bad_counts():
    with pytest.raises(InvalidParameterError, match="n_correct <= n_guesses <= m"):
        eps_lower_bound(10, 11, 20, 0.0)
    with pytest.raises(InvalidParameterError, match="beta"):
        eps_lower_bound(10, 5, 20, 0.0, beta=0.0)


def _tree(ds):
    return DecisionTreeClassifier(random_state=0).fit(ds.X, ds.labels)


def test_audit_finds_leakage_of_an_overfit_model():
    data = breast_cancer()
    res = audit_one_run(
        _tree, data, n_canaries=100, k_plus=20, k_minus=20, delta=1e-5, random_state=0,
        claimed_epsilon=0.5,
    )  # fmt: skip
    assert isinstance(res, DPAuditResult)
    assert res.guesses == 40 and res.n_canaries == 100
    assert res.eps_ceiling == pytest.approx(eps_ceiling(40, 100, 1e-5, 0.05))
    assert res.correct >= 35
    assert 0 < res.eps_lower <= res.eps_ceiling
    assert res.included.dtype == bool and len(res.scores) == 100
    f = dp_audit_finding(res)
    assert f.rule_id == "MLW-PRI-005" and not f.passed
    assert f.evidence["correct"] == res.correct and f.confidence == pytest.approx(0.95)
    # Same seed, same audit.
    again = audit_one_run(
        _tree, data, n_canaries=100, k_plus=20, k_minus=20, delta=1e-5, random_state=0
    )
    assert again.correct == res.correct and np.array_equal(again.included, res.included)


def test_finding_passes_below_claim_and_notes_the_ceiling():
    res = DPAuditResult(
        eps_lower=0.2, eps_ceiling=2.5, correct=30, guesses=40, n_canaries=100, k_plus=20,
        k_minus=20, beta=0.05, delta=1e-5,
    )  # fmt: skip
    f = dp_audit_finding(res, claimed_epsilon=8.0)
    assert f.passed and "cannot certify more than 2.5" in f.description
    with pytest.raises(InvalidParameterError, match="claimed_epsilon"):
        dp_audit_finding(res)


def test_audit_parameters_checked():
    data = breast_cancer()
    with pytest.raises(InvalidParameterError, match="k_plus"):
        audit_one_run(_tree, data, n_canaries=10, k_plus=8, k_minus=8, delta=0.0)
    with pytest.raises(InvalidParameterError, match="n_canaries"):
        audit_one_run(_tree, data, n_canaries=10_000, k_plus=8, k_minus=8, delta=0.0)


@pytest.mark.slow
@pytest.mark.filterwarnings(
    "ignore:.*[Ss]ecure RNG.*:UserWarning", "ignore:.*Optimal order.*:UserWarning"
)
def test_audit_of_a_private_model_stays_below_its_epsilon():
    torch = pytest.importorskip("torch")
    pytest.importorskip("opacus")
    from mlwarden.models._torch_nets import mlp_classifier
    from mlwarden.models.torch import TorchTarget
    from mlwarden.privacy.dp import train_private

    data = fraud(500, random_state=3)
    torch.manual_seed(0)
    mlp = mlp_classifier(data.X, 2, hidden=(16,))
    claimed: list[float] = []

    def train(ds):
        res = train_private(
            TorchTarget(mlp, classes=[0, 1]), ds, epsilon=1.0, delta=1e-5, epochs=2,
            batch_size=50, lr=1e-2, max_grad_norm=1.0, accountant="rdp", random_state=0,
        )  # fmt: skip
        claimed.append(res.epsilon_rdp)
        return res.model

    res = audit_one_run(
        train, data, n_canaries=100, k_plus=20, k_minus=20, delta=1e-5, random_state=1
    )
    assert claimed[0] <= 1.05
    assert res.eps_lower <= claimed[0]
    assert dp_audit_finding(res, claimed_epsilon=claimed[0]).passed
