"""Plots of a report's curves, as SVG text for the HTML report.

Every ``metrics[target][check]["curves"]`` entry is drawn; curves that share an
``id`` are overlaid in one plot with one line per target (and per ``label`` when a
check draws several lines). matplotlib is imported only when there is something to
draw, and figures are built with :class:`matplotlib.figure.Figure` directly, never
through ``pyplot``: no GUI backend is touched and nothing stays registered after use.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

from mlwarden.findings.render._common import fmt_number
from mlwarden.findings.report import Report

__all__ = ["CurveGroup", "curve_groups", "curve_plots", "figure_plots"]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
_PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)
_LINESTYLES = ("-", "--", "-.", ":")
_MARKER_MAX_POINTS = 25


@dataclass
class _Series:
    target: str
    label: str
    x: list[float]
    y: list[float]


@dataclass
class CurveGroup:
    """Curves that share an ``id``, drawn together.

    Attributes
    ----------
    id : str
        The shared curve id.
    title, x_label, y_label : str
        Taken from the first curve that gives them.
    x_scale, y_scale : str
        ``"linear"`` or ``"log"``.
    threshold : float or None
        Policy threshold drawn as a dashed line.
    series : list
        One entry per drawn line (target, label, x, y).
    """

    id: str
    title: str = ""
    x_label: str = ""
    y_label: str = ""
    x_scale: str = "linear"
    y_scale: str = "linear"
    threshold: float | None = None
    series: list[_Series] = field(default_factory=list)

    @property
    def is_fraction(self) -> bool:
        """True when every finite y value lies in ``[0, 1]``."""
        ys = [v for s in self.series for v in s.y if math.isfinite(v)]
        return bool(ys) and all(0.0 <= v <= 1.0 for v in ys)


def _floats(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    out = []
    for v in values:
        try:
            out.append(float(v) if v is not None else math.nan)
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def _scale(value: Any) -> str:
    return "log" if value == "log" else "linear"


def curve_groups(report: Report) -> list[CurveGroup]:
    """Collect the report's curves, grouped by ``id`` in order of first appearance.

    Parameters
    ----------
    report : Report
        The audit report.

    Returns
    -------
    list of CurveGroup
        Groups with at least one series; malformed curves (no ``id``, ``x`` and
        ``y`` of different lengths) are left out.
    """
    groups: dict[str, CurveGroup] = {}
    for target, checks in report.metrics.items():
        if not isinstance(checks, dict):
            continue
        for values in checks.values():
            curves = values.get("curves") if isinstance(values, dict) else None
            if not isinstance(curves, list):
                continue
            for curve in curves:
                if not isinstance(curve, dict) or not curve.get("id"):
                    continue
                x, y = _floats(curve.get("x")), _floats(curve.get("y"))
                if not y or len(x) != len(y):
                    continue
                cid = str(curve["id"])
                group = groups.get(cid)
                if group is None:
                    group = groups[cid] = CurveGroup(
                        id=cid,
                        x_scale=_scale(curve.get("x_scale")),
                        y_scale=_scale(curve.get("y_scale")),
                    )
                group.title = group.title or str(curve.get("title") or "")
                group.x_label = group.x_label or str(curve.get("x_label") or "")
                group.y_label = group.y_label or str(curve.get("y_label") or "")
                thr = curve.get("threshold")
                if group.threshold is None and isinstance(thr, int | float):
                    group.threshold = float(thr)
                group.series.append(_Series(target, str(curve.get("label") or ""), x, y))
    for group in groups.values():
        group.title = group.title or group.id.replace("_", " ")
    return list(groups.values())


def _clean_svg(svg: str, title: str, prefix: str) -> str:
    """Make matplotlib's SVG document fit inline in HTML.

    Drops the XML prolog, DOCTYPE, metadata and comments and the fixed size, adds a
    ``<title>``, and prefixes every element id (and the references to it) with
    ``prefix`` so that several plots can share one HTML document.
    """
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.DOTALL)

    def root(m: re.Match[str]) -> str:
        tag = re.sub(r'\s(width|height)="[^"]*"', "", m.group(0))
        return tag[:-1] + ' role="img" class="plot" preserveAspectRatio="xMidYMid meet">'

    svg = re.sub(r"<svg\b[^>]*>", root, svg, count=1)
    ids = set(re.findall(r'\bid="([^"]+)"', svg))

    def ref(m: re.Match[str]) -> str:
        return m.group(1) + prefix + m.group(2) if m.group(2) in ids else m.group(0)

    svg = re.sub(r'(\bid="|url\(#|href="#)([^")]+)', ref, svg)
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return svg.replace(">", f"><title>{safe_title}</title>", 1).strip()


def _tick(value: float, _pos: int | None = None) -> str:
    return fmt_number(value)


def _draw(group: CurveGroup, colors: dict[str, str]) -> str:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullLocator

    fig = Figure(figsize=(6.4, 3.8))
    # Fixed margins: constrained layout would double the drawing time.
    fig.subplots_adjust(left=0.11, right=0.98, bottom=0.13, top=0.97)
    try:
        ax = fig.add_subplot()
        labels = sorted({s.label for s in group.series})
        styles = {lab: _LINESTYLES[i % len(_LINESTYLES)] for i, lab in enumerate(labels)}
        for s in group.series:
            name = f"{s.target} · {s.label}" if s.label else s.target
            ax.plot(
                s.x,
                s.y,
                label=name,
                color=colors[s.target],
                linestyle=styles[s.label],
                linewidth=1.8,
                marker="o" if len(s.x) <= _MARKER_MAX_POINTS else None,
                markersize=3.5,
            )
        if group.threshold is not None:
            ax.axhline(
                group.threshold, color="#6b7280", linestyle="--", linewidth=1.0, label="threshold"
            )
        ax.set_xscale(group.x_scale)
        ax.set_yscale(group.y_scale)
        # The default log formatter writes mathtext, which parse_math=False shows raw.
        for axis, scale in ((ax.xaxis, group.x_scale), (ax.yaxis, group.y_scale)):
            if scale == "log":
                axis.set_major_formatter(FuncFormatter(_tick))
                axis.set_minor_locator(NullLocator())  # minor log ticks are slow to draw
        if group.is_fraction and group.y_scale == "linear":
            ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(group.x_label)
        ax.set_ylabel(group.y_label)
        ax.legend(loc="best", fontsize=8)
        buf = io.StringIO()
        fig.savefig(
            buf,
            format="svg",
            facecolor="white",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
        return buf.getvalue()
    finally:
        fig.clear()


def curve_plots(report: Report) -> list[tuple[str, str]]:
    """Draw every curve group of ``report``.

    Parameters
    ----------
    report : Report
        The audit report; curves come from ``metrics[target][check]["curves"]``.

    Returns
    -------
    list of (str, str)
        ``(title, svg)`` per curve id, in order of first appearance. The SVG is an
        inline ``<svg>`` element (no XML prolog, no fixed size, text kept as text).
        Empty, without importing matplotlib, when the report has no curves.
    """
    groups = curve_groups(report)
    if not groups:
        return []
    import matplotlib as mpl

    names: list[str] = [str(t.get("name")) for t in report.targets if isinstance(t, dict)]
    for g in groups:
        names.extend(s.target for s in g.series)
    colors: dict[str, str] = {}
    for name in names:
        if name not in colors:
            colors[name] = _PALETTE[len(colors) % len(_PALETTE)]

    out: list[tuple[str, str]] = []
    with mpl.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "mlwarden",
            "text.parse_math": False,
            "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
            "font.size": 9.0,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.35,
            "grid.linewidth": 0.6,
            "legend.frameon": False,
        }
    ):
        for i, group in enumerate(groups):
            svg = _draw(group, colors)
            out.append((group.title, _clean_svg(svg, group.title, f"plot{i}-")))
    return out


_UNSAFE_SVG = re.compile(
    r"<\s*(script|foreignObject|iframe|object|embed)|\son\w+\s*=|javascript:|"
    r"(?:href|src)\s*=\s*[\"'](?!#|data:image/png;base64,)",
    re.IGNORECASE,
)


def figure_plots(report: Report) -> list[tuple[str, str]]:
    """Figures a check drew itself (``metrics[target][check]["figures"]``: a list of
    ``{"title": ..., "svg": "<svg ..."}``), such as model-inversion reconstructions.

    A figure whose SVG could carry script or external references is left out: reports
    are also rendered from JSON files, which anyone can edit (the HTML's
    Content-Security-Policy blocks scripts as well).
    """
    out: list[tuple[str, str]] = []
    for target, checks in report.metrics.items():
        if not isinstance(checks, dict):
            continue
        for values in checks.values():
            figures = values.get("figures") if isinstance(values, dict) else None
            if not isinstance(figures, list):
                continue
            for fig in figures:
                if not isinstance(fig, dict):
                    continue
                svg, title = fig.get("svg"), fig.get("title")
                if not isinstance(svg, str) or not svg.lstrip().startswith("<svg"):
                    continue
                if _UNSAFE_SVG.search(svg):
                    continue
                out.append((f"{target}: {title or 'figure'}", svg))
    return out
