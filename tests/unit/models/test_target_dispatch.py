"""mlwarden.models.target() and the package's lazy, import-light surface."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest

import mlwarden.models as models
from mlwarden.exceptions import InvalidParameterError, ModelLoadError
from mlwarden.models import CallableTarget, SklearnTarget, save_skops, target


def test_public_names():
    assert models.__all__ == [
        "CallableTarget",
        "Capability",
        "InputSpec",
        "SklearnTarget",
        "Target",
        "load_model",
        "save_skops",
        "target",
    ]
    assert {"TorchTarget", "OnnxTarget", "save_torchscript"} <= set(dir(models))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        models.Nope  # noqa: B018


def test_importing_the_package_imports_no_framework():
    code = (
        "import sys, mlwarden, mlwarden.models; "
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'sklearn', 'skops.io') "
        "if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)


def test_targets_pass_through(sk_models):
    t = SklearnTarget(sk_models["lr"])
    assert target(t) is t
    with pytest.raises(InvalidParameterError, match="already a target"):
        target(t, name="x")


def test_sklearn_estimators(sk_models):
    t = target(sk_models["pipeline"], name="pipe")
    assert isinstance(t, SklearnTarget) and t.name == "pipe"


def test_paths(sk_models, tmp_path):
    path = save_skops(sk_models["rf"], tmp_path / "rf.skops")
    assert isinstance(target(path), SklearnTarget)
    assert target(str(path), name="forest").name == "forest"
    with pytest.raises(ModelLoadError, match="not found"):
        target(str(tmp_path / "missing.skops"))


def test_callables():
    t = target(lambda x: np.tile([0.2, 0.8], (len(x), 1)), n_features=3, name="fn")
    assert isinstance(t, CallableTarget) and t.n_classes == 2
    assert t.predict(np.zeros((2, 3))).tolist() == [1, 1]


def test_torch_modules():
    torch = pytest.importorskip("torch")
    from mlwarden.models import TorchTarget

    t = target(torch.nn.Linear(4, 3), classes=["a", "b", "c"])
    assert isinstance(t, TorchTarget) and list(t.classes) == ["a", "b", "c"]


def test_onnx_sessions_and_models(data3):
    ort = pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    from mlwarden.models import OnnxTarget

    X, y = data3
    proto = skl2onnx.to_onnx(
        LogisticRegression(max_iter=300).fit(X, y),
        X[:1].astype(np.float32),
        options={"zipmap": False},
    )
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    assert isinstance(target(session), OnnxTarget)
    assert isinstance(target(proto), OnnxTarget)


@pytest.mark.parametrize("obj", [42, None, np.zeros(3), {"model": 1}])
def test_unknown_objects(obj):
    with pytest.raises(InvalidParameterError, match="cannot wrap a"):
        target(obj)


def test_missing_extras_name_what_to_install(tmp_path):
    # A subprocess where torch and onnxruntime cannot be imported.
    pt = tmp_path / "net.pt"
    with zipfile.ZipFile(pt, "w") as zf:  # looks like TorchScript; never opened here
        zf.writestr("net/code/__torch__/m.py", "")
        zf.writestr("net/constants.pkl", "")
    code = f"""
import sys
sys.modules["torch"] = None
sys.modules["onnxruntime"] = None
from mlwarden.exceptions import MissingDependencyError
from mlwarden.models import load_model
for name, extra in (("TorchTarget", "mlwarden[torch]"), ("OnnxTarget", "mlwarden[onnx]")):
    try:
        getattr(__import__("mlwarden.models", fromlist=["x"]), name)
    except MissingDependencyError as exc:
        assert extra in str(exc), exc
    else:
        raise AssertionError(name)
try:
    load_model({str(pt)!r})
except MissingDependencyError as exc:
    assert "mlwarden[torch]" in str(exc), exc
else:
    raise AssertionError("load_model")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
