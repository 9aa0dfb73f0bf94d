"""SARIF 2.1.0 output, for GitHub code scanning and other SARIF viewers.

Mapping (see ``docs/report-format.md``):

* every rule a finding refers to becomes a ``reportingDescriptor`` in
  ``runs[0].tool.driver.rules`` with its help text, documentation link, tags
  (threat family, MITRE ATLAS and OWASP ML Top 10 ids) and GitHub's
  ``security-severity`` score;
* every finding becomes a ``result``: a failed one has ``kind: "fail"`` and a
  level from its severity (``error`` for critical/high, ``warning`` for medium,
  ``note`` for low/info); a passed one has ``kind: "pass"`` and ``level: "none"``;
* checks that raised become ``toolExecutionNotifications`` of the invocation, whose
  ``executionSuccessful`` is then false; skipped checks become
  ``toolConfigurationNotifications``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlwarden.findings._sarif import (
    INFORMATION_URI,
    LEVEL,
    SARIF_SCHEMA_URI,
    SECURITY_SEVERITY,
    file_uri,
    reporting_descriptor,
)
from mlwarden.findings.finding import Finding
from mlwarden.findings.render._common import (
    PathLike,
    metric_text,
    plain,
    sorted_findings,
    tool_version,
    write_text,
)
from mlwarden.findings.report import Report
from mlwarden.findings.taxonomy import RULES, Rule

__all__ = [
    "SARIF_SCHEMA_URI",
    "SECURITY_SEVERITY",
    "render_sarif",
    "sarif_log",
    "write_sarif",
]

_FINGERPRINT_KEY = "mlwardenFinding/v1"


def _level(finding: Finding) -> str:
    return "none" if finding.passed else LEVEL[finding.severity]


def _artifact_uri(finding: Finding, base_dir: Path | None) -> str:
    """The finding's file as a (preferably relative) URI; the target name without one."""
    if not finding.location:
        return quote(finding.target, safe="")
    return file_uri(finding.location, base_dir)


def _fingerprint(finding: Finding) -> str:
    key = f"{finding.rule_id}\x1f{finding.target}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def _rule_descriptor(rule_id: str, findings: list[Finding]) -> dict[str, Any]:
    """A ``reportingDescriptor`` for ``rule_id`` (registered rule, else from its findings)."""
    first = findings[0]
    rule: Rule | None = RULES.get(rule_id)
    title = rule.title if rule else first.title
    description = (rule.description if rule else first.description) or title
    remediation = (rule.remediation if rule else first.remediation) or ""
    family = (rule.family if rule else first.family).value
    atlas = rule.atlas if rule else first.atlas
    owasp = rule.owasp if rule else first.owasp
    if rule is not None:
        severity = rule.severity
    else:
        severity = max((f.severity for f in findings), key=lambda s: s.rank)
    return reporting_descriptor(
        rule_id,
        title=title,
        description=description,
        remediation=remediation,
        family=family,
        atlas=atlas,
        owasp=owasp,
        severity=severity,
    )


def _result(finding: Finding, rule_index: int, base_dir: Path | None) -> dict[str, Any]:
    measured = f"{metric_text(finding, ascii_only=True)} on {finding.target}"
    if finding.passed:
        text = f"Passed: {measured} (rule: {finding.title})."
    else:
        text = f"{finding.title}: {measured}."
    fp = _fingerprint(finding)
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "kind": "pass" if finding.passed else "fail",
        "level": _level(finding),
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _artifact_uri(finding, base_dir)},
                    "region": {"startLine": 1},
                },
                "logicalLocations": [{"name": finding.target, "kind": "module"}],
            }
        ],
        "partialFingerprints": {_FINGERPRINT_KEY: fp, "primaryLocationLineHash": f"{fp}:1"},
        "properties": {
            "target": finding.target,
            "check": finding.check,
            "severity": finding.severity.value,
            "metric": finding.metric,
            "value": plain(finding.value),
            "threshold": plain(finding.threshold),
            "higherIsBetter": finding.higher_is_better,
            "confidence": plain(finding.confidence),
            "evidence": plain(finding.evidence),
        },
    }


def sarif_log(
    report: Report, *, base_dir: PathLike | None = None, include_passed: bool = True
) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log object.

    Parameters
    ----------
    report : Report
        The audit report.
    base_dir : str or os.PathLike, optional
        Folder that file locations are made relative to (the repository root for
        GitHub code scanning); defaults to the current directory. Files outside it
        keep an absolute ``file://`` URI.
    include_passed : bool, default=True
        Also write passed findings (``kind: "pass"``).

    Returns
    -------
    dict
        A JSON-serialisable SARIF log with one run.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    findings = [f for f in sorted_findings(report.findings) if include_passed or not f.passed]
    by_rule: dict[str, list[Finding]] = {}
    for f in findings:
        by_rule.setdefault(f.rule_id, []).append(f)
    rule_ids = sorted(by_rule)
    rules = [_rule_descriptor(rid, by_rule[rid]) for rid in rule_ids]
    index = {rid: i for i, rid in enumerate(rule_ids)}

    notifications = [
        {
            "level": "error",
            "message": {
                "text": (
                    f"Could not check {e.get('check', '?')} on {e.get('target', '?')}: "
                    f"{e.get('error', 'error')}: {e.get('message', '')}"
                )
            },
            "descriptor": {"id": str(e.get("check", "unknown"))},
            "exception": {"kind": str(e.get("error", "")), "message": str(e.get("message", ""))},
            "properties": {"target": str(e.get("target", ""))},
        }
        for e in report.errors
    ]
    skipped = [
        {
            "level": "note",
            "message": {
                "text": (
                    f"Skipped {s.get('check', '?')} on {s.get('target', '?')}: "
                    f"{s.get('reason', '')}"
                )
            },
            "descriptor": {"id": str(s.get("check", "unknown"))},
            "properties": {"target": str(s.get("target", ""))},
        }
        for s in report.skipped
    ]
    invocation: dict[str, Any] = {"executionSuccessful": not report.errors}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    if skipped:
        invocation["toolConfigurationNotifications"] = skipped

    version = tool_version(report)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "mlwarden",
                "version": version,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "invocations": [invocation],
        "results": [_result(f, index[f.rule_id], base) for f in findings],
        "properties": {
            "title": report.title,
            "createdAt": report.created_at,
            "seed": report.seed,
            "summary": report.summary(),
            "incomplete": bool(report.errors),
        },
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render_sarif(
    report: Report, *, base_dir: PathLike | None = None, include_passed: bool = True
) -> str:
    """The report as SARIF 2.1.0 JSON text (see :func:`sarif_log` for the parameters)."""
    log = sarif_log(report, base_dir=base_dir, include_passed=include_passed)
    return json.dumps(log, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_sarif(
    report: Report,
    path: PathLike,
    *,
    base_dir: PathLike | None = None,
    include_passed: bool = True,
) -> Path:
    """Write :func:`render_sarif` output to ``path`` (parent folders are created).

    Parameters
    ----------
    report : Report
        The audit report.
    path : str or os.PathLike
        Destination file, conventionally ``report.sarif``.
    base_dir : str or os.PathLike, optional
        See :func:`sarif_log`.
    include_passed : bool, default=True
        See :func:`sarif_log`.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    text = render_sarif(report, base_dir=base_dir, include_passed=include_passed)
    return write_text(path, text)
