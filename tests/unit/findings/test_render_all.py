"""write_all and the curve plots."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from mlwarden.findings import Report
from mlwarden.findings.plots import curve_groups, curve_plots
from mlwarden.findings.render import FILE_NAMES, write_all


def test_write_all_creates_the_folder_and_four_files(report: Report, tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    paths = write_all(report, out)
    assert set(paths) == {"json", "html", "sarif", "junit"}
    assert {p.name for p in paths.values()} == set(FILE_NAMES.values())
    assert {p.name for p in out.iterdir()} == {
        "report.json",
        "report.html",
        "report.sarif",
        "junit.xml",
    }
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["schema_version"] == "1.0"
    assert json.loads(paths["sarif"].read_text(encoding="utf-8"))["version"] == "2.1.0"
    ET.parse(paths["junit"])
    assert paths["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_curves_grouped_by_id_across_targets(report: Report) -> None:
    groups = curve_groups(report)
    assert [g.id for g in groups] == ["robust_recall_vs_eps", "mia_roc"]
    robust = groups[0]
    assert [s.target for s in robust.series] == ["credit-gbm", "<script>alert(1)</script>"]
    assert robust.is_fraction
    assert robust.threshold == 0.8
    assert groups[1].x_scale == "log"


def test_curve_plots_are_svg(report: Report) -> None:
    plots = curve_plots(report)
    assert [title for title, _ in plots] == [
        "Robust recall vs. attack budget",
        "Membership inference ROC",
    ]
    for _, svg in plots:
        assert svg.startswith("<svg")
        assert svg.rstrip().endswith("</svg>")
        assert "<text" in svg  # svg.fonttype none: text stays text
        assert "$" not in svg  # no raw mathtext on the log axis
    assert "robust recall" in plots[0][1]
    assert "epsilon" in plots[0][1]


def test_malformed_curves_are_ignored() -> None:
    r = Report()
    r.add_metrics(
        "m",
        "c",
        {
            "curves": [
                {"id": "a", "x": [1, 2], "y": [1]},
                {"x": [1], "y": [1]},
                "not a curve",
                {"id": "ok", "x": [0, 1], "y": [2.0, 3.0], "label": "$x$"},
            ],
            "tables": "nope",
        },
    )
    r.add_metrics("m", "d", {"curves": None})
    groups = curve_groups(r)
    assert [g.id for g in groups] == ["ok"]
    assert not groups[0].is_fraction
    (plot,) = curve_plots(r)
    assert "m · $x$" in plot[1]  # labels are not parsed as mathtext
    assert curve_plots(Report()) == []


def test_importing_the_writers_stays_light() -> None:
    code = (
        "import sys, mlwarden.findings.render, mlwarden.findings.plots\n"
        "heavy = {'matplotlib', 'jinja2', 'rich', 'jsonschema'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
