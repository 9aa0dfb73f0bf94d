"""PGD and APGD under an L2 budget in per-feature scale units."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import SoftmaxTarget, linear_problem

from mlwarden.data import Feature, FeatureKind, FeatureSchema
from mlwarden.evasion.apgd import APGD
from mlwarden.evasion.pgd import PGD, _candidate, l2_distance
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.exceptions import InvalidParameterError

SCALES = np.array([0.5, 2.0, 1.0, 4.0])


def continuous_problem(n: int = 200, seed: int = 0):
    """Two classes, four continuous features with different scales and wide bounds."""
    rng = np.random.default_rng(seed)
    w = np.array([1.0, -0.3, 0.8, 0.2])
    X = rng.normal(size=(n, 4)) * SCALES
    W = np.column_stack([-w / 2, w / 2])
    target = SoftmaxTarget(W=W, b=np.zeros(2), name="linear4")
    schema = FeatureSchema(
        tuple(
            Feature(f"f{j}", lower=-50.0, upper=50.0, scale=float(s)) for j, s in enumerate(SCALES)
        )
    )
    y = target.predict(X)
    return target, schema, X, y, w


def test_one_step_is_a_normalised_gradient_step_in_the_scaled_space():
    target, schema, X, y, _ = continuous_problem(n=30)
    eps = 0.7
    res = PGD(eps=eps, steps=1, step_size=eps, random_start=False, norm="l2").generate(
        target, X, y, schema=schema
    )
    _, grad = target.loss_gradient(X, y)
    g = grad * SCALES  # chain rule: x = x0 + scale * u
    expected = X + eps * SCALES * g / np.linalg.norm(g, axis=1, keepdims=True)
    np.testing.assert_allclose(res.x_adv, expected, rtol=0, atol=1e-12)
    pset = PerturbationSet.build(X, eps, schema)
    np.testing.assert_allclose(l2_distance(pset, res.x_adv), eps)


@pytest.mark.parametrize("attack", ["pgd", "apgd"])
def test_l2_attacks_reach_the_exact_optimum_of_a_linear_model(attack):
    """Linear 2-class model, wide box: the best L2 move (in scaled units) changes the
    logit gap by eps * ||w * scale||, so a row is breakable iff |gap| < that."""
    target, schema, X, y, w = continuous_problem()
    eps = 0.8
    gap = np.abs(X @ w)
    breakable = gap < eps * np.linalg.norm(w * SCALES)
    make = {
        "pgd": lambda: PGD(eps=eps, steps=20, norm="l2"),
        "apgd": lambda: APGD(eps=eps, steps=20, norm="l2"),
    }
    res = make[attack]().generate(target, X, y, schema=schema, random_state=0)
    assert 0 < breakable.sum() < len(y)
    assert not np.any(res.success & ~breakable)
    assert res.success[breakable].mean() >= 0.98


def test_rounding_integers_never_leaves_the_ball():
    """Nearest rounding of two integers at 0.57 each gives an L2 step of 1.41 > eps=0.8;
    the candidate rounds them towards the original row instead."""
    schema = FeatureSchema(
        (
            Feature("a", FeatureKind.INTEGER, lower=0, upper=9, scale=1.0),
            Feature("b", FeatureKind.INTEGER, lower=0, upper=9, scale=1.0),
            Feature("c", lower=-5, upper=5, scale=1.0),
        )
    )
    x0 = np.array([[3.0, 3.0, 0.0]])
    pset = PerturbationSet.build(x0, 0.8, schema)
    relaxed = np.array([[3.5657, 3.5657, 0.0]])  # on the sphere of radius 0.8
    cand = _candidate(pset, relaxed, 0.8, "l2")
    np.testing.assert_array_equal(cand, [[3.0, 3.0, 0.0]])
    assert l2_distance(pset, cand)[0] <= 0.8
    # Where nearest rounding stays inside, it is kept.
    wider = PerturbationSet.build(x0, 1.2, schema)
    cand = _candidate(wider, np.array([[3.7, 3.0, 0.3]]), 1.2, "l2")
    np.testing.assert_array_equal(cand, [[4.0, 3.0, 0.3]])


@settings(max_examples=25, deadline=None)
@given(
    eps=st.floats(0.05, 3.0),
    seed=st.integers(0, 1000),
    apgd=st.booleans(),
    random_start=st.booleans(),
)
def test_every_l2_result_is_inside_the_ball_and_the_threat_model(eps, seed, apgd, random_start):
    target, data = linear_problem(n=40, seed=seed % 7)
    y = target.encode_labels(data.y)
    if apgd:
        attack = APGD(eps=eps, steps=5, norm="l2", loss="auto")
    else:
        attack = PGD(eps=eps, steps=5, norm="l2", random_start=random_start)
    res = attack.generate(target, data.X, y, schema=data.schema, random_state=seed)
    pset = PerturbationSet.build(data.X, eps, data.schema)
    assert res.infeasible == 0
    assert pset.contains(res.x_adv).all()
    assert np.all(l2_distance(pset, res.x_adv) <= eps * (1 + 1e-7))
    assert attack._feasible(pset, res.x_adv).all()
    hist = data.schema.index("history")
    np.testing.assert_array_equal(res.x_adv[:, hist], data.X[:, hist])


def test_feasibility_check_rejects_rows_outside_the_ball():
    _, schema, X, _, _ = continuous_problem(n=5)
    pset = PerturbationSet.build(X, 0.5, schema)
    inside_box = X + 0.45 * SCALES  # every feature within the L∞ box, L2 norm 0.9
    assert pset.contains(inside_box).all()
    assert not PGD(eps=0.5, norm="l2")._feasible(pset, inside_box).any()
    assert PGD(eps=0.5, norm="linf")._feasible(pset, inside_box).all()


@pytest.mark.parametrize(
    "attack",
    [PGD(eps=0.1, norm="l1"), PGD(eps=-0.5, norm="l2"), APGD(eps=0.1, norm="L2")],
)
def test_unknown_norms_and_negative_budgets_fail_before_any_query(attack):
    target, schema, X, y, _ = continuous_problem(n=5)
    q0 = target.n_queries
    with pytest.raises(InvalidParameterError, match=r"norm|eps"):
        attack.generate(target, X, y, schema=schema)
    assert target.n_queries == q0


def test_l2_pgd_same_seed_same_result():
    target, data = linear_problem(n=60)
    y = target.encode_labels(data.y)
    a, b = (
        PGD(eps=0.5, steps=5, norm="l2").generate(
            target, data.X, y, schema=data.schema, random_state=4
        )
        for _ in range(2)
    )
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
