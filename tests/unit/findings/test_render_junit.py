"""JUnit XML output."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mlwarden.findings import Report
from mlwarden.findings.render import render_junit, write_junit

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def root(report: Report, tmp_path_factory: pytest.TempPathFactory) -> ET.Element:
    path = write_junit(report, tmp_path_factory.mktemp("junit") / "junit.xml")
    return ET.parse(path).getroot()


def _counts(el: ET.Element) -> dict[str, int]:
    return {k: int(el.attrib[k]) for k in ("tests", "failures", "errors", "skipped")}


def test_totals(root: ET.Element) -> None:
    assert root.tag == "testsuites"
    assert _counts(root) == {"tests": 8, "failures": 4, "errors": 1, "skipped": 1}
    assert float(root.attrib["time"]) == pytest.approx(2.0)


def test_one_suite_per_target_with_matching_counts(root: ET.Element) -> None:
    suites = {s.attrib["name"]: s for s in root.findall("testsuite")}
    assert list(suites) == ["credit-gbm", XSS]
    assert _counts(suites["credit-gbm"]) == {"tests": 3, "failures": 3, "errors": 0, "skipped": 0}
    assert _counts(suites[XSS]) == {"tests": 5, "failures": 1, "errors": 1, "skipped": 1}
    for suite in suites.values():
        cases = suite.findall("testcase")
        assert int(suite.attrib["tests"]) == len(cases)
        assert int(suite.attrib["failures"]) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.attrib["errors"]) == sum(c.find("error") is not None for c in cases)
        assert int(suite.attrib["skipped"]) == sum(c.find("skipped") is not None for c in cases)
        assert float(suite.attrib["time"]) == pytest.approx(
            sum(float(c.attrib["time"]) for c in cases), abs=1e-3
        )


def test_testcases(root: ET.Element) -> None:
    cases = {
        c.attrib["name"]: c for c in root.iter("testcase") if "credit" in c.attrib["classname"]
    }
    case = cases["MLW-TEST-001 Model is evaded by small feature changes"]
    assert case.attrib["classname"] == "mlwarden.evasion.credit-gbm"
    assert float(case.attrib["time"]) == pytest.approx(1.5)
    failure = case.find("failure")
    assert failure is not None
    assert failure.attrib["type"] == "high"
    assert failure.attrib["message"].endswith("robust_recall = 0.41 (threshold >= 0.8)")
    assert "Train adversarially" in (failure.text or "")
    crit = cases["MLW-TEST-003 Model file can run code when loaded"].find("failure")
    assert crit is not None
    assert crit.attrib["type"] == "critical"


def test_errors_and_skipped_cases(root: ET.Element) -> None:
    xss = next(s for s in root.findall("testsuite") if s.attrib["name"] == XSS)
    by_name = {c.attrib["name"]: c for c in xss.findall("testcase")}
    err_case = by_name["evasion.hopskipjump (could not check)"]
    assert err_case.attrib["classname"] == f"mlwarden.evasion.{XSS}"
    err = err_case.find("error")
    assert err is not None
    assert err.attrib["type"] == "TimeoutError"
    assert err.attrib["message"] == "the model did not answer within 30 s"
    skipped = by_name["evasion.fgsm (skipped)"].find("skipped")
    assert skipped is not None
    assert "GRADIENTS" in skipped.attrib["message"]
    passed = by_name["MLW-TEST-001 Model is evaded by small feature changes"]
    assert passed.find("failure") is None


def test_control_characters_do_not_break_xml(fresh_report: Report, tmp_path: Path) -> None:
    fresh_report.errors.append(
        {"check": "x.y", "target": "t\x00\x1b", "error": "E", "message": "bad \x07 bytes & <tags>"}
    )
    root = ET.fromstring(render_junit(fresh_report).encode("utf-8"))
    assert _counts(root)["errors"] == 2
    messages = [e.attrib["message"] for e in root.iter("error")]
    assert "bad  bytes & <tags>" in messages


def test_empty_report() -> None:
    root = ET.fromstring(render_junit(Report()).encode("utf-8"))
    assert _counts(root) == {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
