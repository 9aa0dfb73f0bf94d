"""PyTorch checkpoints: zip archives, legacy stacked pickles and legacy tar files.

The archives are written by hand (no torch import) in the layout torch uses; the
corpus integration test covers files written by torch itself.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from tests.supplychain_corpus import (
    MARKER,
    corrupt_crc,
    payload_pickle,
    rules_of,
    scan_bytes,
    zip_bytes,
)

from mlwarden.supplychain import scan_file
from mlwarden.supplychain.scan.pytorch import LEGACY_MAGIC


class _Ref:
    """Stands for a tensor: pickled as a persistent id, as torch.save does."""

    def __init__(self, key: str) -> None:
        self.key = key


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, _Ref):
            return ("storage", "FloatStorage", obj.key, "cpu", 4)
        return None


def data_pkl(obj: object) -> bytes:
    out = io.BytesIO()
    _TorchPickler(out, protocol=2).dump(obj)
    return out.getvalue()


def torch_zip(extra: list[tuple[str, bytes]] | None = None, data: bytes | None = None) -> bytes:
    members = [
        ("archive/data.pkl", data if data is not None else data_pkl({"w": _Ref("0")})),
        ("archive/byteorder", b"little"),
        ("archive/data/0", b"\x00" * 16),
        ("archive/version", b"3\n"),
    ]
    return zip_bytes(members + (extra or []))


def test_benign_zip_is_safe_and_storage_is_skipped(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, torch_zip(), "model.pt")
    assert (r.format, r.verdict.value) == ("pytorch-zip", "safe")
    assert any("tensor storage skipped: 1 member" in n for n in r.notes)


def test_payload_in_data_pkl(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, torch_zip(data=payload_pickle(tmp_path, 2)))
    issue = next(i for i in r.issues if i.rule_id == "MLW-SUP-001")
    assert issue.location.startswith("archive/data.pkl@")
    assert not (tmp_path / MARKER).exists()


def test_payload_in_a_second_pkl_member(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, torch_zip([("archive/extra/cb.pkl", payload_pickle(tmp_path))]))
    assert any(i.location.startswith("archive/extra/cb.pkl@") for i in r.issues)


def test_storage_members_are_never_read(tmp_path: Path) -> None:
    # Storage is raw numbers for torch; a pickle there is never unpickled.
    data = zip_bytes(
        [
            ("archive/data.pkl", data_pkl({"w": _Ref("0")})),
            ("archive/data/0", payload_pickle(tmp_path) + b"\x00" * 100_000),
        ]
    )
    r = scan_bytes(tmp_path, data)
    assert r.verdict.value == "safe"
    assert r.bytes_scanned < 1000


def test_crc_mismatch_is_reported_and_still_scanned(tmp_path: Path) -> None:
    data = corrupt_crc(torch_zip(data=payload_pickle(tmp_path)), "archive/data.pkl")
    with zipfile.ZipFile(io.BytesIO(data)) as zf, pytest.raises(zipfile.BadZipFile):
        zf.read("archive/data.pkl")  # zipfile refuses; torch would not
    r = scan_bytes(tmp_path, data)
    assert {"MLW-SUP-008", "MLW-SUP-001"} <= rules_of(r)
    assert any(i.construct == "CRC mismatch" for i in r.issues)


def test_duplicate_members_are_all_scanned(tmp_path: Path) -> None:
    data = torch_zip([("archive/data.pkl", payload_pickle(tmp_path))])
    r = scan_bytes(tmp_path, data)
    assert {"MLW-SUP-008", "MLW-SUP-001"} <= rules_of(r)
    assert any("duplicate member archive/data.pkl" in i.construct for i in r.issues)


def test_deflated_pickle_member(tmp_path: Path) -> None:
    data = zip_bytes(
        [("archive/data.pkl", payload_pickle(tmp_path)), ("archive/version", b"3")],
        zipfile.ZIP_DEFLATED,
    )
    assert "MLW-SUP-001" in rules_of(scan_bytes(tmp_path, data))


def test_truncated_member_is_an_error(tmp_path: Path) -> None:
    data = bytearray(torch_zip([("archive/late.pkl", pickle.dumps(1))]))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("archive/late.pkl")
    data[info.header_offset : info.header_offset + 4] = b"XXXX"  # break the local header
    r = scan_bytes(tmp_path, bytes(data))
    assert r.verdict.value == "error"
    assert "archive/late.pkl" in r.errors[0]
    assert "no local file header" in r.errors[0]


def test_torchscript_names_resolved_by_the_jit_are_not_refused(tmp_path: Path) -> None:
    ts = b"\x80\x02c__torch__\nMyModule\nq\x00)\x81q\x01}q\x02b."
    build = b"\x80\x02ctorch.jit._pickle\nbuild_intlist\nq\x00]q\x01K\x01a\x85q\x02Rq\x03."
    data = zip_bytes(
        [
            ("m/data.pkl", ts),
            ("m/constants.pkl", b"\x80\x02)."),
            ("m/code/__torch__.py.debug_pkl", build),
            ("m/code/__torch__.py", b"class MyModule: ..."),
        ]
    )
    r = scan_bytes(tmp_path, data)
    assert (r.format, r.verdict.value) == ("torchscript", "safe")
    evil = zip_bytes([("m/data.pkl", payload_pickle(tmp_path)), ("m/constants.pkl", b"\x80\x02).")])
    assert "MLW-SUP-001" in rules_of(scan_bytes(tmp_path, evil))


# ------------------------------------------------------------------------ legacy
_FLOAT_STORAGE_PID = b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"


def legacy_object(keys: dict[str, int], *, storage: bytes = b"FloatStorage") -> bytes:
    """The object pickle: {name: persistent id ('storage', torch.<X>Storage, key, 'cpu', n)}."""
    out = b"\x80\x02}("
    for key, n in keys.items():
        out += b"X" + struct.pack("<I", len(key)) + key.encode()
        out += b"(X\x07\x00\x00\x00storagectorch\n" + storage + b"\n"
        out += b"X" + struct.pack("<I", len(key)) + key.encode()
        out += b"X\x03\x00\x00\x00cpuJ" + struct.pack("<i", n) + b"NtQ"
    return out + b"u."


def legacy(
    keys: dict[str, int], *, obj: bytes | None = None, tail: bytes = b"", itemsize: int = 4
) -> bytes:
    parts = [
        pickle.dumps(LEGACY_MAGIC, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
        obj if obj is not None else legacy_object(keys),
        pickle.dumps(sorted(keys), protocol=2),
    ]
    raw = b"".join(
        struct.pack("<q", keys[k]) + b"\x01" * (keys[k] * itemsize) for k in sorted(keys)
    )
    return b"".join(parts) + raw + tail


def test_legacy_benign_walks_the_storages(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, legacy({"0": 6, "1": 3}), "old.pt")
    assert (r.format, r.verdict.value, r.errors) == ("pytorch-legacy", "safe", [])
    assert any("2 storages" in n for n in r.notes)


def test_legacy_payload_in_the_storage_keys_pickle(tmp_path: Path) -> None:
    data = legacy({"0": 2})
    parts = data.split(pickle.dumps(["0"], protocol=2))
    evil = parts[0] + payload_pickle(tmp_path, 2) + parts[1]
    assert "MLW-SUP-001" in rules_of(scan_bytes(tmp_path, evil))


def test_legacy_payload_in_sys_info(tmp_path: Path) -> None:
    good_sys = pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    evil = legacy({"0": 2}).replace(good_sys, payload_pickle(tmp_path, 2))
    assert "MLW-SUP-001" in rules_of(scan_bytes(tmp_path, evil))


def test_legacy_data_after_the_storages_is_malformed(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, legacy({"0": 2}, tail=payload_pickle(tmp_path, 2)))
    assert {"MLW-SUP-008", "MLW-SUP-001"} <= rules_of(r)


def test_legacy_truncated_storage_is_an_error(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, legacy({"0": 100})[:-50])
    assert r.verdict.value == "error"
    assert "storage '0'" in r.errors[0]


def test_legacy_unknown_storage_type_is_an_error(tmp_path: Path) -> None:
    data = legacy({"0": 1}, obj=legacy_object({"0": 1}, storage=b"Float8Storage"))
    r = scan_bytes(tmp_path, data)
    assert r.verdict.value in ("error", "unsafe")
    assert any("element size" in e for e in r.errors)


# --------------------------------------------------------------------------- tar
def torch_tar(
    obj: bytes, members: tuple[str, ...] = ("sys_info", "pickle", "storages", "tensors")
) -> bytes:
    storages = pickle.dumps(1, protocol=2)
    storages += b"\x80\x02(X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\ntq\x00."
    storages += struct.pack("<q", 2) + b"\x00" * 8 + pickle.dumps([], protocol=2)
    tensors = pickle.dumps(1, protocol=2) + pickle.dumps(("t", "0", None), protocol=2)
    tensors += struct.pack("<i", 1) + b"\x00" * 4 + struct.pack("<qqq", 2, 1, 0)
    content = {
        "sys_info": pickle.dumps({}),
        "pickle": obj,
        "storages": storages,
        "tensors": tensors,
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in members:
            info = tarfile.TarInfo(name)
            info.size = len(content[name])
            tar.addfile(info, io.BytesIO(content[name]))
    return out.getvalue()


def test_tar_checkpoint(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, torch_tar(pickle.dumps({"epoch": 1}, protocol=2)))
    assert (r.format, r.verdict.value, r.errors) == ("pytorch-tar", "safe", [])
    bad = scan_bytes(tmp_path, torch_tar(payload_pickle(tmp_path, 2)))
    assert any(i.location.startswith("pickle@") for i in bad.issues if i.rule_id == "MLW-SUP-001")


def test_other_tar_is_an_error(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, torch_tar(b"x", members=("sys_info",)))
    assert (r.format, r.verdict.value) == ("tar", "error")


def sparse_torch_zip(path: Path, size: int) -> None:
    """A torch-style zip with one ``size``-byte storage member, written as a sparse
    file (the storage is a hole on disk, so the test costs no disk space)."""
    entries = [
        ("archive/data.pkl", data_pkl({"w": _Ref("0")})),
        ("archive/version", b"3\n"),
    ]
    crc = 0
    chunk = bytes(1 << 20)
    for _ in range(size // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    central = b""
    with path.open("wb") as f:

        def local(name: bytes, n: int, crc32: int) -> None:
            nonlocal central
            offset = f.tell()
            f.write(
                struct.pack(
                    "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, crc32, n, n, len(name), 0
                )
                + name
            )
            central += (
                struct.pack(
                    "<4sHHHHHHIIIHHHHHII",
                    b"PK\x01\x02",
                    20,
                    20,
                    0,
                    0,
                    0,
                    0,
                    crc32,
                    n,
                    n,
                    len(name),
                    0,
                    0,
                    0,
                    0,
                    0,
                    offset,
                )
                + name
            )

        for name, data in entries:
            local(name.encode(), len(data), zlib.crc32(data))
            f.write(data)
        local(b"archive/data/0", size, crc)
        f.seek(size, 1)
        start = f.tell()
        f.write(central)
        f.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 3, 3, len(central), start, 0))


@pytest.mark.slow
def test_one_gib_checkpoint_scans_in_under_two_seconds(tmp_path: Path) -> None:
    p = tmp_path / "big.pt"
    sparse_torch_zip(p, 1 << 30)
    assert p.stat().st_size > 1 << 30
    start = time.perf_counter()
    r = scan_file(p)
    elapsed = time.perf_counter() - start
    assert (r.format, r.verdict.value) == ("pytorch-zip", "safe")
    assert r.bytes_scanned < 10_000  # the storage was never read
    assert elapsed < 2.0


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_real_legacy_checkpoints_are_recognised_in_every_binary_protocol(tmp_path, protocol):
    torch = pytest.importorskip("torch")
    path = tmp_path / f"legacy{protocol}.pt"
    torch.save(
        {"w": torch.ones(3)}, path, _use_new_zipfile_serialization=False, pickle_protocol=protocol
    )
    r = scan_file(path)
    assert (r.format, r.verdict.value, r.errors) == ("pytorch-legacy", "safe", [])
