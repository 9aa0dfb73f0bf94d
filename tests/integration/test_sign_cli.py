"""``mlwarden keygen / sign / verify`` and ``audit --verify-key`` end to end (in-process)."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from mlwarden.cli.app import app
from mlwarden.data import fraud, write_table
from mlwarden.findings.render import load_report_schema
from mlwarden.models import save_skops

runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sign-cli")
    data = fraud(400, random_state=3)
    train, test = data.split(test_size=0.5, random_state=3)
    out = {
        "csv": root / "test.csv",
        "schema": root / "schema.json",
        "model": root / "lr.skops",
        "other_model": root / "other.skops",
        "private": root / "keys" / "signing.key",
        "public": root / "keys" / "signing.pub",
        "other_private": root / "keys" / "other.key",
        "other_public": root / "keys" / "other.pub",
    }
    write_table(test, out["csv"], label="is_fraud")
    data.schema.save(out["schema"])
    for key, c in (("model", 1.0), ("other_model", 0.01)):
        lr = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced"))
        save_skops(lr.fit(train.X, train.labels), out[key])
    for name in ("", "other_"):
        res = invoke("keygen", "--private", out[f"{name}private"], "--public", out[f"{name}public"])
        assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def signed(files, tmp_path) -> Path:
    """A fresh copy of the model, signed (signature next to it: <file>.sig)."""
    model = tmp_path / "lr.skops"
    shutil.copy(files["model"], model)
    res = invoke("sign", model, "--key", files["private"])
    assert res.exit_code == 0, res.output
    assert "lr.skops.sig" in res.output
    return model


def audit_args(files, model, *extra):
    return [
        "audit", "--model", model, "--data", files["csv"], "--label", "is_fraud",
        "--schema", files["schema"], "--positive-label", "1", "--checks",
        "evasion.blackbox", "--max-samples", "8", "--quiet", *extra,
    ]  # fmt: skip


# ------------------------------------------------------------------------ keygen
def test_keygen_writes_keys_and_refuses_to_overwrite(files):
    assert stat.S_IMODE(files["private"].stat().st_mode) == 0o600
    res = invoke("keygen", "--private", files["private"], "--public", files["public"])
    assert res.exit_code == 2
    assert "signing.key: already exists" in res.output


# ---------------------------------------------------------------- sign / verify
def test_verify_ok_exits_0_text_and_json(files, signed):
    res = invoke("verify", signed, "--key", files["public"])
    assert res.exit_code == 0, res.output
    assert "verified" in res.output and "1 file" in res.output
    res = invoke("verify", signed, "--key", files["public"], "--format", "json")
    assert res.exit_code == 0
    doc = json.loads(res.output)
    assert doc["ok"] is True and doc["files_checked"] == 1
    assert doc["key_fingerprint"].startswith("sha256:")


def test_sign_and_verify_a_folder_with_explicit_signature(files, tmp_path):
    folder = tmp_path / "bundle"
    folder.mkdir()
    shutil.copy(files["model"], folder / "model.skops")
    (folder / "config.json").write_text("{}")
    sig = tmp_path / "bundle.sig"
    assert invoke("sign", folder, "--key", files["private"], "-s", sig).exit_code == 0
    res = invoke("verify", folder, "--key", files["public"], "--signature", sig)
    assert res.exit_code == 0 and "2 files" in res.output
    (folder / "config.json").write_text('{"evil": true}')
    (folder / "extra.pkl").write_bytes(b"\x80\x04N.")
    res = invoke("verify", folder, "--key", files["public"], "--signature", sig)
    assert res.exit_code == 1
    assert "changed  config.json" in res.output and "added    extra.pkl" in res.output


def test_tampered_model_exits_1_and_names_the_file(files, signed):
    data = bytearray(signed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    signed.write_bytes(bytes(data))
    res = invoke("verify", signed, "--key", files["public"])
    assert res.exit_code == 1
    assert "NOT VERIFIED" in res.output and "changed: lr.skops" in res.output
    doc = json.loads(invoke("verify", signed, "-k", files["public"], "-f", "json").output)
    assert doc["ok"] is False and doc["changed"] == ["lr.skops"]


def test_wrong_key_corrupt_or_missing_signature_exit_1(files, signed, tmp_path):
    res = invoke("verify", signed, "--key", files["other_public"])
    assert res.exit_code == 1 and "signed with another key" in res.output
    sig = signed.with_name("lr.skops.sig")
    sig.write_text(sig.read_text()[:40])
    res = invoke("verify", signed, "--key", files["public"])
    assert res.exit_code == 1 and "truncated or corrupt" in res.output
    res = invoke("verify", signed, "--key", files["public"], "--signature", tmp_path / "no.sig")
    assert res.exit_code == 1 and "no.sig: signature file not found" in res.output


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing-model", "missing.skops: no such file or folder"),
        ("missing-key", "absent.pub: public key file not found"),
        ("private-as-public", "this is a private key"),
        ("junk-key", "junk.pem: not a PEM public key"),
    ],
)
def test_bad_input_exits_2_without_traceback(files, signed, tmp_path, case, message):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    args = {
        "missing-model": [tmp_path / "missing.skops", "--key", files["public"]],
        "missing-key": [signed, "--key", tmp_path / "absent.pub"],
        "private-as-public": [signed, "--key", files["private"]],
        "junk-key": [signed, "--key", junk],
    }[case]
    res = invoke("verify", *args)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_sign_bad_input_exits_2(files, signed, tmp_path):
    res = invoke("sign", signed, "--key", files["public"])
    assert res.exit_code == 2 and "this is a public key" in res.output
    res = invoke("sign", tmp_path / "nothing", "--key", files["private"])
    assert res.exit_code == 2 and "nothing: no such file or folder" in res.output
    res = invoke("sign", signed, "--key", files["private"], "--password-env", "MLW_NO_SUCH_VAR")
    assert res.exit_code == 2 and "MLW_NO_SUCH_VAR is unset" in res.output


def test_encrypted_key_through_the_environment(tmp_path, signed, monkeypatch):
    monkeypatch.setenv("MLW_TEST_KEY_PASSWORD", "correct horse")
    priv, pub = tmp_path / "enc.key", tmp_path / "enc.pub"
    res = invoke(
        "keygen", "--private", priv, "--public", pub, "--password-env", "MLW_TEST_KEY_PASSWORD"
    )
    assert res.exit_code == 0, res.output
    assert invoke("sign", signed, "--key", priv).exit_code == 2  # no password given
    res = invoke("sign", signed, "--key", priv, "--password-env", "MLW_TEST_KEY_PASSWORD")
    assert res.exit_code == 0, res.output
    assert invoke("verify", signed, "--key", pub).exit_code == 0


def test_help_does_not_import_signing_libraries():
    code = (
        "import sys; from mlwarden.cli.app import app\n"
        "from typer.testing import CliRunner\n"
        "for cmd in (['--help'], ['verify', '--help'], ['sign', '--help']):\n"
        "    r = CliRunner().invoke(app, cmd)\n"
        "    assert r.exit_code == 0, r.output\n"
        "assert 'model_signing' not in sys.modules and 'cryptography' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------ audit
def test_audit_refuses_a_tampered_model_with_mlw_sup_010(files, signed, tmp_path, monkeypatch):
    shutil.copy(files["other_model"], signed)  # a valid model, swapped in after signing
    import mlwarden.models

    def never(*args, **kwargs):
        raise AssertionError("a model that failed verification was loaded")

    monkeypatch.setattr(mlwarden.models, "load_model", never)
    out = tmp_path / "report"
    res = runner.invoke(
        app,
        [str(a) for a in audit_args(files, signed, "--verify-key", files["public"], "--out", out)],
    )
    assert res.exit_code == 1, res.output
    report = json.loads((out / "report.json").read_text())
    assert [f["rule_id"] for f in report["findings"]] == ["MLW-SUP-010"]
    finding = report["findings"][0]
    assert finding["status"] == "fail" and finding["severity"] == "critical"
    assert finding["evidence"]["changed"] == ["lr.skops"] and finding["target"] == "lr"
    assert report["skipped"] == [
        {
            "check": "evasion.blackbox",
            "target": "lr",
            "reason": f"not loaded: {signed} failed signature verification (MLW-SUP-010)",
        }
    ]
    (sig,) = report["provenance"]["signatures"]
    assert sig["ok"] is False and sig["reason"] == "modified"
    assert report["targets"][0]["loaded"] is False
    jsonschema.validate(report, load_report_schema())
    assert "MLW-SUP-010" in (out / "report.html").read_text()


@pytest.mark.slow
def test_audit_records_a_verified_signature(files, signed, tmp_path):
    out = tmp_path / "report"
    args = audit_args(files, signed, "--verify-key", files["public"], "--out", out)
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code in (0, 1), res.output
    report = json.loads((out / "report.json").read_text())
    first = report["findings"][0]
    assert first["rule_id"] == "MLW-SUP-010" and first["status"] == "pass"
    assert first["evidence"]["files_checked"] == 1
    fingerprint = first["evidence"]["key_fingerprint"]
    assert fingerprint in first["description"]
    assert any(f["rule_id"].startswith("MLW-EVA") for f in report["findings"][1:])
    assert report["provenance"]["signatures"][0]["ok"] is True
    assert fingerprint in report["targets"][0]["signature"]
    jsonschema.validate(report, load_report_schema())


def test_audit_signature_without_key_is_bad_usage(files, signed, tmp_path):
    sig = signed.with_name("lr.skops.sig")
    res = runner.invoke(app, [str(a) for a in audit_args(files, signed, "--signature", sig)])
    assert res.exit_code == 2 and "--signature needs --verify-key" in res.output
    res = runner.invoke(
        app,
        [
            str(a)
            for a in audit_args(
                files,
                signed,
                "--verify-key",
                files["public"],
                "--signature",
                sig,
                "--signature",
                sig,
            )
        ],
    )
    assert res.exit_code == 2 and "one per model" in res.output
