"""The theft rules (MLW-THF-*): what the extraction checks find.

ATLAS AML.T0024.002 (Extract AI Model, under AML.T0024 Exfiltration via AI Inference
API); OWASP ML05 (Model Theft). Each rule has a page in ``docs/findings/<id>.md``.
"""

from __future__ import annotations

from mlwarden.findings.taxonomy import Rule, Severity, ThreatFamily, register_rule

__all__ = ["RULE_CLIENT_EXTRACTION", "RULE_CLIENT_PROBING", "RULE_EXTRACTION", "RULE_SCORES_LEAK"]

_FIX = (
    "Limit what each query reveals and how many queries a client gets: return labels or "
    "coarse scores instead of full probabilities (mlwarden.theft.harden_outputs), put "
    "per-client quotas and rate limits in front of the model, watch query streams with a "
    "stateful extraction detector, and keep the model behind authentication."
)

RULE_EXTRACTION = register_rule(
    Rule(
        id="MLW-THF-001",
        title="Model can be copied by querying it (model extraction)",
        family=ThreatFamily.THEFT,
        severity=Severity.MEDIUM,
        atlas=("AML.T0024.002",),
        owasp=("ML05",),
        description=(
            "An attacker with unlabelled rows from the same population queries the model "
            "and trains a copy on its answers (Knockoff Nets, Orekondy et al. 2019; "
            "Tramèr et al. 2016); the metric is the copy's agreement with the model on "
            "held-out rows (balanced over the model's answers, so that a constant guess "
            "does not count) within the audit's query budget."
        ),
        remediation=_FIX,
    )
)

RULE_SCORES_LEAK = register_rule(
    Rule(
        id="MLW-THF-002",
        title="Model's full-precision scores make extraction cheaper than its labels do",
        family=ThreatFamily.THEFT,
        severity=Severity.LOW,
        atlas=("AML.T0024.002",),
        owasp=("ML05",),
        description=(
            "A copy trained on the model's probabilities agrees with it more, at the same "
            "query budget, than a copy trained on its labels: the scores give the attacker "
            "information the decision alone does not. The metric is the fidelity gained "
            "from the scores at the largest budget."
        ),
        remediation=(
            "If clients only need the decision, return labels (mlwarden.theft.harden_outputs"
            "(target, 'label-only')); otherwise round or top-k the scores and measure both "
            "costs with mlwarden.theft.honest_cost and attacker_cost. " + _FIX
        ),
    )
)

_FIX_CLIENT = (
    "Review the client's queries (the alert names the query at which it fired); throttle, "
    "harden the outputs for that client (labels only, rounding) or block it, and rotate its "
    "API key if it is compromised. Keep per-key query budgets so that a slow attacker "
    "cannot collect enough answers over time."
)

RULE_CLIENT_EXTRACTION = register_rule(
    Rule(
        id="MLW-THF-003",
        title="A client's queries look like a model-extraction attack",
        family=ThreatFamily.THEFT,
        severity=Severity.HIGH,
        atlas=("AML.T0024.002", "AML.T0040"),
        owasp=("ML05",),
        description=(
            "A stateful detector fed the client's queries one at a time fired: queries far "
            "from the data the model serves (out-of-distribution rate), synthetic queries "
            "packed around a few seeds (k-nearest-neighbour distances), or nearest-query "
            "distances that stop looking natural (PRADA, Juuti et al. 2019)."
        ),
        remediation=_FIX_CLIENT,
    )
)

RULE_CLIENT_PROBING = register_rule(
    Rule(
        id="MLW-THF-004",
        title="A client's queries look like an evasion search (decision-boundary probing)",
        family=ThreatFamily.THEFT,
        severity=Severity.HIGH,
        atlas=("AML.T0043.001", "AML.T0042"),
        owasp=("ML01",),
        description=(
            "Many of the client's queries lie very close to its own recent queries, the "
            "pattern of a black-box attack walking the decision boundary to craft an "
            "adversarial example (Chen, Carlini & Wagner 2019)."
        ),
        remediation=_FIX_CLIENT,
    )
)
