"""A hand-built audit report shared by the report-writer tests."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from mlwarden.findings import RULES, Finding, Report, Rule, Severity, ThreatFamily
from mlwarden.findings.taxonomy import register_rule

XSS = "<script>alert(1)</script>"
CREDIT = "credit-gbm"
CREDIT_SHA = "a" * 64

TEST_RULES = (
    Rule(
        id="MLW-TEST-001",
        title="Model is evaded by small feature changes",
        family=ThreatFamily.EVASION,
        severity=Severity.HIGH,
        atlas=("AML.T0015", "AML.T0043"),
        owasp=("ML01",),
        description="Share of positive records still detected under a bounded attack.",
        remediation="Train adversarially on the attacker-changeable features.",
    ),
    Rule(
        id="MLW-TEST-002",
        title="Membership of training records can be inferred",
        family=ThreatFamily.PRIVACY,
        severity=Severity.MEDIUM,
        atlas=("AML.T0024.000",),
        owasp=("ML04",),
        description="AUC of a loss-threshold membership attack.",
        remediation="Train with DP-SGD or regularise more.",
    ),
    Rule(
        id="MLW-TEST-003",
        title="Model file can run code when loaded",
        family=ThreatFamily.SUPPLY_CHAIN,
        severity=Severity.CRITICAL,
        atlas=("AML.T0010.003",),
        owasp=("ML06",),
        description="Dangerous pickle opcodes in the model file.",
        remediation="Re-export the model as skops or safetensors.",
    ),
    Rule(
        id="MLW-TEST-004",
        title="Model can be copied through its prediction API",
        family=ThreatFamily.THEFT,
        severity=Severity.LOW,
        atlas=("AML.T0024.002",),
        owasp=("ML05",),
        description="Agreement of a surrogate trained on the API's answers.",
        remediation="Return labels only and rate-limit queries.",
    ),
)


@pytest.fixture(scope="module")
def rules() -> Iterator[dict[str, Rule]]:
    """Register the test rules for one module, then remove them again."""
    added = [r.id for r in TEST_RULES if r.id not in RULES]
    for r in TEST_RULES:
        register_rule(r)
    yield {r.id: r for r in TEST_RULES}
    for rid in added:
        RULES.pop(rid, None)


def build_report(rules: dict[str, Rule]) -> Report:
    """Two targets, passed and failed findings of every kind, curves, a table, an error
    and a skipped check."""
    r1, r2, r3, r4 = (rules[f"MLW-TEST-00{i}"] for i in range(1, 5))
    findings = [
        Finding.from_rule(
            r1,
            target=CREDIT,
            check="evasion.pgd",
            metric="robust_recall",
            value=0.41,
            threshold=0.8,
            confidence=0.97,
            evidence={"epsilon": 0.1, "n_attacked": 200, "n_evaded": np.int64(118)},
            location="models/credit.skops",
        ),
        Finding.from_rule(
            r1,
            target=XSS,
            check="evasion.pgd",
            metric="robust_recall",
            value=0.86,
            threshold=0.8,
            evidence={"note": "<b>not bold</b>"},
        ),
        Finding.from_rule(
            r2,
            target=CREDIT,
            check="privacy.loss_threshold",
            metric="attack_auc",
            value=0.71,
            threshold=0.6,
            higher_is_better=False,
            location="models/credit.skops",
        ),
        Finding.from_rule(
            r2,
            target=XSS,
            check="privacy.loss_threshold",
            metric="attack_auc",
            value=0.52,
            threshold=0.6,
            higher_is_better=False,
            severity=Severity.INFO,
        ),
        Finding.from_rule(
            r3,
            target=CREDIT,
            check="supplychain.scan",
            metric="dangerous_opcodes",
            value=2,
            threshold=0,
            higher_is_better=False,
            evidence={"opcodes": ["GLOBAL os.system", "REDUCE"]},
            location="models/credit.skops",
        ),
        Finding.from_rule(
            r4,
            target=XSS,
            check="theft.extraction",
            metric="surrogate_agreement",
            value=math.nan,
            threshold=0.9,
            higher_is_better=False,
        ),
    ]
    report = Report(
        findings=findings,
        targets=[
            {
                "name": CREDIT,
                "kind": "sklearn",
                "source": "models/credit.skops",
                "sha256": CREDIT_SHA,
                "capabilities": ["LABELS", "SCORES"],
                "n_features": 3,
                "classes": [0, 1],
            },
            {"name": XSS, "kind": "callable", "source": None, "sha256": None},
        ],
        data={"name": "credit-demo", "source": None, "sha256": "b" * 64, "n_samples": 500},
        seed=7,
        timings={f"{CREDIT}/evasion.pgd": 1.5, f"{XSS}/evasion.pgd": 0.5},
        params={"evasion.pgd": {"eps": 0.1, "steps": 40}},
        title="Credit model audit",
        duration_s=12.3456,
    )
    eps = [0.0, 0.05, 0.1, 0.2]
    for name, ys in ((CREDIT, [0.95, 0.7, 0.41, 0.1]), (XSS, [0.97, 0.93, 0.86, 0.6])):
        report.add_metrics(
            name,
            "evasion.pgd",
            {
                "robust_recall": ys[2],
                "curves": [
                    {
                        "id": "robust_recall_vs_eps",
                        "title": "Robust recall vs. attack budget",
                        "x_label": "epsilon",
                        "y_label": "robust recall",
                        "x": eps,
                        "y": np.array(ys),
                        "threshold": 0.8,
                    }
                ],
            },
        )
    report.add_metrics(
        CREDIT,
        "privacy.loss_threshold",
        {
            "curves": [
                {
                    "id": "mia_roc",
                    "title": "Membership inference ROC",
                    "x_label": "false positive rate",
                    "y_label": "true positive rate",
                    "x": [1e-3, 1e-2, 0.1, 1.0],
                    "y": [0.01, 0.05, float("nan"), 1.0],
                    "x_scale": "log",
                }
            ],
            "tables": [
                {
                    "title": "Adversarial transactions",
                    "columns": ["row", "amount", "amount (adv.)", "country", "country (adv.)"],
                    "rows": [[17, 120.5, 88.0, "FR", "FR"], [42, 9.99, 9.99, "DE", "NL"]],
                    "highlight": [[0, 2], [1, 4]],
                }
            ],
        },
    )
    report.errors.append(
        {
            "check": "evasion.hopskipjump",
            "target": XSS,
            "error": "TimeoutError",
            "message": "the model did not answer within 30 s",
        }
    )
    report.skipped.append(
        {"check": "evasion.fgsm", "target": XSS, "reason": "needs GRADIENTS; offers LABELS"}
    )
    return report


@pytest.fixture(scope="module")
def report(rules: dict[str, Rule]) -> Report:
    """The shared report (build a fresh one with ``build_report`` to mutate it)."""
    return build_report(rules)


@pytest.fixture
def fresh_report(rules: dict[str, Rule]) -> Report:
    """A report a test may change."""
    return build_report(rules)
