"""Compressed pickles and joblib files (including joblib < 0.10 ZF files)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import pickle
import zlib
from pathlib import Path

import pytest
from tests.supplychain_corpus import MARKER, npy_bytes, payload_pickle, rules_of, scan_bytes

from mlwarden.supplychain import Policy, scan_file

CODECS = {
    "gzip": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
    "zlib": zlib.compress,
}


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_payload_inside_every_codec(tmp_path: Path, codec: str) -> None:
    r = scan_bytes(tmp_path, CODECS[codec](payload_pickle(tmp_path)), "model.joblib")
    assert r.format == f"{codec}+pickle"
    assert "MLW-SUP-001" in rules_of(r)
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_benign_compressed_pickle_is_safe(tmp_path: Path, codec: str) -> None:
    r = scan_bytes(tmp_path, CODECS[codec](pickle.dumps({"a": [1.0, 2.0]})))
    assert (r.verdict.value, r.errors) == ("safe", [])


def test_multi_member_gzip_is_read_to_the_end(tmp_path: Path) -> None:
    data = gzip.compress(pickle.dumps([1])) + gzip.compress(payload_pickle(tmp_path))
    assert "MLW-SUP-001" in rules_of(scan_bytes(tmp_path, data))


def test_truncated_stream_still_reports_the_payload(tmp_path: Path) -> None:
    body = payload_pickle(tmp_path, 2) + pickle.dumps(list(range(2000)), protocol=2)
    data = gzip.compress(body)
    r = scan_bytes(tmp_path, data[: len(data) // 2])
    assert r.verdict.value == "unsafe"
    assert any("truncated gzip" in e for e in r.errors)


def test_decompression_bomb_hits_the_policy_limit(tmp_path: Path) -> None:
    p = tmp_path / "bomb.gz"
    p.write_bytes(gzip.compress(b"\x80\x04" + b"N" * 5_000_000))
    r = scan_file(p, policy=Policy(max_file_bytes=1_000_000))
    assert r.verdict.value == "error"
    assert "limit" in r.errors[0]


def test_data_after_the_stream_is_malformed(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, gzip.compress(pickle.dumps(1)) + b"trailing junk")
    assert rules_of(r) == {"MLW-SUP-008"}


def test_compressed_text_is_unknown(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, gzip.compress(b"just some text\n"))
    assert r.verdict.value == "error"
    assert "unknown format: a gzip-compressed file holding" in r.errors[0]


def test_corrupt_stream_is_an_error(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, b"\x1f\x8b\x08\x00garbage-garbage")
    assert r.verdict.value == "error"


def test_lz4_without_the_package_is_an_error(tmp_path: Path) -> None:
    try:
        import lz4  # noqa: F401

        pytest.skip("lz4 is installed")
    except ImportError:
        pass
    r = scan_bytes(tmp_path, b"\x04\x22\x4d\x18" + b"\x00" * 20)
    assert r.verdict.value == "error"
    assert "lz4" in r.errors[0]


def zfile(content: bytes, *, declared: int | None = None, space: bool = False) -> bytes:
    n = len(content) if declared is None else declared
    return b"ZF" + f"{n:#x}".ljust(19).encode() + (b" " if space else b"") + zlib.compress(content)


def test_old_joblib_zfile(tmp_path: Path) -> None:
    assert scan_bytes(tmp_path, zfile(pickle.dumps({"a": 1}, protocol=2))).verdict.value == "safe"
    r = scan_bytes(tmp_path, zfile(payload_pickle(tmp_path, 2), space=True))
    assert (r.format, "MLW-SUP-001" in rules_of(r)) == ("joblib-zf", True)


def test_old_joblib_companion_array(tmp_path: Path) -> None:
    arr = npy_bytes("<f8", (2,), b"\x00" * 16)
    r = scan_bytes(tmp_path, zfile(arr), "model.pkl_01.npy.z")
    assert (r.format, r.verdict.value) == ("joblib-zf+numpy", "safe")


def test_zfile_length_mismatch_is_an_error(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, zfile(pickle.dumps(1), declared=999))
    assert r.verdict.value == "error"
    assert "declares 999 bytes" in r.errors[0]


def test_zfile_bad_header(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, b"ZF0xZZZZ" + b"\x00" * 30)
    assert r.verdict.value == "error"
