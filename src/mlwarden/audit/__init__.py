"""Audits: checks (attack + metric + policy) run over targets into a report."""

from mlwarden.audit.check import Check, CheckResult
from mlwarden.audit.runner import audit, available_checks, expand_checks, resolve_checks

__all__ = ["Check", "CheckResult", "audit", "available_checks", "expand_checks", "resolve_checks"]
