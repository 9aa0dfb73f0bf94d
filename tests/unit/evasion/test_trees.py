"""Tree-ensemble attacks: the MILP against brute force, the heuristic against the MILP."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from mlwarden.data import Feature, FeatureKind, FeatureSchema
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.evasion.trees import (
    TreeGreedyAttack,
    TreeMILPAttack,
    read_tree_ensemble,
)
from mlwarden.exceptions import CapabilityError, InvalidParameterError
from mlwarden.models import CallableTarget, SklearnTarget


@pytest.fixture(autouse=True)
def _one_thread():
    """Single-threaded native code: OpenMP start-up on a busy machine dwarfs tiny models."""
    with threadpool_limits(1):
        yield


MODELS = {
    "tree": lambda: DecisionTreeClassifier(max_depth=3, random_state=0),
    "forest": lambda: RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0),
    "extra": lambda: ExtraTreesClassifier(n_estimators=5, max_depth=3, random_state=0),
    "gbm": lambda: GradientBoostingClassifier(n_estimators=5, max_depth=3, random_state=0),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=5, max_depth=3, random_state=0),
}


# ----------------------------------------------------------------------- problems
def _continuous_data(n: int = 300, n_classes: int = 2):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2))
    score = X[:, 0] + X[:, 1] * np.abs(X[:, 0]) + 0.3 * rng.normal(size=n)
    y = np.digitize(score, [-0.6, 0.6]) if n_classes == 3 else (score > 0).astype(int)
    schema = FeatureSchema(
        (Feature("u", lower=-4, upper=4, scale=1.0), Feature("v", lower=-4, upper=4, scale=0.5))
    )
    return np.clip(X, -4, 4), y, schema


@functools.cache
def continuous_model(kind: str, n_classes: int = 2):
    X, y, schema = _continuous_data(n_classes=n_classes)
    with threadpool_limits(1):
        model = MODELS[kind]().fit(X, y)
    return SklearnTarget(model, name=kind), X, y, schema


def _mixed_data(n: int = 400):
    """amount (continuous), count (integer), flag (binary), history (immutable), one-hot channel."""
    rng = np.random.default_rng(1)
    amount = np.clip(rng.normal(size=n), -3, 3)
    count = rng.integers(0, 8, size=n).astype(float)
    flag = rng.integers(0, 2, size=n).astype(float)
    history = np.clip(rng.normal(size=n), -3, 3)
    channel = np.eye(3)[rng.integers(0, 3, size=n)]
    logit = amount + 0.4 * (count - 3.5) + 0.8 * flag + history + channel @ [1.0, -0.8, 0.0]
    y = (logit + 0.3 * rng.normal(size=n) > 0).astype(int)
    X = np.column_stack([amount, count, flag, history, channel])
    schema = FeatureSchema(
        (
            Feature("amount", lower=-3, upper=3, scale=1.0),
            Feature("count", FeatureKind.INTEGER, lower=0, upper=7, scale=2.0),
            Feature("flag", FeatureKind.BINARY),
            Feature("history", lower=-3, upper=3, mutable=False),
            Feature("web", FeatureKind.CATEGORICAL, group="channel"),
            Feature("shop", FeatureKind.CATEGORICAL, group="channel"),
            Feature("phone", FeatureKind.CATEGORICAL, group="channel"),
        )
    )
    return X, y, schema


@functools.cache
def mixed_model(kind: str):
    X, y, schema = _mixed_data()
    with threadpool_limits(1):
        model = MODELS[kind]().fit(X, y)
    return SklearnTarget(model, name=kind), X, y, schema


# --------------------------------------------------------------- brute force
def _thresholds(estimator) -> tuple[list[list[float]], bool]:
    """Every split threshold per feature, read straight from scikit-learn's arrays."""
    per_feature: list[list[float]] = [[] for _ in range(estimator.n_features_in_)]
    if hasattr(estimator, "_predictors"):
        for iteration in estimator._predictors:
            for predictor in iteration:
                for node in predictor.nodes[predictor.nodes["is_leaf"] == 0]:
                    per_feature[int(node["feature_idx"])].append(float(node["num_threshold"]))
        return per_feature, False
    trees = (
        [estimator.tree_]
        if hasattr(estimator, "tree_")
        else [t.tree_ for t in np.ravel(estimator.estimators_)]
    )
    for tree in trees:
        for f, th, child in zip(tree.feature, tree.threshold, tree.children_left, strict=True):
            if child >= 0:
                per_feature[int(f)].append(float(th))
    return per_feature, True


def brute_force(target: SklearnTarget, pset: PerturbationSet, y: np.ndarray) -> np.ndarray:
    """Minimal L∞ distance by enumerating every cell of the threshold grid.

    Per feature: the original value and, for every threshold, the values just on either
    side of it that the model can see (``float32`` for scikit-learn's trees), inside the
    row's box; integer and binary features take every whole value of the box, one-hot
    groups every column. Every cell's closest point to the original row is among these,
    the model is constant on each cell, so the smallest distance of a misclassified
    candidate is the minimum.
    """
    estimator = target.estimator
    thresholds, f32 = _thresholds(estimator)
    schema = pset.schema
    groups = list(schema.groups.values())
    in_group = {c for idx in groups for c in idx}
    graded = schema.mutable & schema.mask(FeatureKind.CONTINUOUS, FeatureKind.INTEGER)
    out = np.full(len(y), np.inf)
    for i in range(len(y)):
        x0, lo, hi = pset.x0[i], pset.lower[i], pset.upper[i]
        axes: list[list[np.ndarray]] = []
        columns: list[list[int]] = []
        for f, feature in enumerate(schema.features):
            if f in in_group:
                continue
            if feature.kind is FeatureKind.CONTINUOUS:
                values = {float(x0[f])}
                for th in thresholds[f]:
                    if f32:
                        below = np.float32(th)
                        if float(below) > th:
                            below = np.nextafter(below, np.float32(-np.inf))
                        values |= {float(below), float(np.nextafter(below, np.float32(np.inf)))}
                    else:
                        values |= {th, float(np.nextafter(th, np.inf))}
                cand = [v for v in values if lo[f] <= v <= hi[f]]
            else:
                cand = list(np.arange(np.ceil(lo[f] - 1e-9), np.floor(hi[f] + 1e-9) + 1))
            axes.append([np.array([v]) for v in sorted(cand)])
            columns.append([f])
        for idx in groups:
            if np.all(lo[idx] == hi[idx]):
                axes.append([x0[idx]])
            else:
                axes.append(list(np.eye(len(idx))))
            columns.append(idx)
        rows = []
        for combo in itertools.product(*axes):
            row = x0.copy()
            for cols, values in zip(columns, combo, strict=True):
                row[cols] = values
            rows.append(row)
        grid = np.array(rows)
        pred = np.argmax(estimator.predict_proba(grid), axis=1)
        dist = np.max(np.abs(grid - x0)[:, graded] / schema.scale[graded], axis=1, initial=0.0)
        fooled = dist[pred != y[i]]
        out[i] = fooled.min() if fooled.size else np.inf
    return out


# ---------------------------------------------------------------------- (a) exactness
@pytest.mark.parametrize("warm_start", [False, True])
@pytest.mark.parametrize("kind", list(MODELS))
def test_milp_distance_equals_brute_force_on_continuous_features(kind, warm_start):
    target, X, y, schema = continuous_model(kind)
    x, yy = X[:8], target.encode_labels(y[:8])
    attack = TreeMILPAttack(eps=1.0, warm_start=warm_start)
    res = attack.minimal_distance(target, x, yy, schema=schema)
    pset = PerturbationSet.build(x, 1.0, schema)
    unbounded = PerturbationSet(
        x0=x,
        lower=np.broadcast_to(schema.lower, x.shape),
        upper=np.broadcast_to(schema.upper, x.shape),
        step_unit=pset.step_unit,
        schema=schema,
    )
    truth = brute_force(target, unbounded, yy)
    np.testing.assert_allclose(res.distance, truth, rtol=1e-9, atol=1e-12)
    assert res.success[np.isfinite(truth)].all()
    assert res.proven[np.isfinite(truth)].mean() >= 0.75  # rare float ties are re-solved


@pytest.mark.parametrize("kind", ["forest", "gbm", "hgb"])
def test_milp_distance_equals_brute_force_on_multiclass_models(kind):
    target, X, y, schema = continuous_model(kind, n_classes=3)
    x, yy = X[:6], target.encode_labels(y[:6])
    res = TreeMILPAttack(eps=0.8, warm_start=False).generate(target, x, yy, schema=schema)
    truth = brute_force(target, PerturbationSet.build(x, 0.8, schema), yy)
    np.testing.assert_allclose(res.distance, truth, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(res.success, np.isfinite(truth))


@pytest.mark.parametrize("kind", ["forest", "gbm", "hgb"])
def test_milp_distance_equals_brute_force_under_a_mixed_schema(kind):
    target, X, y, schema = mixed_model(kind)
    x, yy = X[:8], target.encode_labels(y[:8])
    for categorical in ("free", "fixed"):
        attack = TreeMILPAttack(eps=1.5, warm_start=False, categorical=categorical)
        res = attack.generate(target, x, yy, schema=schema)
        pset = PerturbationSet.build(x, 1.5, schema, categorical=categorical)
        truth = brute_force(target, pset, yy)
        np.testing.assert_allclose(res.distance, truth, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(res.success, np.isfinite(truth))
        assert pset.contains(res.x_adv).all()
        # a row proven robust within the budget has an infinite lower bound
        assert np.all(res.lower_bound[res.proven & ~res.success] == np.inf)


# ---------------------------------------------------------------- (b) heuristic gap
def _gap(target, x, y, schema) -> tuple[float, TreeMILPAttack, TreeGreedyAttack]:
    exact = TreeMILPAttack(eps=1.0, warm_start=False).minimal_distance(target, x, y, schema=schema)
    fast = TreeGreedyAttack(eps=1.0).minimal_distance(target, x, y, schema=schema)
    # The heuristic never beats the optimum and fails only where the optimum is infinite.
    assert np.all(fast.distance >= exact.distance - 1e-9)
    both = np.isfinite(exact.distance) & (exact.distance > 0)
    assert np.isfinite(fast.distance[both]).all()
    return float(np.mean(fast.distance[both] / exact.distance[both]) - 1.0), exact, fast


def test_heuristic_is_within_ten_percent_of_the_milp_on_average():
    gaps = []
    for kind in ("forest", "extra", "gbm", "hgb"):
        target, X, y, schema = continuous_model(kind)
        gaps.append(_gap(target, X[:10], target.encode_labels(y[:10]), schema)[0])
        target, X, y, schema = mixed_model(kind)
        gaps.append(_gap(target, X[:10], target.encode_labels(y[:10]), schema)[0])
    assert np.mean(gaps) <= 0.10, gaps


# ------------------------------------------------------------- (c) feasibility
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["forest", "gbm", "hgb"]),
    eps=st.floats(0.05, 3.0),
    start=st.integers(0, 396),
    categorical=st.sampled_from(["free", "fixed"]),
)
def test_every_returned_row_is_feasible_and_the_milp_is_never_beaten(kind, eps, start, categorical):
    target, X, y, schema = mixed_model(kind)
    x, yy = X[start : start + 3], target.encode_labels(y[start : start + 3])
    pset = PerturbationSet.build(x, eps, schema, categorical=categorical)
    results = []
    for attack in (
        TreeMILPAttack(eps=eps, warm_start=False, categorical=categorical),
        TreeGreedyAttack(eps=eps, categorical=categorical),
    ):
        res = attack.generate(target, x, yy, schema=schema, random_state=0)
        assert res.infeasible == 0
        assert pset.contains(res.x_adv).all()
        assert not schema.violations(res.x_adv, x).any()
        np.testing.assert_array_equal(res.x_adv[:, 3], x[:, 3])  # immutable history
        assert np.all(res.x_adv[:, 1] == np.round(res.x_adv[:, 1]))  # whole counts
        np.testing.assert_array_equal(res.x_adv[:, 4:].sum(axis=1), 1.0)  # one-hot
        assert np.all(res.distance[res.success] <= eps + 1e-9)
        np.testing.assert_array_equal(target.predict(res.x_adv) != yy, res.success)
        results.append(res)
    exact, fast = results
    assert not np.any(fast.success & ~exact.success & exact.proven)
    both = exact.success & fast.success
    assert np.all(exact.distance[both] <= fast.distance[both] + 1e-9)


# ------------------------------------------------------------- (d) capabilities
def test_unsupported_models_are_refused_before_any_query():
    X, y, schema = _continuous_data(n=100)
    refused = [
        SklearnTarget(LogisticRegression().fit(X, y)),
        SklearnTarget(make_pipeline(StandardScaler(), DecisionTreeClassifier()).fit(X, y)),
        SklearnTarget(
            HistGradientBoostingClassifier(max_iter=2, categorical_features=[0]).fit(
                np.column_stack([np.arange(100) % 3, X[:, 1]]), y
            )
        ),
        CallableTarget(
            lambda v: np.column_stack([v[:, 0] > 0, v[:, 0] <= 0]) * 1.0, n_features=2, n_classes=2
        ),
    ]
    messages = ("RandomForestClassifier", "transforms its input", "categorical", "callable")
    for target, message in zip(refused, messages, strict=True):
        for attack in (TreeMILPAttack(eps=0.5), TreeGreedyAttack(eps=0.5)):
            with pytest.raises(CapabilityError, match=message):
                attack.generate(target, X[:5], y[:5], schema=schema)
            with pytest.raises(CapabilityError, match=message):
                attack.minimal_distance(target, X[:5], y[:5], schema=schema)
        assert target.n_queries == 0


def test_passthrough_pipelines_are_read():
    X, y, _ = _continuous_data(n=100)
    pipe = make_pipeline("passthrough", DecisionTreeClassifier(max_depth=2)).fit(X, y)
    ensemble = read_tree_ensemble(pipe)
    np.testing.assert_array_equal(ensemble.predict(X), pipe.predict(X))


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_trees_read_reproduce_the_model(kind, n_classes):
    target, _, _, _ = continuous_model(kind, n_classes)
    grid = np.random.default_rng(0).uniform(-4, 4, size=(2000, 2))
    np.testing.assert_array_equal(read_tree_ensemble(target).predict(grid), target.predict(grid))


@pytest.mark.parametrize(
    "attack",
    [
        TreeMILPAttack(eps=0),
        TreeMILPAttack(eps=0.3, time_limit=0),
        TreeMILPAttack(eps=0.3, categorical="any"),
        TreeMILPAttack(eps=0.3, warm_start="yes"),
        TreeGreedyAttack(eps=0.3, n_restarts=0),
        TreeGreedyAttack(eps=0.3, max_steps=1.5),
    ],
)
def test_bad_parameters_fail_before_work(attack):
    target, X, y, schema = continuous_model("tree")
    q0 = target.n_queries
    with pytest.raises(InvalidParameterError):
        attack.generate(target, X[:3], y[:3], schema=schema)
    assert target.n_queries == q0


def test_init_only_stores_parameters():
    attack = TreeMILPAttack(eps="big", time_limit=-1)  # type: ignore[arg-type]
    assert attack.get_params() == {
        "eps": "big",
        "time_limit": -1,
        "warm_start": True,
        "categorical": "free",
    }
    assert TreeGreedyAttack(n_restarts=7).get_params()["n_restarts"] == 7


def test_rows_out_of_time_are_not_proven():
    target, X, y, schema = continuous_model("gbm")
    x, yy = X[:6], target.encode_labels(y[:6])
    for warm_start in (False, True):
        attack = TreeMILPAttack(eps=2.0, time_limit=1e-9, warm_start=warm_start)
        res = attack.generate(target, x, yy, schema=schema)
        assert not res.proven[~res.success | (res.distance > 0)].any()
        assert np.all(res.lower_bound <= res.distance)
    assert res.success.any()  # out of time, the greedy rows of the warm start remain


# -------------------------------------------------------------- (e) determinism
def test_same_seed_same_result():
    target, X, y, schema = mixed_model("gbm")
    x, yy = X[:10], target.encode_labels(y[:10])
    for attack in (TreeMILPAttack(eps=1.0), TreeGreedyAttack(eps=1.0, n_restarts=3)):
        a = attack.generate(target, x, yy, schema=schema, random_state=5)
        b = attack.generate(target, x, yy, schema=schema, random_state=5)
        np.testing.assert_array_equal(a.x_adv, b.x_adv)
        np.testing.assert_array_equal(a.distance, b.distance)
        np.testing.assert_array_equal(a.success, b.success)
