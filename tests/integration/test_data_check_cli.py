"""``mlwarden data check`` end to end: exit codes, reports, the cleaned file, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from mlwarden.cli.data_check import register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    data_app = typer.Typer()
    register(data_app)

    @data_app.callback()
    def _group() -> None:
        """Data commands."""

    return data_app


def _csv(path: Path, X: np.ndarray, y: np.ndarray) -> Path:
    lines = ["a,b,target"] + [f"{r[0]:.6f},{r[1]:.6f},{c}" for r, c in zip(X, y, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _separable(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-4, 0.5, (n, 2)), rng.normal(4, 0.5, (n, 2))])
    return X, np.repeat([0, 1], n)


def test_conflicting_duplicate_is_found_and_cleaned(app: typer.Typer, tmp_path: Path) -> None:
    X, y = _separable()
    X = np.vstack([X, X[:1]])
    y = np.append(y, 1)
    data = _csv(tmp_path / "train.csv", X, y)
    out, clean = tmp_path / "report.json", tmp_path / "clean.csv"
    res = CliRunner().invoke(
        app,
        ["check", str(data), "--label", "target", "--no-backdoor", "--write-clean",
         str(clean), "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "label conflict" in res.output
    report = json.loads(out.read_text())
    dropped = {r["row"] for r in report["rows"] if r["dropped"]}
    assert {0, len(y) - 1} <= dropped
    assert clean.exists()
    assert len(clean.read_text().strip().splitlines()) == 1 + len(y) - report["summary"]["dropped"]


def test_json_format(app: typer.Typer, tmp_path: Path) -> None:
    X, y = _separable()
    data = _csv(tmp_path / "train.csv", X, y)
    res = CliRunner().invoke(
        app, ["check", str(data), "--label", "target", "--no-backdoor", "--format", "json"]
    )
    assert res.exit_code in (0, 1), res.output
    payload = json.loads(res.output)
    assert payload["summary"]["rows"] == len(y)


def test_missing_label_column_lists_columns(app: typer.Typer, tmp_path: Path) -> None:
    X, y = _separable(10)
    data = _csv(tmp_path / "train.csv", X, y)
    res = CliRunner().invoke(app, ["check", str(data), "--label", "is_fraud"])
    assert res.exit_code == 2
    assert "is_fraud" in res.output and "target" in res.output and "Traceback" not in res.output


def test_mixed_types_in_a_column(app: typer.Typer, tmp_path: Path) -> None:
    data = tmp_path / "mixed.csv"
    data.write_text("a,b,target\n1,2,0\n3,oops,1\n5,6,0\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["check", str(data), "--label", "target"])
    assert res.exit_code == 2
    assert "'b'" in res.output and "oops" in res.output


def test_empty_file(app: typer.Typer, tmp_path: Path) -> None:
    data = tmp_path / "empty.csv"
    data.write_text("", encoding="utf-8")
    res = CliRunner().invoke(app, ["check", str(data), "--label", "target"])
    assert res.exit_code == 2
    assert "empty" in res.output


def test_unsafe_model_file_is_refused(app: typer.Typer, tmp_path: Path) -> None:
    import pickle

    X, y = _separable(10)
    data = _csv(tmp_path / "train.csv", X, y)
    bad = tmp_path / "model.pkl"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, ("echo pwned",))

    bad.write_bytes(pickle.dumps(Evil()))
    res = CliRunner().invoke(app, ["check", str(data), "--label", "target", "--model", str(bad)])
    assert res.exit_code == 2
    assert "pwned" not in res.output


def test_clean_data_exits_0(app: typer.Typer, tmp_path: Path) -> None:
    X, y = _separable()
    data = _csv(tmp_path / "train.csv", X, y)
    res = CliRunner().invoke(app, ["check", str(data), "--label", "target", "--no-backdoor"])
    assert res.exit_code == 0, res.output
    assert "0 dropped" in res.output


def test_wired_into_mlwarden_data(tmp_path: Path) -> None:
    from mlwarden.cli.app import app as main_app

    X, y = _separable()
    data = _csv(tmp_path / "train.csv", X, y)
    res = CliRunner().invoke(
        main_app, ["data", "check", str(data), "--label", "target", "--no-backdoor"]
    )
    assert res.exit_code == 0, res.output


def test_personal_data_in_the_training_file_is_reported(tmp_path):
    """The PII scan joins data check: raw card numbers used as a feature are found."""
    import json

    import numpy as np
    import pandas as pd
    from typer.testing import CliRunner

    from mlwarden.cli.app import app

    rng = np.random.default_rng(0)

    def card() -> int:
        digits = [4, *rng.integers(0, 10, 14).tolist()]
        total = sum(
            (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d
            for i, d in enumerate(reversed(digits))
        )
        return int("".join(map(str, [*digits, (10 - total % 10) % 10])))

    n = 120
    frame = pd.DataFrame(
        {
            "amount": rng.normal(50, 10, n).round(2),
            "card_number": [card() for _ in range(n)],
            "label": (rng.random(n) < 0.5).astype(int),
        }
    )
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    res = CliRunner().invoke(
        app, ["data", "check", str(path), "--label", "label", "--no-backdoor", "--format", "json"]
    )
    assert res.exit_code == 1, res.output
    payload = json.loads(res.output)
    assert [f["rule_id"] for f in payload["extra_findings"]] == ["MLW-DAT-001"]
    assert "card_number" in payload["extra_findings"][0]["description"]


def test_text_columns_are_left_out_of_the_detectors_but_scanned_for_pii(tmp_path: Path) -> None:
    """A real export: numeric features plus names and emails. data check runs the poison
    detectors on the numbers, says which columns it left out, and flags the personal data."""
    import json

    import pandas as pd

    from mlwarden.cli.app import app as full_app

    X, y = _separable(60)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    frame["email"] = [f"user{i}@example.com" for i in range(len(frame))]
    frame["name_note"] = ["customer"] * len(frame)
    frame["target"] = y
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False)
    res = CliRunner().invoke(
        full_app, ["data", "check", str(path), "--label", "target", "--no-backdoor"]
    )
    assert res.exit_code == 1, res.output  # the emails
    assert "text columns not used as features" in res.output
    assert "'email'" in res.output and "MLW-DAT-001" in res.output
    res = CliRunner().invoke(
        full_app,
        ["data", "check", str(path), "--label", "target", "--no-backdoor", "--format", "json"],
    )
    payload = json.loads(res.output)
    assert payload["data"]["n_features"] == X.shape[1]
