"""The evasion rules: one per attacker's knowledge, plus the evaluation's sanity checks."""

from __future__ import annotations

from mlwarden.findings.taxonomy import Rule, Severity, ThreatFamily, register_rule

__all__ = [
    "RULE_BLACK_BOX",
    "RULE_DECISION",
    "RULE_PROBABILITIES",
    "RULE_RANDOMIZED",
    "RULE_WEAK_WHITE_BOX",
    "RULE_WHITE_BOX",
    "RULE_ZERO_GRADIENTS",
]

_REMEDIATION = (
    "Train with adversarial examples from the same threat model (PGD adversarial training "
    "or TRADES), drop or coarsen features the attacker controls when they carry little "
    "signal, add monotonic constraints where the domain allows (a higher amount should "
    "never lower the fraud score), and re-audit. For tree ensembles, combine the model with "
    "rules on immutable features the attacker cannot change."
)

RULE_WHITE_BOX = register_rule(
    Rule(
        id="MLW-EVA-001",
        title="Model can be evaded by an attacker who has the model (white-box)",
        family=ThreatFamily.EVASION,
        severity=Severity.HIGH,
        atlas=("AML.T0015", "AML.T0043.000"),
        owasp=("ML01",),
        description=(
            "An attacker with access to the model's gradients changes only the features "
            "they control, within a budget eps, until the model misclassifies; the metric "
            "is the fraction of target-class cases still classified correctly."
        ),
        remediation=_REMEDIATION,
    )
)

RULE_BLACK_BOX = register_rule(
    Rule(
        id="MLW-EVA-002",
        title="Model can be evaded by querying it (black-box score-based attack)",
        family=ThreatFamily.EVASION,
        severity=Severity.HIGH,
        atlas=("AML.T0015", "AML.T0043.001", "AML.T0040"),
        owasp=("ML01",),
        description=(
            "An attacker who can only query the model and read its scores searches the "
            "features they control, within a budget eps, until the model misclassifies; "
            "the metric is the fraction of target-class cases still classified correctly."
        ),
        remediation=_REMEDIATION
        + " Behind an API, return labels instead of scores and rate-limit clients.",
    )
)

RULE_WEAK_WHITE_BOX = register_rule(
    Rule(
        id="MLW-EVA-003",
        title="White-box evaluation is weaker than a black-box attack (gradients unreliable)",
        family=ThreatFamily.EVASION,
        severity=Severity.MEDIUM,
        atlas=("AML.T0043.000", "AML.T0043.001"),
        owasp=("ML01",),
        description=(
            "AutoAttack's sanity check (Croce and Hein, 2020): when a black-box attack fools "
            "the model on cases the gradient-based attacks missed at the same budget, the "
            "gradients are masked, obfuscated or uninformative (saturated outputs, discrete "
            "features, non-differentiable preprocessing), so gradient-based robustness "
            "figures alone overstate robustness. mlwarden reports the worst case of both."
        ),
        remediation=(
            "Do not trust gradient-only robustness figures for this model: rely on the "
            "worst case over white- and black-box attacks (which MLW-EVA-001 reports), "
            "expose logits rather than probabilities to the audit, and remove "
            "non-differentiable or randomised steps from the audited forward pass."
        ),
    )
)

RULE_DECISION = register_rule(
    Rule(
        id="MLW-EVA-004",
        title="Model can be evaded from its decisions alone (decision-based attack)",
        family=ThreatFamily.EVASION,
        severity=Severity.HIGH,
        atlas=("AML.T0015", "AML.T0043.001", "AML.T0040"),
        owasp=("ML01",),
        description=(
            "An attacker who only sees the model's decision (accept / decline) searches the "
            "features they control, within a budget eps, until the decision flips; the "
            "metric is the fraction of target-class cases still classified correctly."
        ),
        remediation=_REMEDIATION
        + " Label-only outputs slow the attacker down but do not stop them: rate-limit, "
        "budget queries per client and detect boundary probing.",
    )
)

RULE_PROBABILITIES = register_rule(
    Rule(
        id="MLW-EVA-005",
        title="Gradients are taken through probabilities, not logits",
        family=ThreatFamily.EVASION,
        severity=Severity.LOW,
        atlas=("AML.T0043.000",),
        owasp=("ML01",),
        description=(
            "The audited model returns probabilities. Gradients through a saturated softmax "
            "vanish, so gradient attacks can understate how evadable it is (AutoAttack's "
            "first sanity check); mlwarden compensates with margin, DLR and black-box stages."
        ),
        remediation=(
            "Audit the model with its logits exposed (drop the final softmax from the "
            "audited module, or wrap it with output='logits')."
        ),
    )
)

RULE_ZERO_GRADIENTS = register_rule(
    Rule(
        id="MLW-EVA-006",
        title="Input gradients are zero for many rows (masked or saturated gradients)",
        family=ThreatFamily.EVASION,
        severity=Severity.MEDIUM,
        atlas=("AML.T0043.000",),
        owasp=("ML01",),
        description=(
            "A share of rows has an exactly zero input gradient on the features the "
            "attacker controls, so gradient attacks cannot move them: any robustness they "
            "show is an artefact of the gradients, not of the model."
        ),
        remediation=(
            "Look for non-differentiable steps (rounding, argmax, thresholds, lookups) in "
            "the audited forward pass and remove them for the audit; rely on the black-box "
            "results for this model."
        ),
    )
)

RULE_RANDOMIZED = register_rule(
    Rule(
        id="MLW-EVA-007",
        title="Model outputs are randomised (evaluation needs expectation over randomness)",
        family=ThreatFamily.EVASION,
        severity=Severity.MEDIUM,
        atlas=("AML.T0043",),
        owasp=("ML01",),
        description=(
            "The same input gave different outputs. Randomised defenses make single attack "
            "runs look weaker than an attacker who averages many queries (expectation over "
            "transformation), so the robustness figures are optimistic."
        ),
        remediation=(
            "Audit the deterministic model, or evaluate with expectation over the "
            "randomness; do not count randomisation as robustness."
        ),
    )
)
