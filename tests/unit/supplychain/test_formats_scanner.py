"""The top-level API: scan() over files and folders, scan_file(), exit codes, links."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from tests.supplychain_corpus import MARKER, npy_bytes, payload_pickle, safetensors_bytes

import mlwarden.supplychain
from mlwarden.supplychain import Policy, ScanResult, scan, scan_file
from mlwarden.supplychain.result import EXIT_ERROR, EXIT_OK, EXIT_UNSAFE
from mlwarden.supplychain.scan import safetensors as st_module


def benign_dir(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "b.pkl").write_bytes(pickle.dumps({"a": 1}))
    (root / "a.npy").write_bytes(npy_bytes("<f4", (2,), b"\x00" * 8))
    (root / "sub" / "w.safetensors").write_bytes(safetensors_bytes({}, b""))
    (root / "sub" / "deeper" / "c.pkl").write_bytes(pickle.dumps([1, 2]))
    return root


def test_all_benign_folder_exits_0(tmp_path: Path) -> None:
    r = scan(benign_dir(tmp_path / "m"))
    assert r.exit_code == EXIT_OK
    assert r.safe
    names = [Path(f.path).relative_to(tmp_path / "m").as_posix() for f in r.files]
    assert names == ["a.npy", "b.pkl", "sub/deeper/c.pkl", "sub/w.safetensors"]


def test_one_malicious_file_exits_1(tmp_path: Path) -> None:
    root = benign_dir(tmp_path / "m")
    (root / "sub" / "evil.bin").write_bytes(payload_pickle(tmp_path))
    (root / "unknown.dat").write_text("not a model")  # unsafe wins over error
    r = scan(root)
    assert r.exit_code == EXIT_UNSAFE
    assert [i.rule_id for i in r.issues] == ["MLW-SUP-001"]
    assert not (tmp_path / MARKER).exists()


def test_one_unknown_file_exits_2(tmp_path: Path) -> None:
    root = benign_dir(tmp_path / "m")
    (root / "notes.dat").write_text("hello")  # a .txt would be skipped
    r = scan(root)
    assert r.exit_code == EXIT_ERROR
    bad = [f for f in r.files if f.errors]
    assert len(bad) == 1
    assert "unknown format" in bad[0].errors[0]
    assert "supported:" in bad[0].errors[0]


def test_empty_folder_and_missing_path_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = scan(tmp_path / "empty")
    assert (r.exit_code, r.files) == (EXIT_ERROR, [])
    assert "holds no files" in r.errors[0]
    missing = scan(tmp_path / "nope.pkl")
    assert missing.exit_code == EXIT_ERROR
    assert "no such file" in missing.errors[0]
    assert ScanResult().exit_code == EXIT_ERROR  # nothing scanned is never "safe"


def test_several_paths_files_and_folders(tmp_path: Path) -> None:
    root = benign_dir(tmp_path / "m")
    single = tmp_path / "one.pkl"
    single.write_bytes(pickle.dumps(3))
    r = scan([str(single), root])
    assert len(r.files) == 5
    assert r.files[0].path == str(single)


def test_symbolic_links_are_reported_not_followed(tmp_path: Path) -> None:
    root = benign_dir(tmp_path / "m")
    outside = tmp_path / "outside.pkl"
    outside.write_bytes(payload_pickle(tmp_path))
    os.symlink(outside, root / "link_out.pkl")
    os.symlink(root / "b.pkl", root / "link_in.pkl")
    os.symlink(tmp_path / "gone", root / "dangling")
    os.symlink(root / "sub", root / "subdir_link")
    r = scan(root)
    by = {Path(f.path).name: f for f in r.files}
    assert by["link_in.pkl"].verdict.value == "safe"
    assert "inside the scanned folder" in by["link_in.pkl"].notes[0]
    assert "outside the scanned folder" in by["link_out.pkl"].errors[0]
    assert "does not exist" in by["dangling"].errors[0]
    assert by["subdir_link"].format == "symlink"
    assert r.exit_code == EXIT_ERROR  # the payload outside was never read
    assert not r.issues


def test_a_link_given_explicitly_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "real.pkl"
    target.write_bytes(payload_pickle(tmp_path))
    os.symlink(target, tmp_path / "link.pkl")
    assert scan(tmp_path / "link.pkl").exit_code == EXIT_UNSAFE


def test_max_file_bytes(tmp_path: Path) -> None:
    p = tmp_path / "big.pkl"
    p.write_bytes(pickle.dumps(list(range(1000))))
    r = scan_file(p, policy=Policy(max_file_bytes=100))
    assert r.verdict.value == "error"
    assert "max_file_bytes" in r.errors[0]
    assert r.bytes_scanned == 0


def test_scan_file_on_odd_paths(tmp_path: Path) -> None:
    assert "is a directory" in scan_file(tmp_path).errors[0]
    assert "no such file" in scan_file(tmp_path / "x").errors[0]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "not a regular file" in scan_file(fifo).errors[0]  # and it did not block
    (tmp_path / "empty.pt").write_bytes(b"")
    empty = scan_file(tmp_path / "empty.pt")
    assert (empty.format, empty.verdict.value) == ("empty", "error")


def test_unexpected_exceptions_become_errors_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(st_module, "scan_safetensors", boom)
    p = tmp_path / "w.safetensors"
    p.write_bytes(safetensors_bytes({}, b""))
    r = scan(p)
    assert r.exit_code == EXIT_ERROR
    assert r.files[0].errors == [f"{p}: internal error while scanning (KeyError: 'bug')"]


def test_progress_is_reported_per_file(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    scan(benign_dir(tmp_path / "m"), progress=lambda t, d, n: calls.append((t, d, n)))
    assert [(d, n) for _, d, n in calls] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert calls[0][0].startswith("scan ")


def test_file_result_fields_are_filled(tmp_path: Path) -> None:
    p = tmp_path / "m.pkl"
    p.write_bytes(payload_pickle(tmp_path))
    r = scan_file(p)
    assert r.format == "pickle"
    assert r.globals
    assert r.bytes_scanned == p.stat().st_size
    assert r.seconds > 0


def test_onnx_external_data_file_is_claimed_by_its_model(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    t = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[2])
    t.data_location = TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "W"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])],
        initializer=[t],
    )
    (tmp_path / "m.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    (tmp_path / "weights.bin").write_bytes(b"\x00\x00\x80\x3f" * 2)
    r = scan(tmp_path)
    assert r.exit_code == EXIT_OK
    data = next(f for f in r.files if f.path.endswith("weights.bin"))
    assert data.format == "onnx-external-data"
    assert onnx is not None
    assert scan_file(tmp_path / "weights.bin").verdict.value == "error"  # alone: unknown


def test_the_scan_function_is_not_shadowed_by_the_scan_package(tmp_path: Path) -> None:
    # The format modules live in the package mlwarden.supplychain.scan; importing one
    # lazily must never rebind the package attribute that holds the scan() function.
    (tmp_path / "x.gguf").write_bytes(b"GGUF" + b"\x00" * 30)
    scan(tmp_path)
    assert mlwarden.supplychain.scan is scan
    assert callable(mlwarden.supplychain.scan)


def test_unlistable_folder_is_an_error_not_a_silent_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlwarden.supplychain.scanner as scanner_module

    real_walk = os.walk

    def walk(top: str, onerror: object = None, followlinks: bool = False) -> object:
        assert callable(onerror)
        onerror(PermissionError(13, "Permission denied", str(Path(top) / "locked")))
        return real_walk(top, followlinks=followlinks)

    monkeypatch.setattr(scanner_module.os, "walk", walk)
    r = scan(benign_dir(tmp_path / "m"))
    assert r.exit_code == EXIT_ERROR
    assert r.errors == [
        f"{tmp_path / 'm' / 'locked'}: cannot list the directory (Permission denied)"
    ]
