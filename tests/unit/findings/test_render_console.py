"""The rich console summary."""

from __future__ import annotations

import io

from rich.console import Console

from mlwarden.findings import Report
from mlwarden.findings.render import render_console


def _render(report: Report, width: int = 200) -> str:
    buf = io.StringIO()
    render_console(report, Console(file=buf, width=width, color_system=None, force_terminal=False))
    return buf.getvalue()


def test_verdict_table_errors_and_skipped(report: Report) -> None:
    out = _render(report)
    lines = out.splitlines()
    assert "FAIL" in lines[0]
    assert "4 failed findings: 1 critical, 1 high, 1 medium, 1 low" in lines[0]
    assert "2 passed · 1 could not check · 1 skipped" in lines[0]
    assert "AUDIT INCOMPLETE" in out
    for rule in ("MLW-TEST-001", "MLW-TEST-002", "MLW-TEST-003", "MLW-TEST-004"):
        assert rule in out
    assert out.index("MLW-TEST-003") < out.index("MLW-TEST-004")  # most severe first
    assert "0.41" in out
    assert "≥ 0.8" in out
    assert out.index("Could not check (1)") < out.index("Skipped (1)")
    assert "the model did not answer within 30 s" in out
    assert "needs GRADIENTS; offers LABELS" in out


def test_markup_in_names_is_printed_literally(fresh_report: Report) -> None:
    fresh_report.skipped[0]["target"] = "[bold red]model[/]"
    out = _render(fresh_report)
    assert "[bold red]model[/]" in out


def test_passing_and_empty_reports(report: Report) -> None:
    passed = Report(findings=[f for f in report.findings if f.passed])
    out = _render(passed)
    assert "PASS" in out.splitlines()[0]
    assert "AUDIT INCOMPLETE" not in out
    assert "NOTHING CHECKED" in _render(Report())
