"""JUnit XML output, for CI systems that show test results (GitLab, Jenkins, Azure, ...).

One ``<testsuite>`` per audited model, one ``<testcase>`` per finding: a failed
finding carries ``<failure type="<severity>">``, a check that raised is a testcase
with ``<error>``, a check that did not apply is a testcase with ``<skipped>``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from mlwarden.findings.finding import Finding
from mlwarden.findings.render._common import (
    PathLike,
    metric_text,
    plain,
    rule_help_uri,
    strip_control,
    write_text,
)
from mlwarden.findings.report import Report
from mlwarden.findings.taxonomy import ThreatFamily

__all__ = ["render_junit", "write_junit"]

_FAMILIES = {f.value for f in ThreatFamily}


def _s(text: object) -> str:
    return strip_control(str(text))


def _family_of_check(check: str) -> str:
    head = check.split(".", 1)[0]
    return head if head in _FAMILIES else "audit"


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _failure_text(f: Finding) -> str:
    lines = [
        f"{f.title}",
        f"model: {f.target}",
        f"check: {f.check}",
        f"severity: {f.severity.value}, confidence {f.confidence:.2f}",
        metric_text(f, ascii_only=True),
    ]
    if f.location:
        lines.append(f"file: {f.location}")
    if f.description:
        lines += ["", f.description]
    if f.evidence:
        lines += ["", "evidence: " + json.dumps(plain(f.evidence), ensure_ascii=False)]
    if f.remediation:
        lines += ["", f"remediation: {f.remediation}"]
    refs = [*f.atlas, *f.owasp]
    if refs:
        lines.append("references: " + ", ".join(refs))
    lines.append(f"documentation: {rule_help_uri(f.rule_id)}")
    return "\n".join(lines)


class _Suite:
    def __init__(self, name: str) -> None:
        self.name = name
        self.cases: list[ET.Element] = []
        self.failures = 0
        self.errors = 0
        self.skipped = 0
        self.time = 0.0

    def case(self, classname: str, name: str, seconds: float) -> ET.Element:
        el = ET.Element(
            "testcase", {"classname": _s(classname), "name": _s(name), "time": _seconds(seconds)}
        )
        self.cases.append(el)
        self.time += max(seconds, 0.0)
        return el


def _check_times(report: Report) -> dict[tuple[str, str], float]:
    """Seconds per finding of each (target, check): the check's time shared evenly."""
    counts: dict[tuple[str, str], int] = {}
    for f in report.findings:
        counts[(f.target, f.check)] = counts.get((f.target, f.check), 0) + 1
    out = {}
    for (target, check), n in counts.items():
        total = report.timings.get(f"{target}/{check}", 0.0)
        out[(target, check)] = float(total) / n
    return out


def render_junit(report: Report) -> str:
    """The report as JUnit XML.

    Parameters
    ----------
    report : Report
        The audit report.

    Returns
    -------
    str
        A ``<testsuites>`` document (UTF-8 declaration included) whose ``tests``,
        ``failures``, ``errors`` and ``skipped`` counts match its testcases.
    """
    suites: dict[str, _Suite] = {}

    def suite(name: str) -> _Suite:
        if name not in suites:
            suites[name] = _Suite(name)
        return suites[name]

    for t in report.targets:
        if isinstance(t, dict) and t.get("name") is not None:
            suite(str(t["name"]))

    per_finding = _check_times(report)
    for f in report.findings:
        s = suite(f.target)
        case = s.case(
            f"mlwarden.{f.family.value}.{f.target}",
            f"{f.rule_id} {f.title}",
            per_finding.get((f.target, f.check), 0.0),
        )
        if f.passed:
            out = ET.SubElement(case, "system-out")
            out.text = _s(f"PASS {metric_text(f, ascii_only=True)}")
        else:
            s.failures += 1
            fail = ET.SubElement(
                case,
                "failure",
                {
                    "message": _s(f"{f.title}: {metric_text(f, ascii_only=True)}"),
                    "type": f.severity.value,
                },
            )
            fail.text = _s(_failure_text(f))

    for e in report.errors:
        check, target = str(e.get("check", "unknown")), str(e.get("target", ""))
        s = suite(target)
        s.errors += 1
        case = s.case(
            f"mlwarden.{_family_of_check(check)}.{target}",
            f"{check} (could not check)",
            report.timings.get(f"{target}/{check}", 0.0),
        )
        err = ET.SubElement(
            case,
            "error",
            {"message": _s(e.get("message", "")), "type": _s(e.get("error", "error"))},
        )
        err.text = _s(
            f"The check {check} raised {e.get('error', 'an error')} on {target}: "
            f"{e.get('message', '')}\nThe audit is incomplete."
        )

    for sk in report.skipped:
        check, target = str(sk.get("check", "unknown")), str(sk.get("target", ""))
        s = suite(target)
        s.skipped += 1
        case = s.case(f"mlwarden.{_family_of_check(check)}.{target}", f"{check} (skipped)", 0.0)
        ET.SubElement(case, "skipped", {"message": _s(sk.get("reason", ""))})

    root = ET.Element("testsuites", {"name": _s(f"mlwarden: {report.title}")})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for s in suites.values():
        el = ET.SubElement(
            root,
            "testsuite",
            {
                "name": _s(s.name),
                "tests": str(len(s.cases)),
                "failures": str(s.failures),
                "errors": str(s.errors),
                "skipped": str(s.skipped),
                "time": _seconds(s.time),
                "timestamp": _s(report.created_at),
            },
        )
        el.extend(s.cases)
        totals["tests"] += len(s.cases)
        totals["failures"] += s.failures
        totals["errors"] += s.errors
        totals["skipped"] += s.skipped
        total_time += s.time
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(total_time))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def write_junit(report: Report, path: PathLike) -> Path:
    """Write :func:`render_junit` output to ``path`` (parent folders are created).

    Parameters
    ----------
    report : Report
        The audit report.
    path : str or os.PathLike
        Destination file, conventionally ``junit.xml``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    return write_text(path, render_junit(report))
