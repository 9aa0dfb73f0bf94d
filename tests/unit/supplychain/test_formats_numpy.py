"""NumPy .npy and .npz: headers parsed without NumPy, object arrays scanned as pickles."""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import pytest
from tests.supplychain_corpus import (
    MARKER,
    npy_bytes,
    payload_pickle,
    rules_of,
    scan_bytes,
    zip_bytes,
)

from mlwarden.supplychain.scan.numpy import parse_npy_header


@pytest.mark.parametrize(
    ("descr", "shape", "nbytes"),
    [
        ("<f8", (3, 4), 96),
        ("|b1", (5,), 5),
        ("<U3", (2,), 24),
        ("|S7", (), 7),
        ("<M8[ns]", (2,), 16),
        ([("a", "<f4"), ("b", "<i8", (2,)), ("", "|V4")], (3,), 3 * (4 + 16 + 4)),
    ],
)
def test_header_sizes(descr: object, shape: tuple[int, ...], nbytes: int) -> None:
    data = npy_bytes(descr, shape, b"")
    h = parse_npy_header(data, len(data) + nbytes)
    assert (h.has_object, h.nbytes, h.shape) == (False, nbytes, shape)


def test_matches_numpy_itself(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    arr = np.zeros((2, 3), dtype=[("x", "<f4"), ("y", "<c16"), ("z", "u1", (3,))])
    np.save(tmp_path / "a.npy", arr)
    data = (tmp_path / "a.npy").read_bytes()
    h = parse_npy_header(data, len(data))
    assert h.data_offset + h.nbytes == len(data)


def test_numeric_array_is_safe_without_reading_data(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, npy_bytes("<f4", (1000,), b"\x00" * 4000), "x.pickle")
    assert (r.format, r.verdict.value, r.errors) == ("numpy", "safe", [])
    assert r.bytes_scanned < 200


def test_object_array_payload(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, npy_bytes("|O", (1,), payload_pickle(tmp_path, 3)))
    assert {"MLW-SUP-001", "MLW-SUP-004"} <= rules_of(r)
    assert not (tmp_path / MARKER).exists()


def test_structured_dtype_with_an_object_field_is_a_pickle(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, npy_bytes([("a", "<f8"), ("o", "|O")], (1,), payload_pickle(tmp_path)))
    assert "MLW-SUP-004" in rules_of(r)


def test_benign_object_array_is_safe_with_a_note(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, npy_bytes("|O", (2,), pickle.dumps(["a", "b"], protocol=3)))
    assert r.verdict.value == "safe"
    assert any("allow_pickle=True" in n for n in r.notes)


def test_truncated_data_is_an_error(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, npy_bytes("<f8", (10,), b"\x00" * 40))
    assert r.verdict.value == "error"
    assert "truncated" in r.errors[0]


def test_data_after_the_array_is_malformed(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, npy_bytes("<f8", (1,), b"\x00" * 8) + payload_pickle(tmp_path))
    assert rules_of(r) == {"MLW-SUP-008"}


def test_stacked_arrays(tmp_path: Path) -> None:
    one = npy_bytes("<i4", (2,), b"\x00" * 8)
    r = scan_bytes(tmp_path, one + one + npy_bytes("|O", (1,), payload_pickle(tmp_path)))
    assert "MLW-SUP-001" in rules_of(r)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{", "claims 4.0 GiB"),
        (b"\x93NUMPY\x09\x00\x10\x00{}", "version 9.0"),
        (npy_bytes("<f8", (1,), b"")[:12], "truncated"),
    ],
)
def test_bad_headers_are_errors(tmp_path: Path, data: bytes, message: str) -> None:
    r = scan_bytes(tmp_path, data)
    assert r.verdict.value == "error"
    assert message in r.errors[0]


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '<f8', 'shape': (1,)}",  # missing key
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
        "{'descr': 'xyz', 'fortran_order': False, 'shape': (1,)}",
        "__import__('os').system('true')",  # not a literal: never evaluated
        "{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}",
    ],
)
def test_hostile_or_invalid_header_literals(tmp_path: Path, header: str) -> None:
    raw = header.encode() + b"\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + b"\x00" * 8
    r = scan_bytes(tmp_path, data)
    assert r.verdict.value == "error"


def test_npz_scans_every_array_member(tmp_path: Path) -> None:
    good = npy_bytes("<f8", (2,), b"\x00" * 16)
    bad = npy_bytes("|O", (1,), payload_pickle(tmp_path))
    r = scan_bytes(tmp_path, zip_bytes([("a.npy", good), ("b.npy", bad)]), "w.npz")
    assert r.format == "numpy-npz"
    assert any(i.location.startswith("b.npy@") for i in r.issues)
    # numpy.load reads any member that starts with the magic, whatever its name
    r2 = scan_bytes(tmp_path, zip_bytes([("a.npy", good), ("hidden.bin", bad)]), "w2.npz")
    assert "MLW-SUP-001" in rules_of(r2)


def test_compressed_npz_reads_only_headers_of_numeric_members(tmp_path: Path) -> None:
    big = npy_bytes("<f8", (100_000,), b"\x00" * 800_000)
    r = scan_bytes(tmp_path, zip_bytes([("w.npy", big)], zipfile.ZIP_DEFLATED), "w.npz")
    assert (r.verdict.value, r.errors) == ("safe", [])
    assert r.bytes_scanned < 2000


def test_npz_member_that_is_not_an_array_is_noted(tmp_path: Path) -> None:
    good = npy_bytes("<f8", (2,), b"\x00" * 16)
    r = scan_bytes(tmp_path, zip_bytes([("a.npy", good), ("notes.txt", b"hi")]), "w.npz")
    assert r.verdict.value == "safe"
    assert any("notes.txt" in n for n in r.notes)
