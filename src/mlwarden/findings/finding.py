"""The :class:`Finding`: one measured result of one check on one model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlwarden.findings.taxonomy import Rule, Severity, ThreatFamily

__all__ = ["Finding"]


@dataclass(frozen=True)
class Finding:
    """A check's verdict on one target, with the evidence behind it.

    Parameters
    ----------
    rule_id : str
        Stable rule id, e.g. ``MLW-EVA-001``; its docs page is
        ``docs/findings/<rule_id>.md``.
    title : str
        One line describing the problem (when failed) the rule looks for.
    family : ThreatFamily
        Threat family.
    severity : Severity
        How bad it is if ``passed`` is false.
    confidence : float
        How sure the check is of its verdict, in ``[0, 1]`` (e.g. 1 minus the
        probability that sampling noise flipped it).
    metric : str
        Name of the measured quantity, e.g. ``robust_recall``.
    value : float
        Measured value.
    threshold : float
        Policy threshold the value was compared with.
    passed : bool
        Whether the value meets the policy.
    target : str
        Name of the model (or file) the finding is about.
    check : str
        Registered id of the check that produced it.
    higher_is_better : bool
        Direction of the comparison (``value >= threshold`` passes when true).
    atlas, owasp : tuple of str
        MITRE ATLAS technique ids and OWASP ML Top 10 ids.
    description : str
        What was measured and what it means, for this run.
    remediation : str
        How to fix it.
    evidence : dict
        JSON-serialisable supporting data (counts, examples, parameters).
    location : str or None
        Path of the model file, used by SARIF.
    """

    rule_id: str
    title: str
    family: ThreatFamily
    severity: Severity
    confidence: float
    metric: str
    value: float
    threshold: float
    passed: bool
    target: str
    check: str
    higher_is_better: bool = True
    atlas: tuple[str, ...] = ()
    owasp: tuple[str, ...] = ()
    description: str = ""
    remediation: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    location: str | None = None

    @classmethod
    def from_rule(
        cls,
        rule: Rule,
        *,
        target: str,
        check: str,
        metric: str,
        value: float,
        threshold: float,
        higher_is_better: bool = True,
        confidence: float = 1.0,
        severity: Severity | None = None,
        description: str = "",
        evidence: dict[str, Any] | None = None,
        location: str | None = None,
    ) -> Finding:
        """Build a finding from a :class:`Rule`, deciding ``passed`` from the threshold."""
        passed = value >= threshold if higher_is_better else value <= threshold
        if isinstance(value, float) and math.isnan(value):
            passed = False
        return cls(
            rule_id=rule.id,
            title=rule.title,
            family=rule.family,
            severity=severity or rule.severity,
            confidence=float(confidence),
            metric=metric,
            value=float(value),
            threshold=float(threshold),
            passed=bool(passed),
            target=target,
            check=check,
            higher_is_better=higher_is_better,
            atlas=rule.atlas,
            owasp=rule.owasp,
            description=description or rule.description,
            remediation=rule.remediation,
            evidence=dict(evidence or {}),
            location=location,
        )

    @property
    def status(self) -> str:
        """``"pass"`` or ``"fail"``."""
        return "pass" if self.passed else "fail"

    def fails_at(self, severity: Severity) -> bool:
        """True when the finding failed at or above ``severity``."""
        return (not self.passed) and self.severity.rank >= severity.rank

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the ``findings[]`` items of the report schema)."""
        return {
            "rule_id": self.rule_id,
            "title": self.title,
            "family": self.family.value,
            "severity": self.severity.value,
            "confidence": self.confidence,
            "status": self.status,
            "passed": self.passed,
            "metric": self.metric,
            "value": _finite_or_none(self.value),
            "threshold": _finite_or_none(self.threshold),
            "higher_is_better": self.higher_is_better,
            "target": self.target,
            "check": self.check,
            "atlas": list(self.atlas),
            "owasp": list(self.owasp),
            "description": self.description,
            "remediation": self.remediation,
            "evidence": self.evidence,
            "location": self.location,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        """Inverse of :meth:`to_dict`."""
        return cls(
            rule_id=d["rule_id"],
            title=d["title"],
            family=ThreatFamily(d["family"]),
            severity=Severity(d["severity"]),
            confidence=float(d["confidence"]),
            metric=d["metric"],
            value=math.nan if d["value"] is None else float(d["value"]),
            threshold=math.nan if d["threshold"] is None else float(d["threshold"]),
            passed=bool(d["passed"]),
            target=d["target"],
            check=d["check"],
            higher_is_better=bool(d.get("higher_is_better", True)),
            atlas=tuple(d.get("atlas", ())),
            owasp=tuple(d.get("owasp", ())),
            description=d.get("description", ""),
            remediation=d.get("remediation", ""),
            evidence=dict(d.get("evidence", {})),
            location=d.get("location"),
        )


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None
