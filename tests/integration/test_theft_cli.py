"""``mlwarden theft detect`` end to end (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlwarden.cli.app import app
from mlwarden.data import fraud, write_table
from mlwarden.theft.querylog import write_query_log

runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("theft-cli")
    data = fraud(3000, random_state=5)
    rng = np.random.default_rng(0)
    ref = data.X[:1500]
    write_table(
        type(data)(X=ref, y=data.y[:1500], schema=data.schema, name="ref"),
        root / "ref.csv",
        label="is_fraud",
    )
    pool = data.X[1500:]
    benign = [
        (f"user{c}", row, 0)
        for c in range(4)
        for row in pool[rng.choice(len(pool), 200, replace=False)]
    ]
    x0 = pool[0]
    probe = [("prober", x0 * (1 + 1e-3 * rng.normal(size=x0.size)), 0) for _ in range(60)]
    lo, hi = data.schema.lower, data.schema.upper
    uniform = [("scraper", rng.uniform(lo, hi), 1) for _ in range(60)]
    mixed = benign[:400] + probe + uniform + benign[400:]
    out = {
        "ref": root / "ref.csv",
        "attacks": write_query_log(root / "attacks.jsonl", mixed),
        "benign": write_query_log(root / "benign.jsonl", benign),
        "bad": root / "bad.jsonl",
        "short": root / "short.jsonl",
    }
    lines = (root / "benign.jsonl").read_text().splitlines()
    out["bad"].write_text("\n".join([*lines[:5], "{oops", *lines[5:]]) + "\n")
    out["short"].write_text(
        "\n".join([*lines[:3], '{"client": "a", "x": [1, 2, 3]}', *lines[3:]]) + "\n"
    )
    return out


def test_flags_the_prober_and_the_scraper(files):
    result = invoke(
        "theft", "detect", "--log", files["attacks"], "--data", files["ref"], "--label", "is_fraud"
    )
    assert result.exit_code == 1, result.output
    assert "2 client(s) flagged" in result.output
    assert "prober: knn_probe (evasion probing) after" in result.output
    assert "scraper: ood_rate (extraction) after 20 of 60 queries" in result.output
    assert "user" not in result.output.split("flagged:")[1]


def test_json_output(files):
    result = invoke(
        "theft",
        "detect",
        "--log",
        files["attacks"],
        "--data",
        files["ref"],
        "--label",
        "is_fraud",
        "--format",
        "json",
    )
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["queries"] == 920 and doc["clients"] == 6
    flagged = {f["client"]: f for f in doc["flagged"]}
    assert set(flagged) == {"prober", "scraper"}
    alert = flagged["prober"]["alerts"][0]
    assert alert["detector"] == "knn_probe" and alert["query_index"] <= 50
    assert "AML.T0043.001" in alert["atlas"]
    assert set(doc["detectors"]) == {"prada", "knn_probe", "ood_rate"}


def test_benign_log_exits_0_and_self_reference_warns(files):
    result = invoke(
        "theft",
        "detect",
        "--log",
        files["benign"],
        "--data",
        files["ref"],
        "--label",
        "is_fraud",
        "--detectors",
        "knn,ood",
    )
    assert result.exit_code == 0, result.output
    assert "no client flagged" in result.output
    result = invoke("theft", "detect", "--log", files["benign"], "--detectors", "ood_rate")
    assert result.exit_code == 0, result.output
    assert "the log's own queries" in result.output


@pytest.mark.parametrize(
    ("which", "extra", "message"),
    [
        ("bad", (), "bad.jsonl, line 6: not valid JSON"),
        ("short", (), "short.jsonl, line 4: 'x' has 3 features, expected 16"),
        ("benign", ("--detectors", "magic"), "unknown detector(s) magic"),
    ],
)
def test_bad_input_exits_2_with_the_line(files, which, extra, message):
    result = invoke(
        "theft",
        "detect",
        "--log",
        files[which],
        "--data",
        files["ref"],
        "--label",
        "is_fraud",
        *extra,
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_missing_log_exits_2(tmp_path):
    result = invoke("theft", "detect", "--log", tmp_path / "nope.jsonl")
    assert result.exit_code == 2
    assert "no such file" in result.output
