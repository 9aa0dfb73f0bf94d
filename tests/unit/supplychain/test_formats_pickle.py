"""Plain pickle files: stacked pickles, trailing data, truncation, joblib detection."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from tests.supplychain_corpus import MARKER, payload_pickle, rules_of, scan_bytes

from mlwarden.supplychain import Policy, scan_file
from mlwarden.supplychain.result import FileResult
from mlwarden.supplychain.scan._context import FileScan
from mlwarden.supplychain.scan.pickles import scan_pickle_stream


@pytest.mark.parametrize("proto", range(6))
def test_payload_is_found_in_every_protocol(tmp_path: Path, proto: int) -> None:
    r = scan_bytes(tmp_path, payload_pickle(tmp_path, proto), "model.bin")
    assert r.format == "pickle"
    assert r.verdict.value == "unsafe"
    assert "MLW-SUP-001" in rules_of(r)
    assert any(g.endswith("system") for g in r.globals)
    assert not (tmp_path / MARKER).exists()


def test_benign_pickle_is_safe_and_fully_counted(tmp_path: Path) -> None:
    data = pickle.dumps({"weights": [0.5] * 10, "name": "m"}, protocol=4)
    r = scan_bytes(tmp_path, data, "weights.safetensors")  # the name lies
    assert (r.format, r.verdict.value, r.errors) == ("pickle", "safe", [])
    assert r.bytes_scanned == len(data)
    assert r.seconds > 0


def test_stacked_pickles_are_all_scanned(tmp_path: Path) -> None:
    data = pickle.dumps([1, 2]) + pickle.dumps("second") + payload_pickle(tmp_path, 2)
    r = scan_bytes(tmp_path, data)
    assert "MLW-SUP-001" in rules_of(r)
    assert any("3 pickles stacked" in n for n in r.notes)
    at = next(i.location for i in r.issues if i.rule_id == "MLW-SUP-001")
    assert int(at.lstrip("@")) > len(pickle.dumps([1, 2]) + pickle.dumps("second"))


def test_benign_stacked_pickles_are_safe(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, pickle.dumps(1) + pickle.dumps({"a": 2}, protocol=0))
    assert r.verdict.value == "safe"


def test_trailing_garbage_after_the_pickle_is_malformed(tmp_path: Path) -> None:
    data = pickle.dumps({"a": 1}, protocol=2)
    r = scan_bytes(tmp_path, data + b"\xde\xad\xbe\xef hidden")
    assert rules_of(r) == {"MLW-SUP-008"}
    assert r.issues[0].location == f"@{len(data)}"


def test_truncated_payload_is_unsafe_and_incomplete(tmp_path: Path) -> None:
    data = payload_pickle(tmp_path, 2)
    r = scan_bytes(tmp_path, data[:-1])  # STOP cut off
    assert r.verdict.value == "unsafe"
    assert r.errors  # and the scan says it is incomplete


def test_truncated_benign_pickle_is_an_error(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, pickle.dumps(list(range(50)), protocol=2)[:20])
    assert r.verdict.value == "error"
    assert str(tmp_path) in r.errors[0]


def test_policy_allow_accepts_a_user_class(tmp_path: Path) -> None:
    data = b"cmypkg\nMyNet\n)R."  # GLOBAL mypkg.MyNet, call it with ()
    p = tmp_path / "net.pkl"
    p.write_bytes(data)
    assert scan_file(p).verdict.value == "unsafe"
    assert scan_file(p, policy=Policy(allow=frozenset({"mypkg.MyNet"}))).verdict.value == "safe"


def test_joblib_format_is_named_from_its_globals(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    p = tmp_path / "a.bin"
    joblib.dump({"x": np.arange(5)}, p)
    r = scan_file(p)
    assert (r.format, r.verdict.value) == ("joblib", "safe")


def test_stream_scanner_reports_where_parsing_stopped(tmp_path: Path) -> None:
    ctx = FileScan("x.pkl", Policy(), FileResult(path="x.pkl"))
    complete = scan_pickle_stream(ctx, memoryview(b"\x80\x02]q\x00(K\x01"), member="m.pkl")
    assert complete is False
    assert ctx.result.errors and ctx.result.errors[0].startswith("x.pkl")
