"""``mlwarden data keygen / sign / verify / pii`` end to end (in-process, small files)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlwarden.cli.app import app
from mlwarden.data import fraud, write_table

runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data-keys")
    out = {n: root / n for n in ("key", "key.pub", "other", "other.pub")}
    for name in ("key", "other"):
        res = invoke("data", "keygen", "--private", out[name], "--public", out[f"{name}.pub"])
        assert res.exit_code == 0, res.output
        assert "fingerprint: sha256:" in res.output
    return out


@pytest.fixture
def table(tmp_path: Path) -> Path:
    return write_table(fraud(200, random_state=4), tmp_path / "train.csv", label="is_fraud")


def test_keygen_never_overwrites(keys: dict[str, Path], tmp_path: Path) -> None:
    assert stat.S_IMODE(keys["key"].stat().st_mode) == 0o600
    res = invoke("data", "keygen", "--private", keys["key"], "--public", tmp_path / "x.pub")
    assert res.exit_code == 2 and "already exists" in res.output


def test_sign_then_verify(keys: dict[str, Path], table: Path) -> None:
    res = invoke("data", "sign", table, "--key", keys["key"])
    assert res.exit_code == 0, res.output
    manifest = table.with_name("train.csv.manifest.json")
    assert manifest.exists() and "200 row(s)" in res.output
    res = invoke("data", "verify", table, "--manifest", manifest, "--key", keys["key.pub"])
    assert res.exit_code == 0, res.output
    assert "verified" in res.output


def test_verify_names_changed_rows(keys: dict[str, Path], table: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    assert invoke("data", "sign", table, "--key", keys["key"], "--out", out).exit_code == 0
    lines = table.read_text().splitlines()
    lines[7] = lines[7].replace(",", ",9", 1)  # data row 6 changed (line 0 is the header)
    del lines[51]  # data row 50 removed
    lines.insert(101, lines[100].replace(",", ",7", 1))  # a new row: data row 100
    table.write_text("\n".join(lines) + "\n")
    res = invoke("data", "verify", table, "-m", out, "-k", keys["key.pub"])
    assert res.exit_code == 1, res.output
    assert "NOT VERIFIED" in res.output
    assert "changed  row 6" in res.output
    assert "removed  signed row 50" in res.output
    assert "inserted row 100" in res.output
    res = invoke("data", "verify", table, "-m", out, "-k", keys["key.pub"], "--format", "json")
    assert res.exit_code == 1
    doc = json.loads(res.output)
    assert doc["reason"] == "modified"
    assert doc["rows"]["changed"] == [{"signed_row": 6, "row": 6}]
    assert doc["rows"]["removed"] == [50] and doc["rows"]["inserted"] == [100]


def test_verify_with_another_key_fails(keys: dict[str, Path], table: Path) -> None:
    assert invoke("data", "sign", table, "--key", keys["other"]).exit_code == 0
    res = invoke("data", "verify", table, "--key", keys["key.pub"])
    assert res.exit_code == 1
    assert "signature does not match key" in res.output


def test_bad_inputs_exit_2(keys: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    res = invoke("data", "sign", empty, "--key", keys["key"])
    assert res.exit_code == 2 and "empty.csv: empty file" in res.output
    res = invoke("data", "sign", tmp_path / "missing.csv", "--key", keys["key"])
    assert res.exit_code == 2 and "missing.csv: file not found" in res.output
    res = invoke("data", "verify", tmp_path / "missing.csv", "--key", keys["key.pub"])
    assert res.exit_code == 2 and "file not found" in res.output
    ok = tmp_path / "ok.csv"
    ok.write_text("a\n1\n")
    res = invoke("data", "verify", ok, "--key", keys["key.pub"])
    assert res.exit_code == 2 and "manifest not found" in res.output
    res = invoke("data", "sign", ok, "--key", tmp_path / "nokey")
    assert res.exit_code == 2 and "not found" in res.output
    assert "Traceback" not in res.output


def test_mixed_types_warn_on_sign(keys: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "mixed.csv"
    data.write_text("x\n" + "".join(f"{i}\n" for i in range(30)) + "oops\n")
    res = invoke("data", "sign", data, "--key", keys["key"])
    assert res.exit_code == 0
    assert "column 'x' mixes numbers and text" in res.output


def test_pii_command(tmp_path: Path, table: Path) -> None:
    res = invoke("data", "pii", table)
    assert res.exit_code == 0 and "no personal data found" in res.output
    people = tmp_path / "people.csv"
    people.write_text(
        "full_name,email,iban\n"
        + "".join(f"P {i},p{i}@example.com,GB82 WEST 1234 5698 7654 32\n" for i in range(10))
    )
    res = invoke("data", "pii", people)
    assert res.exit_code == 1
    assert "p***@example.com" in res.output and "p1@example.com" not in res.output
    res = invoke("data", "pii", people, "--format", "json")
    doc = json.loads(res.output)
    assert {(c["column"], c["detector"]) for c in doc["found"]} == {
        ("full_name", "person_name"),
        ("email", "email"),
        ("iban", "iban"),
    }
    res = invoke("data", "pii", tmp_path / "nope.csv")
    assert res.exit_code == 2 and "file not found" in res.output


def test_audit_verifies_the_data_against_its_manifest(
    keys: dict[str, Path], table: Path, tmp_path: Path
) -> None:
    """``mlwarden audit --data-key`` adds the data.manifest check: a changed row fails it."""
    from sklearn.linear_model import LogisticRegression

    from mlwarden.data import load_dataset
    from mlwarden.models import save_skops

    ds = load_dataset(table, label="is_fraud")
    model = save_skops(LogisticRegression(max_iter=200).fit(ds.X, ds.y), tmp_path / "m.skops")
    assert invoke("data", "sign", table, "--key", keys["key"]).exit_code == 0
    base = ("audit", "--model", model, "--data", table, "--label", "is_fraud",
            "--checks", "data", "--out", tmp_path / "r", "--data-key", keys["key.pub"])  # fmt: skip
    ok = invoke(*base)
    assert ok.exit_code == 0, ok.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [f["rule_id"] for f in report["findings"] if not f["passed"]] == []
    lines = table.read_text().splitlines()
    lines[5], lines[6] = lines[6], lines[5]  # two rows swapped
    table.write_text("\n".join(lines) + "\n")
    bad = invoke(*base)
    assert bad.exit_code == 1, bad.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    (failed,) = [f for f in report["findings"] if not f["passed"]]
    assert failed["rule_id"] == "MLW-DAT-003"
    missing = invoke(*base[:-1], tmp_path / "nope.pub")
    assert missing.exit_code == 2
    assert "nope.pub" in missing.output
