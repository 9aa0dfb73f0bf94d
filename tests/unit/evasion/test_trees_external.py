"""XGBoost and LightGBM trees: read faithfully, attacked exactly, refused when unreadable."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mlwarden.data import Feature, FeatureSchema
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.evasion.trees import TreeGreedyAttack, TreeMILPAttack, read_tree_ensemble
from mlwarden.evasion.trees.ensemble import TreeEnsemble
from mlwarden.evasion.trees.external import verify_ensemble
from mlwarden.exceptions import CapabilityError, IncompatibleModelError
from mlwarden.models import SklearnTarget

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


MODELS = {
    "xgb": lambda: xgboost.XGBClassifier(n_estimators=6, max_depth=3, n_jobs=1, random_state=0),
    "xgb-dart": lambda: xgboost.XGBClassifier(
        booster="dart", n_estimators=6, max_depth=3, rate_drop=0.3, n_jobs=1, random_state=0
    ),
    "lgbm": lambda: lightgbm.LGBMClassifier(
        n_estimators=6, num_leaves=6, min_child_samples=5, n_jobs=1, verbose=-1, random_state=0
    ),
    "lgbm-rf": lambda: lightgbm.LGBMClassifier(
        boosting_type="rf",
        n_estimators=6,
        num_leaves=6,
        bagging_freq=1,
        bagging_fraction=0.7,
        min_child_samples=5,
        n_jobs=1,
        verbose=-1,
        random_state=0,
    ),
}


def _data(n: int = 300, n_classes: int = 2):
    rng = np.random.default_rng(0)
    X = np.clip(rng.normal(size=(n, 2)), -4, 4)
    score = X[:, 0] + X[:, 1] * np.abs(X[:, 0]) + 0.3 * rng.normal(size=n)
    y = np.digitize(score, [-0.6, 0.6]) if n_classes == 3 else (score > 0).astype(int)
    schema = FeatureSchema(
        (Feature("u", lower=-4, upper=4, scale=1.0), Feature("v", lower=-4, upper=4, scale=0.5))
    )
    return X, y, schema


@functools.cache
def model(kind: str, n_classes: int = 2):
    X, y, schema = _data(n_classes=n_classes)
    est = MODELS[kind]().fit(X, y)
    return SklearnTarget(est, name=kind), X, y, schema


def _library_thresholds(est) -> tuple[list[list[float]], bool]:
    """Every split threshold per feature, from the library's own table (not our reader)."""
    per_feature: list[list[float]] = [[], []]
    if type(est).__module__.startswith("xgboost"):
        df = est.get_booster().trees_to_dataframe()
        for f, t in zip(df["Feature"], df["Split"], strict=True):
            if f != "Leaf":
                per_feature[int(f.lstrip("f"))].append(float(t))
        return per_feature, True
    df = est.booster_.trees_to_dataframe()
    for f, t in zip(df["split_feature"], df["threshold"], strict=True):
        if isinstance(f, str):
            per_feature[int(f.split("_")[-1])].append(float(t))
    return per_feature, False


def _candidates(thresholds: list[float], f32: bool) -> set[float]:
    """Values on both sides of every threshold, as the library compares them."""
    out: set[float] = set()
    for t in thresholds:
        if f32:  # XGBoost: left when float32(x) < t
            at = np.float32(t)
            out |= {float(at), float(np.nextafter(at, np.float32(-np.inf)))}
        else:  # LightGBM: left when x <= t (float64)
            out |= {t, float(np.nextafter(t, np.inf))}
    return out


def brute_force(target: SklearnTarget, pset: PerturbationSet, y: np.ndarray) -> np.ndarray:
    """Minimal L∞ distance (in feature scales) over every cell of the threshold grid."""
    thresholds, f32 = _library_thresholds(target.estimator)
    scale = pset.schema.scale
    out = np.full(len(y), np.inf)
    for i in range(len(y)):
        x0, lo, hi = pset.x0[i], pset.lower[i], pset.upper[i]
        axes = []
        for f in range(2):
            values = {float(x0[f])} | _candidates(thresholds[f], f32)
            axes.append(sorted(v for v in values if lo[f] <= v <= hi[f]))
        grid = np.array(list(itertools.product(*axes)))
        pred = np.argmax(target.estimator.predict_proba(grid), axis=1)
        dist = np.max(np.abs(grid - x0) / scale, axis=1)
        fooled = dist[pred != y[i]]
        out[i] = fooled.min() if fooled.size else np.inf
    return out


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_trees_read_reproduce_the_model(kind, n_classes):
    target, _, _, _ = model(kind, n_classes)
    ensemble = read_tree_ensemble(target)
    rng = np.random.default_rng(1)
    grid = rng.uniform(-4, 4, size=(2000, 2))
    # Exactly at, just below and just above the library's own thresholds.
    thresholds, f32 = _library_thresholds(target.estimator)
    edges = [sorted(_candidates(t, f32) | set(t)) for t in thresholds]
    edge_rows = np.column_stack([rng.choice(e, size=500) for e in edges])
    x = np.vstack([grid, edge_rows])
    np.testing.assert_array_equal(ensemble.predict(x), target.predict(x))
    est = target.estimator
    raw = (
        est.predict(x, output_margin=True)
        if kind.startswith("xgb")
        else est.predict(x, raw_score=True)
    )
    scores = ensemble.scores(x)
    if n_classes == 2:
        np.testing.assert_allclose(scores[:, 1] - scores[:, 0], raw, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(scores, raw, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["xgb", "lgbm"])
def test_milp_distance_equals_brute_force(kind):
    target, X, y, schema = model(kind)
    x, yy = X[:6], target.encode_labels(y[:6])
    res = TreeMILPAttack(eps=1.0).minimal_distance(target, x, yy, schema=schema)
    pset = PerturbationSet(
        x0=x,
        lower=np.broadcast_to(schema.lower, x.shape),
        upper=np.broadcast_to(schema.upper, x.shape),
        step_unit=PerturbationSet.build(x, 1.0, schema).step_unit,
        schema=schema,
    )
    expected = brute_force(target, pset, yy)
    np.testing.assert_allclose(res.distance, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["xgb", "lgbm"])
def test_attacks_find_real_adversarial_examples(kind):
    target, X, y, schema = model(kind)
    for attack in (TreeGreedyAttack(eps=0.5), TreeMILPAttack(eps=0.5)):
        res = attack.generate(target, X[:20], y[:20], schema=schema)
        fooled = res.success
        assert fooled.any()
        # every success is re-checked on the real model
        pred = target.predict(res.x_adv[fooled])
        assert np.all(pred != target.encode_labels(y[:20])[fooled])


def test_categorical_and_linear_models_are_refused():
    X, y, _ = _data(n=200)
    xc = np.column_stack([np.arange(200) % 4, X[:, 1]])
    yc = np.isin(xc[:, 0], [1, 3]).astype(int)
    refused = [
        lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=5, verbose=-1).fit(
            xc, yc, categorical_feature=[0]
        ),
        lightgbm.LGBMClassifier(n_estimators=3, linear_tree=True, verbose=-1).fit(X, y),
        xgboost.XGBClassifier(booster="gblinear", n_estimators=3).fit(X, y),
    ]
    import pandas as pd

    frame = pd.DataFrame({"c": pd.Categorical(xc[:, 0].astype(int)), "v": xc[:, 1]})
    refused.append(
        xgboost.XGBClassifier(n_estimators=3, enable_categorical=True, tree_method="hist").fit(
            frame, yc
        )
    )
    messages = ("categorical", "linear", "gblinear", "categorical")
    for est, message in zip(refused, messages, strict=True):
        with pytest.raises(CapabilityError, match=message):
            read_tree_ensemble(est)


def test_a_misread_ensemble_is_refused():
    target, _, _, _ = model("xgb")
    good = read_tree_ensemble(target)
    # Reading XGBoost's "x < t" rule as "x <= t" at float64 is the classic misreading.
    shifted = tuple(
        type(t)(
            t.feature, np.where(t.feature >= 0, t.threshold + 0.05, 0.0), t.left, t.right, t.value
        )
        for t in good.trees
    )
    bad = TreeEnsemble(shifted, good.base, good.n_features, good.precision, good.model)

    def raw(x):
        m = np.asarray(target.estimator.predict(x, output_margin=True))
        return np.column_stack([np.zeros_like(m), m])

    verify_ensemble(good, raw)
    with pytest.raises(IncompatibleModelError, match="misread"):
        verify_ensemble(bad, raw)
