"""Report writers: JSON, HTML, SARIF 2.1.0, JUnit XML and the rich console summary.

Each format has ``render_<fmt>(report) -> str`` and ``write_<fmt>(report, path)``;
the console has :func:`render_console`, which prints to a console the caller owns.
:func:`write_all` writes the four files of an audit into one folder. The formats are
described in ``docs/report-format.md``.
"""

from __future__ import annotations

from pathlib import Path

from mlwarden.findings.render._common import PathLike
from mlwarden.findings.render.console import render_console
from mlwarden.findings.render.html import render_html, write_html
from mlwarden.findings.render.json import load_report_schema, render_json, write_json
from mlwarden.findings.render.junit import render_junit, write_junit
from mlwarden.findings.render.sarif import render_sarif, sarif_log, write_sarif
from mlwarden.findings.report import Report

__all__ = [
    "FILE_NAMES",
    "load_report_schema",
    "render_console",
    "render_html",
    "render_json",
    "render_junit",
    "render_sarif",
    "sarif_log",
    "write_all",
    "write_html",
    "write_json",
    "write_junit",
    "write_sarif",
]

FILE_NAMES: dict[str, str] = {
    "json": "report.json",
    "html": "report.html",
    "sarif": "report.sarif",
    "junit": "junit.xml",
}
"""File written by :func:`write_all` for each format."""


def write_all(report: Report, out_dir: PathLike) -> dict[str, Path]:
    """Write the JSON, HTML, SARIF and JUnit reports into ``out_dir``.

    Parameters
    ----------
    report : Report
        The audit report.
    out_dir : str or os.PathLike
        Output folder; created (with its parents) when missing.

    Returns
    -------
    dict of str to pathlib.Path
        Format name (``json``, ``html``, ``sarif``, ``junit``) → file written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "json": write_json(report, out / FILE_NAMES["json"]),
        "html": write_html(report, out / FILE_NAMES["html"]),
        "sarif": write_sarif(report, out / FILE_NAMES["sarif"]),
        "junit": write_junit(report, out / FILE_NAMES["junit"]),
    }
