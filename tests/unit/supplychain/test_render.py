"""Scan results as text, JSON (validated against its schema) and SARIF 2.1.0 (validated
against the vendored OASIS schema)."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rich.console import Console

from mlwarden.findings.taxonomy import Severity
from mlwarden.supplychain import FileResult, Policy, ScanIssue, ScanResult, SkippedPath
from mlwarden.supplychain.render import (
    SCAN_SCHEMA_VERSION,
    load_scan_schema,
    render_json,
    render_sarif,
    render_text,
    summary_line,
    text_report,
    to_json,
    to_sarif,
)

_SARIF_SCHEMA = Path(__file__).parents[2] / "data" / "sarif-schema-2.1.0.json"
MARKUP = "[bold red]x[/]"


def _issue(path: str, rule_id: str, severity: Severity, location: str, construct: str) -> ScanIssue:
    return ScanIssue(
        rule_id=rule_id,
        severity=severity,
        path=path,
        location=location,
        construct=construct,
        message=f"Unpickling calls {construct}.",
    )


def _mixed() -> ScanResult:
    evil = "models/evil.pt"
    return ScanResult(
        files=[
            FileResult(
                path="models/ok.pkl",
                format="pickle",
                globals=["collections.OrderedDict"],
                bytes_scanned=1234,
                seconds=0.001,
            ),
            FileResult(
                path=evil,
                format="pytorch-zip",
                issues=[
                    _issue(evil, "MLW-SUP-002", Severity.HIGH, "archive/data.pkl@40", "evil.Thing"),
                    _issue(
                        evil, "MLW-SUP-001", Severity.CRITICAL, "archive/data.pkl@12", "os.system"
                    ),
                ],
                errors=["models/evil.pt: member archive/extra.pkl: truncated pickle"],
                notes=["tensor storage skipped: 2 members, 1.0 kB"],
                globals=["os.system", "evil.Thing"],
                bytes_scanned=500,
                seconds=0.01,
            ),
            FileResult(
                path="models/blob.bin",
                format="unknown",
                errors=["models/blob.bin: unknown format (first bytes 00 01 02 03)"],
            ),
        ],
        errors=["missing.pkl: no such file or directory"],
    )


def _safe() -> ScanResult:
    return ScanResult(files=[FileResult(path="ok.safetensors", format="safetensors")])


CASES = {
    "mixed": _mixed,
    "safe": _safe,
    "empty": ScanResult,
    "error_only": lambda: ScanResult(
        files=[FileResult(path="x.bin", errors=["x.bin: unknown format"])]
    ),
    "path_error_only": lambda: ScanResult(errors=["nothing/: empty directory"]),
    "safe_with_skips": lambda: ScanResult(
        files=[FileResult(path="repo/model.safetensors", format="safetensors")],
        skipped=[
            SkippedPath("repo/.git", "version-control metadata (.git folder)", folder=True),
            SkippedPath("repo/README.md", "repository text file (name matches README*)"),
        ],
    ),
    "only_skipped": lambda: ScanResult(
        errors=["repo: nothing to scan: 1 file skipped"],
        skipped=[SkippedPath("repo/README.md", "repository text file")],
    ),
}


# --------------------------------------------------------------------------- JSON


@pytest.fixture(scope="module")
def scan_validator() -> jsonschema.Draft202012Validator:
    schema = load_scan_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_schema_is_versioned_and_fresh() -> None:
    schema = load_scan_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema_version"]["const"] == SCAN_SCHEMA_VERSION
    schema["title"] = "changed"
    assert load_scan_schema()["title"] != "changed"


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_validates(scan_validator: jsonschema.Draft202012Validator, case: str) -> None:
    doc = json.loads(render_json(CASES[case]()))
    scan_validator.validate(doc)


def test_json_content() -> None:
    result = _mixed()
    doc = to_json(result, policy=Policy(allow=frozenset({"b.B", "a.A"})))
    assert doc["tool"]["name"] == "mlwarden" and doc["tool"]["version"]
    assert "allowlist_version" in doc
    assert doc["exit_code"] == 1 == result.exit_code
    assert doc["verdict"] == "unsafe"
    assert doc["summary"] == {
        "files": 3,
        "safe": 1,
        "unsafe": 1,
        "error": 1,
        "path_errors": 1,
        "skipped": 0,
        "issues": 2,
        "severities": {"critical": 1, "high": 1, "medium": 0, "low": 0, "info": 0},
    }
    assert doc["policy"] == {"allow": ["a.A", "b.B"], "deny": [], "force": False,
                             "max_file_bytes": None, "exclude": []}  # fmt: skip
    assert doc["skipped"] == []
    assert [f["verdict"] for f in doc["files"]] == ["safe", "unsafe", "error"]
    evil = doc["files"][1]
    assert evil["format"] == "pytorch-zip"
    assert evil["globals"] == ["os.system", "evil.Thing"]
    assert evil["notes"] and evil["errors"] and evil["bytes_scanned"] == 500
    issue = next(i for i in evil["issues"] if i["rule_id"] == "MLW-SUP-001")
    assert issue["severity"] == "critical"
    assert issue["location"] == "archive/data.pkl@12"
    assert issue["construct"] == "os.system"
    assert issue["atlas"] == ["AML.T0010.003", "AML.T0011.000"]
    assert issue["owasp"] == ["ML06"]
    assert issue["help_uri"].endswith("/docs/findings/MLW-SUP-001.md")
    assert issue["title"].startswith("Model file imports a callable")
    assert doc["errors"] == ["missing.pkl: no such file or directory"]


@pytest.mark.parametrize(
    ("case", "code", "verdict"),
    [("safe", 0, "safe"), ("empty", 2, "error"), ("error_only", 2, "error"),
     ("path_error_only", 2, "error")],
)  # fmt: skip
def test_json_exit_code_and_verdict(case: str, code: int, verdict: str) -> None:
    doc = to_json(CASES[case]())
    assert (doc["exit_code"], doc["verdict"]) == (code, verdict)


def test_schema_rejects_inconsistent_documents(
    scan_validator: jsonschema.Draft202012Validator,
) -> None:
    doc = to_json(_mixed())
    edits = [
        lambda d: d.update(schema_version="2.0"),
        lambda d: d.update(exit_code=3),
        lambda d: d["files"][2].update(verdict="safe"),  # could-not-scan must not read as safe
        lambda d: d["files"][1]["issues"][0].update(severity="fatal"),
        lambda d: d["files"][1]["issues"][0].pop("atlas"),
        lambda d: d["files"][0].update(extra=1),
        lambda d: d["summary"].pop("error"),
    ]
    for i, edit in enumerate(edits):
        broken = copy.deepcopy(doc)
        edit(broken)
        assert list(scan_validator.iter_errors(broken)), f"edit #{i} was not caught"


def test_unregistered_rule_id_still_renders(
    scan_validator: jsonschema.Draft202012Validator,
) -> None:
    issue = _issue("a.pkl", "MLW-SUP-999", Severity.LOW, "", "thing")
    result = ScanResult(files=[FileResult(path="a.pkl", format="pickle", issues=[issue])])
    doc = to_json(result)
    scan_validator.validate(doc)
    assert doc["files"][0]["issues"][0]["atlas"] == ["AML.T0010.003", "AML.T0011.000"]
    rules = to_sarif(result)["runs"][0]["tool"]["driver"]["rules"]
    assert "MLW-SUP-999" in {r["id"] for r in rules}


# --------------------------------------------------------------------------- SARIF


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.Draft7Validator:
    if not _SARIF_SCHEMA.exists():  # pragma: no cover - vendored in the repository
        pytest.skip("tests/data/sarif-schema-2.1.0.json is missing")
    schema = json.loads(_SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("case", sorted(CASES))
def test_sarif_validates(sarif_validator: jsonschema.Draft7Validator, case: str) -> None:
    log = json.loads(render_sarif(CASES[case]()))
    sarif_validator.validate(log)
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1


def test_sarif_schema_catches_a_broken_log(sarif_validator: jsonschema.Draft7Validator) -> None:
    log = to_sarif(_mixed())
    log["runs"][0]["results"][0]["level"] = "critical"
    assert list(sarif_validator.iter_errors(log))


def test_sarif_rules_and_tags() -> None:
    driver = to_sarif(_safe())["runs"][0]["tool"]["driver"]
    assert driver["name"] == "mlwarden" and driver["version"]
    rules = {r["id"]: r for r in driver["rules"]}
    assert {f"MLW-SUP-{n:03d}" for n in range(1, 10)} <= set(rules)
    r1 = rules["MLW-SUP-001"]
    assert r1["helpUri"].endswith("/docs/findings/MLW-SUP-001.md")
    assert r1["properties"]["tags"] == [
        "security", "supply_chain", "AML.T0010.003", "AML.T0011.000", "ML06"
    ]  # fmt: skip
    assert r1["properties"]["security-severity"] == "9.5"
    assert r1["defaultConfiguration"]["level"] == "error"
    assert (
        "[AML.T0011.000](https://atlas.mitre.org/techniques/AML.T0011.000)"
        in (r1["help"]["markdown"])
    )
    assert rules["MLW-SUP-008"]["defaultConfiguration"]["level"] == "warning"


def test_sarif_results_locations_and_levels() -> None:
    run = to_sarif(_mixed())["runs"][0]
    results = run["results"]
    rules = run["tool"]["driver"]["rules"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("MLW-SUP-001", "error"),  # critical first within the file
        ("MLW-SUP-002", "error"),
    ]
    first = results[0]
    assert rules[first["ruleIndex"]]["id"] == "MLW-SUP-001"
    assert first["kind"] == "fail"
    assert "os.system" in first["message"]["text"]
    loc = first["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "models/evil.pt"
    assert (
        run["artifacts"][loc["physicalLocation"]["artifactLocation"]["index"]]["location"]["uri"]
        == "models/evil.pt"
    )
    assert loc["logicalLocations"][0]["name"] == "archive/data.pkl"
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "models/evil.pt:archive/data.pkl@12"
    assert first["properties"]["member"] == "archive/data.pkl"
    assert first["properties"]["byteOffset"] == 12
    assert (
        first["partialFingerprints"]["mlwardenScan/v1"]
        != (results[1]["partialFingerprints"]["mlwardenScan/v1"])
    )
    verdicts = {a["location"]["uri"]: a["properties"]["verdict"] for a in run["artifacts"]}
    assert verdicts == {
        "models/ok.pkl": "safe",
        "models/evil.pt": "unsafe",
        "models/blob.bin": "error",
    }


@pytest.mark.parametrize("case", ["mixed", "empty", "error_only", "path_error_only"])
def test_sarif_could_not_scan_is_never_success(case: str) -> None:
    run = to_sarif(CASES[case]())["runs"][0]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert notes and all(n["level"] == "error" for n in notes)
    assert run["properties"]["incomplete"] is True
    assert invocation["exitCode"] == CASES[case]().exit_code != 0


def test_sarif_notifications_name_the_file() -> None:
    notes = to_sarif(_mixed())["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    texts = [n["message"]["text"] for n in notes]
    assert any("models/blob.bin" in t and "unknown format" in t for t in texts)
    assert any("missing.pkl" in t for t in texts)
    blob = next(n for n in notes if "blob.bin" in n["message"]["text"])
    assert blob["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/blob.bin"


def test_sarif_clean_scan_is_successful() -> None:
    run = to_sarif(_safe())["runs"][0]
    assert run["invocations"] == [{"executionSuccessful": True, "exitCode": 0}]
    assert run["results"] == []


def test_sarif_uris_relative_to_base_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "models dir" / "m.pkl"
    outside = tmp_path.parent / "elsewhere.pkl"
    result = ScanResult(
        files=[
            FileResult(path=str(inside), format="pickle"),
            FileResult(path=str(outside), format="pickle"),
            FileResult(path="rel/x.pkl", format="pickle"),
        ]
    )
    uris = [a["location"]["uri"] for a in to_sarif(result)["runs"][0]["artifacts"]]
    assert uris[0] == "models%20dir/m.pkl"
    assert uris[1].startswith("file:///")
    assert uris[2] == "rel/x.pkl"
    sub = [a["location"]["uri"] for a in to_sarif(result, base_dir=tmp_path / "rel")["runs"][0][
        "artifacts"]]  # fmt: skip
    assert sub[2] == "x.pkl"


# --------------------------------------------------------------------------- text


def _text(result: ScanResult) -> str:
    buf = io.StringIO()
    render_text(result, Console(file=buf, width=200, color_system=None, force_terminal=False))
    return buf.getvalue()


def test_text_lists_every_file_issue_error_and_summary() -> None:
    out = _text(_mixed())
    lines = out.splitlines()
    assert lines[0].startswith("SAFE") and "models/ok.pkl" in lines[0]
    assert lines[1].startswith("UNSAFE") and "models/evil.pt" in lines[1]
    assert "note: tensor storage skipped" in out
    assert any(line.startswith("ERROR") and "models/blob.bin" in line for line in lines)
    assert "Issues (2)" in out
    assert "CRITICAL" in out and "MLW-SUP-001" in out
    assert "models/evil.pt:archive/data.pkl@12" in out
    assert "os.system" in out and "Unpickling calls os.system." in out
    assert out.index("MLW-SUP-001") < out.index("MLW-SUP-002")
    assert "Could not scan (3)" in out
    assert "missing.pkl: no such file or directory" in out
    assert lines[-1] == summary_line(_mixed())
    assert lines[-1].startswith("UNSAFE: 1 of 3 files unsafe")
    assert "2 issues (1 critical, 1 high)" in lines[-1]
    assert lines[-1].endswith("Exit code 1.")


@pytest.mark.parametrize(
    ("case", "start"),
    [("safe", "SAFE: 1 file scanned, all safe"), ("empty", "ERROR: nothing was scanned"),
     ("error_only", "ERROR: 1 could not be scanned"),
     ("path_error_only", "ERROR: nothing was scanned (1 path could not be scanned)")],
)  # fmt: skip
def test_text_summary_line(case: str, start: str) -> None:
    last = _text(CASES[case]()).splitlines()[-1]
    assert last.startswith(start), last
    assert last.endswith(f"Exit code {CASES[case]().exit_code}.")


def test_text_prints_markup_literally() -> None:
    issue = _issue(MARKUP, "MLW-SUP-002", Severity.HIGH, MARKUP, MARKUP)
    result = ScanResult(files=[FileResult(path=MARKUP, format="pickle", issues=[issue])])
    out = _text(result)
    assert out.count(MARKUP) >= 4


@pytest.mark.parametrize("case", sorted(CASES))
def test_plain_text_equals_rich_text(case: str) -> None:
    assert text_report(CASES[case]()) == _text(CASES[case]())


def test_renderers_do_not_mutate(tmp_path: Path) -> None:
    result = _mixed()
    before = repr(result)
    to_json(result)
    to_sarif(result)
    _text(result)
    assert repr(result) == before


def test_json_text_is_stable() -> None:
    a: Any = json.loads(render_json(_mixed()))
    b: Any = json.loads(render_json(_mixed()))
    assert a == b


# --------------------------------------------------------------------------- skipped


def test_skipped_paths_in_every_renderer() -> None:
    result = CASES["safe_with_skips"]()
    assert result.exit_code == 0  # skipped paths never fail a scan
    doc = to_json(result)
    assert doc["summary"]["skipped"] == 2 and doc["summary"]["files"] == 1
    assert doc["skipped"] == [
        {"path": "repo/.git", "reason": "version-control metadata (.git folder)", "folder": True},
        {"path": "repo/README.md", "reason": "repository text file (name matches README*)",
         "folder": False},
    ]  # fmt: skip
    out = text_report(result)
    assert "Skipped (2)" in out
    assert "repo/.git/" in out and "repo/README.md" in out and "name matches README*" in out
    assert out.splitlines()[-1] == "SAFE: 1 file scanned, all safe, 2 skipped. Exit code 0."
    run = to_sarif(result)["runs"][0]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is True  # a skip is not a failure
    notes = invocation["toolExecutionNotifications"]
    assert [n["level"] for n in notes] == ["note", "note"]
    assert notes[1]["message"]["text"].startswith("Skipped repo/README.md: ")
    assert notes[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "repo/README.md"
    )
    assert [s["path"] for s in invocation["properties"]["skipped"]] == [
        "repo/.git", "repo/README.md"
    ]  # fmt: skip
    assert run["properties"]["summary"]["skipped"] == 2
    assert [a["location"]["uri"] for a in run["artifacts"]] == ["repo/model.safetensors"]


def test_only_skipped_is_an_error_everywhere() -> None:
    result = CASES["only_skipped"]()
    assert result.exit_code == 2
    assert to_json(result)["verdict"] == "error"
    last = text_report(result).splitlines()[-1]
    assert last.startswith("ERROR: nothing was scanned") and "1 skipped" in last
    invocation = to_sarif(result)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    levels = [n["level"] for n in invocation["toolExecutionNotifications"]]
    assert "error" in levels and "note" in levels


def test_schema_1_1_skipped_items_are_checked(
    scan_validator: jsonschema.Draft202012Validator,
) -> None:
    assert SCAN_SCHEMA_VERSION == "1.1"
    doc = to_json(CASES["safe_with_skips"](), policy=Policy(exclude=("docs/*",)))
    scan_validator.validate(doc)
    assert doc["policy"]["exclude"] == ["docs/*"]
    for edit in (
        lambda d: d["skipped"][0].pop("reason"),
        lambda d: d["skipped"][0].update(folder="yes"),
        lambda d: d["skipped"][0].update(extra=1),
        lambda d: d["summary"].update(skipped=-1),
    ):
        broken = copy.deepcopy(doc)
        edit(broken)
        assert list(scan_validator.iter_errors(broken))
    # 1.1 only adds optional fields: a document without them still validates
    older = copy.deepcopy(doc)
    del older["skipped"], older["summary"]["skipped"], older["policy"]["exclude"]
    scan_validator.validate(older)
