"""SweepPGD: exhaustive over discrete choices, gradient search over graded features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from tests.helpers import SoftmaxTarget

from mlwarden.data import Feature, FeatureKind, FeatureSchema
from mlwarden.evasion.apgd import APGD
from mlwarden.evasion.sweep import SweepPGD
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.exceptions import InvalidParameterError


@dataclass
class BlindToCategories(SoftmaxTarget):
    """Linear model whose input gradient says nothing about the one-hot columns."""

    def _loss_gradient(self, x, y, loss, target_class=None):
        value, grad = super()._loss_gradient(x, y, loss, target_class)
        grad[:, 2:] = 0.0
        return value, grad


def problem(n: int = 200):
    rng = np.random.default_rng(0)
    schema = FeatureSchema(
        (
            Feature("amount", lower=-3, upper=3),
            Feature("history", lower=-3, upper=3, mutable=False),
            *(Feature(f"m_{c}", FeatureKind.CATEGORICAL, group="m") for c in "abc"),
        )
    )
    cat = rng.integers(0, 3, size=n)
    X = np.column_stack([rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), np.eye(3)[cat]])
    # class 1 logit: amount + history + (2, -2, 0) by category
    w = np.array([1.0, 1.0, 2.0, -2.0, 0.0])
    target = BlindToCategories(W=np.column_stack([-w / 2, w / 2]), b=np.zeros(2))
    y = (X @ w > 0).astype(np.int64)
    return target, schema, X, y


def exact(target, pset, y):
    """Reference: every category, amount at the end of its box that helps the attacker."""
    w = target.W[:, 1] - target.W[:, 0]
    robust = np.ones(len(y), dtype=bool)
    for c in range(3):
        x = pset.x0.copy()
        x[:, 2:] = np.eye(3)[c]
        push = np.where(y == 1, -1.0, 1.0)
        x[:, 0] = np.where(push * w[0] > 0, pset.upper[:, 0], pset.lower[:, 0])
        robust &= (x @ w > 0) == (y == 1)
    return robust


def test_sweep_finds_category_switches_that_gradients_cannot_see():
    target, schema, X, y = problem()
    pset = PerturbationSet.build(X, 0.2, schema)
    truth = exact(target, pset, y)
    apgd = APGD(eps=0.2, steps=30).generate(target, X, y, schema=schema, random_state=0)
    sweep = SweepPGD(eps=0.2).generate(target, X, y, schema=schema, random_state=0)
    assert not np.any(sweep.success & truth)  # never beats the exact optimum
    assert np.array_equal(sweep.success, ~truth)  # and finds every breakable row
    assert apgd.success.sum() < sweep.success.sum()  # blind gradients miss some
    assert pset.contains(sweep.x_adv).all()
    np.testing.assert_array_equal(sweep.x_adv[:, 1], X[:, 1])  # immutable untouched


def test_fixed_categories_reduce_to_pgd_and_budgets_are_counted():
    target, schema, X, y = problem(50)
    res = SweepPGD(eps=0.2, categorical="fixed").generate(target, X, y, schema=schema)
    assert np.all(res.x_adv[:, 2:] == X[:, 2:])
    free = SweepPGD(eps=0.2, steps=3).generate(target, X, y, schema=schema)
    assert free.queries.max() <= 3 * (2 * 3 + 1)  # 3 combinations × (2 per step + check)


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"max_combinations": 0}, {"loss": "dlr"}])
def test_bad_parameters_fail_before_any_query(kwargs):
    target, schema, X, y = problem(20)
    with pytest.raises(InvalidParameterError):
        SweepPGD(eps=0.2, **kwargs).generate(target, X, y, schema=schema)
    assert target.n_queries == 0
