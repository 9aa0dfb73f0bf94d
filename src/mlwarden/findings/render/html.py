"""The HTML report: one self-contained file a person can read, print or attach.

No external CSS, JavaScript, fonts or images: the style is inline, plots are inline
SVG (:func:`mlwarden.findings.plots.curve_plots`) and a Content-Security-Policy
forbids scripts and remote loads. Every user-controlled string goes through
jinja2's autoescaping (``render/templates/report.html.j2``).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwarden.findings.finding import Finding
from mlwarden.findings.render._common import (
    INFORMATION_URI,
    SEVERITIES_DESC,
    PathLike,
    atlas_link,
    comparison,
    fmt_number,
    incomplete_text,
    iter_metric_lists,
    owasp_link,
    plain,
    plural,
    rule_help_uri,
    sorted_findings,
    tool_version,
    verdict,
    write_text,
)
from mlwarden.findings.report import REPORT_SCHEMA_VERSION, Report

if TYPE_CHECKING:
    import jinja2

__all__ = ["render_html", "write_html"]

_TEMPLATE = "report.html.j2"
_MAX_VALUE_CHARS = 600


@dataclass
class _Cell:
    text: str
    highlight: bool = False
    numeric: bool = False


@dataclass
class _Table:
    title: str
    target: str
    check: str
    columns: list[str]
    rows: list[list[_Cell]]
    n_highlighted: int = 0


@dataclass
class _Link:
    id: str
    name: str
    url: str


@dataclass
class _FindingView:
    index: int
    finding: Finding
    value: str
    comparison: str
    confidence: str
    help_uri: str
    atlas: list[_Link]
    owasp: list[_Link]
    evidence: list[tuple[str, str, bool]] = field(default_factory=list)


def _value_text(value: Any) -> tuple[str, bool]:
    """Text for a table or evidence value, and whether it is code-like (JSON)."""
    value = plain(value)
    if value is None:
        return "—", False
    if isinstance(value, bool):
        return str(value).lower(), False
    if isinstance(value, int | float):
        return fmt_number(value), False
    if isinstance(value, str):
        return value, False
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 1] + "…"
    return text, True


def _finding_views(report: Report) -> list[_FindingView]:
    views = []
    for i, f in enumerate(sorted_findings(report.findings), start=1):
        views.append(
            _FindingView(
                index=i,
                finding=f,
                value=fmt_number(f.value),
                comparison=comparison(f),
                confidence=f"{f.confidence:.0%}" if 0.0 <= f.confidence <= 1.0 else "n/a",
                help_uri=rule_help_uri(f.rule_id),
                atlas=[_Link(*atlas_link(t)) for t in f.atlas],
                owasp=[_Link(*owasp_link(o)) for o in f.owasp],
                evidence=[(str(k), *_value_text(v)) for k, v in f.evidence.items()],
            )
        )
    return views


def _tables(report: Report) -> list[_Table]:
    out = []
    for target, check, item in iter_metric_lists(report, "tables"):
        columns = [str(c) for c in item.get("columns") or []]
        raw_rows = item.get("rows") or []
        marks: set[tuple[int, int]] = set()
        for pair in item.get("highlight") or []:
            if isinstance(pair, list | tuple) and len(pair) == 2:
                try:
                    marks.add((int(pair[0]), int(pair[1])))
                except (TypeError, ValueError):
                    continue
        rows: list[list[_Cell]] = []
        n_high = 0
        for r, raw in enumerate(raw_rows):
            cells = raw if isinstance(raw, list) else [raw]
            row = []
            for c, value in enumerate(cells):
                text, _ = _value_text(value)
                hl = (r, c) in marks
                n_high += hl
                numeric = isinstance(value, int | float) and not isinstance(value, bool)
                row.append(_Cell(text, hl, numeric))
            rows.append(row)
        title = str(item.get("title") or "Table")
        out.append(_Table(title, target, check, columns, rows, n_high))
    return out


def _kv(d: dict[str, Any] | None) -> list[tuple[str, str, bool]]:
    return [(str(k), *_value_text(v)) for k, v in (d or {}).items()]


def _when(created_at: str) -> str:
    try:
        dt = datetime.fromisoformat(created_at)
    except ValueError:
        return created_at
    suffix = " UTC" if dt.utcoffset() is not None and not dt.utcoffset() else ""
    return dt.strftime("%Y-%m-%d %H:%M") + suffix


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes} min {sec:02d} s"


def _context(report: Report) -> dict[str, Any]:
    from mlwarden.findings.plots import curve_plots, figure_plots

    summary = report.summary()
    v = verdict(report)
    targets = [t for t in report.targets if isinstance(t, dict)]
    return {
        "r": report,
        "title": report.title,
        "when": _when(report.created_at),
        "duration": _duration(report.duration_s),
        "version": tool_version(report),
        "schema_version": REPORT_SCHEMA_VERSION,
        "info_uri": INFORMATION_URI,
        "verdict": v,
        "incomplete": incomplete_text(report),
        "summary": summary,
        "severities": [s.value for s in SEVERITIES_DESC],
        "findings": _finding_views(report),
        "plots": curve_plots(report) + figure_plots(report),
        "tables": _tables(report),
        "targets": [
            {
                "name": str(t.get("name", "")),
                "sha256": t.get("sha256"),
                "items": _kv({k: x for k, x in t.items() if k not in ("name", "sha256")}),
            }
            for t in targets
        ],
        "data": report.data,
        "data_items": _kv(
            {k: x for k, x in (report.data or {}).items() if k not in ("name", "sha256")}
        ),
        "versions": sorted(report.versions.items()),
        "timings": sorted(report.timings.items(), key=lambda kv: -kv[1]),
        "params": [
            (check, _kv(p if isinstance(p, dict) else {"value": p}))
            for check, p in sorted(report.params.items())
        ],
        "fmt": fmt_number,
        "plural": plural,
    }


@functools.cache
def _template() -> jinja2.Template:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mlwarden.findings.render", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(_TEMPLATE)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page.

    Parameters
    ----------
    report : Report
        The audit report.

    Returns
    -------
    str
        An HTML5 document with inline CSS and inline SVG plots; it loads nothing
        from anywhere (links are plain ``<a href>``).
    """
    html: str = _template().render(**_context(report))
    return html


def write_html(report: Report, path: PathLike) -> Path:
    """Write :func:`render_html` output to ``path`` (parent folders are created).

    Parameters
    ----------
    report : Report
        The audit report.
    path : str or os.PathLike
        Destination file, conventionally ``report.html``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    return write_text(path, render_html(report))
