"""The theft.extraction audit check."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from mlwarden.audit.runner import expand_checks
from mlwarden.data import Dataset
from mlwarden.data.schema import Feature, FeatureSchema
from mlwarden.exceptions import InvalidParameterError
from mlwarden.findings.taxonomy import ThreatFamily
from mlwarden.models import Target, target
from mlwarden.theft import ExtractionCheck, harden_outputs

rng = np.random.default_rng(0)
X = rng.normal(0, 1, size=(900, 4))
Y = ((X[:, 0] + X[:, 1] * X[:, 2]) > 0.3).astype(int)
SCHEMA = FeatureSchema(tuple(Feature(name=f"f{i}", lower=-6.0, upper=6.0) for i in range(4)))
DATA = Dataset(X=X[400:], y=Y[400:], schema=SCHEMA, name="audit")


@pytest.fixture(scope="module")
def victim() -> Target:
    model = RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0)
    return target(model.fit(X[:400], Y[:400]), name="rf")


def _check(**kw: Any) -> ExtractionCheck:
    kw.setdefault("budgets", (50, 200))
    kw.setdefault("surrogate", DecisionTreeClassifier(max_depth=6))
    return ExtractionCheck(**kw)


def test_family_selects_the_check() -> None:
    assert "theft.extraction" in expand_checks("theft")
    assert ExtractionCheck.family is ThreatFamily.THEFT


def test_findings_carry_ids_metric_and_curves(victim: Target) -> None:
    check = _check(max_fidelity=0.8)
    check.validate(victim, DATA)
    result = check.run(victim, DATA, random_state=np.random.default_rng(0))
    main = result.findings[0]
    assert main.rule_id == "MLW-THF-001"
    assert "AML.T0024.002" in main.atlas and "ML05" in main.owasp
    assert main.metric == "balanced_fidelity"
    assert main.value > 0.8 and not main.passed  # a random forest is copied in 200 queries
    assert main.evidence["copied_within_queries"] in (50, 200)
    curves = main.evidence["curves"]
    assert set(curves) == {"none", "labels-attacker", "label-only", "rounding"}
    assert [p["queries"] for p in curves["none"]] == [50, 200]
    scores = result.findings[1]
    assert scores.rule_id == "MLW-THF-002"
    assert scores.metric == "balanced_fidelity_gain_from_scores"


def test_passes_with_a_strict_budget_and_threshold(victim: Target) -> None:
    check = _check(budgets=(10,), max_fidelity=0.99)
    result = check.run(victim, DATA, random_state=np.random.default_rng(0))
    assert result.findings[0].passed


def test_labels_only_target_skips_score_modes(victim: Target) -> None:
    labels_only = harden_outputs(victim, "label-only")
    check = _check()
    check.validate(labels_only, DATA)
    result = check.run(labels_only, DATA, random_state=np.random.default_rng(0))
    assert len(result.findings) == 1
    hardening = result.findings[0].evidence["hardening"]
    assert "already returns labels" in hardening["label-only"]["skipped"]
    assert "skipped" in hardening["rounding"]


def test_same_seed_same_findings(victim: Target) -> None:
    a = _check().run(victim, DATA, random_state=np.random.default_rng(5))
    b = _check().run(victim, DATA, random_state=np.random.default_rng(5))
    assert [f.value for f in a.findings] == [f.value for f in b.findings]


@pytest.mark.parametrize(
    ("params", "name"),
    [({"budgets": (0,)}, "budgets"), ({"budgets": ()}, "budgets"),
     ({"max_fidelity": 2.0}, "max_fidelity"), ({"metric": "auc"}, "metric"),
     ({"hardening": ("shuffle",)}, "hardening")],
)  # fmt: skip
def test_bad_parameters_fail_in_validate(victim: Target, params: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidParameterError, match=name):
        _check(**params).validate(victim, DATA)


def test_torch_target() -> None:
    torch = pytest.importorskip("torch")
    from mlwarden.models.torch import TorchTarget

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    xt, yt = torch.as_tensor(X[:400], dtype=torch.float32), torch.as_tensor(Y[:400])
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    mlp = TorchTarget(net, lower=-6.0, upper=6.0, name="mlp")
    check = _check()
    check.validate(mlp, DATA)
    result = check.run(mlp, DATA, random_state=np.random.default_rng(0))
    assert [f.rule_id for f in result.findings] == ["MLW-THF-001", "MLW-THF-002"]
    assert result.findings[0].value > 0.7  # a constant copy scores 0.5
    assert set(result.findings[0].evidence["curves"]) >= {"none", "label-only", "rounding"}
