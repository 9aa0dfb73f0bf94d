"""Findings, reports and the threat taxonomies they refer to."""

from mlwarden.findings.finding import Finding
from mlwarden.findings.report import REPORT_SCHEMA_VERSION, Report
from mlwarden.findings.taxonomy import (
    OWASP_ML_TOP10,
    RULES,
    Rule,
    Severity,
    ThreatFamily,
    atlas_techniques,
    get_rule,
)

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
