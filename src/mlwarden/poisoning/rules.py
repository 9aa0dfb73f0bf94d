"""The poisoning and training-data rules (MLW-POI-*).

ATLAS AML.T0020 (Poison Training Data) and AML.T0018.000 (Poison AI Model, the
backdoor); OWASP ML02 (data poisoning) and ML10 (model poisoning). Each rule has a page
in ``docs/findings/<id>.md``.
"""

from __future__ import annotations

from mlwarden.findings.taxonomy import Rule, Severity, ThreatFamily, register_rule

__all__ = ["RULE_BACKDOOR", "RULE_LABEL_FLIP", "RULE_SUSPICIOUS_ROWS"]

RULE_BACKDOOR = register_rule(
    Rule(
        id="MLW-POI-001",
        title="Model learns a backdoor from a small share of poisoned training rows",
        family=ThreatFamily.POISONING,
        severity=Severity.HIGH,
        atlas=("AML.T0020", "AML.T0018.000"),
        owasp=("ML02", "ML10"),
        description=(
            "The model is retrained on its training data with a small share of rows carrying "
            "a trigger (a feature pattern or a pixel patch, BadNets) and relabelled as the "
            "attacker's class; the metric is the attack success rate (triggered held-out "
            "inputs classified as the attacker's class) at the smallest poison rate tried."
        ),
        remediation=(
            "Check training data before every training run (mlwarden data check DATA --label "
            "COL --write-clean OUT) and train on the cleaned set; control who can add rows; "
            "sign data sets (mlwarden data sign) so unreviewed rows cannot slip in; for "
            "networks, fine-prune or retrain on vetted data."
        ),
    )
)

RULE_LABEL_FLIP = register_rule(
    Rule(
        id="MLW-POI-002",
        title="Flipped training labels cost the model much of its accuracy",
        family=ThreatFamily.POISONING,
        severity=Severity.MEDIUM,
        atlas=("AML.T0020",),
        owasp=("ML02",),
        description=(
            "The model is retrained with a share of its training labels flipped; the metric "
            "is the drop in clean accuracy (or, for a detection task, in recall on the "
            "positive class) at the largest flip rate tried."
        ),
        remediation=(
            "Find and fix label issues before training (mlwarden data check, confident "
            "learning); audit who can change labels; prefer models and losses robust to "
            "label noise; monitor accuracy on a trusted, separately labelled set."
        ),
    )
)

RULE_SUSPICIOUS_ROWS = register_rule(
    Rule(
        id="MLW-POI-003",
        title="Training data holds suspicious rows (backdoor triggers, label issues, conflicts)",
        family=ThreatFamily.POISONING,
        severity=Severity.MEDIUM,
        atlas=("AML.T0020",),
        owasp=("ML02",),
        description=(
            "mlwarden data check found rows carrying a backdoor trigger (activation "
            "clustering with a trigger pattern), rows whose label a model that never saw "
            "them disputes (confident learning), or identical rows with different labels; "
            "the metric is the share of rows flagged."
        ),
        remediation=(
            "Review the listed rows and their reasons; train on the cleaned data set "
            "(--write-clean) and trace where the flagged rows came from."
        ),
    )
)
