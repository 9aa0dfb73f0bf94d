"""`mlwarden demo` end to end, as a user runs it (a subprocess), with every output validated."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from mlwarden.findings.render.json import load_report_schema

SARIF_SCHEMA = Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json"


@pytest.mark.slow
def test_demo_trains_saves_audits_and_reports(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "mlwarden", "demo", "--out", str(out), "--n-samples", "6000"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Report: {out / 'report.html'}" in proc.stdout
    for rel in (
        "models/fraud_hgb.skops",
        "models/fraud_mlp.pt",
        "data/fraud_test.csv",
        "data/fraud.schema.json",
        "report.json",
        "report.html",
        "report.sarif",
        "junit.xml",
    ):
        assert (out / rel).stat().st_size > 0, rel

    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, load_report_schema())
    sarif = json.loads((out / "report.sarif").read_text())
    jsonschema.Draft7Validator(json.loads(SARIF_SCHEMA.read_text())).validate(sarif)

    # Every model audited by the white-box check (APGD on the MLP, the tree-reading attack on
    # the trees) and the score-based check; the decision-based check is skipped (scores exist).
    # Its file is scanned and its signature verified; the planted tampered file is caught.
    checks = {(f["target"], f["check"]) for f in report["findings"]}
    models = ("fraud-hgb", "fraud-mlp", "fraud-mlp-hardened", "fraud-mlp-dp")
    per_model = ("evasion.whitebox", "evasion.blackbox", "supplychain.model-file",
                 "supplychain.signature", "privacy.attribute", "theft.extraction")  # fmt: skip
    planted = "fraud_hgb_from_vendor.pkl"
    assert checks == {(m, c) for m in models for c in per_model} | {
        (planted, "supplychain.model-file"),
        ("fraud-hgb", "privacy.membership"),  # the MLPs: no recipe to retrain them
        ("fraud-hgb", "poisoning.backdoor"),  # idem
        ("fraud-hgb", "poisoning.label-flip"),
        ("fraud-mlp-dp", "privacy.dp"),  # the only model trained with DP
        # checks of the data, once per data set: the audit's test file, the training rows
        ("fraud_test.csv", "data.pii"),
        ("fraud_test.csv", "data.manifest"),
        ("fraud-train", "poisoning.training-data"),
        # the demo's own steps: signed training data and a tampered copy, a customer
        # export with personal data, a replayed API query log
        ("fraud_train.csv", "data.manifest"),
        ("fraud_train_tampered.csv", "data.manifest"),
        ("customers_export.csv", "data.pii"),
        ("fraud-hgb API (simulated)", "theft.detect"),
    }
    status = {(f["target"], f["rule_id"]): f["status"] for f in report["findings"]}
    assert status[("fraud_test.csv", "MLW-DAT-003")] == "pass"
    assert status[("fraud_train.csv", "MLW-DAT-003")] == "pass"
    assert status[("fraud_train_tampered.csv", "MLW-DAT-003")] == "fail"
    assert status[("fraud_test.csv", "MLW-DAT-001")] == "pass"
    assert status[("customers_export.csv", "MLW-DAT-001")] == "fail"
    assert status[("fraud-hgb", "MLW-POI-001")] == "fail"  # 1 % poison plants the trigger
    assert status[("fraud-hgb API (simulated)", "MLW-THF-003")] == "fail"
    assert status[("fraud-hgb API (simulated)", "MLW-THF-004")] == "fail"
    detected = [f for f in report["findings"] if f["check"] == "theft.detect"]
    assert all("terminal-" not in f["description"] for f in detected)  # honest: quiet
    supply = {(f["target"], f["rule_id"], f["status"]) for f in report["findings"]
              if f["family"] == "supply_chain"}  # fmt: skip
    assert supply == {(m, r, "pass") for m in models for r in ("MLW-SUP-002", "MLW-SUP-010")} | {
        (planted, "MLW-SUP-001", "fail"),
        ("fraud_test.csv", "MLW-DAT-003", "pass"),  # data integrity is supply chain too
        ("fraud_train.csv", "MLW-DAT-003", "pass"),
        ("fraud_train_tampered.csv", "MLW-DAT-003", "fail"),
    }
    assert (out / "models" / "fraud_hgb.skops.sig").stat().st_size > 0
    assert sorted((s["target"], s["check"]) for s in report["skipped"]) == sorted(
        [(m, "evasion.decision") for m in models]
        + [(m, "privacy.membership") for m in models[1:]]
        + [(m, c) for m in models[1:] for c in ("poisoning.backdoor", "poisoning.label-flip")]
        + [(m, "privacy.dp") for m in models[:3]]
        + [(m, "privacy.inversion") for m in models]  # tabular data: no images to invert
    )
    dp = {f["metric"]: f for f in report["findings"] if f["check"] == "privacy.dp"}
    assert dp["epsilon"]["passed"] and dp["epsilon"]["value"] <= 8.05
    membership = [f for f in report["findings"] if f["check"] == "privacy.membership"]
    assert {f["metric"] for f in membership} == {"auc", "tpr_at_1pct_fpr"}
    rules = {(f["target"], f["rule_id"]) for f in report["findings"]}
    assert {("fraud-hgb", "MLW-EVA-001"), ("fraud-hgb", "MLW-EVA-003"),
            ("fraud-mlp", "MLW-EVA-001"), ("fraud-mlp", "MLW-EVA-005"),
            ("fraud-mlp", "MLW-EVA-006")} <= rules  # fmt: skip
    assert report["errors"] == []
    for target in report["targets"]:
        assert len(target["sha256"]) == 64
    # The demo's defense shows its gain: adversarial training raises robust accuracy.
    robust = {f["target"]: f["value"] for f in report["findings"] if f["rule_id"] == "MLW-EVA-001"}
    assert robust["fraud-mlp-hardened"] > robust["fraud-mlp"] + 0.1
    mlp = report["metrics"]["fraud-mlp"]["evasion.whitebox"]
    assert mlp["clean_accuracy"] > 0.5  # the model catches most frauds before the attack
    curve = mlp["curves"][0]["y"]
    assert all(a >= b for a, b in itertools.pairwise(curve))  # monotone in eps

    html = (out / "report.html").read_text()
    assert "<svg" in html and "MLW-EVA-001" in html and "fraud-hgb" in html
