"""safe_load: benign files load, unsafe ones are refused before anything runs.

Every unsafe file carries a payload that would create a marker directory if it were
deserialised; each refusal checks that the marker is still absent.
"""

from __future__ import annotations

import gzip
import ipaddress
import os
import pickle
import struct
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mlwarden.exceptions import ModelLoadError, UnsafeModelError
from mlwarden.supplychain.pickle_scan import scan_pickle
from mlwarden.supplychain.policy import Policy
from mlwarden.supplychain.safe_load import (
    RefusedGlobalError,
    load_vetted,
    restricted_pickle_module,
    safe_load,
)

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")


class Payload:
    """Pickles to ``os.mkdir(marker)``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=60, n_features=4, random_state=0)


@pytest.fixture(scope="module")
def models(data):
    X, y = data
    frame = pd.DataFrame({"c": np.array(["a", "b", "c"])[np.arange(60) % 3], "x": X[:, 0]})
    text_pipe = make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression())
    return {
        "lr": LogisticRegression().fit(X, y),
        "rf": RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y),
        "frame": text_pipe.fit(frame[["c"]], y),
        "inputs": {"lr": X, "rf": X, "frame": frame[["c"]]},
    }


def refused(path: Path, marker: Path, *, match: str = "") -> UnsafeModelError:
    with pytest.raises(UnsafeModelError) as info:
        safe_load(path)
    msg = str(info.value)
    assert str(path) in msg and match in msg
    assert not marker.exists(), "the unsafe file was deserialised"
    return info.value


# ------------------------------------------------------------------- benign
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(models, data, protocol, tmp_path):
    X, _ = data
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(models["rf"], protocol=protocol))
    loaded = load_vetted(path)
    assert loaded.format == "pickle" and loaded.scans[0].complete
    np.testing.assert_array_equal(loaded.obj.predict(X), models["rf"].predict(X))


@pytest.mark.parametrize("compress", [0, 3, "gzip", "bz2", "lzma", "xz"])
@pytest.mark.parametrize("name", ["rf", "frame"])
def test_joblib_round_trip(models, name, compress, tmp_path):
    path = tmp_path / "m.joblib"
    joblib.dump(models[name], path, compress=compress)
    loaded = load_vetted(path)
    assert loaded.format.startswith("joblib")
    est = loaded.obj
    assert type(est) is type(models[name])
    X = models["inputs"][name]
    np.testing.assert_array_equal(est.predict_proba(X), models[name].predict_proba(X))


def test_timezone_aware_frames_use_the_guarded_getattr(tmp_path):
    frame = pd.DataFrame({"t": pd.date_range("2020", periods=3, tz="Europe/Paris")})
    for protocol in (2, 4):
        path = tmp_path / f"f{protocol}.pkl"
        path.write_bytes(pickle.dumps(frame, protocol=protocol))
        pd.testing.assert_frame_equal(safe_load(path), frame)


def test_policy_allows_a_class_off_the_allowlist(tmp_path):
    path = tmp_path / "ip.pkl"
    path.write_bytes(pickle.dumps(ipaddress.IPv4Address("10.0.0.1")))
    with pytest.raises(UnsafeModelError, match=r"ipaddress\.IPv4Address"):
        safe_load(path)
    policy = Policy(allow=frozenset({"ipaddress.IPv4Address"}))
    assert safe_load(path, policy=policy) == ipaddress.IPv4Address("10.0.0.1")


# ------------------------------------------------------------------- unsafe
@pytest.mark.parametrize("protocol", [0, 1, 2, 4, 5])
def test_malicious_pickle_is_refused(protocol, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Payload(marker), protocol=protocol))
    err = refused(path, marker, match="mkdir")
    assert "MLW-SUP-001" in str(err)


@pytest.mark.parametrize("compress", [0, 3, "gzip", "xz"])
def test_malicious_joblib_is_refused(compress, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.joblib"
    joblib.dump([np.arange(10.0), Payload(marker)], path, compress=compress)
    refused(path, marker, match="mkdir")


def test_payload_in_a_joblib_object_array_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.joblib"
    joblib.dump({"o": np.array([Payload(marker), "x"], dtype=object)}, path)
    err = refused(path, marker)
    assert "MLW-SUP-004" in str(err)


def test_nested_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Nested:
        def __reduce__(self):
            return (pickle.loads, (pickle.dumps(Payload(marker)),))

    path = tmp_path / "nested.pkl"
    path.write_bytes(pickle.dumps(Nested(), protocol=4))
    err = refused(path, marker)
    assert "MLW-SUP-004" in str(err) and "pickle.loads" in str(err)


def test_truncated_file_is_refused_as_unscannable(models, tmp_path):
    path = tmp_path / "cut.pkl"
    data = pickle.dumps(models["lr"], protocol=4)
    path.write_bytes(data[: len(data) // 2])
    refused(path, tmp_path / "unused", match="could not be scanned completely")


def test_data_after_the_pickle_is_refused(models, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "stacked.pkl"
    path.write_bytes(pickle.dumps(1) + pickle.dumps(Payload(marker)))
    refused(path, marker, match="follow the end of the pickle")


def test_old_joblib_companion_files_are_refused(tmp_path):
    path = tmp_path / "old.pkl"
    path.write_bytes(b"ZF0x1234" + bytes(40))
    refused(path, tmp_path / "unused", match="joblib < 0.10")


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.joblib"
    path.write_bytes(gzip.compress(pickle.dumps(bytes(5_000_000))))
    with pytest.raises(ModelLoadError, match="decompresses to more than"):
        safe_load(path, policy=Policy(max_file_bytes=1_000_000))
    big = Policy(max_file_bytes=10)
    with pytest.raises(ModelLoadError, match="max_file_bytes"):
        safe_load(path, policy=big)


@pytest.mark.parametrize(
    ("content", "match"),
    [(None, "not found"), (b"", "empty"), (b"not a pickle at all", "could not be scanned")],
)
def test_bad_files(content, match, tmp_path):
    path = tmp_path / "x.bin"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=match) as info:
        safe_load(path)
    assert str(path) in str(info.value)


# ---------------------------------------------- the loader's own line of defence
def test_restricted_module_refuses_even_without_a_scan(tmp_path):
    marker = tmp_path / "pwned"
    mod = restricted_pickle_module()
    with pytest.raises(RefusedGlobalError, match="mkdir"):
        mod.loads(pickle.dumps(Payload(marker)))
    assert not marker.exists()
    assert mod.loads(pickle.dumps({"a": [1, 2]})) == {"a": [1, 2]}


def _import_only(module: str, name: str) -> bytes:
    """A protocol-4 pickle whose value is the global itself (imported, never called)."""

    def u(s: str) -> bytes:
        return b"\x8c" + bytes([len(s)]) + s.encode()

    return b"\x80\x04" + u(module) + u(name) + b"\x93."


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("collections", "OrderedDict"),
        ("numpy", "ndarray"),
        ("sklearn.linear_model._logistic", "LogisticRegression"),
        ("os", "system"),
        ("posix", "system"),
        ("subprocess", "Popen"),
        ("mypkg", "Net"),
        ("numpy", "os.system"),
        ("zoneinfo", "ZoneInfo._unpickle"),
        ("collections", "OrderedDict.__init__"),
        ("__builtin__", "eval"),
        ("copy_reg", "_reconstructor"),
        ("ipaddress", "IPv4Address"),
    ],
)
def test_scanner_and_loader_agree(module, name):
    data = _import_only(module, name)
    scanner_ok = scan_pickle(data, path="x").issues == []
    try:
        restricted_pickle_module().loads(data)
        loader_ok = True
    except RefusedGlobalError:
        loader_ok = False
    assert scanner_ok == loader_ok


def test_guarded_getattr_only_resolves_allowed_names():
    def u(s: str) -> bytes:
        return b"\x8c" + bytes([len(s)]) + s.encode()

    def getattr_of(module: str, name: str, attr: str) -> bytes:
        head = b"\x80\x04" + u("builtins") + u("getattr") + b"\x93"
        return head + u(module) + u(name) + b"\x93" + u(attr) + b"\x86R."

    mod = restricted_pickle_module()
    import zoneinfo

    assert mod.loads(getattr_of("zoneinfo", "ZoneInfo", "_unpickle")) == (
        zoneinfo.ZoneInfo._unpickle
    )
    with pytest.raises(RefusedGlobalError, match=r"OrderedDict\.__init__"):
        mod.loads(getattr_of("collections", "OrderedDict", "__init__"))


# --------------------------------------------------------------------- torch
@needs_torch
def test_torch_checkpoints_load(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    ckpt = {"model": net.state_dict(), "epoch": 2}
    for legacy in (False, True):
        path = tmp_path / f"ckpt{legacy}.pt"
        torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
        loaded = load_vetted(path)
        assert loaded.format == ("pytorch-legacy" if legacy else "pytorch-zip")
        assert torch.equal(loaded.obj["model"]["0.weight"], net[0].weight)
        whole = tmp_path / f"net{legacy}.pt"
        torch.save(net, whole, _use_new_zipfile_serialization=not legacy)
        again = safe_load(whole)
        x = torch.randn(2, 3)
        assert torch.allclose(again(x), net(x))


@needs_torch
@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_torch_checkpoint_is_refused(legacy, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "x": Payload(marker)}, path,
               _use_new_zipfile_serialization=not legacy)  # fmt: skip
    refused(path, marker, match="mkdir")


@needs_torch
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_is_not_loaded_by_safe_load(tmp_path):
    path = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(ModelLoadError, match="TorchScript"):
        safe_load(path)


@needs_torch
def test_torch_zip_with_a_rewritten_data_pkl_is_scanned(tmp_path):
    """The scanner reads data.pkl through torch's own reader (no zipfile differential)."""
    import zipfile

    marker = tmp_path / "pwned"
    good = tmp_path / "good.pt"
    torch.save({"w": torch.zeros(2)}, good)
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(evil, "w") as zout:
        for info in zin.infolist():
            body = zin.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                body = pickle.dumps(Payload(marker), protocol=2)
            zout.writestr(info, body)
    refused(evil, marker)
    assert struct.calcsize("<Q") == 8
