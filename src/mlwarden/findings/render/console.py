"""The terminal summary, drawn with rich on a console the caller owns (the CLI's).

The library never prints on its own: :func:`render_console` writes only to the
:class:`rich.console.Console` it is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlwarden.findings.render._common import (
    comparison,
    fmt_number,
    incomplete_text,
    plural,
    sorted_findings,
    verdict,
)
from mlwarden.findings.report import Report

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["SEVERITY_STYLES", "render_console"]

SEVERITY_STYLES: dict[str, str] = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}
"""rich style per severity name."""


_WIDE = 140
"""Terminals at least this wide get one column per field."""


def render_console(report: Report, console: Console) -> None:
    """Print the verdict, the findings table, then errors and skipped checks.

    Parameters
    ----------
    report : Report
        The audit report.
    console : rich.console.Console
        Where to print; colours, width and the output stream are the caller's.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    v = verdict(report)
    summary = report.summary()
    line = Text()
    if v.status == "fail":
        line.append(" FAIL ", style="bold white on red")
    elif v.status == "pass":
        line.append(" PASS ", style="bold white on green")
    else:
        line.append(" NOTHING CHECKED ", style="bold black on yellow")
    line.append(" ")
    line.append(v.text, style="bold")
    extra = []
    if v.status == "fail" and summary["passed"]:
        extra.append(f"{summary['passed']} passed")
    if summary["errors"]:
        extra.append(f"{summary['errors']} could not check")
    if summary["skipped"]:
        extra.append(f"{summary['skipped']} skipped")
    if extra:
        line.append(" · " + " · ".join(extra))
    console.print(line)

    warning = incomplete_text(report)
    if warning:
        console.print(
            Text.assemble(("AUDIT INCOMPLETE ", "bold white on red"), " ", (warning, "bold red"))
        )

    if report.findings and console.width < _WIDE:
        # Narrow terminals: one cell per finding, the title on its own line.
        table = Table(box=box.SIMPLE_HEAVY, show_edge=False, pad_edge=False, expand=False)
        table.add_column("Severity", no_wrap=True)
        table.add_column("Status", no_wrap=True)
        table.add_column("Finding")
        for f in sorted_findings(report.findings):
            sev_style = SEVERITY_STYLES[f.severity.value] if not f.passed else "dim"
            status = Text("FAIL", style="bold red") if not f.passed else Text("pass", style="green")
            cell = Text.assemble(
                (f.rule_id, "bold"), f" · {f.target} · {f.metric} ",
                (fmt_number(f.value), "bold" if not f.passed else ""), f" ({comparison(f)})\n",
                (f.title, "dim"),
            )  # fmt: skip
            table.add_row(Text(f.severity.value, style=sev_style), status, cell)
        console.print(table)
    elif report.findings:
        table = Table(box=box.SIMPLE_HEAVY, show_edge=False, pad_edge=False, expand=False)
        table.add_column("Severity", no_wrap=True)
        table.add_column("Status", no_wrap=True)
        table.add_column("Rule", no_wrap=True)
        table.add_column("Finding", min_width=30)
        table.add_column("Model", no_wrap=True)
        table.add_column("Metric", no_wrap=True)
        table.add_column("Value", justify="right", no_wrap=True)
        table.add_column("Threshold", justify="right", no_wrap=True)
        for f in sorted_findings(report.findings):
            sev_style = SEVERITY_STYLES[f.severity.value] if not f.passed else "dim"
            status = Text("FAIL", style="bold red") if not f.passed else Text("pass", style="green")
            table.add_row(
                Text(f.severity.value, style=sev_style),
                status,
                Text(f.rule_id),
                Text(f.title),
                Text(f.target),
                Text(f.metric),
                Text(fmt_number(f.value), style="bold" if not f.passed else ""),
                Text(comparison(f)),
            )
        console.print(table)

    if report.errors:
        table = Table(
            title=Text(f"Could not check ({len(report.errors)})", style="bold red"),
            title_justify="left",
            box=box.SIMPLE,
            show_edge=False,
        )
        table.add_column("Check", no_wrap=True)
        table.add_column("Model")
        table.add_column("Error", no_wrap=True)
        table.add_column("Message")
        for e in report.errors:
            table.add_row(
                Text(str(e.get("check", ""))),
                Text(str(e.get("target", ""))),
                Text(str(e.get("error", "")), style="red"),
                Text(str(e.get("message", ""))),
            )
        console.print(table)

    if report.skipped:
        table = Table(
            title=Text(f"Skipped ({len(report.skipped)})", style="bold"),
            title_justify="left",
            box=box.SIMPLE,
            show_edge=False,
        )
        table.add_column("Check", no_wrap=True)
        table.add_column("Model")
        table.add_column("Reason")
        for s in report.skipped:
            table.add_row(
                Text(str(s.get("check", ""))),
                Text(str(s.get("target", ""))),
                Text(str(s.get("reason", ""))),
            )
        console.print(table)

    if not report.findings and not report.errors and not report.skipped:
        console.print(Text(f"{plural(0, 'check')} ran.", style="dim"))
