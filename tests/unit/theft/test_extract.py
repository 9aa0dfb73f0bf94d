"""Extraction: strategies, budgets, fidelity curves, errors, transferability."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from mlwarden.data import Dataset
from mlwarden.data.schema import Feature, FeatureSchema
from mlwarden.exceptions import CapabilityError, DataError, InvalidParameterError
from mlwarden.models import CallableTarget, Target, target
from mlwarden.theft import (
    ActiveStrategy,
    ExtractionResult,
    JacobianStrategy,
    KnockoffStrategy,
    extract,
    harden_outputs,
)

SCHEMA = FeatureSchema(
    (
        *(Feature(name=f"f{i}", lower=0.0, upper=100.0) for i in range(3)),
        Feature(name="flag", kind="binary", lower=0.0, upper=1.0),
    )
)


def _data() -> tuple[np.ndarray, np.ndarray]:
    """Rows in a small box of a wide input space; the class is a disc inside the box."""
    rng = np.random.default_rng(0)
    X = rng.normal(50, 3, size=(1200, 4))
    X[:, 3] = rng.integers(0, 2, 1200)
    y = (((X[:, 0] - 50) ** 2 + (X[:, 1] - 50) ** 2) < 12.5).astype(int)
    return X, y


X, Y = _data()
POOL = X[600:1000]
TEST = (X[1000:], Y[1000:])


@pytest.fixture(scope="module")
def victim_model() -> Any:
    return RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0).fit(
        X[:600], Y[:600]
    )


@pytest.fixture
def victim(victim_model: Any) -> Target:
    return target(victim_model, name="victim")


def _run(
    victim: Target, strategy: Any = "knockoff", budget: int = 300, **kw: Any
) -> ExtractionResult:
    kw.setdefault("pool", POOL)
    kw.setdefault("test", TEST)
    kw.setdefault("surrogate", DecisionTreeClassifier(max_depth=6))
    return extract(victim, budget=budget, strategy=strategy, schema=SCHEMA, random_state=0, **kw)


def test_pool_extraction_copies_the_model(victim: Target) -> None:
    result = _run(victim)
    assert result.fidelity >= 0.95
    assert result.balanced_fidelity >= 0.95
    assert result.baseline_fidelity < 0.6
    assert result.accuracy is not None and result.accuracy > 0.9
    # The copy is a usable target that answers like the victim.
    labels = result.surrogate.classes[result.surrogate.predict(TEST[0])]
    assert np.mean(labels == victim.classes[victim.predict(TEST[0])]) == result.fidelity


def test_uniform_queries_miss_structure_that_pool_queries_find(victim: Target) -> None:
    uniform = _run(victim, "uniform")
    pool = _run(victim, "knockoff")
    assert uniform.balanced_fidelity < 0.7 < 0.95 < pool.balanced_fidelity
    # Uniform rows obey the schema: bounds and the binary feature.
    assert SCHEMA.violations(uniform.X_queried).sum() == 0
    assert (uniform.X_queried[:, :3].max() - uniform.X_queried[:, :3].min()) > 50


@pytest.mark.parametrize(
    "strategy", [ActiveStrategy(n_rounds=3), JacobianStrategy(n_seeds=50), "uniform", "pool"]
)
def test_budget_is_spent_exactly(victim: Target, strategy: Any) -> None:
    before = victim.n_queries
    result = _run(victim, strategy, budget=157, budgets=[20, 100])
    assert result.queries == 157 == len(result.X_queried)
    assert victim.n_queries - before == 157 + result.evaluation_queries
    assert [p.queries for p in result.curve] == [20, 100, 157]
    assert SCHEMA.violations(result.X_queried).sum() == 0


def test_adaptive_strategies_copy_the_model(victim: Target) -> None:
    for strategy in (ActiveStrategy(n_rounds=3), JacobianStrategy(n_seeds=50)):
        assert _run(victim, strategy).balanced_fidelity > 0.9


def test_same_seed_same_result(victim: Target) -> None:
    a = _run(victim, ActiveStrategy(n_rounds=2), budget=120)
    b = _run(victim, ActiveStrategy(n_rounds=2), budget=120)
    np.testing.assert_array_equal(a.X_queried, b.X_queried)
    assert a.curve == b.curve


def test_scores_are_used_when_offered_and_labels_only_targets_work(victim: Target) -> None:
    soft = _run(victim, budget=100)
    assert soft.used_scores
    hard = _run(harden_outputs(victim, "label-only"), budget=100)
    assert not hard.used_scores
    assert hard.fidelity > 0.9
    with pytest.raises(CapabilityError):
        _run(harden_outputs(victim, "label-only"), budget=100, use_scores=True)


def test_callable_factory_and_string_labels() -> None:
    names = np.array(["ham", "spam"])
    model = LogisticRegression().fit(X[:600, :3], names[Y[:600]])
    victim = target(model)
    result = extract(
        victim, budget=100, pool=X[600:1000, :3], test=(X[1000:, :3], names[Y[1000:]]),
        surrogate=lambda: LogisticRegression(), random_state=1,
    )  # fmt: skip
    assert set(result.surrogate.classes) == {"ham", "spam"}
    assert result.fidelity > 0.9


@pytest.mark.parametrize("budget", [0, -5, 2.5, True])
def test_bad_budget_names_budget(victim: Target, budget: Any) -> None:
    with pytest.raises(InvalidParameterError, match="budget"):
        extract(victim, budget=budget, pool=POOL)


def test_bad_inputs_get_clear_errors(victim: Target) -> None:
    with pytest.raises(DataError, match=r"pool.*4 features"):
        extract(victim, budget=10, pool=POOL[:, :3])
    with pytest.raises(DataError, match="pool"):
        extract(victim, budget=10, strategy="knockoff")
    with pytest.raises(InvalidParameterError, match="strategy"):
        extract(victim, budget=10, strategy="nope", pool=POOL)
    with pytest.raises(InvalidParameterError, match="budgets"):
        extract(victim, budget=10, budgets=[20], pool=POOL)
    with pytest.raises(DataError, match="test"):
        extract(victim, budget=10, pool=POOL, test=X[:5, :2])
    with pytest.raises(InvalidParameterError, match="jitter"):
        extract(victim, budget=10, pool=POOL, strategy=KnockoffStrategy(jitter=-1))


def test_uniform_needs_bounds_or_pool() -> None:
    fn = CallableTarget(lambda x: (x[:, 0] > 0).astype(int), n_features=2, n_classes=2,
                        output="labels")  # fmt: skip
    with pytest.raises(DataError, match="bounds"):
        extract(fn, budget=10, strategy="uniform")
    result = extract(fn, budget=50, strategy="uniform", pool=np.random.default_rng(0).normal(
        size=(100, 2)), random_state=0)  # fmt: skip
    assert result.queries == 50


def test_pool_smaller_than_budget_is_reused_with_jitter(victim: Target) -> None:
    result = _run(victim, budget=150, pool=POOL[:100], test=TEST)
    assert len(result.X_queried) == 150
    assert len(np.unique(result.X_queried, axis=0)) == 150


def test_dataset_pool_and_transferability(victim_model: Any) -> None:
    victim = target(victim_model)
    pool = Dataset(X=POOL, y=None, schema=SCHEMA)
    result = extract(victim, budget=300, pool=pool, test=TEST, random_state=0,
                     surrogate=RandomForestClassifier(n_estimators=10, max_depth=6))  # fmt: skip
    transfer = result.transferability(TEST[0][:40], eps=1.0, random_state=0)
    assert transfer.n_rows > 20
    assert transfer.attack == "TreeGreedy"
    assert transfer.surrogate_success > 0.5
    # Some evasion examples crafted on a faithful copy fool the victim too (minimal
    # perturbations found on a tree copy transfer only partly)...
    assert 0.1 < transfer.transfer_rate < 1.0
    assert transfer.victim_fooled > 0.05
    # ... while a copy that learnt nothing (uniform queries: a constant) fools nobody.
    blind = extract(victim, budget=300, strategy="uniform", schema=SCHEMA, test=TEST,
                    random_state=0)  # fmt: skip
    assert blind.transferability(TEST[0][:20], eps=1.0, random_state=0).victim_fooled == 0


def test_logit_regression_surrogate(victim: Target) -> None:
    from sklearn.tree import DecisionTreeRegressor

    from mlwarden.theft import ScoreRegressorClassifier

    result = _run(victim, budget=200, use_scores="logits", surrogate=DecisionTreeRegressor(
        max_depth=6))  # fmt: skip
    assert result.scores_as == "logits"
    assert isinstance(result.estimator, ScoreRegressorClassifier)
    assert result.balanced_fidelity > 0.9
    proba = result.surrogate.predict_proba(TEST[0][:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    with pytest.raises(InvalidParameterError, match="regressor"):
        _run(victim, budget=50, use_scores="logits")  # a classifier surrogate
    with pytest.raises(InvalidParameterError, match="use_scores"):
        _run(victim, budget=50, use_scores="soft")
