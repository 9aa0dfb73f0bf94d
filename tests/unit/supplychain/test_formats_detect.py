"""Format detection reads content, never the file name."""

from __future__ import annotations

import bz2
import gzip
import lzma
import pickle
import random
import struct
import zlib

import pytest
from tests.supplychain_corpus import gguf_bytes, safetensors_bytes

from mlwarden.supplychain.scan import SUPPORTED, detect
from mlwarden.supplychain.scan.detect import compression, looks_like_pickle


def kind(data: bytes) -> str:
    return detect(memoryview(data)).kind


@pytest.mark.parametrize("proto", range(6))
def test_pickles_of_every_protocol(proto: int) -> None:
    assert kind(pickle.dumps({"a": [1, 2.5, "x"]}, protocol=proto)) == "pickle"


@pytest.mark.parametrize(
    ("codec", "fn"),
    [
        ("gzip", gzip.compress),
        ("bz2", bz2.compress),
        ("xz", lzma.compress),
        ("lzma", lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE)),
        ("zlib", zlib.compress),
    ],
)
def test_compressed_streams(codec: str, fn) -> None:  # type: ignore[no-untyped-def]
    found = detect(memoryview(fn(pickle.dumps([1, 2, 3]))))
    assert (found.kind, found.detail) == ("compressed", codec)


def test_magic_numbers() -> None:
    assert kind(b"\x93NUMPY\x01\x00" + b"\x00" * 10) == "numpy"
    assert kind(b"PK\x03\x04" + b"\x00" * 40) == "zip"
    assert kind(b"PK\x05\x06" + b"\x00" * 18) == "zip"
    assert kind(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40) == "hdf5"
    assert kind(b"\x00" * 512 + b"\x89HDF\r\n\x1a\n" + b"\x00" * 40) == "hdf5"  # user block
    assert kind(gguf_bytes([])) == "gguf"
    assert kind(b"ZF0x1a                 x\x9c") == "joblib-zf"
    assert kind(b"") == "empty"


def test_safetensors_is_told_from_a_pickle_whose_length_prefix_collides() -> None:
    # A header length of 0x...0280 starts with \x80\x02, like a protocol 2 pickle.
    header = b'{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'
    header += b" " * (0x280 - len(header))
    data = struct.pack("<Q", len(header)) + header
    assert data[:2] == b"\x80\x02"
    assert kind(data) == "safetensors"
    assert kind(safetensors_bytes({}, b"")) == "safetensors"


def test_huge_safetensors_header_is_still_safetensors() -> None:
    assert kind(struct.pack("<Q", 1 << 60) + b'{"x": 1}') == "safetensors"


def test_text_and_random_bytes_are_unknown() -> None:
    found = detect(memoryview(b"hello world, not a model\n"))
    assert found.kind == "unknown"
    assert "text file" in found.detail
    rnd = detect(memoryview(random.Random(1).randbytes(2048)))
    assert rnd.kind == "unknown"
    assert "bytes" in rnd.detail


def test_tar_by_its_header() -> None:
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("pickle")
        payload = pickle.dumps(1)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    assert kind(out.getvalue()) == "tar"


def test_onnx_needs_a_well_formed_model_proto_start() -> None:
    # ir_version=8, then graph (field 7, length-delimited, 2 bytes)
    assert kind(b"\x08\x08\x3a\x02\x0a\x00") == "onnx"
    # ir_version then junk with an invalid wire type
    assert kind(b"\x08\x08\x0f\xff\xff") == "unknown"
    # ir_version out of range
    assert kind(b"\x08\xff\x01\x3a\x00") != "onnx"


def test_looks_like_pickle_rejects_text_that_starts_with_an_opcode_letter() -> None:
    assert not looks_like_pickle(b"Introduction to the model\n")
    assert not looks_like_pickle(b"")
    assert looks_like_pickle(b"I1\n.")
    assert compression(b"plain text") is None


def test_supported_names_every_family() -> None:
    for word in ("pickle", "joblib", "PyTorch", "NumPy", "safetensors", "ONNX", "Keras", "GGUF"):
        assert word in SUPPORTED
