"""The privacy rules: what the membership, attribute-inference, inversion and DP checks find.

ATLAS AML.T0024.000 (infer training data membership) and AML.T0024.001 (invert AI
model); OWASP ML04 (membership inference) and ML03 (model inversion). Each rule has a
page in ``docs/findings/<id>.md``.
"""

from __future__ import annotations

from mlwarden.findings.taxonomy import Rule, Severity, ThreatFamily, register_rule

__all__ = [
    "RULE_ATTRIBUTE_INFERENCE",
    "RULE_DP_AUDIT",
    "RULE_DP_CONFIG",
    "RULE_INVERSION",
    "RULE_LOW_FPR_UNRESOLVED",
    "RULE_MEMBERSHIP",
]

_FIX_LEAK = (
    "Train with differential privacy (mlwarden harden dp / mlwarden.privacy.make_private, "
    "epsilon <= 8), regularise and stop training before the model memorises (weight decay, "
    "early stopping, more data, data augmentation), and return labels or rounded scores "
    "instead of full probabilities behind an API."
)

RULE_MEMBERSHIP = register_rule(
    Rule(
        id="MLW-PRI-001",
        title="Model leaks which records were in its training data (membership inference)",
        family=ThreatFamily.PRIVACY,
        severity=Severity.HIGH,
        atlas=("AML.T0024.000",),
        owasp=("ML04",),
        description=(
            "An attacker who can query the model tells training records from other records "
            "of the same population better than chance; the metric is the attack's true "
            "positive rate at a low false positive rate (Carlini et al. 2022), the measure "
            "that matters for individual records, with the AUC beside it."
        ),
        remediation=_FIX_LEAK,
    )
)

RULE_ATTRIBUTE_INFERENCE = register_rule(
    Rule(
        id="MLW-PRI-002",
        title="Model's outputs reveal a sensitive attribute beyond what the other features do",
        family=ThreatFamily.PRIVACY,
        severity=Severity.MEDIUM,
        atlas=("AML.T0024.001",),
        owasp=("ML03",),
        description=(
            "An attacker who knows a record's other features and sees the model's output "
            "infers a sensitive column more accurately than an imputation baseline that uses "
            "no model; the metric is the model's extra accuracy over that baseline."
        ),
        remediation=_FIX_LEAK
        + " Drop the sensitive column (and its proxies) from the model's inputs if the task "
        "allows.",
    )
)

RULE_INVERSION = register_rule(
    Rule(
        id="MLW-PRI-003",
        title="Model can be inverted to reconstruct what a class looks like",
        family=ThreatFamily.PRIVACY,
        severity=Severity.MEDIUM,
        atlas=("AML.T0024.001",),
        owasp=("ML03",),
        description=(
            "Gradient ascent on the model's confidence (Fredrikson et al. 2015, MI-Face) "
            "reconstructs a representative input of a class; the metric is how close the "
            "reconstruction is to the class's real training examples."
        ),
        remediation=_FIX_LEAK,
    )
)

RULE_DP_CONFIG = register_rule(
    Rule(
        id="MLW-PRI-004",
        title="Differential-privacy guarantee is weak or its assumptions do not hold",
        family=ThreatFamily.PRIVACY,
        severity=Severity.HIGH,
        atlas=("AML.T0024.000",),
        owasp=("ML04",),
        description=(
            "The accountant's epsilon is above the policy limit (8 by default), or the "
            "training set-up breaks the accountant's assumptions (a sampler other than "
            "Poisson/uniform sampling, such as a weighted sampler, or a delta larger than "
            "1 / n), so the stated guarantee does not hold."
        ),
        remediation=(
            "Lower the noise-to-epsilon budget (more noise, fewer epochs, larger data), use "
            "Opacus's Poisson sampling, and keep delta below 1 / number of training rows."
        ),
    )
)

RULE_DP_AUDIT = register_rule(
    Rule(
        id="MLW-PRI-005",
        title="Empirical privacy audit contradicts the claimed epsilon",
        family=ThreatFamily.PRIVACY,
        severity=Severity.CRITICAL,
        atlas=("AML.T0024.000",),
        owasp=("ML04",),
        description=(
            "The one-run audit of Steinke, Nasr and Jagielski (2023) trains once with "
            "canaries and turns the membership guesses on them into a lower bound on "
            "epsilon; a lower bound above the accountant's epsilon means the DP "
            "implementation or its configuration is broken."
        ),
        remediation=(
            "Check the training loop against Opacus's requirements (no batch norm, no data "
            "reuse outside the accountant, the privacy engine attached to the optimizer "
            "actually used) and re-run the audit."
        ),
    )
)

RULE_LOW_FPR_UNRESOLVED = register_rule(
    Rule(
        id="MLW-PRI-006",
        title="Too few non-members to resolve the attack at a low false positive rate",
        family=ThreatFamily.PRIVACY,
        severity=Severity.INFO,
        atlas=("AML.T0024.000",),
        owasp=("ML04",),
        description=(
            "A true positive rate at 0.1 % false positives needs at least 1000 non-members "
            "to mean anything; with fewer, the figure is reported as unresolved rather than "
            "as zero leakage."
        ),
        remediation="Audit with more held-out records (at least 1 / target FPR non-members).",
    )
)
