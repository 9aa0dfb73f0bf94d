"""Helpers shared by the report writers: ordering, number formatting, verdict wording."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwarden.findings._sarif import INFORMATION_URI, atlas_link, owasp_link, rule_help_uri
from mlwarden.findings.finding import Finding
from mlwarden.findings.report import Report
from mlwarden.findings.taxonomy import Severity

__all__ = [
    "INFORMATION_URI",
    "SEVERITIES_DESC",
    "PathLike",
    "Verdict",
    "atlas_link",
    "comparison",
    "fmt_number",
    "incomplete_text",
    "iter_metric_lists",
    "metric_text",
    "owasp_link",
    "plain",
    "plural",
    "rule_help_uri",
    "sorted_findings",
    "strip_control",
    "tool_version",
    "verdict",
    "write_text",
]

SEVERITIES_DESC: tuple[Severity, ...] = tuple(sorted(Severity, key=lambda s: -s.rank))
"""Severities from ``critical`` down to ``info``."""

PathLike = str | os.PathLike[str]


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 finding"``, ``"3 findings"``."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def fmt_number(value: float | int | None) -> str:
    """A short, readable form of a metric value (``n/a`` for missing or non-finite)."""
    if value is None or isinstance(value, bool):
        return "n/a" if value is None else str(value).lower()
    v = float(value)
    if not math.isfinite(v):
        return "n/a"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.3g}"
    return f"{v:.4g}"


def comparison(finding: Finding, *, ascii_only: bool = False) -> str:
    """The policy as text, e.g. ``">= 0.8"``."""
    ops = (">=", "<=") if ascii_only else ("≥", "≤")
    op = ops[0] if finding.higher_is_better else ops[1]
    return f"{op} {fmt_number(finding.threshold)}"


def metric_text(finding: Finding, *, ascii_only: bool = False) -> str:
    """``"robust_recall = 0.41 (threshold >= 0.8)"``."""
    return (
        f"{finding.metric} = {fmt_number(finding.value)} "
        f"(threshold {comparison(finding, ascii_only=ascii_only)})"
    )


def sorted_findings(findings: list[Finding]) -> list[Finding]:
    """Failed first, then by severity (most severe first), rule id and target."""
    return sorted(
        findings,
        key=lambda f: (f.passed, -f.severity.rank, f.rule_id, f.target, f.check, f.metric),
    )


@dataclass(frozen=True)
class Verdict:
    """The one-line outcome of a report.

    Attributes
    ----------
    text : str
        E.g. ``"3 failed findings: 1 high, 2 medium"``.
    status : str
        ``"fail"``, ``"pass"`` or ``"empty"`` (nothing was checked).
    worst : Severity or None
        Most severe failed finding.
    """

    text: str
    status: str
    worst: Severity | None


def verdict(report: Report) -> Verdict:
    """Summarise the failed findings of ``report`` in one line."""
    failed = [f for f in report.findings if not f.passed]
    if failed:
        counts = {s: sum(f.severity is s for f in failed) for s in SEVERITIES_DESC}
        parts = [f"{n} {s.value}" for s, n in counts.items() if n]
        worst = next(s for s, n in counts.items() if n)
        text = f"{plural(len(failed), 'failed finding')}: {', '.join(parts)}"
        return Verdict(text=text, status="fail", worst=worst)
    n = len(report.findings)
    if n:
        text = "All findings passed" if n > 1 else "The only finding passed"
        return Verdict(text=f"{text} ({n} checked)", status="pass", worst=None)
    return Verdict(text="No findings: nothing was checked", status="empty", worst=None)


def incomplete_text(report: Report) -> str | None:
    """Why the audit is incomplete (to follow an "Audit incomplete" label), or ``None``."""
    if not report.errors:
        return None
    n = len(report.errors)
    return (
        f"{plural(n, 'check')} could not run. "
        "Passing results say nothing about what these checks would have found."
    )


def tool_version(report: Report) -> str:
    """Version of mlwarden that produced the report."""
    version = report.versions.get("mlwarden")
    if version:
        return version
    from mlwarden import __version__

    return __version__


def iter_metric_lists(report: Report, key: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Yield ``(target, check, item)`` for every dict in ``metrics[target][check][key]``."""
    for target, checks in report.metrics.items():
        if not isinstance(checks, dict):
            continue
        for check, values in checks.items():
            items = values.get(key) if isinstance(values, dict) else None
            if not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, dict):
                    yield target, check, item


def plain(obj: Any) -> Any:
    """``obj`` as plain JSON values: numpy scalars and arrays unwrapped, NaN/inf as ``None``.

    Anything else that JSON cannot hold becomes its ``str``.
    """
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [plain(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return plain(obj.tolist())
    return str(obj)


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def strip_control(text: str) -> str:
    """Remove characters XML 1.0 cannot carry."""
    return _CONTROL.sub("", text)


def write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` as UTF-8, creating parent folders; return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8", newline="\n")
    return out
