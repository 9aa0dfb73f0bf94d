"""The JSON report and its JSON Schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mlwarden.findings import REPORT_SCHEMA_VERSION, Report
from mlwarden.findings.render import load_report_schema, render_json, write_json


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = load_report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@pytest.fixture(scope="module")
def doc(report: Report) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(render_json(report))
    return parsed


def test_schema_is_draft_2020_12_and_versioned() -> None:
    schema = load_report_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema_version"]["const"] == REPORT_SCHEMA_VERSION
    schema["title"] = "changed"
    assert load_report_schema()["title"] != "changed"  # every call returns a fresh copy


def test_real_report_validates(validator: jsonschema.Draft202012Validator, doc: dict) -> None:
    validator.validate(doc)
    assert doc["schema_version"] == REPORT_SCHEMA_VERSION
    assert doc["summary"]["errors"] == 1
    assert {f["severity"] for f in doc["findings"]} == {"critical", "high", "medium", "low", "info"}


def test_report_without_timing_validates(
    validator: jsonschema.Draft202012Validator, report: Report
) -> None:
    doc = json.loads(render_json(report, include_timing=False))
    validator.validate(doc)
    assert set(doc["provenance"]) == {"seed", "versions"}


def test_empty_report_validates(validator: jsonschema.Draft202012Validator) -> None:
    validator.validate(json.loads(render_json(Report())))


def _broken(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for edit in (
        lambda d: d["findings"][0].update(severity="urgent"),
        lambda d: d["findings"][0].update(family="magic"),
        lambda d: d["findings"][0].update(status="pass", passed=False),
        lambda d: d["findings"][0].update(atlas=["T1234"]),
        lambda d: d["findings"][0].pop("rule_id"),
        lambda d: d["findings"][0].update(extra_field=1),
        lambda d: d.pop("summary"),
        lambda d: d["summary"]["failed_by_severity"].pop("high"),
        lambda d: d.update(schema_version="2.0"),
        lambda d: d["errors"].append({"check": "x"}),
        lambda d: d["skipped"].append({"check": "x", "target": "t"}),
        lambda d: d["targets"][0].update(sha256="not-a-hash"),
        lambda d: d["metrics"]["credit-gbm"]["evasion.pgd"]["curves"][0].pop("y"),
        lambda d: d["metrics"]["credit-gbm"]["privacy.loss_threshold"]["tables"][0].update(
            highlight=[[0]]
        ),
        lambda d: d["provenance"].update(duration_s=-1.0),
    ):
        broken = copy.deepcopy(doc)
        edit(broken)
        out.append(broken)
    return out


def test_invalid_reports_fail(validator: jsonschema.Draft202012Validator, doc: dict) -> None:
    for i, broken in enumerate(_broken(doc)):
        errors = list(validator.iter_errors(broken))
        assert errors, f"edit #{i} was not caught by the schema"


def test_write_json_round_trips(report: Report, tmp_path: Path) -> None:
    path = write_json(report, tmp_path / "nested" / "report.json")
    assert path == tmp_path / "nested" / "report.json"
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert "NaN" not in text
    back = Report.from_dict(json.loads(text))
    assert back.to_dict() == report.to_dict()
    assert "<script>alert(1)</script>" in text  # JSON keeps names as they are
