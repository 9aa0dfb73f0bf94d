"""ONNX: the protobuf walk, external-data locations and custom operator domains."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tests.supplychain_corpus import rules_of, scan_bytes

from mlwarden.supplychain import scan_file
from mlwarden.supplychain.scan.onnx import check_location

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def external(name: str, location: str) -> Any:
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[2])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "8")):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def model(
    nodes: list[Any],
    *,
    inits: list[Any] = (),
    functions: list[Any] = (),
    opsets: dict[str, int] | None = None,
) -> bytes:  # type: ignore[assignment]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])],
        initializer=list(inits),
    )
    ops = [helper.make_opsetid(d, v) for d, v in (opsets or {"": 17}).items()]
    m = helper.make_model(graph, opset_imports=ops, functions=list(functions))
    return m.SerializeToString()


def test_standard_model_is_safe(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, model([helper.make_node("Relu", ["X"], ["Y"])]), "m.bin")
    assert (r.format, r.verdict.value, r.errors) == ("onnx", "safe", [])


@pytest.mark.parametrize("domain", ["", "ai.onnx", "ai.onnx.ml", "com.microsoft"])
def test_standard_domains(tmp_path: Path, domain: str) -> None:
    data = model(
        [helper.make_node("Gelu", ["X"], ["Y"], domain=domain)], opsets={"": 17, domain: 1}
    )
    assert scan_bytes(tmp_path, data).verdict.value == "safe"


def test_custom_domain_is_flagged_with_its_location(tmp_path: Path) -> None:
    data = model(
        [helper.make_node("Steal", ["X"], ["Y"], name="n0", domain="org.evil")],
        opsets={"": 17, "org.evil": 1},
    )
    r = scan_bytes(tmp_path, data)
    assert rules_of(r) == {"MLW-SUP-006"}
    assert r.issues[0].construct == "custom operator org.evil::Steal"
    assert r.issues[0].location == "graph.node[0](Steal, n0)"


def test_model_local_function_is_not_a_custom_op(tmp_path: Path) -> None:
    body = [helper.make_node("Relu", ["x"], ["y"])]
    fn = helper.make_function(
        "my.funcs", "MyRelu", ["x"], ["y"], body, [helper.make_opsetid("", 17)]
    )
    data = model(
        [helper.make_node("MyRelu", ["X"], ["Y"], domain="my.funcs")],
        functions=[fn],
        opsets={"": 17, "my.funcs": 1},
    )
    assert scan_bytes(tmp_path, data).verdict.value == "safe"


def test_custom_op_inside_a_function_body(tmp_path: Path) -> None:
    body = [helper.make_node("Steal", ["x"], ["y"], domain="org.evil")]
    fn = helper.make_function(
        "my.funcs", "F", ["x"], ["y"], body, [helper.make_opsetid("org.evil", 1)]
    )
    data = model(
        [helper.make_node("F", ["X"], ["Y"], domain="my.funcs")],
        functions=[fn],
        opsets={"": 17, "my.funcs": 1},
    )
    r = scan_bytes(tmp_path, data)
    assert any(i.location.startswith("functions[0].node[0]") for i in r.issues)


def test_custom_op_in_a_loop_body_subgraph(tmp_path: Path) -> None:
    body = helper.make_graph(
        [helper.make_node("Steal", ["x"], ["y"], domain="org.evil")],
        "body",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    node = helper.make_node("If", ["C"], ["Y"], then_branch=body, else_branch=body)
    r = scan_bytes(tmp_path, model([node]))
    assert len(r.issues) == 2
    assert r.issues[0].location.startswith("graph.node[0](If).attribute[0].g.node[0]")


@pytest.mark.parametrize(
    "location",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "sub/../../x.bin",
        "..",
        "C:\\Windows\\win.ini",
        "\\\\host\\share\\w",
        "..\\..\\x",
        "a\x00b",
        "",
    ],
)
def test_escaping_external_data_is_flagged(tmp_path: Path, location: str) -> None:
    r = scan_bytes(
        tmp_path, model([helper.make_node("Relu", ["X"], ["Y"])], inits=[external("W", location)])
    )
    assert rules_of(r) == {"MLW-SUP-006"}
    assert r.issues[0].location == "graph.initializer[0](W)"


@pytest.mark.parametrize("location", ["w.bin", "sub/w.bin", "./w.bin", "sub/../w.bin"])
def test_external_data_inside_the_folder_is_fine(tmp_path: Path, location: str) -> None:
    r = scan_bytes(
        tmp_path, model([helper.make_node("Relu", ["X"], ["Y"])], inits=[external("W", location)])
    )
    assert (r.verdict.value, r.errors) == ("safe", [])


def test_symlink_out_of_the_folder_is_flagged(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\x00" * 8)
    folder = tmp_path / "model"
    folder.mkdir()
    os.symlink(outside, folder / "w.bin")
    (folder / "m.onnx").write_bytes(
        model([helper.make_node("Relu", ["X"], ["Y"])], inits=[external("W", "w.bin")])
    )
    r = scan_file(folder / "m.onnx")
    assert rules_of(r) == {"MLW-SUP-006"}
    assert "symlink" in r.issues[0].message


def test_check_location_directly(tmp_path: Path) -> None:
    assert check_location("w.bin", tmp_path) is None
    assert check_location("../w.bin", None) == "climbs out of the model's folder"
    assert check_location("/w.bin", None) == "is an absolute path"


def test_external_data_in_a_constant_node_attribute(tmp_path: Path) -> None:
    node = helper.make_node("Constant", [], ["Y"], value=external("c", "/etc/shadow"))
    r = scan_bytes(tmp_path, model([node]))
    assert r.issues[0].location == "graph.node[0](Constant).attribute[0].t(c)"


def test_malformed_protobuf_is_an_error(tmp_path: Path) -> None:
    data = model([helper.make_node("Relu", ["X"], ["Y"])])
    r = scan_bytes(tmp_path, data[:-3])
    assert r.verdict.value in ("error", "unsafe")
    assert r.errors


def test_model_without_graph_is_an_error(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, b"\x08\x08\x12\x03abc\x42\x00")  # ir_version, producer, opset
    assert (r.format, r.verdict.value) == ("onnx", "error")
    assert "no graph" in r.errors[0]


def test_nesting_limit(tmp_path: Path) -> None:
    # graph -> node -> attribute.g -> node -> ... 100 levels deep, built as raw protobuf
    def ld(field: int, payload: bytes) -> bytes:
        n, out = len(payload), b""
        while True:
            b = n & 0x7F
            n >>= 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                break
        return bytes([(field << 3) | 2]) + out + payload

    graph = b""
    for _ in range(100):
        graph = ld(1, ld(5, ld(6, graph)))  # node{attribute{g{...}}}
    r = scan_bytes(tmp_path, b"\x08\x08" + ld(7, graph))
    assert r.verdict.value == "error"
    assert "deeper than" in r.errors[0]
