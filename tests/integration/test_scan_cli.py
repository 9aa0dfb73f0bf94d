"""``mlwarden scan`` end to end: exit codes, output formats, --allow/--policy, the fast path.

The malicious pickles are written as raw opcodes and never loaded.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from mlwarden.cli.app import app
from mlwarden.cli.scan import _parser
from mlwarden.supplychain.render import load_scan_schema

runner = CliRunner()

# PROTO 2 | GLOBAL 'os system' | MARK | BINUNICODE 'true' | TUPLE | REDUCE | STOP
EVIL = b"\x80\x02cos\nsystem\n(X\x04\x00\x00\x00truetR."
# PROTO 2 | GLOBAL 'mypackage.model MyNet' | EMPTY_TUPLE | NEWOBJ | EMPTY_DICT | BUILD | STOP
CUSTOM = b"\x80\x02cmypackage.model\nMyNet\n)\x81}b."
SARIF_SCHEMA = Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scan")
    out = {
        "benign": root / "benign.pkl",
        "evil": root / "evil.pkl",
        "custom": root / "custom.pkl",
        "unknown": root / "notes.bin",
        "empty": root / "empty",
        "dir": root / "models",
    }
    out["benign"].write_bytes(pickle.dumps({"w": [0.5, -1.25], "b": 0.1}, protocol=4))
    out["evil"].write_bytes(EVIL)
    out["custom"].write_bytes(CUSTOM)
    out["unknown"].write_bytes(b"\x00\x01\x02 this is not a model file")
    out["empty"].mkdir()
    out["dir"].mkdir()
    (out["dir"] / "a.pkl").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    (out["dir"] / "b.pkl").write_bytes(EVIL)
    (out["dir"] / "sub").mkdir()
    (out["dir"] / "sub" / "c.pkl").write_bytes(pickle.dumps("hello", protocol=5))
    return out


def invoke(*args: str | Path) -> Any:
    return runner.invoke(app, ["scan", *(str(a) for a in args)])


def _no_traceback(res: Any) -> None:
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


# --------------------------------------------------------------------------- exit codes


def test_safe_file_exits_0(files: dict[str, Path]) -> None:
    res = invoke(files["benign"])
    assert res.exit_code == 0, res.output
    first = res.stdout.splitlines()[0]
    assert first.startswith("SAFE") and "benign.pkl" in first
    assert res.stdout.rstrip().splitlines()[-1].endswith("Exit code 0.")


def test_malicious_file_exits_1(files: dict[str, Path]) -> None:
    res = invoke(files["evil"])
    assert res.exit_code == 1, res.output
    assert res.stdout.startswith("UNSAFE")
    assert "MLW-SUP-001" in res.stdout and "os.system" in res.stdout
    assert "CRITICAL" in res.stdout
    assert "Exit code 1." in res.stdout


def test_unknown_file_exits_2(files: dict[str, Path]) -> None:
    res = invoke(files["unknown"])
    assert res.exit_code == 2, res.output
    assert res.stdout.startswith("ERROR")
    assert "Could not scan" in res.stdout
    _no_traceback(res)


def test_empty_dir_exits_2(files: dict[str, Path]) -> None:
    res = invoke(files["empty"])
    assert res.exit_code == 2, res.output
    assert "nothing was scanned" in res.stdout
    _no_traceback(res)


def test_missing_path_exits_2(files: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "nope.pkl"
    res = invoke(missing)
    assert res.exit_code == 2, res.output
    assert "nope.pkl" in res.stdout
    _no_traceback(res)


def test_unsafe_wins_over_missing(files: dict[str, Path], tmp_path: Path) -> None:
    res = invoke(files["evil"], tmp_path / "nope.pkl")
    assert res.exit_code == 1, res.output


def test_directory_lists_every_file(files: dict[str, Path]) -> None:
    res = invoke(files["dir"])
    assert res.exit_code == 1, res.output
    lines = res.stdout.splitlines()
    for name, verdict in (("a.pkl", "SAFE"), ("b.pkl", "UNSAFE"), ("c.pkl", "SAFE")):
        assert any(line.startswith(verdict) and name in line for line in lines), name
    assert "1 of 3 files unsafe" in res.stdout


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "policy file not found"), ("allow = [", "not valid TOML"),
     ("alow = []", "unknown policy key"), ("allow = 'x.y'", "'allow' must be a list")],
)  # fmt: skip
def test_bad_policy_file_exits_2(
    files: dict[str, Path], tmp_path: Path, content: str | None, needle: str
) -> None:
    policy = tmp_path / "policy.toml"
    if content is not None:
        policy.write_text(content, encoding="utf-8")
    res = invoke(files["benign"], "--policy", policy)
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    message = res.stderr.strip()
    assert len(message.splitlines()) == 1
    assert message.startswith("error:") and "policy.toml" in message and needle in message
    _no_traceback(res)


@pytest.mark.parametrize("args", [["--format", "xml"], ["--bogus"], []])
def test_bad_usage_exits_2(files: dict[str, Path], args: list[str]) -> None:
    res = invoke(*args, *([files["benign"]] if args else []))
    assert res.exit_code == 2, res.output
    _no_traceback(res)


def test_bad_allow_name_exits_2(files: dict[str, Path]) -> None:
    res = invoke(files["benign"], "--allow", "not a name")
    assert res.exit_code == 2
    assert "MODULE.NAME" in res.stderr


# --------------------------------------------------------------------------- allowing


def test_allow_turns_custom_class_safe(files: dict[str, Path]) -> None:
    res = invoke(files["custom"])
    assert res.exit_code == 1, res.output
    assert "MLW-SUP-002" in res.stdout and "mypackage.model.MyNet" in res.stdout
    res = invoke(files["custom"], "--allow", "mypackage.model.MyNet")
    assert res.exit_code == 0, res.output
    res = invoke(files["custom"], "--allow", "mypackage.model.Other")
    assert res.exit_code == 1, res.output


def test_policy_file_allows_and_denies(files: dict[str, Path], tmp_path: Path) -> None:
    policy = tmp_path / "scan-policy.toml"
    policy.write_text('allow = ["mypackage.model.MyNet"]\n', encoding="utf-8")
    assert invoke(files["custom"], "--policy", policy).exit_code == 0
    # --allow can not lift the shipped denylist
    res = invoke(files["evil"], "--allow", "os.system", "--policy", policy)
    assert res.exit_code == 1, res.output


# --------------------------------------------------------------------------- formats


def test_json_output_validates(files: dict[str, Path]) -> None:
    res = invoke(files["dir"], files["unknown"], "--format", "json")
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    jsonschema.Draft202012Validator(load_scan_schema()).validate(doc)
    assert doc["exit_code"] == 1
    assert doc["summary"]["files"] == 4 and doc["summary"]["unsafe"] == 1
    assert doc["summary"]["error"] == 1
    evil = next(f for f in doc["files"] if f["path"].endswith("b.pkl"))
    assert evil["globals"] == ["os.system"]
    issue = evil["issues"][0]
    assert issue["rule_id"] == "MLW-SUP-001" and issue["construct"] == "os.system"
    assert issue["atlas"] == ["AML.T0010.003", "AML.T0011.000"] and issue["owasp"] == ["ML06"]


def test_sarif_output_validates(files: dict[str, Path]) -> None:
    res = invoke(files["evil"], files["unknown"], "-f", "SARIF")
    assert res.exit_code == 1, res.output
    log = json.loads(res.stdout)
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema).validate(log)
    run = log["runs"][0]
    assert [r["ruleId"] for r in run["results"]] == ["MLW-SUP-001"]
    assert run["invocations"][0]["executionSuccessful"] is False
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("notes.bin" in n["message"]["text"] for n in notes)


def test_output_writes_the_file(files: dict[str, Path], tmp_path: Path) -> None:
    for fmt in ("json", "sarif", "text"):
        target = tmp_path / "out" / f"scan.{fmt}"
        res = invoke(files["evil"], "--format", fmt, "--output", target)
        assert res.exit_code == 1, res.output
        assert res.stdout == ""
        assert "UNSAFE" in res.stderr and str(target.name) in res.stderr
        text = target.read_text(encoding="utf-8")
        if fmt == "text":
            assert text.startswith("UNSAFE") and "MLW-SUP-001" in text
            assert "\x1b[" not in text
        else:
            json.loads(text)


def test_unwritable_output_exits_2(files: dict[str, Path], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = invoke(files["benign"], "--output", blocker / "scan.json", "--format", "json")
    assert res.exit_code == 2
    assert "cannot write" in res.stderr
    _no_traceback(res)


def test_help_documents_exit_codes() -> None:
    res = runner.invoke(app, ["scan", "--help"])
    assert res.exit_code == 0
    for text in ("Exit codes", "0", "1", "2", "--allow", "--policy", "--format", "--output"):
        assert text in res.output


# --------------------------------------------------------------------------- fast path


def test_fast_parser_matches_the_typer_command() -> None:
    command: Any = get_command(app)
    typer_opts = {
        opt
        for p in command.commands["scan"].params
        for opt in p.opts
        if opt.startswith("-") and opt != "--help"
    }
    fast_opts = {opt for a in _parser()._actions for opt in a.option_strings}
    assert typer_opts == fast_opts


_ENTRY = """
import sys
from mlwarden.cli import main
sys.argv = ["mlwarden", "scan", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = ("numpy", "pandas", "torch", "typer", "pydantic", "rich")
heavy = sorted(m for m in heavy if m in sys.modules)
print("EXIT", code, "HEAVY", ",".join(heavy) or "-", file=sys.stderr)
"""


def _entry(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"}
    return subprocess.run(
        [sys.executable, "-c", _ENTRY, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_console_entry_is_lean_on_a_benign_pickle(files: dict[str, Path]) -> None:
    proc = _entry(files["benign"])
    assert proc.stderr.strip().endswith("EXIT 0 HEAVY -"), proc.stderr
    assert proc.stdout.startswith("SAFE")


def test_console_entry_exit_codes_and_errors(files: dict[str, Path], tmp_path: Path) -> None:
    assert "EXIT 1 " in _entry(files["evil"]).stderr
    assert "EXIT 2 " in _entry(files["unknown"]).stderr
    proc = _entry(files["benign"], "--policy", tmp_path / "missing.toml")
    assert "EXIT 2 " in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:") and "missing.toml: policy file not found" in proc.stderr
    # what the fast parser does not take goes to typer, which prints the usage error
    proc = _entry(files["benign"], "--format", "xml")
    assert "EXIT 2 " in proc.stderr and "--format" in proc.stderr


def test_console_entry_text_equals_typer_text(files: dict[str, Path]) -> None:
    fast = _entry(files["dir"]).stdout
    slow = invoke(files["dir"]).stdout
    assert fast == slow
    assert "b.pkl" in fast and "MLW-SUP-001" in fast


def test_console_entry_json_equals_typer_json(files: dict[str, Path]) -> None:
    proc = _entry(files["dir"], "--format", "json")
    fast = json.loads(proc.stdout)
    slow = json.loads(invoke(files["dir"], "--format", "json").stdout)
    for doc in (fast, slow):
        for f in doc["files"]:
            f["seconds"] = 0
    assert fast == slow


def test_python_m_mlwarden_scan(files: dict[str, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlwarden", "scan", str(files["evil"]), "-f", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["exit_code"] == 1


# --------------------------------------------------------------------------- skipped paths


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder as a Hugging Face clone leaves it: docs, git files, .git/."""
    root = tmp_path_factory.mktemp("repo")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "README.md").write_text("# r\n")
    (root / "LICENSE").write_text("Apache License\nVersion 2.0\n")
    (root / ".gitattributes").write_text("*.pkl filter=lfs diff=lfs merge=lfs -text\n")
    (root / ".gitignore").write_text("__pycache__/\n")
    (root / "m.pkl").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    return root


def test_a_model_repository_clone_exits_0_and_lists_what_it_skipped(repo: Path) -> None:
    res = invoke(repo)
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert out.splitlines()[0].startswith("SAFE") and "m.pkl" in out.splitlines()[0]
    assert "Skipped (5)" in out
    skipped = out[out.index("Skipped (5)") :].splitlines()[1:6]
    assert [line.split()[0] for line in skipped] == [
        f"{repo}/.git/", f"{repo}/.gitattributes", f"{repo}/.gitignore", f"{repo}/LICENSE",
        f"{repo}/README.md",
    ]  # fmt: skip
    assert "version-control metadata" in skipped[0]
    assert out.rstrip().splitlines()[-1] == (
        "SAFE: 1 file scanned, all safe, 5 skipped. Exit code 0."
    )
    assert "ERROR" not in out


def test_no_default_skips_scans_the_text_files(repo: Path) -> None:
    res = invoke(repo, "--no-default-skips")
    assert res.exit_code == 2, res.output
    assert "Skipped" not in res.stdout
    assert "README.md: unknown format" in res.stdout and ".git/HEAD" in res.stdout


def test_a_pickle_named_readme_is_still_unsafe(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_bytes(b"cos\nsystem\n(S'echo'\ntR.")  # protocol 0
    res = invoke(tmp_path)
    assert res.exit_code == 1, res.output
    assert "MLW-SUP-001" in res.stdout and "Skipped" not in res.stdout


def test_exclude_is_repeatable_and_listed(files: dict[str, Path]) -> None:
    res = invoke(files["dir"], "--exclude", "b.pkl", "--exclude", "sub")
    assert res.exit_code == 0, res.output  # the malicious b.pkl is excluded
    assert "Skipped (2)" in res.stdout
    assert "excluded by --exclude b.pkl" in res.stdout
    assert "excluded by --exclude sub" in res.stdout
    assert "1 file scanned, all safe, 2 skipped" in res.stdout
    assert invoke(files["dir"], "--exclude", "no-such-*").exit_code == 1  # matches nothing


def test_everything_skipped_exits_2(repo: Path, files: dict[str, Path]) -> None:
    res = invoke(repo, "--exclude", "*.pkl")
    assert res.exit_code == 2, res.output
    assert f"{repo}: nothing to scan: 5 files and 1 folder skipped" in res.stdout
    res = invoke(files["evil"], "--exclude", "evil.pkl")
    assert res.exit_code == 2 and "nothing to scan: 1 file skipped" in res.stdout


def test_policy_file_exclude(files: dict[str, Path], tmp_path: Path) -> None:
    policy = tmp_path / "scan-policy.toml"
    policy.write_text('exclude = ["b.pkl"]\n', encoding="utf-8")
    res = invoke(files["dir"], "--policy", policy, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["policy"]["exclude"] == ["b.pkl"]
    assert [s["reason"] for s in doc["skipped"]] == ["excluded by the policy's exclude b.pkl"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--exclude", ""], "--exclude ''"), (["--policy", "BAD"], "'exclude' must be a list")],
)
def test_bad_exclude_exits_2(
    files: dict[str, Path], tmp_path: Path, args: list[str], needle: str
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("exclude = 3\n", encoding="utf-8")
    res = invoke(files["benign"], *[str(bad) if a == "BAD" else a for a in args])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error:") and needle in res.stderr
    _no_traceback(res)


def test_skipped_in_json_and_sarif(repo: Path) -> None:
    res = invoke(repo, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    jsonschema.Draft202012Validator(load_scan_schema()).validate(doc)
    assert doc["schema_version"] == "1.1"
    assert doc["summary"]["files"] == 1 and doc["summary"]["skipped"] == 5
    assert [Path(s["path"]).name for s in doc["skipped"]] == [
        ".git", ".gitattributes", ".gitignore", "LICENSE", "README.md"
    ]  # fmt: skip
    assert [s["folder"] for s in doc["skipped"]] == [True, False, False, False, False]

    res = invoke(repo, "--format", "sarif")
    assert res.exit_code == 0, res.output
    log = json.loads(res.stdout)
    jsonschema.Draft7Validator(json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))).validate(log)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is True
    notes = invocation["toolExecutionNotifications"]
    assert len(notes) == 5 and all(n["level"] == "note" for n in notes)
    assert any("README.md" in n["message"]["text"] for n in notes)
    assert len(invocation["properties"]["skipped"]) == 5


def test_help_documents_the_skips() -> None:
    res = runner.invoke(app, ["scan", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for text in ("--exclude", "--no-default-skips", ".git", "README"):
        assert text in res.output


def test_console_entry_on_a_repository_clone_is_lean_and_equals_typer(repo: Path) -> None:
    proc = _entry(repo, "--exclude", "LICENSE")
    assert proc.stderr.strip().endswith("EXIT 0 HEAVY -"), proc.stderr
    assert proc.stdout == invoke(repo, "--exclude", "LICENSE").stdout
    assert "excluded by --exclude LICENSE" in proc.stdout
    proc = _entry(repo, "--no-default-skips")
    assert "EXIT 2 " in proc.stderr
