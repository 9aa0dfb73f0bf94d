"""safetensors: header validation; the tensor bytes are never read."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from tests.supplychain_corpus import rules_of, safetensors_bytes, scan_bytes


def t(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def test_valid_file_is_safe(tmp_path: Path) -> None:
    header = {
        "__metadata__": {"format": "pt"},
        "a": t("F16", [2, 2], 0, 8),
        "b": t("BF16", [4], 8, 16),
    }
    r = scan_bytes(tmp_path, safetensors_bytes(header, b"\x00" * 16), "model.bin")
    assert (r.format, r.verdict.value, r.errors) == ("safetensors", "safe", [])
    assert any("2 tensors" in n for n in r.notes)


def test_sub_byte_and_empty_tensors(tmp_path: Path) -> None:
    header = {"q": t("F4", [4], 0, 2), "e": t("F32", [0, 3], 2, 2)}
    assert scan_bytes(tmp_path, safetensors_bytes(header, b"\x00\x00")).verdict.value == "safe"


def test_safetensors_package_output_if_installed(tmp_path: Path) -> None:
    st = pytest.importorskip("safetensors.numpy")
    np = pytest.importorskip("numpy")
    st.save_file({"w": np.ones((3, 3), dtype=np.float32)}, str(tmp_path / "m.safetensors"))
    from mlwarden.supplychain import scan_file

    assert scan_file(tmp_path / "m.safetensors").verdict.value == "safe"


@pytest.mark.parametrize(
    ("header", "buffer", "construct"),
    [
        ({"a": t("F32", [4], 0, 16), "b": t("F32", [4], 8, 24)}, 24, "overlaps"),
        ({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 12, 20)}, 20, "hole"),
        ({"a": t("F32", [2], 0, 8)}, 40, "after the last tensor"),
        ({"a": t("F32", [2], 0, 12)}, 12, "size"),
        ({"a": t("F32", [2], 0, 8)}, 4, "data_offsets"),
        ({"a": t("F33", [2], 0, 8)}, 8, "dtype"),
        ({"a": t("F32", [-2], 0, 8)}, 8, "shape"),
        ({"a": t("F32", [2], 8, 0)}, 8, "data_offsets"),
        ({"a": {**t("F32", [2], 0, 8), "code": "x"}}, 8, "fields"),
        ({"__metadata__": {"k": 1}}, 0, "__metadata__"),
        ({"a": t("F4", [3], 0, 1)}, 1, "size"),
    ],
)
def test_invalid_headers_are_malformed(
    tmp_path: Path, header: dict[str, Any], buffer: int, construct: str
) -> None:
    r = scan_bytes(tmp_path, safetensors_bytes(header, b"\x00" * buffer))
    assert rules_of(r) == {"MLW-SUP-008"}
    assert any(construct in i.construct for i in r.issues)


def test_duplicate_keys(tmp_path: Path) -> None:
    entry = b'{"dtype":"U8","shape":[1],"data_offsets":[0,1]}'
    raw = b'{"a":' + entry + b',"a":' + entry + b"}"
    r = scan_bytes(tmp_path, struct.pack("<Q", len(raw)) + raw + b"\x00")
    assert any("duplicate key a" in i.construct for i in r.issues)


def test_not_json(tmp_path: Path) -> None:
    raw = b"{not json}"
    r = scan_bytes(tmp_path, struct.pack("<Q", len(raw)) + raw)
    assert rules_of(r) == {"MLW-SUP-008"}


@pytest.mark.parametrize("claimed", [1 << 62, 200_000_000, 5000])
def test_huge_or_truncated_header_is_an_error_without_allocation(
    tmp_path: Path, claimed: int
) -> None:
    r = scan_bytes(tmp_path, struct.pack("<Q", claimed) + b'{"a": ' + b" " * 100)
    assert (r.format, r.verdict.value) == ("safetensors", "error")
    assert "header length" in r.errors[0]


def test_header_json_is_exactly_what_the_format_says(tmp_path: Path) -> None:
    header = {"x": t("I64", [1], 0, 8)}
    data = safetensors_bytes(header, b"\x00" * 8, pad=False)
    n = struct.unpack("<Q", data[:8])[0]
    assert json.loads(data[8 : 8 + n]) == header
    assert scan_bytes(tmp_path, data).verdict.value == "safe"
