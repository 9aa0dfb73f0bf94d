"""``mlwarden harden dp`` end to end on a tiny TorchScript fraud model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlwarden.cli.harden import harden_app
from mlwarden.data import fraud, write_table

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*Optimal order.*:UserWarning"),
]

from mlwarden.models import load_model  # noqa: E402
from mlwarden.models._torch_nets import mlp_classifier, train_classifier  # noqa: E402
from mlwarden.models.torch import TorchTarget, save_torchscript  # noqa: E402

runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("harden-dp")
    data = fraud(400, random_state=2)
    y = np.asarray(data.labels, dtype=np.int64)
    mlp = train_classifier(
        mlp_classifier(data.X, 2, hidden=(8,)), data.X, y, epochs=2, balanced=True
    )
    out = {
        "csv": root / "fraud.csv",
        "schema": root / "fraud.schema.json",
        "model": root / "mlp.pt",
    }
    write_table(data, out["csv"], label="is_fraud")
    data.schema.save(out["schema"])
    save_torchscript(
        mlp, out["model"], classes=[0, 1], lower=data.schema.lower,
        upper=data.schema.upper, feature_names=data.feature_names,
    )  # fmt: skip
    return out


def harden_dp(files: dict[str, Path], out: Path, *extra: str | Path):
    args = [
        "dp", "--model", files["model"], "--data", files["csv"], "--label", "is_fraud",
        "--schema", files["schema"], "--epochs", "1", "--batch-size", "50",
        "--accountant", "rdp", "--out", out, *extra,
    ]  # fmt: skip
    return runner.invoke(harden_app, [str(a) for a in args])


@pytest.mark.slow
def test_harden_dp_writes_a_private_model(files, tmp_path):
    out = tmp_path / "dp.pt"
    res = harden_dp(files, out, "--epsilon", "8", "--delta", "1e-5", "--positive-label", "1")
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    assert "(PRV)" in res.output and "(RDP)" in res.output and "epsilon:" in res.output
    assert "noise multiplier" in res.output and "non-private" in res.output
    assert "delta=1e-05" in res.output
    saved = load_model(out)
    assert isinstance(saved, TorchTarget)
    original = load_model(files["model"])
    assert saved.input_spec.feature_names == original.input_spec.feature_names
    assert saved.predict(np.zeros((2, saved.input_spec.n_features))).shape == (2,)
    changed = [
        not torch.equal(a, b)
        for a, b in zip(saved.module.parameters(), original.module.parameters(), strict=True)
    ]
    assert any(changed)
    # The file records the guarantee, and the audit's privacy.dp check reads it.
    dp = saved.training["differential_privacy"]
    assert 0 < dp["epsilon_prv"] <= 8.05 and dp["delta"] == 1e-5 and dp["n_samples"] > 0
    assert not original.training
    from mlwarden.audit.runner import audit
    from mlwarden.data import load_dataset

    data = load_dataset(files["csv"], label="is_fraud", schema=files["schema"])
    report = audit(saved, data, checks=["privacy.dp"])
    assert {(f.metric, f.passed) for f in report.findings} == {
        ("epsilon", True),
        ("delta_times_n", True),
        ("poisson_sampling", True),
    }
    report = audit(saved, data, checks=["privacy.dp"], check_params={
        "privacy.dp": {"max_epsilon": 0.5}})  # fmt: skip
    assert not next(f for f in report.findings if f.metric == "epsilon").passed
    (skip,) = audit(original, data, checks=["privacy.dp"]).skipped
    assert "harden dp" in skip["reason"]


def one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error:")
    return lines[0]


@pytest.mark.parametrize("bad", ["-1", "nan", "0", "inf"])
def test_bad_epsilon_is_a_one_line_error(files, tmp_path, bad):
    line = one_line_error(harden_dp(files, tmp_path / "x.pt", "--epsilon", bad))
    assert "--epsilon" in line
    assert not (tmp_path / "x.pt").exists()


def test_delta_at_least_one_over_n_refused(files, tmp_path):
    line = one_line_error(harden_dp(files, tmp_path / "x.pt", "--delta", "0.01"))
    assert "--delta" in line and "1 / n" in line
