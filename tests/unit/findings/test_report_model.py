"""Report bookkeeping the writers rely on: round trip, summary counts, exit codes."""

from __future__ import annotations

import json
import math

import pytest

from mlwarden.exceptions import InvalidParameterError
from mlwarden.findings import Report, Severity

CREDIT = "credit-gbm"
XSS = "<script>alert(1)</script>"


def test_to_dict_from_dict_round_trip(report: Report) -> None:
    d = report.to_dict()
    again = Report.from_dict(json.loads(json.dumps(d)))
    assert again.to_dict() == d
    assert again.to_dict(include_timing=False) == report.to_dict(include_timing=False)


def test_round_trip_keeps_nan_value_as_missing(report: Report) -> None:
    d = report.to_dict()
    nan_finding = next(f for f in d["findings"] if f["metric"] == "surrogate_agreement")
    assert nan_finding["value"] is None
    back = Report.from_dict(d).findings
    assert math.isnan(next(f for f in back if f.metric == "surrogate_agreement").value)


def test_to_dict_is_plain_json_even_with_numpy_evidence(report: Report) -> None:
    d = report.to_dict()
    text = json.dumps(d, allow_nan=False)  # raises on numpy scalars or NaN
    assert '"n_evaded": 118' in text


def test_summary_counts(report: Report) -> None:
    s = report.summary()
    assert s == {
        "findings": 6,
        "passed": 2,
        "failed": 4,
        "failed_by_severity": {"info": 0, "low": 1, "medium": 1, "high": 1, "critical": 1},
        "errors": 1,
        "skipped": 1,
    }


def test_failed_is_sorted_most_severe_first(report: Report) -> None:
    assert [f.severity for f in report.failed] == [
        Severity.CRITICAL,
        Severity.HIGH,
        Severity.MEDIUM,
        Severity.LOW,
    ]


@pytest.mark.parametrize(
    ("fail_on", "code"),
    [("critical", 1), ("high", 1), (Severity.MEDIUM, 1), ("low", 1), ("info", 1)],
)
def test_exit_code_with_every_severity_failed(report: Report, fail_on: str, code: int) -> None:
    assert report.exit_code(fail_on) == code


def test_exit_code_depends_on_fail_on(report: Report) -> None:
    only_medium = Report(
        findings=[f for f in report.findings if f.severity in (Severity.MEDIUM, Severity.INFO)]
    )
    assert only_medium.exit_code("critical") == 0
    assert only_medium.exit_code("high") == 0
    assert only_medium.exit_code("medium") == 1
    assert only_medium.exit_code() == 0  # default threshold is high
    passed_only = Report(findings=[f for f in report.findings if f.passed])
    assert passed_only.exit_code("info") == 0


def test_failures_at_and_bad_severity(report: Report) -> None:
    assert {f.target for f in report.failures_at("critical")} == {CREDIT}
    assert {f.target for f in report.failures_at("low")} == {CREDIT, XSS}
    with pytest.raises(InvalidParameterError, match="critical"):
        report.exit_code("urgent")
