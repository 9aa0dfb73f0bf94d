"""The self-contained HTML report."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlwarden.findings import Report
from mlwarden.findings.render import render_html, write_html

XSS = "<script>alert(1)</script>"
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}


class _Collector(HTMLParser):
    """Collect start tags with attributes and check that elements nest properly."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def html(report: Report) -> str:
    return render_html(report)


@pytest.fixture(scope="module")
def parsed(html: str) -> _Collector:
    p = _Collector()
    p.feed(html)
    p.close()
    return p


def test_well_formed(parsed: _Collector) -> None:
    assert parsed.problems == []
    assert parsed.stack == []


def test_header_verdict_and_summary(html: str, parsed: _Collector) -> None:
    text = " ".join(" ".join(parsed.text).split())
    assert "<title>Credit model audit · mlwarden</title>" in html
    assert "4 failed findings: 1 critical, 1 high, 1 medium, 1 low" in text
    assert "could not check" in text
    for sev in ("critical", "high", "medium", "low", "info"):
        assert f"failed · {sev}" in text


def test_incomplete_audit_is_prominent(html: str) -> None:
    banner = html.index('id="incomplete"')
    assert banner < html.index('id="findings"')
    assert "AUDIT INCOMPLETE" in html
    assert "1 check could not run" in html
    errors = html[html.index('<section id="errors">') :]
    assert "evasion.hopskipjump" in errors
    assert "TimeoutError" in errors
    skipped = html[html.index('<section id="skipped">') :]
    assert "evasion.fgsm" in skipped
    assert "needs GRADIENTS; offers LABELS" in skipped


def test_complete_audit_has_no_incomplete_banner(fresh_report: Report) -> None:
    fresh_report.errors.clear()
    html = render_html(fresh_report)
    assert "AUDIT INCOMPLETE" not in html
    assert "Every check ran." in html
    assert "did not apply and was skipped" in html


def test_findings_sorted_by_severity_with_links(html: str, parsed: _Collector) -> None:
    table = html[html.index('<table class="findings">') : html.index('<section id="plots">')]
    order = re.findall(r'<span class="sev sev-(\w+)">', table)
    assert order == ["critical", "high", "medium", "low", "high", "info"]
    statuses = re.findall(r'<span class="badge status-(\w+)">', table)
    assert statuses == ["fail"] * 4 + ["pass"] * 2
    hrefs = {a.get("href") for tag, a in parsed.tags if tag == "a"}
    assert "https://github.com/mlwarden/mlwarden/blob/main/docs/findings/MLW-TEST-001.md" in hrefs
    assert "https://atlas.mitre.org/techniques/AML.T0015" in hrefs
    assert "https://atlas.mitre.org/techniques/AML.T0024.000" in hrefs
    assert "Evade AI Model" in html
    assert "AI Supply Chain Compromise: Model" in html  # sub-technique named with its parent
    assert "Input Manipulation Attack" in html  # OWASP ML01 name
    assert "0.41" in table
    assert "≥ 0.8" in table
    assert "≤ 0.6" in table
    assert "n/a" in table  # NaN value


def test_details_with_evidence_and_remediation(html: str) -> None:
    assert html.count("<details>") == 6
    assert "Train adversarially on the attacker-changeable features." in html
    assert "<th>n_evaded</th><td>118</td>" in html  # numpy evidence shown as a number
    assert "GLOBAL os.system" in html


def test_plots_are_inline_svg_with_overlaid_targets(html: str) -> None:
    plots = html[html.index('<section id="plots">') : html.index('<section id="tables">')]
    assert plots.count("<svg") == 2
    first = plots[: plots.index("</svg>")]
    assert "Robust recall vs. attack budget" in first
    assert "credit-gbm" in first
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in first
    assert "<?xml" not in html
    assert "<!DOCTYPE svg" not in html
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "element ids must be unique across plots"


def test_tables_highlight_changed_cells(html: str) -> None:
    tables = html[html.index('<section id="tables">') : html.index('<section id="errors">')]
    assert "Adversarial transactions" in tables
    changed = re.findall(r'<td class="[^"]*changed">([^<]*)</td>', tables)
    assert changed == ["88", "NL"]


def test_provenance(html: str) -> None:
    prov = html[html.index('<section id="provenance">') :]
    assert "a" * 64 in prov
    assert "b" * 64 in prov
    assert "Seed" in prov
    assert ">7<" in prov
    assert "numpy" in prov
    assert "evasion.pgd" in prov
    assert "steps" in prov
    assert "credit-gbm/evasion.pgd" in prov  # timings


def test_user_strings_are_escaped(html: str) -> None:
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>not bold</b>" not in html


def test_self_contained(html: str, parsed: _Collector) -> None:
    tags = [t for t, _ in parsed.tags]
    for forbidden in ("script", "link", "img", "iframe", "object", "embed", "base"):
        assert forbidden not in tags, forbidden
    for tag, attrs in parsed.tags:
        for name in ("src", "href", "xlink:href", "srcset", "data", "action"):
            value = attrs.get(name) or ""
            if re.match(r"\s*(https?:)?//", value):
                assert (tag, name) == ("a", "href"), value
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert "@import" not in html
    assert "@font-face" not in html
    assert "Content-Security-Policy" in html


def test_report_without_anything(tmp_path: Path) -> None:
    path = write_html(Report(title="Empty"), tmp_path / "out" / "r.html")
    html = path.read_text(encoding="utf-8")
    assert "NOTHING CHECKED" in html
    assert "<svg" not in html
    assert "No findings were produced." in html
