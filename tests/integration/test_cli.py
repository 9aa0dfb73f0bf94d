"""The CLI end to end: exit codes, bad inputs, outputs (in-process through typer's runner)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from mlwarden.cli.app import app
from mlwarden.data import fraud, write_table
from mlwarden.models import save_skops

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    data = fraud(1200, random_state=1)
    train, test = data.split(test_size=0.5, random_state=1)
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced"))
    model.fit(train.X, train.labels)
    out = {
        "csv": root / "test.csv",
        "schema": root / "schema.json",
        "frozen_schema": root / "frozen.json",
        "model": root / "lr.skops",
        "three_class": root / "three.skops",
    }
    write_table(test, out["csv"], label="is_fraud")
    out["train_csv"] = root / "train.csv"
    write_table(train, out["train_csv"], label="is_fraud")
    data.schema.save(out["schema"])
    data.schema.with_mutable(data.schema.names, mutable=False).save(out["frozen_schema"])
    save_skops(model, out["model"])
    y3 = np.arange(len(train.X)) % 3
    three = make_pipeline(StandardScaler(), LogisticRegression()).fit(train.X, y3)
    save_skops(three, out["three_class"])
    return out


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def audit_args(files, *extra, model=None, data=None):
    args = [
        "audit", "--model", model or files["model"], "--data", data or files["csv"],
        "--label", "is_fraud", "--schema", files["schema"], "--positive-label", "1",
        "--max-samples", "40", *extra,
    ]  # fmt: skip
    return [str(a) for a in args]


def test_version_and_help():
    res = invoke("--version")
    assert res.exit_code == 0 and res.output.startswith("mlwarden ")
    res = invoke("--help")
    assert res.exit_code == 0 and "audit" in res.output and "demo" in res.output


def test_help_does_not_import_torch():
    code = (
        "import sys; from mlwarden.cli.app import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(app, ['audit', '--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_failing_audit_exits_1_and_writes_every_format(files, tmp_path):
    res = invoke(*audit_args(files, "--out", tmp_path, "--checks", "evasion", "--eps", "1.0"))
    assert res.exit_code == 1, res.output
    for name in ("report.json", "report.html", "report.sarif", "junit.xml"):
        assert (tmp_path / name).stat().st_size > 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert {f["rule_id"] for f in report["findings"]} == {"MLW-EVA-002"}
    # a logistic regression offers neither gradients nor trees, and it returns scores
    assert {s["check"] for s in report["skipped"]} == {"evasion.whitebox", "evasion.decision"}
    assert report["findings"][0]["location"].endswith("lr.skops")


def test_passing_audit_exits_0(files, tmp_path):
    # With nothing under the attacker's control, the model keeps its clean recall.
    args = list(audit_args(files, "--out", tmp_path))
    args[args.index(str(files["schema"]))] = str(files["frozen_schema"])
    res = invoke(*args)
    assert res.exit_code == 0, res.output


def test_fail_on_critical_tolerates_high(files, tmp_path):
    res = invoke(*audit_args(files, "--out", tmp_path, "--fail-on", "critical", "--eps", "0.05"))
    report = json.loads((tmp_path / "report.json").read_text())
    critical = [f for f in report["findings"] if not f["passed"] and f["severity"] == "critical"]
    assert res.exit_code == (1 if critical else 0), res.output


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_model", "model file not found"),
        ("missing_data", "file not found"),
        ("no_label_column", "'nope'"),
        ("nan_features", "NaN"),
        ("class_mismatch", "class count does not match"),
        ("corrupt_model", "corrupt.skops"),
        ("pickle_model", "pickle"),
        ("bad_fail_on", "severity"),
        ("bad_check", "unknown check"),
        ("bad_eps", "eps"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(files, tmp_path, case, expected):
    args = list(audit_args(files, "--out", tmp_path / "r"))
    model_i, data_i = args.index(str(files["model"])), args.index(str(files["csv"]))
    if case == "missing_model":
        args[model_i] = str(tmp_path / "missing.skops")
    elif case == "missing_data":
        args[data_i] = str(tmp_path / "missing.csv")
    elif case == "no_label_column":
        args[args.index("is_fraud")] = "nope"
    elif case == "nan_features":
        text = files["csv"].read_text().splitlines()
        cells = text[5].split(",")
        cells[0] = "nan"
        text[5] = ",".join(cells)
        bad = tmp_path / "nan.csv"
        bad.write_text("\n".join(text) + "\n")
        args[data_i] = str(bad)
    elif case == "class_mismatch":
        args[model_i] = str(files["three_class"])
    elif case == "corrupt_model":
        bad = tmp_path / "corrupt.skops"
        bad.write_bytes(files["model"].read_bytes()[:200])
        args[model_i] = str(bad)
    elif case == "pickle_model":
        bad = tmp_path / "model.pkl"
        bad.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
        args[model_i] = str(bad)
    elif case == "bad_fail_on":
        args += ["--fail-on", "urgent"]
    elif case == "bad_check":
        args += ["--checks", "evasion.nope"]
    elif case == "bad_eps":
        args += ["--eps", "-1"]
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    assert expected in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "r" / "report.json").exists()


def test_unknown_option_is_a_usage_error():
    res = invoke("audit", "--bogus")
    assert res.exit_code == 2


def test_checks_lists_registered_checks():
    res = invoke("checks")
    assert res.exit_code == 0
    assert "evasion.whitebox" in res.output and "MLW-EVA-002" in res.output


def test_privacy_checks_run_with_the_training_rows_and_a_sensitive_column(files, tmp_path):
    res = invoke(
        *audit_args(files, "--out", tmp_path, "--checks", "privacy", "--train-data",
                    files["train_csv"], "--sensitive", "distance_from_home_km")
    )  # fmt: skip
    assert res.exit_code in (0, 1), res.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert {(f["check"], f["rule_id"]) for f in report["findings"]} >= {
        ("privacy.membership", "MLW-PRI-001"),
        ("privacy.attribute", "MLW-PRI-002"),
    }
    assert report["params"]["privacy.membership"]["members"].startswith("<Dataset")

    # Without them, both checks say what they need, and nothing is checked: exit 2.
    res = invoke(
        *audit_args(files, "--out", tmp_path / "bare", "--checks",
                    "privacy.membership,privacy.attribute")
    )  # fmt: skip
    assert res.exit_code == 2
    report = json.loads((tmp_path / "bare" / "report.json").read_text())
    reasons = " ".join(s["reason"] for s in report["skipped"])
    assert "--train-data" in reasons and "--sensitive" in reasons
    # The privacy family also scans the data file for personal data, which needs nothing.
    res = invoke(*audit_args(files, "--out", tmp_path / "family", "--checks", "privacy"))
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "family" / "report.json").read_text())
    assert {f["check"] for f in report["findings"]} == {"data.pii"}
