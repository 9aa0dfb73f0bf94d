"""Keras: .keras archives and .h5 files; the JSON config is walked at any depth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.supplychain_corpus import (
    _k2_dense,
    _k2_layer,
    _k3,
    _k3_dense,
    _k3_input,
    _k3_lambda,
    _k3_sequential,
    _keras_h5,
    rules_of,
    scan_bytes,
    zip_bytes,
)

from mlwarden.supplychain import Policy, scan_file


def keras_file(tmp_path: Path, config: Any, name: str = "m.keras") -> Path:
    p = tmp_path / name
    p.write_bytes(
        zip_bytes(
            [
                ("metadata.json", b'{"keras_version": "3.4.1"}'),
                ("config.json", json.dumps(config).encode()),
                ("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64),
            ]
        )
    )
    return p


def test_benign_sequential(tmp_path: Path) -> None:
    r = scan_file(keras_file(tmp_path, _k3_sequential([_k3_input(), _k3_dense("d", 2)])))
    assert (r.format, r.verdict.value, r.errors) == ("keras", "safe", [])
    assert any("serialised objects checked" in n for n in r.notes)


def test_lambda_deep_inside_a_nested_model_and_a_wrapper(tmp_path: Path) -> None:
    inner = _k3(
        "keras.src.models.functional",
        "Functional",
        {"layers": [_k3("keras.layers", "TimeDistributed", {"layer": _k3_lambda()})]},
    )
    outer = _k3_sequential([_k3_input(), _k3_dense("d", 4), inner])
    r = scan_file(keras_file(tmp_path, outer))
    lam = [i for i in r.issues if i.construct.startswith("Lambda layer")]
    assert len(lam) == 1
    assert lam[0].location == "config.json:config.layers[2].config.layers[0].config.layer"
    assert rules_of(r) == {"MLW-SUP-005"}


def test_lambda_in_bidirectional(tmp_path: Path) -> None:
    cfg = _k3_sequential(
        [
            _k3(
                "keras.layers",
                "Bidirectional",
                {"layer": _k3_lambda(), "backward_layer": _k3_lambda("b")},
            )
        ]
    )
    r = scan_file(keras_file(tmp_path, cfg))
    assert sum(i.construct.startswith("Lambda") for i in r.issues) == 2


@pytest.mark.parametrize(
    ("obj", "construct"),
    [
        ({"module": "os", "class_name": "function", "config": "system"}, "module os"),
        ({"module": "builtins", "class_name": "function", "config": "eval"}, "module builtins"),
        ({"class_name": "__lambda__", "config": {"code": "4wEAAA=="}}, "serialised Python lambda"),
        ({"class_name": "os.system", "config": {}}, "class_name os.system"),
        ({"class_name": "__import__", "config": {}}, "class_name __import__"),
        (
            {"module": "keras.layers", "class_name": "TFSMLayer", "config": {"filepath": "/x"}},
            "TFSMLayer",
        ),
        (
            {"module": "my_pkg", "class_name": "L", "registered_name": "MyPkg>L"},
            "custom object MyPkg>L",
        ),
        ({"module": 3, "class_name": "Dense"}, "module 3"),
    ],
)
def test_code_outside_keras(tmp_path: Path, obj: dict[str, Any], construct: str) -> None:
    dense = _k3_dense("d", 2, activation=obj)
    r = scan_file(keras_file(tmp_path, _k3_sequential([dense])))
    assert rules_of(r) == {"MLW-SUP-005"}
    assert any(i.construct.startswith(construct) for i in r.issues)


def test_keras_special_markers_are_fine(tmp_path: Path) -> None:
    dense = _k3_dense("d", 2)
    dense["config"]["shape"] = {"class_name": "__tuple__", "config": {"value": [1, 2]}}
    assert scan_file(keras_file(tmp_path, _k3_sequential([dense]))).verdict.value == "safe"


def test_policy_allows_a_trusted_custom_layer(tmp_path: Path) -> None:
    layer = _k3("my_pkg.layers", "Gate", {}, registered_name="MyPkg>Gate")
    p = keras_file(tmp_path, _k3_sequential([layer]))
    assert scan_file(p).verdict.value == "unsafe"
    policy = Policy(allow=frozenset({"my_pkg.layers.Gate"}))
    assert scan_file(p, policy=policy).verdict.value == "safe"


def test_invalid_config_json_is_an_error(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, zip_bytes([("config.json", b"{nope"), ("metadata.json", b"{}")]))
    assert (r.format, r.verdict.value) == ("keras", "error")


def test_absurdly_deep_json_is_an_error_not_a_crash(tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    r = scan_bytes(tmp_path, zip_bytes([("config.json", deep), ("metadata.json", b"{}")]))
    assert r.verdict.value == "error"
    assert "internal error" not in r.errors[0]


def test_h5_benign_and_lambda(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    _keras_h5(tmp_path / "ok.h5", [_k2_dense("d", 2)])
    r = scan_file(tmp_path / "ok.h5")
    assert (r.format, r.verdict.value, r.errors) == ("keras-h5", "safe", [])
    lam = _k2_layer(
        "Lambda", {"name": "l", "function": ["4wEAAA==", None, None], "function_type": "lambda"}
    )
    _keras_h5(tmp_path / "bad.h5", [_k2_dense("d", 2), _k2_layer("Bidirectional", {"layer": lam})])
    bad = scan_file(tmp_path / "bad.h5")
    assert rules_of(bad) == {"MLW-SUP-005"}
    assert bad.issues[0].location == "model_config:config.layers[1].config.layer"


def test_h5_without_a_model_config_is_plain_hdf5(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.create_dataset("x", data=[1, 2, 3])
    r = scan_file(tmp_path / "w.h5")
    assert (r.format, r.verdict.value) == ("hdf5", "safe")


def test_corrupt_hdf5_is_an_error(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    r = scan_bytes(tmp_path, b"\x89HDF\r\n\x1a\n" + b"\xff" * 200, "bad.h5")
    assert (r.format, r.verdict.value) == ("hdf5", "error")


# ----------------------------------------------------------- the HDF5 reader process
def _reader(monkeypatch, script: str):
    from mlwarden.supplychain.scan import keras

    monkeypatch.setattr(keras, "_H5_READER", script)
    reader = keras._H5Reader()
    return keras, reader


def test_a_hanging_hdf5_reader_is_killed_and_the_file_gets_an_error(monkeypatch, tmp_path):
    keras, reader = _reader(monkeypatch, "import time; time.sleep(60)")
    monkeypatch.setattr(keras, "H5_TIMEOUT", 0.5)
    with pytest.raises(ValueError, match="gave up after"):
        reader.read(tmp_path / "model.h5")
    assert reader._proc is None  # killed, not left behind


def test_a_crashing_hdf5_reader_gives_an_error_and_a_fresh_reader_next_time(monkeypatch, tmp_path):
    _, reader = _reader(monkeypatch, "import sys; sys.stdin.readline(); sys.exit(3)")
    with pytest.raises(ValueError, match="crashed"):
        reader.read(tmp_path / "a.h5")
    with pytest.raises(ValueError, match="crashed"):
        reader.read(tmp_path / "b.h5")


def test_the_hdf5_reader_process_is_reused_across_files(tmp_path):
    pytest.importorskip("h5py")
    from mlwarden.supplychain.scan import keras

    reader = keras._H5Reader()
    try:
        for name in ("a.h5", "b.h5"):
            _keras_h5(tmp_path / name, [_k2_dense("dense", 2)])
        first = reader.read(tmp_path / "a.h5")
        pid = reader._proc.pid
        second = reader.read(tmp_path / "b.h5")
        assert reader._proc.pid == pid
        assert "model_config" in first and "model_config" in second
        with pytest.raises(ValueError, match=r"FileNotFoundError|unable to open|No such file"):
            reader.read(tmp_path / "missing.h5")
        assert reader._proc.pid == pid  # a file the reader cannot open is not a crash
    finally:
        reader.close()
