"""HopSkipJump (decision-based, labels only) against known answers on tiny models."""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import SoftmaxTarget, linear_problem
from tests.unit.evasion.test_attacks import exact_linear_robust

from mlwarden.data import Feature, FeatureKind, FeatureSchema
from mlwarden.evasion.hopskipjump import HopSkipJump
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.exceptions import CapabilityError, InvalidParameterError
from mlwarden.models import CallableTarget
from mlwarden.models.base import Capability


@pytest.fixture
def problem():
    """The linear problem, with a target that reveals labels only."""
    target, data = linear_problem(n=300)
    target.caps = Capability.LABELS
    y = target.encode_labels(data.y)
    correct = target.predict(data.X) == y
    return target, data, data.X[correct], y[correct]


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("eps", [0.3, 0.6])
def test_finds_the_rows_the_exact_reference_says_are_breakable(problem, eps, norm):
    target, data, x, y = problem
    pset = PerturbationSet.build(x, eps, data.schema)
    truth = exact_linear_robust(target, pset, y)
    res = HopSkipJump(eps=eps, norm=norm, max_queries=400).generate(
        target, x, y, schema=data.schema, random_state=0
    )
    breakable = ~truth
    assert breakable.sum() > 20
    # Never "succeeds" where the exact optimum says the row is robust ...
    assert not np.any(res.success & truth)
    # ... and finds (almost) every breakable row with labels only.
    assert res.success[breakable].mean() >= 0.9


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_the_perturbation_is_close_to_the_exact_minimum(norm):
    """Unconstrained 3-feature linear model: the minimal distance is |margin| / ||w||_dual."""
    rng = np.random.default_rng(0)
    w = np.array([1.0, -2.0, 0.5])
    target = SoftmaxTarget(W=np.column_stack([-w / 2, w / 2]), b=np.zeros(2))
    target.caps = Capability.LABELS
    x = rng.normal(size=(40, 3))
    y = target.predict(x)
    schema = FeatureSchema(tuple(Feature(f"x{i}", lower=-50, upper=50) for i in range(3)))
    res = HopSkipJump(eps=20.0, norm=norm, max_queries=600).generate(
        target, x, y, schema=schema, random_state=0
    )
    assert res.success.all()
    delta = res.x_adv - x
    found = np.abs(delta).max(axis=1) if norm == "linf" else np.linalg.norm(delta, axis=1)
    dual = np.abs(w).sum() if norm == "linf" else np.linalg.norm(w)
    exact = np.abs(x @ w) / dual
    assert np.all(found >= exact * (1 - 1e-9))  # no feasible point beats the optimum
    assert np.median(found / exact) <= 1.15


@pytest.mark.parametrize(
    ("budget", "early_stop"), [(1, False), (37, False), (150, False), (150, True)]
)
def test_the_query_budget_is_honoured_exactly(problem, budget, early_stop):
    target, data, x, y = problem
    q0 = target.n_queries
    res = HopSkipJump(eps=0.3, max_queries=budget, early_stop=early_stop).generate(
        target, x, y, schema=data.schema, random_state=0
    )
    assert res.queries.max() <= budget
    # the target saw the attack's queries plus one verification query per row
    assert target.n_queries - q0 == res.queries.sum() + len(y)


def test_early_stop_spends_fewer_queries_for_the_same_successes(problem):
    target, data, x, y = problem
    full = HopSkipJump(eps=0.3, max_queries=200).generate(
        target, x, y, schema=data.schema, random_state=0
    )
    quick = HopSkipJump(eps=0.3, max_queries=200, early_stop=True).generate(
        target, x, y, schema=data.schema, random_state=0
    )
    assert quick.queries.sum() < full.queries.sum()
    assert quick.queries[quick.success].mean() < full.queries[full.success].mean() / 3
    assert quick.success.sum() >= full.success.sum() - 2


def test_every_returned_row_lies_in_the_threat_model(problem):
    target, data, x, y = problem
    pset = PerturbationSet.build(x, 0.5, data.schema)
    for norm in ("linf", "l2"):
        res = HopSkipJump(eps=0.5, norm=norm, max_queries=100, search_factor=3.0).generate(
            target, x, y, schema=data.schema, random_state=1
        )
        assert pset.contains(res.x_adv).all()
        assert res.infeasible == 0
        hist = data.schema.index("history")
        np.testing.assert_array_equal(res.x_adv[:, hist], x[:, hist])
        count = res.x_adv[:, data.schema.index("count")]
        np.testing.assert_array_equal(count, np.round(count))


def test_same_seed_same_result(problem):
    target, data, x, y = problem
    a = HopSkipJump(eps=0.2, max_queries=80).generate(
        target, x, y, schema=data.schema, random_state=3
    )
    b = HopSkipJump(eps=0.2, max_queries=80).generate(
        target, x, y, schema=data.schema, random_state=3
    )
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.queries, b.queries)


def test_a_label_only_callable_with_string_labels():
    calls: list[int] = []

    def fraud_model(x):
        calls.append(len(x))
        return np.where(x[:, 0] + x[:, 1] > 1.0, "fraud", "legit")

    target = CallableTarget(fraud_model, n_features=2, classes=["legit", "fraud"], output="labels")
    assert target.capabilities == Capability.LABELS
    schema = FeatureSchema(
        (Feature("amount", lower=-3, upper=3), Feature("hour", lower=-3, upper=3))
    )
    x = np.column_stack([np.linspace(-0.5, 0.9, 100), np.full(100, 0.5)])
    y = target.encode_labels(fraud_model(x))
    calls.clear()
    res = HopSkipJump(eps=0.5, max_queries=200).generate(
        target, x, y, schema=schema, random_state=0
    )
    # breakable exactly when the L∞ optimum (both features +eps) crosses the line
    breakable = x[:, 0] + x[:, 1] + 1.0 > 1.0
    assert res.success[breakable].mean() >= 0.95
    assert not res.success[~breakable].any()
    # batched: far fewer model calls than rows × iterations, every call more than one row
    assert len(calls) - 1 < 100
    assert np.median(calls[:-1]) > 1


def test_model_calls_do_not_grow_with_the_number_of_rows():
    w = np.array([1.0, -1.0, 0.5, 0.25])

    def count_calls(n):
        calls = []

        def fn(x):
            calls.append(len(x))
            return (x @ w > 0).astype(int)

        target = CallableTarget(fn, n_features=4, n_classes=2, output="labels")
        x = np.random.default_rng(0).normal(size=(n, 4))
        y = target.predict(x)
        calls.clear()
        HopSkipJump(eps=0.5, max_queries=150).generate(target, x, y, random_state=0)
        return len(calls)

    assert count_calls(200) <= count_calls(10) + 10


def test_categorical_groups_stay_one_hot_and_can_be_rechosen():
    """Fooled only with category c2 *and* a small move of `a`: the discrete choice matters."""
    schema = FeatureSchema(
        (
            Feature("a", lower=-2, upper=2),
            Feature("c0", FeatureKind.CATEGORICAL, group="c"),
            Feature("c1", FeatureKind.CATEGORICAL, group="c"),
            Feature("c2", FeatureKind.CATEGORICAL, group="c"),
        )
    )

    def fn(x):
        return ((x[:, 3] > 0.5) & (x[:, 0] > 0.2)).astype(int)

    target = CallableTarget(fn, n_features=4, n_classes=2, output="labels")
    x = np.tile([0.0, 1.0, 0.0, 0.0], (60, 1))
    y = np.zeros(60, dtype=np.int64)
    res = HopSkipJump(eps=0.5, max_queries=300).generate(
        target, x, y, schema=schema, random_state=0
    )
    assert res.success.mean() >= 0.9
    assert PerturbationSet.build(x, 0.5, schema).contains(res.x_adv).all()
    np.testing.assert_array_equal(res.x_adv[:, 1:].sum(axis=1), 1.0)
    # minimised: `a` ends just past 0.2, not anywhere in the box
    assert np.all(res.x_adv[res.success, 0] < 0.3)


def test_without_movable_features_nothing_is_queried(problem):
    target, data, x, y = problem
    schema = data.schema.with_mutable(data.schema.names, mutable=False)
    res = HopSkipJump(eps=0.3).generate(target, x, y, schema=schema, random_state=0)
    assert res.queries.sum() == 0
    np.testing.assert_array_equal(res.x_adv, x)


def test_labels_are_all_it_needs_and_none_is_refused_before_any_query(problem):
    target, data, x, y = problem
    assert HopSkipJump.requires == Capability.LABELS
    q0 = target.n_queries
    target.caps = Capability.NONE
    with pytest.raises(CapabilityError, match="labels"):
        HopSkipJump(eps=0.1).generate(target, x, y, schema=data.schema)
    assert target.n_queries == q0


@pytest.mark.parametrize(
    "params",
    [
        {"eps": -1},
        {"eps": float("nan")},
        {"norm": "l1"},
        {"max_queries": 0},
        {"max_iter": 0},
        {"init_queries": 0},
        {"n_probes": 0},
        {"max_probes": 2.5},
        {"search_factor": 0.5},
        {"early_stop": "yes"},
        {"categorical": "maybe"},
    ],
)
def test_bad_parameters_fail_before_any_query(problem, params):
    target, data, x, y = problem
    q0 = target.n_queries
    with pytest.raises(InvalidParameterError):
        HopSkipJump(**{"eps": 0.1, **params}).generate(target, x, y, schema=data.schema)
    assert target.n_queries == q0


def test_init_only_stores_parameters():
    attack = HopSkipJump(eps=-5, norm="l7", max_queries="lots")  # type: ignore[arg-type]
    params = attack.get_params()
    assert params["norm"] == "l7"
    assert params["max_queries"] == "lots"
    assert set(params) >= {"eps", "norm", "max_queries", "search_factor", "early_stop"}
