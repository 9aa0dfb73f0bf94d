"""``mlwarden harden adversarial`` end to end on a tiny TorchScript model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from mlwarden.cli.harden import harden_app
from mlwarden.data import fraud, write_table
from mlwarden.models import save_skops

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")

from mlwarden.models import load_model  # noqa: E402
from mlwarden.models._torch_nets import mlp_classifier, train_classifier  # noqa: E402
from mlwarden.models.torch import METADATA_FILE, TorchTarget, save_torchscript  # noqa: E402

runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: on tiny batches, thread start-up and spinning on a busy machine
    cost far more than the arithmetic."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("harden")
    data = fraud(600, random_state=2)
    y = np.asarray(data.labels, dtype=np.int64)
    mlp = train_classifier(
        mlp_classifier(data.X, 2, hidden=(16,)), data.X, y, epochs=3, balanced=True
    )
    out = {
        "csv": root / "fraud.csv",
        "schema": root / "fraud.schema.json",
        "model": root / "mlp.pt",
        "skops": root / "lr.skops",
    }
    write_table(data, out["csv"], label="is_fraud")
    data.schema.save(out["schema"])
    save_torchscript(
        mlp, out["model"], classes=[0, 1], lower=data.schema.lower,
        upper=data.schema.upper, feature_names=data.feature_names,
    )  # fmt: skip
    save_skops(make_pipeline(StandardScaler(), LogisticRegression()).fit(data.X, y), out["skops"])
    return out


def harden(files: dict[str, Path], out: Path, *extra: str | Path, model: Path | None = None):
    args = [
        "adversarial", "--model", model or files["model"], "--data", files["csv"],
        "--label", "is_fraud", "--schema", files["schema"], "--eps", "0.25",
        "--epochs", "2", "--steps", "3", "--max-samples", "40", "--out", out, *extra,
    ]  # fmt: skip
    return runner.invoke(harden_app, [str(a) for a in args])


def metadata(path: Path) -> dict[str, object]:
    extra = {METADATA_FILE: ""}
    torch.jit.load(str(path), _extra_files=extra)
    return dict(json.loads(extra[METADATA_FILE]))


@pytest.mark.parametrize("method", ["pgd", "trades"])
def test_harden_writes_a_loadable_model_with_the_same_metadata(files, tmp_path, method):
    out = tmp_path / "sub" / "hardened.pt"
    res = harden(files, out, "--method", method, "--positive-label", "1")
    assert res.exit_code == 0, res.output
    assert f"before: {files['model']}" in res.output and f"after:  {out}" in res.output
    assert "class 1" in res.output and "%" in res.output
    assert metadata(out) == metadata(files["model"])
    hardened, original = load_model(out), load_model(files["model"])
    assert isinstance(hardened, TorchTarget)
    assert hardened.predict(np.zeros((1, original.input_spec.n_features))).shape == (1,)
    changed = [
        not torch.equal(a, b)
        for a, b in zip(hardened.module.parameters(), original.module.parameters(), strict=True)
    ]
    assert any(changed)


def one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error:")
    return lines[0]


def test_missing_model_exits_2(files, tmp_path):
    msg = one_line_error(harden(files, tmp_path / "o.pt", model=tmp_path / "nope.pt"))
    assert "nope.pt" in msg
    assert not (tmp_path / "o.pt").exists()


def test_non_torch_model_exits_2(files, tmp_path):
    msg = one_line_error(harden(files, tmp_path / "o.pt", model=files["skops"]))
    assert "PyTorch" in msg and "sklearn" in msg


def test_missing_label_column_exits_2(files, tmp_path):
    args = ["adversarial", "--model", str(files["model"]), "--data", str(files["csv"]),
            "--label", "no_such_column", "--schema", str(files["schema"]),
            "--out", str(tmp_path / "o.pt")]  # fmt: skip
    msg = one_line_error(runner.invoke(harden_app, args))
    assert "no_such_column" in msg


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--method", "fgsm"), "method"),
        (("--eps", "0"), "eps"),
        (("--class-weight", "auto"), "--class-weight"),
    ],
)
def test_bad_parameters_exit_2(files, tmp_path, extra, expected):
    assert expected in one_line_error(harden(files, tmp_path / "o.pt", *extra))


def test_help_does_not_import_torch():
    code = (
        "import sys; from mlwarden.cli.harden import harden_app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(harden_app, ['adversarial', '--help'])\n"
        "assert r.exit_code == 0 and '--eps' in r.output, r.output\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registered_in_the_main_app():
    from mlwarden.cli.app import app

    res = runner.invoke(app, ["harden", "adversarial", "--help"])
    assert res.exit_code == 0, res.output
    assert "--method" in res.output
