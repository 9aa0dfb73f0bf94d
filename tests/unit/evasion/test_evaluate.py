"""The evaluation protocol: cascade bookkeeping and AutoAttack's sanity checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from tests.helpers import SoftmaxTarget, linear_problem

from mlwarden.evasion.evaluate import evaluate
from mlwarden.exceptions import InvalidParameterError
from mlwarden.models import CallableTarget
from mlwarden.models.base import Capability


@dataclass
class MaskedGradients(SoftmaxTarget):
    """Gradients that point the wrong way (a crude gradient-masking 'defense')."""

    def _loss_gradient(self, x, y, loss, target_class=None):
        value, grad = super()._loss_gradient(x, y, loss, target_class)
        return value, -grad


@dataclass
class ZeroGradients(SoftmaxTarget):
    def _loss_gradient(self, x, y, loss, target_class=None):
        value, grad = super()._loss_gradient(x, y, loss, target_class)
        return value, np.zeros_like(grad)


def _copy(cls, target):
    return cls(W=target.W, b=target.b, name=target.name)


def test_robust_accuracy_is_monotone_and_consistent_with_bookkeeping():
    target, data = linear_problem(n=300)
    res = evaluate(target, data.X, data.y, eps=[0.3, 0.1, 0.6], schema=data.schema, random_state=0)
    assert res.eps == [0.1, 0.3, 0.6]
    robust = [r.robust_accuracy for r in res.per_eps]
    assert robust == sorted(robust, reverse=True)
    for r in res.per_eps:
        assert r.n_robust == int(np.sum(res.broken_at > r.eps))
        assert r.ci95[0] <= r.robust_accuracy <= r.ci95[1]
    clean_wrong = res.broken_by == "clean"
    assert np.isclose(res.clean_accuracy, 1 - clean_wrong.mean())
    broken = np.isfinite(res.broken_at) & ~clean_wrong
    assert np.all(res.linf[broken] <= res.broken_at[broken] + 1e-9)
    assert sum(s.evaded for s in res.stages) == int(broken.sum())
    assert res.sanity == []


def test_black_box_beating_masked_gradients_is_flagged():
    target, data = linear_problem(n=200)
    masked = _copy(MaskedGradients, target)
    res = evaluate(masked, data.X, data.y, eps=0.5, schema=data.schema, random_state=0)
    codes = {i.code for i in res.sanity}
    assert "black_box_beats_white_box" in codes
    white = sum(s.evaded for s in res.stages if s.white_box)
    black = sum(s.evaded for s in res.stages if not s.white_box)
    assert black > white
    # the worst case still counts the black-box evasions
    honest = evaluate(target, data.X, data.y, eps=0.5, schema=data.schema, random_state=0)
    assert abs(res.per_eps[0].robust_accuracy - honest.per_eps[0].robust_accuracy) < 0.05


def test_zero_gradients_are_flagged():
    target, data = linear_problem(n=100)
    res = evaluate(_copy(ZeroGradients, target), data.X, data.y, eps=0.3, schema=data.schema)
    assert "zero_gradients" in {i.code for i in res.sanity}


def test_probabilities_instead_of_logits_are_flagged():
    target, data = linear_problem(n=100)
    target.caps = Capability.LABELS | Capability.SCORES | Capability.GRADIENTS
    res = evaluate(target, data.X, data.y, eps=0.3, schema=data.schema)
    assert "probabilities_not_logits" in {i.code for i in res.sanity}


def test_randomized_outputs_are_flagged():
    rng = np.random.default_rng(0)

    def noisy(x):
        p = 1 / (1 + np.exp(-(x[:, 0] + rng.normal(scale=0.5, size=len(x)))))
        return np.column_stack([1 - p, p])

    target = CallableTarget(noisy, n_features=2, n_classes=2, output="probabilities")
    x = np.random.default_rng(1).normal(size=(50, 2))
    res = evaluate(target, x, (x[:, 0] > 0).astype(int), eps=0.2)
    assert "randomized_outputs" in {i.code for i in res.sanity}


@pytest.mark.parametrize(
    "kwargs",
    [{"eps": -0.1}, {"eps": []}, {"eps": 0.1, "preset": "slow"}, {"eps": 0.1, "norm": "l7"}],
)
def test_bad_parameters_fail_before_any_query(kwargs):
    target, data = linear_problem(n=50)
    with pytest.raises(InvalidParameterError):
        evaluate(target, data.X, data.y, schema=data.schema, **kwargs)
    assert target.n_queries == 0


def test_targets_without_any_usable_output_are_refused():
    target, data = linear_problem(n=50)
    target.caps = Capability.NONE
    with pytest.raises(InvalidParameterError, match="no attack applies"):
        evaluate(target, data.X, data.y, eps=0.1, schema=data.schema)


def test_the_default_cascade_follows_what_the_target_and_schema_offer():
    from sklearn.ensemble import RandomForestClassifier

    from mlwarden.evasion.evaluate import default_cascade
    from mlwarden.models import SklearnTarget

    target, data = linear_problem(n=60)
    names = [n for n, _ in default_cascade(target, schema=data.schema)]
    assert names == ["APGD-ce", "APGD-T", "SweepPGD", "Square"]  # 'flag' is a binary choice
    fixed = [n for n, _ in default_cascade(target, schema=data.schema, categorical="fixed")]
    assert fixed == ["APGD-ce", "APGD-T", "Square"]
    assert [n for n, _ in default_cascade(target, norm="l2")] == ["APGD-ce", "APGD-T"]
    forest = SklearnTarget(
        RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0).fit(data.X, data.y)
    )
    assert [n for n, _ in default_cascade(forest)] == ["TreeGreedy", "Square"]
    target.caps = Capability.LABELS
    assert default_cascade(target) == []


def test_an_escalation_stage_runs_only_after_the_stage_before_it_fooled_a_row():
    from mlwarden.evasion.evaluate import Escalation, attack_factory
    from mlwarden.evasion.pgd import PGD

    target, data = linear_problem(n=200)
    cascade = [
        ("PGD", attack_factory(PGD, steps=3, categorical="fixed")),
        ("PGD+", Escalation(attack_factory(PGD, steps=20, restarts=2, categorical="fixed"))),
    ]
    res = evaluate(
        target, data.X, data.y, eps=[1e-4, 0.3], schema=data.schema, attacks=cascade,
        random_state=0,
    )  # fmt: skip
    first, more = res.stages
    # At 1e-4 nothing falls to PGD, so PGD+ is skipped there; at 0.3 PGD fools rows and
    # PGD+ runs on the rest.
    assert first.evaded > 0 and more.queries > 0
    alone = evaluate(
        target, data.X, data.y, eps=[1e-4], schema=data.schema, attacks=cascade, random_state=0
    )
    assert alone.stages[0].evaded == 0 and alone.stages[1].queries == 0


def test_the_standard_preset_escalates_square_only_after_white_box_stages():
    from mlwarden.evasion.evaluate import Escalation, default_cascade

    target, data = linear_problem(n=60)
    std = default_cascade(target, "standard", schema=data.schema, categorical="fixed")
    assert [n for n, _ in std] == ["APGD-ce", "APGD-T", "Square", "Square+"]
    assert isinstance(std[-1][1], Escalation)
    assert std[-2][1](0.1).n_queries + std[-1][1](0.1).n_queries == 5000
    target.caps = Capability.LABELS | Capability.SCORES  # black box: Square is the attack
    (name, factory), *_ = default_cascade(target, "standard")
    assert name == "Square" and factory(0.1).n_queries == 5000
