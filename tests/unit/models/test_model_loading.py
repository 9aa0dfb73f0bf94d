"""load_model: round trips of the safe formats, scanned pickles, refusal of unsafe ones.

Every unsafe file written here carries a payload that would create a marker directory
if anything deserialised it; each refusal test checks that the marker is still absent,
so no test ever loads an unsafe file.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io  # noqa: F401 - first import walks all of sklearn (and imports torch): ~2-6 s
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mlwarden.exceptions import ModelLoadError, UnsafeModelError
from mlwarden.models import SklearnTarget, load_model, save_skops

try:  # imported here so that their import time is not charged to a test
    import torch
except ImportError:  # pragma: no cover
    torch = None
try:
    import onnxruntime  # noqa: F401
    import skl2onnx
except ImportError:  # pragma: no cover
    skl2onnx = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")
needs_onnx = pytest.mark.skipif(skl2onnx is None, reason="needs onnxruntime and skl2onnx")


class Payload:
    """Pickles to ``os.mkdir(marker)``: loading the pickle would create the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


class Custom:
    """A type outside the skops allowlist; building it would create the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __setstate__(self, state):
        os.mkdir(state["marker"])
        self.__dict__.update(state)


def assert_refused(path: Path, marker: Path, *, what: str = "pickle") -> UnsafeModelError:
    with pytest.raises(UnsafeModelError) as info:
        load_model(path)
    msg = str(info.value)
    assert str(path) in msg
    assert what in msg
    assert not marker.exists(), "the unsafe file was deserialised"
    return info.value


# ------------------------------------------------------------------- skops
@pytest.mark.parametrize("kind", ["lr", "hgb", "rf", "pipeline"])
def test_skops_round_trip(kind, sk_models, data3, tmp_path):
    X, _ = data3
    path = save_skops(sk_models[kind], tmp_path / f"{kind}.skops")
    t = load_model(path)
    assert isinstance(t, SklearnTarget)
    assert t.name == kind and t.source == str(path)
    assert t.fingerprint() is not None and len(t.fingerprint()) == 64
    np.testing.assert_allclose(t.predict_proba(X[:20]), sk_models[kind].predict_proba(X[:20]))
    assert load_model(str(path), name="other").name == "other"


def test_skops_allows_numpy_functions(data3, tmp_path):
    X, y = data3
    est = make_pipeline(FunctionTransformer(np.tanh), LogisticRegression(max_iter=300)).fit(X, y)
    t = load_model(save_skops(est, tmp_path / "fn.skops"))
    np.testing.assert_allclose(t.predict_proba(X[:5]), est.predict_proba(X[:5]))


def test_skops_with_a_custom_type_is_refused(data3, tmp_path):
    X, y = data3
    marker = tmp_path / "pwned"
    est = LogisticRegression(max_iter=300).fit(X, y)
    est.extra_ = Custom(marker)
    path = save_skops(est, tmp_path / "custom.skops")
    err = assert_refused(path, marker, what="MLW-SUP-009")
    assert "Custom" in str(err)


def test_skops_with_a_builtin_function_is_refused(data3, tmp_path):
    X, y = data3
    est = make_pipeline(FunctionTransformer(np.tanh), LogisticRegression(max_iter=300)).fit(X, y)
    est.steps[0][1].func = eval  # never called: the file is refused before loading
    path = save_skops(est, tmp_path / "eval.skops")
    err = assert_refused(path, tmp_path / "unused", what="builtins.eval")
    assert "mlwarden scan" in str(err)


def test_skops_regressor_is_a_load_error(data3, tmp_path):
    X, y = data3
    path = save_skops(LinearRegression().fit(X, y), tmp_path / "reg.skops")
    with pytest.raises(ModelLoadError, match=r"reg\.skops: .*not a classifier"):
        load_model(path)


def test_corrupt_skops_schema(tmp_path):
    path = tmp_path / "bad.skops"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("schema.json", "{not json")
    with pytest.raises(
        ModelLoadError, match=r"bad\.skops: .*schema\.json is not valid JSON"
    ) as info:
        load_model(path)
    assert not isinstance(info.value, UnsafeModelError)


def test_truncated_skops(sk_models, tmp_path):
    path = save_skops(sk_models["lr"], tmp_path / "cut.skops")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match=r"cut\.skops: truncated or corrupt zip archive"):
        load_model(path)


def test_format_is_detected_by_content_not_extension(sk_models, tmp_path):
    path = save_skops(sk_models["lr"], tmp_path / "model.pt")
    assert isinstance(load_model(path), SklearnTarget)


# ------------------------------------------------------------- pickle family
@pytest.mark.parametrize("protocol", [0, 1, 2, 5])
def test_malicious_pickle_is_refused(protocol, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.bin"
    path.write_bytes(pickle.dumps(Payload(marker), protocol=protocol))
    err = assert_refused(path, marker)
    msg = str(err)
    assert "pickle/joblib" in msg and "execute" in msg and "scanner" in msg
    assert "mkdir" in msg and "MLW-SUP-001" in msg
    assert ".skops" in msg and ".onnx" in msg and "TorchScript" in msg


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_benign_sklearn_pickle_loads(protocol, sk_models, data3, tmp_path):
    X, _ = data3
    path = tmp_path / "model.bin"
    path.write_bytes(pickle.dumps(sk_models["pipeline"], protocol=protocol))
    t = load_model(path)
    assert isinstance(t, SklearnTarget) and t.source == str(path) and t.name == "model"
    np.testing.assert_allclose(t.predict_proba(X[:5]), sk_models["pipeline"].predict_proba(X[:5]))


def test_pickle_of_an_estimator_disguised_as_onnx_loads(sk_models, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(pickle.dumps(sk_models["lr"]))
    assert isinstance(load_model(path), SklearnTarget)


def test_pickle_that_is_not_a_model(tmp_path):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps({"a": [1, 2]}))
    with pytest.raises(ModelLoadError, match=r"data\.pkl: .*holds a dict, not a scikit-learn"):
        load_model(path)


@pytest.mark.parametrize("compress", [0, 3, "zlib", "gzip", "bz2", "lzma", "xz"])
def test_malicious_joblib_is_refused(compress, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.joblib"
    joblib.dump(Payload(marker), path, compress=compress)
    assert_refused(path, marker, what="pickle" if compress == 0 else "joblib")


@pytest.mark.parametrize("compress", [0, 3, "gzip", "xz"])
def test_benign_joblib_loads(compress, sk_models, data3, tmp_path):
    X, _ = data3
    path = tmp_path / "model.joblib"
    joblib.dump(sk_models["rf"], path, compress=compress)
    t = load_model(path)
    assert isinstance(t, SklearnTarget)
    np.testing.assert_allclose(t.predict_proba(X[:5]), sk_models["rf"].predict_proba(X[:5]))


def test_gzip_compressed_joblib_named_like_a_safe_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.skops"
    path.write_bytes(gzip.compress(pickle.dumps(Payload(marker), protocol=4)))
    err = assert_refused(path, marker, what="joblib (gzip-compressed pickle)")
    assert "model.skops" in str(err)


def test_custom_class_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "custom.pkl"
    path.write_bytes(pickle.dumps(Custom(marker)))
    err = assert_refused(path, marker)
    assert "Custom" in str(err) and "MLW-SUP-002" in str(err)


@needs_torch
def test_torch_save_state_dict_is_a_clear_error(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(ModelLoadError, match=r"weights\.pt: a state_dict holds weights only"):
        load_model(path)
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(ModelLoadError, match="a state_dict holds weights only"):
        load_model(legacy)


@needs_torch
@pytest.mark.parametrize("legacy", [False, True])
def test_torch_save_of_a_whole_module_loads(legacy, tmp_path):
    from mlwarden.models import TorchTarget

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    path = tmp_path / "net.pt"
    torch.save(net, path, _use_new_zipfile_serialization=not legacy)
    t = load_model(path)
    assert isinstance(t, TorchTarget) and t.input_spec.n_features == 4
    assert list(t.classes) == [0, 1, 2]
    x = np.random.default_rng(0).normal(size=(3, 4))
    with torch.no_grad():
        ref = net(torch.as_tensor(x, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(t.logits(x), ref, atol=1e-6)
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"model": net, "epoch": 1}, ckpt, _use_new_zipfile_serialization=not legacy)
    assert isinstance(load_model(ckpt), TorchTarget)


@needs_torch
def test_malicious_torch_save_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2), "p": Payload(marker)}, path)
    assert_refused(path, marker, what="torch.save checkpoint")
    legacy = tmp_path / "legacy.pt"
    torch.save({"p": Payload(marker)}, legacy, _use_new_zipfile_serialization=False)
    assert_refused(legacy, marker)


# ---------------------------------------------------------------- torchscript
@needs_torch
def test_torchscript_round_trip_restores_metadata(tmp_path):
    from mlwarden.models import TorchTarget, save_torchscript

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    lower = np.array([0.0, -1.0, -np.inf, 0.0])
    mean, std = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 0.5, 1.0])
    path = save_torchscript(
        m,
        tmp_path / "mlp.pt",
        classes=["a", "b", "c"],
        lower=lower,
        upper=10.0,
        feature_names=["w", "x", "y", "z"],
        preprocessing=(mean, std),
    )
    t = load_model(path)
    assert isinstance(t, TorchTarget) and t.name == "mlp" and t.source == str(path)
    spec = t.input_spec
    assert list(t.classes) == ["a", "b", "c"]
    assert spec.feature_names == ("w", "x", "y", "z") and spec.shape == (4,)
    np.testing.assert_array_equal(spec.lower, lower)
    np.testing.assert_array_equal(spec.upper, np.full(4, 10.0))
    x = np.random.default_rng(0).normal(size=(6, 4))
    original = TorchTarget(m, preprocessing=(mean, std))
    np.testing.assert_allclose(t.logits(x), original.logits(x), atol=1e-6)
    np.testing.assert_array_equal(t.encode_labels(["c", "a"]), [2, 0])


@needs_torch
def test_torchscript_cnn_with_probability_output_and_trace_fallback(tmp_path):
    from mlwarden.models import save_torchscript

    class Net(torch.nn.Module):  # **kwargs in forward: torch.jit.script fails, trace works
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 2)
            self.fc = torch.nn.Linear(2 * 2 * 2, 2)

        def forward(self, x, **kwargs):
            return torch.softmax(self.fc(self.conv(x).flatten(1)), dim=1)

    torch.manual_seed(0)
    m = Net()
    path = save_torchscript(
        m, tmp_path / "cnn.pt", classes=[0, 1], input_shape=(1, 3, 3), output="probabilities"
    )
    t = load_model(path)
    assert t.input_spec.shape == (1, 3, 3) and t.input_spec.n_features == 9
    assert t.capabilities.names() == ["labels", "scores", "gradients", "trainable"]
    x = np.random.default_rng(0).uniform(size=(5, 9))
    with torch.no_grad():
        ref = m(torch.as_tensor(x, dtype=torch.float32).reshape(5, 1, 3, 3)).numpy()
    np.testing.assert_allclose(t.predict_proba(x), ref, atol=1e-6)


@needs_torch
def test_plain_torchscript_without_metadata(tmp_path):
    import warnings

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mlp = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 2)))
        mlp.save(str(tmp_path / "plain.pt"))
        conv = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 2), torch.nn.Flatten()))
        conv.save(str(tmp_path / "conv.pt"))
    t = load_model(tmp_path / "plain.pt")
    assert t.input_spec.n_features == 3 and list(t.classes) == [0, 1]
    with pytest.raises(ModelLoadError, match=r"conv\.pt: .*input_shape.*save_torchscript"):
        load_model(tmp_path / "conv.pt")


def _rewrite_zip(src: Path, dst: Path, edit) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            zout.writestr(info, data)


@needs_torch
def test_corrupt_torchscript_files(tmp_path):
    from mlwarden.models import save_torchscript

    good = save_torchscript(torch.nn.Linear(3, 2), tmp_path / "good.pt", classes=[0, 1])
    bad_code = tmp_path / "bad_code.pt"
    _rewrite_zip(good, bad_code, lambda n, d: b"def forward(:\n" if n.endswith(".py") else d)
    with pytest.raises(ModelLoadError, match=r"bad_code\.pt: corrupt or unsupported TorchScript"):
        load_model(bad_code)
    bad_meta = tmp_path / "bad_meta.pt"
    _rewrite_zip(good, bad_meta, lambda n, d: b"[1, 2" if n.endswith("mlwarden.json") else d)
    with pytest.raises(ModelLoadError, match=r"bad_meta\.pt: invalid mlwarden metadata"):
        load_model(bad_meta)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ModelLoadError, match=r"cut\.pt: truncated or corrupt zip"):
        load_model(cut)


# ----------------------------------------------------------------------- onnx
@needs_onnx
def test_onnx_round_trip(data3_str, tmp_path):
    from mlwarden.models import OnnxTarget

    X, y = data3_str
    est = LogisticRegression(max_iter=300).fit(X, y)
    onx = skl2onnx.to_onnx(est, X[:1].astype(np.float32), options={"zipmap": False})
    for name in ("lr.onnx", "lr.bin"):  # the extension is only a hint
        path = tmp_path / name
        path.write_bytes(onx.SerializeToString())
        t = load_model(path)
        assert isinstance(t, OnnxTarget) and t.name == "lr" and t.source == str(path)
        assert list(t.classes) == ["ant", "bee", "cat"]
        np.testing.assert_allclose(t.predict_proba(X[:5]), est.predict_proba(X[:5]), atol=1e-5)


@needs_onnx
def test_corrupt_onnx(tmp_path):
    path = tmp_path / "net.onnx"
    path.write_bytes(b"\x08\x07" + bytes(range(200)))
    with pytest.raises(ModelLoadError, match=r"net\.onnx: the model-file scanner could not scan"):
        load_model(path)


# ---------------------------------------------------------------- bad files
def test_missing_file(tmp_path):
    path = tmp_path / "nope.skops"
    with pytest.raises(ModelLoadError, match=r"nope\.skops: model file not found"):
        load_model(path)


def test_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="is a directory"):
        load_model(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.touch()
    with pytest.raises(ModelLoadError, match=r"empty\.onnx: the file is empty"):
        load_model(path)


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(seed, tmp_path):
    path = tmp_path / f"random{seed}.dat"
    path.write_bytes(np.random.default_rng(seed).bytes(4096))
    with pytest.raises(ModelLoadError, match=rf"random{seed}\.dat") as info:
        load_model(path)
    assert "Traceback" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"hello, this is not a model\n", "unrecognised model file format"),
        (json.dumps({"weights": [1, 2]}).encode(), "unrecognised model file format"),
        (gzip.compress(b"just,a,csv\n1,2,3\n"), "gzip-compressed file that holds no model"),
    ],
)
def test_unknown_formats_list_the_supported_ones(content, match, tmp_path):
    path = tmp_path / "thing.model"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=match) as info:
        load_model(path)
    msg = str(info.value)
    assert str(path) in msg and "skops" in msg and "TorchScript" in msg and "ONNX" in msg
    assert not isinstance(info.value, UnsafeModelError)


def test_other_zip_archives(tmp_path):
    path = tmp_path / "arrays.npz"
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(3))
    path.write_bytes(buf.getvalue())
    with pytest.raises(ModelLoadError, match="neither skops nor TorchScript"):
        load_model(path)


def test_pickle_extension_without_pickle_content(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(b"plain text")
    with pytest.raises(ModelLoadError, match=r"\.pkl extension but is neither"):
        load_model(path)


@needs_torch
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_untraceable_module_is_not_saved(tmp_path):
    from mlwarden.exceptions import InvalidParameterError
    from mlwarden.models import save_torchscript

    class Branchy(torch.nn.Module):  # not scriptable (**kwargs), and data-dependent
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x, **kwargs):
            if bool(x.abs().sum() == 0):
                return torch.zeros(x.shape[0], 2)
            return self.fc(x)

    with pytest.raises(InvalidParameterError, match="trace gives different outputs"):
        save_torchscript(Branchy(), tmp_path / "branchy.pt", classes=[0, 1])
    assert not (tmp_path / "branchy.pt").exists()
