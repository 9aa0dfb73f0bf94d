"""Findings, reports and the threat taxonomies they refer to."""

from typing import TYPE_CHECKING, Any

from mlwarden.findings.finding import Finding
from mlwarden.findings.taxonomy import (
    OWASP_ML_TOP10,
    RULES,
    Rule,
    Severity,
    ThreatFamily,
    atlas_techniques,
    get_rule,
)

if TYPE_CHECKING:
    from mlwarden.findings.report import REPORT_SCHEMA_VERSION, Report


def __getattr__(name: str) -> Any:
    # The report imports NumPy: load it on first use so that ``mlwarden.supplychain``
    # (which needs the taxonomy) and ``mlwarden scan`` stay free of NumPy.
    if name in ("REPORT_SCHEMA_VERSION", "Report"):
        from mlwarden.findings import report

        value = getattr(report, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlwarden.findings' has no attribute {name!r}")


__all__ = [
    "OWASP_ML_TOP10",
    "REPORT_SCHEMA_VERSION",
    "RULES",
    "Finding",
    "Report",
    "Rule",
    "Severity",
    "ThreatFamily",
    "atlas_techniques",
    "get_rule",
]
