"""Evasion attacks against known answers on a linear model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import SoftmaxTarget, linear_problem

from mlwarden.data import FeatureKind
from mlwarden.evasion.fgsm import FGSM
from mlwarden.evasion.pgd import PGD
from mlwarden.evasion.square import SquareAttack
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.exceptions import CapabilityError, InvalidParameterError
from mlwarden.models.base import Capability


def exact_linear_robust(target: SoftmaxTarget, pset: PerturbationSet, y: np.ndarray) -> np.ndarray:
    """Slow, obviously-correct reference: for a 2-class linear model the worst case puts
    every movable feature at the end of its feasible range that favours the wrong class."""
    w = target.W[:, 1] - target.W[:, 0]
    b = target.b[1] - target.b[0]
    schema = pset.schema
    robust = np.zeros(len(y), dtype=bool)
    for i in range(len(y)):
        x = pset.x0[i].copy()
        direction = -1.0 if y[i] == 1 else 1.0  # push the class-1 logit down for class 1
        for j, f in enumerate(schema.features):
            lo, hi = pset.lower[i, j], pset.upper[i, j]
            if f.kind in (FeatureKind.INTEGER, FeatureKind.BINARY):
                lo, hi = np.ceil(lo - 1e-9), np.floor(hi + 1e-9)
            x[j] = hi if direction * w[j] > 0 else lo
        z = x @ w + b
        robust[i] = (z > 0) == (y[i] == 1)
    return robust


@pytest.fixture
def problem():
    target, data = linear_problem(n=300)
    y = target.encode_labels(data.y)
    correct = target.predict(data.X) == y
    return target, data, data.X[correct], y[correct]


@pytest.mark.parametrize("eps", [0.1, 0.3, 0.6])
def test_pgd_and_square_reach_the_exact_optimum_on_a_linear_model(problem, eps):
    target, data, x, y = problem
    pset = PerturbationSet.build(x, eps, data.schema)
    truth = exact_linear_robust(target, pset, y)
    pgd = PGD(eps=eps, steps=30).generate(target, x, y, schema=data.schema, random_state=0)
    square = SquareAttack(eps=eps, n_queries=300).generate(
        target, x, y, schema=data.schema, random_state=0
    )
    # No attack may beat the exact optimum (that would mean an infeasible example) ...
    assert not np.any(pgd.success & truth)
    assert not np.any(square.success & truth)
    # ... and both must find (almost) every breakable row.
    breakable = ~truth
    assert breakable.sum() > 0
    assert pgd.success[breakable].mean() >= 0.98
    assert square.success[breakable].mean() >= 0.98


def test_pgd_one_step_without_random_start_equals_fgsm(problem):
    target, data, x, y = problem
    fgsm = FGSM(eps=0.3).generate(target, x, y, schema=data.schema)
    pgd = PGD(eps=0.3, steps=1, step_size=0.3, random_start=False).generate(
        target, x, y, schema=data.schema
    )
    np.testing.assert_array_equal(fgsm.x_adv, pgd.x_adv)
    np.testing.assert_array_equal(fgsm.success, pgd.success)


def test_every_adversarial_row_respects_the_threat_model(problem):
    target, data, x, y = problem
    for attack in (PGD(eps=0.5), SquareAttack(eps=0.5, n_queries=100), FGSM(eps=0.5)):
        res = attack.generate(target, x, y, schema=data.schema, random_state=1)
        pset = PerturbationSet.build(x, 0.5, data.schema)
        assert pset.contains(res.x_adv).all()
        hist = data.schema.index("history")
        np.testing.assert_array_equal(res.x_adv[:, hist], x[:, hist])
        assert res.infeasible == 0


def test_square_never_exceeds_its_query_budget(problem):
    target, data, x, y = problem
    q0 = target.n_queries
    res = SquareAttack(eps=0.05, n_queries=37).generate(
        target, x, y, schema=data.schema, random_state=0
    )
    assert res.queries.max() <= 37
    # the target saw the attack's queries plus one verification query per row
    assert target.n_queries - q0 == res.queries.sum() + len(y)


def test_same_seed_same_result(problem):
    target, data, x, y = problem
    a = SquareAttack(eps=0.2, n_queries=50).generate(
        target, x, y, schema=data.schema, random_state=3
    )
    b = SquareAttack(eps=0.2, n_queries=50).generate(
        target, x, y, schema=data.schema, random_state=3
    )
    np.testing.assert_array_equal(a.x_adv, b.x_adv)


def test_capabilities_are_checked_before_any_query(problem):
    target, data, x, y = problem
    q0 = target.n_queries
    target.caps = Capability.LABELS | Capability.SCORES
    with pytest.raises(CapabilityError, match="gradients"):
        PGD(eps=0.1).generate(target, x, y, schema=data.schema)
    target.caps = Capability.LABELS
    with pytest.raises(CapabilityError, match="scores"):
        SquareAttack(eps=0.1).generate(target, x, y, schema=data.schema)
    assert target.n_queries == q0


@pytest.mark.parametrize(
    "attack",
    [
        PGD(eps=-1),
        PGD(eps=0.1, steps=0),
        PGD(eps=0.1, loss="hinge"),
        PGD(eps=float("nan")),
        SquareAttack(eps=0.1, n_queries=0),
        SquareAttack(eps=0.1, p_init=2.0),
        FGSM(eps=0.1, categorical="maybe"),
    ],
)
def test_bad_parameters_fail_before_work(problem, attack):
    target, data, x, y = problem
    q0 = target.n_queries
    with pytest.raises(InvalidParameterError):
        attack.generate(target, x, y, schema=data.schema)
    assert target.n_queries == q0


def test_init_only_stores_parameters():
    attack = PGD(eps=-5, steps="many")  # type: ignore[arg-type]
    assert attack.get_params()["steps"] == "many"


@settings(max_examples=40, deadline=None)
@given(
    eps=st.floats(0.01, 3.0),
    noise=st.lists(st.floats(-50, 50), min_size=5, max_size=5),
    row=st.integers(0, 299),
)
def test_projection_always_lands_in_the_feasible_set(eps, noise, row):
    _, data = linear_problem(n=300)
    x0 = data.X[row : row + 1]
    pset = PerturbationSet.build(x0, eps, data.schema)
    projected = pset.project(x0 + np.array(noise))
    assert pset.contains(projected).all()


def test_square_finds_evasions_inside_the_box_not_only_at_vertices():
    """A piecewise-constant model (like a tree) that is only fooled strictly inside the box."""
    from mlwarden.data import Feature, FeatureSchema
    from mlwarden.models import CallableTarget

    def band(x):
        fooled = (x[:, 0] > 0.3) & (x[:, 0] < 0.45)
        return np.column_stack([~fooled, fooled]).astype(float) * 0.8 + 0.1

    target = CallableTarget(band, n_features=2, n_classes=2, output="probabilities")
    schema = FeatureSchema((Feature("a", lower=-1, upper=1), Feature("b", lower=-1, upper=1)))
    x = np.zeros((50, 2))
    y = np.zeros(50, dtype=np.int64)
    vertices_only = SquareAttack(eps=1.0, n_queries=200, interior_rate=0.0).generate(
        target, x, y, schema=schema, random_state=0
    )
    assert not vertices_only.success.any()
    default = SquareAttack(eps=1.0, n_queries=200).generate(
        target, x, y, schema=schema, random_state=0
    )
    assert default.success.mean() > 0.75


def test_a_budget_covering_the_whole_input_range_is_refused(problem):
    target, data, x, y = problem
    q0 = target.n_queries
    # every bounded graded feature spans 10 (or 9) units of scale 1 (or 3): eps=11 covers all
    with pytest.raises(InvalidParameterError, match="whole input range"):
        PGD(eps=11.0).generate(target, x, y, schema=data.schema)
    assert target.n_queries == q0


class _FusedSoftmax(SoftmaxTarget):
    """The same model, answering gradient and prediction from one query (like torch)."""

    def _loss_gradient_labels(self, x, y, loss, target_class):
        if target_class is None:
            value, grad = self._loss_gradient(x, y, loss)
        else:
            value, grad = self._loss_gradient(x, y, loss, target_class)
        return value, grad, self._predict_labels(x)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fused_gradient_queries_give_the_same_attack_for_half_the_queries(problem, norm):
    from mlwarden.data import Feature, FeatureSchema
    from mlwarden.evasion.apgd import APGD

    target, data, x, y = problem
    # Only continuous features movable: every iterate is its own feasible candidate.
    schema = FeatureSchema(
        tuple(
            f if f.kind is FeatureKind.CONTINUOUS else Feature(f.name, f.kind, mutable=False)
            for f in data.schema.features
        )
    )
    fused = _FusedSoftmax(W=target.W, b=target.b, name="fused")
    for attack in (
        PGD(eps=0.4, steps=20, random_start=False, norm=norm),
        APGD(eps=0.4, steps=20, norm=norm),
    ):
        plain_res = attack.generate(target, x, y, schema=schema, random_state=3)
        fused_res = attack.generate(fused, x, y, schema=schema, random_state=3)
        assert 0 < plain_res.success.mean() < 1
        np.testing.assert_array_equal(fused_res.success, plain_res.success)
        hit = plain_res.success
        np.testing.assert_allclose(fused_res.x_adv[hit], plain_res.x_adv[hit])
        # One query per step instead of a gradient and a prediction.
        assert fused_res.queries.sum() < 0.6 * plain_res.queries.sum()
