"""The audit runner: planning, skipping, errors kept apart from findings, seeding."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from tests.helpers import SoftmaxTarget, linear_problem

from mlwarden.audit.check import Check, CheckResult
from mlwarden.audit.runner import audit, expand_checks, resolve_checks
from mlwarden.data import Dataset
from mlwarden.exceptions import DataError, IncompatibleModelError, InvalidParameterError
from mlwarden.findings.taxonomy import Severity, ThreatFamily
from mlwarden.models.base import Capability


class Boom(Check):
    family: ClassVar[ThreatFamily] = ThreatFamily.EVASION
    registered_name = "test.boom"

    def __init__(self) -> None:
        pass

    def run(self, target, data, *, random_state, progress=None) -> CheckResult:
        raise RuntimeError("exploded")


def test_family_names_expand_to_registered_checks():
    assert expand_checks("evasion") == ["evasion.blackbox", "evasion.decision", "evasion.whitebox"]
    assert expand_checks("privacy") == [
        "data.pii", "privacy.attribute", "privacy.dp", "privacy.inversion", "privacy.membership",
    ]  # fmt: skip
    # A name prefix selects its checks too, whatever their threat families.
    assert expand_checks("data") == ["data.manifest", "data.pii"]
    assert expand_checks("evasion.whitebox, evasion") == [
        "evasion.whitebox", "evasion.blackbox", "evasion.decision",
    ]  # fmt: skip
    with pytest.raises(InvalidParameterError, match=r"available: .*evasion\.whitebox"):
        expand_checks("evasion.nope")
    with pytest.raises(InvalidParameterError, match="no checks are available yet"):
        expand_checks("deployment")
    with pytest.raises(InvalidParameterError, match="not selected"):
        resolve_checks("evasion.whitebox", {"evasion.blackbox": {"eps": 0.1}})


def test_a_crashing_check_is_an_error_not_a_pass_and_others_still_run():
    target, data = linear_problem(n=100)
    small = {"max_samples": 20, "eps_grid": (0.2,)}
    pgd = resolve_checks("evasion.whitebox", {"evasion.whitebox": small})[0]
    report = audit(target, data, checks=[Boom(), pgd])
    assert report.errors == [
        {"check": "test.boom", "target": "softmax", "error": "RuntimeError", "message": "exploded"}
    ]
    assert {f.check for f in report.findings} == {"evasion.whitebox"}
    assert report.summary()["errors"] == 1


def test_targets_without_the_capability_are_skipped_with_a_reason():
    target, data = linear_problem(n=100)
    target.caps = Capability.LABELS | Capability.SCORES
    report = audit(
        target,
        data,
        checks="evasion",
        check_params={"evasion.blackbox": {"max_samples": 10, "eps_grid": (0.2,)}},
    )
    assert [s["check"] for s in report.skipped] == ["evasion.decision", "evasion.whitebox"]
    reasons = {s["check"]: s["reason"] for s in report.skipped}
    assert "gradients" in reasons["evasion.whitebox"]
    assert "returns scores" in reasons["evasion.decision"]
    assert [f.check for f in report.findings] == ["evasion.blackbox"]


def test_model_and_data_that_do_not_fit_fail_before_any_work():
    target, data = linear_problem(n=50)
    wrong = Dataset(X=data.X, y=np.where(data.y == 1, 7, 0), schema=data.schema)
    with pytest.raises(IncompatibleModelError, match="7"):
        audit(target, wrong, checks="evasion")
    narrow = SoftmaxTarget(W=np.eye(2), b=np.zeros(2))
    with pytest.raises(IncompatibleModelError, match="expects 2 features"):
        audit(narrow, data, checks="evasion")
    unlabelled = Dataset(X=data.X, y=None, schema=data.schema)
    with pytest.raises(DataError, match="labels"):
        audit(target, unlabelled, checks="evasion")
    assert target.n_queries == 0


def test_seeds_do_not_depend_on_the_order_of_checks():
    target, data = linear_problem(n=150)
    params = {
        "evasion.whitebox": {"max_samples": 30, "eps_grid": (0.2,)},
        "evasion.blackbox": {"max_samples": 30, "eps_grid": (0.2,)},
    }
    a = audit(target, data, checks="evasion.whitebox,evasion.blackbox", check_params=params)
    b = audit(target, data, checks="evasion.blackbox,evasion.whitebox", check_params=params)
    key = lambda f: f.check  # noqa: E731
    assert sorted(a.findings, key=key) == sorted(b.findings, key=key)


def test_exit_code_follows_fail_on():
    target, data = linear_problem(n=150)
    report = audit(
        target,
        data,
        checks="evasion.whitebox",
        check_params={"evasion.whitebox": {"max_samples": 40, "min_robust_accuracy": 0.99}},
    )
    assert report.findings[0].passed is False
    assert report.exit_code("high") == 1
    assert report.exit_code(Severity.CRITICAL) == (
        1 if report.findings[0].severity is Severity.CRITICAL else 0
    )
    with pytest.raises(InvalidParameterError, match="severity"):
        report.exit_code("urgent")


def test_duplicate_target_names_are_refused():
    t1, data = linear_problem(n=50)
    t2, _ = linear_problem(n=50)
    with pytest.raises(InvalidParameterError, match="unique"):
        audit([t1, t2], data, checks="evasion")
