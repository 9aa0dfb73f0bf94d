"""The poisoning audit checks on a tiny tabular task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from mlwarden.audit.runner import audit, expand_checks
from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import FeatureSchema
from mlwarden.exceptions import InvalidParameterError
from mlwarden.findings.taxonomy import get_rule
from mlwarden.models.callable import CallableTarget
from mlwarden.models.sklearn import SklearnTarget
from mlwarden.poisoning import BackdoorCheck, LabelFlipCheck

DOCS = Path(__file__).resolve().parents[3] / "docs" / "findings"


@pytest.fixture(scope="module")
def data() -> Dataset:
    rng = np.random.default_rng(0)
    X = np.round(rng.normal(size=(400, 3)), 3)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return Dataset(X=X, y=y, schema=FeatureSchema.infer(X, ["a", "b", "c"]))


def test_family_expands_to_both_checks() -> None:
    assert expand_checks("poisoning") == [
        "poisoning.backdoor", "poisoning.label-flip", "poisoning.training-data",
    ]  # fmt: skip


def test_backdoor_check_reports_asr_per_rate(data: Dataset) -> None:
    target = SklearnTarget(DecisionTreeClassifier(random_state=0).fit(data.X, data.y))
    check = BackdoorCheck(rates=(0.05,), trigger={"c": 1.234}, target_class=0)
    report = audit(target, data, checks=[check], random_state=0)
    (finding,) = report.findings
    per_rate = finding.evidence["per_rate"]
    assert [r["rate"] for r in per_rate] == [0.0, 0.05]
    assert per_rate[1]["attack_success_rate"] > per_rate[0]["attack_success_rate"]
    assert finding.rule_id == "MLW-POI-001" and not finding.passed
    assert "70 %" in finding.evidence["trained_on"]


def test_label_flip_check(data: Dataset) -> None:
    target = SklearnTarget(DecisionTreeClassifier(max_depth=3, random_state=0).fit(data.X, data.y))
    report = audit(target, data, checks=[LabelFlipCheck(rates=(0.3,))], random_state=0)
    (finding,) = report.findings
    rows = finding.evidence["per_rate"]
    assert finding.value == pytest.approx(rows[0]["clean_accuracy"] - rows[1]["clean_accuracy"])


def test_skipped_without_a_way_to_retrain(data: Dataset) -> None:
    target = CallableTarget(
        lambda x: (np.asarray(x)[:, 0] > 0).astype(int), n_features=3, classes=[0, 1],
        output="labels",
    )  # fmt: skip
    report = audit(target, data, checks=[BackdoorCheck()], random_state=0)
    assert not report.findings
    assert any("retrain" in str(s) for s in report.skipped)


def test_bad_rates(data: Dataset) -> None:
    target = SklearnTarget(DecisionTreeClassifier().fit(data.X, data.y))
    with pytest.raises(InvalidParameterError, match="rates"):
        audit(target, data, checks=[BackdoorCheck(rates=(0.9,))], random_state=0)


@pytest.mark.parametrize("rule_id", ["MLW-POI-001", "MLW-POI-002", "MLW-POI-003"])
def test_rule_docs(rule_id: str) -> None:
    rule = get_rule(rule_id)
    text = (DOCS / f"{rule_id}.md").read_text(encoding="utf-8")
    assert text.startswith(f"# {rule_id}") and "How to fix" in text
    for t in rule.atlas:
        assert t in text
