"""skops: every type the schema names goes through the allowlist; arrays are scanned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio  # first import walks all of scikit-learn: charged to collection
from sklearn.tree import DecisionTreeClassifier
from tests.supplychain_corpus import npy_bytes, payload_pickle, rules_of, scan_bytes, zip_bytes

from mlwarden.findings.taxonomy import Severity
from mlwarden.supplychain import Policy, scan_file


def node(module: str, cls: str, loader: str = "ObjectNode", **extra: Any) -> dict[str, Any]:
    return {"__class__": cls, "__module__": module, "__loader__": loader, **extra}


def schema(content: dict[str, Any]) -> dict[str, Any]:
    attrs = node(
        "builtins",
        "dict",
        "DictNode",
        content=content,
        key_types=node("builtins", "list", "ListNode", content=[]),
    )
    return node(
        "sklearn.linear_model._logistic",
        "LogisticRegression",
        content=attrs,
        protocol=2,
        _skops_version="0.16",
    )


def skops_file(members: list[tuple[str, bytes]], content: dict[str, Any]) -> bytes:
    return zip_bytes([*members, ("schema.json", json.dumps(schema(content)).encode())])


def test_hand_written_benign_schema(tmp_path: Path) -> None:
    coef = node("numpy", "ndarray", "NdArrayNode", type="numpy", file="c.npy")
    data = skops_file(
        [("c.npy", npy_bytes("<f8", (2,), b"\x00" * 16))],
        {"coef_": coef, "C": node("builtins", "str", "JsonNode", content="1.0", is_json=True)},
    )
    r = scan_bytes(tmp_path, data, "m.bin")
    assert (r.format, r.verdict.value, r.errors) == ("skops", "safe", [])


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        (node("os", "system", "FunctionNode"), "posix.system"),
        (node("builtins", "eval", "TypeNode"), "builtins.eval"),
        (node("subprocess", "Popen", "ObjectNode", content={}), "subprocess.Popen"),
        (node("mypkg.evil", "Thing", "ObjectNode"), "mypkg.evil.Thing"),
        (
            node(
                "builtins",
                "dict",
                "MethodNode",
                content={
                    "func": "__init__",
                    "obj": node("builtins", "dict", "DictNode", content={}),
                },
            ),
            "builtins.dict.__init__",
        ),
    ],
)
def test_untrusted_references(tmp_path: Path, bad: dict[str, Any], name: str) -> None:
    r = scan_bytes(tmp_path, skops_file([], {"callback": bad}))
    assert rules_of(r) == {"MLW-SUP-009"}
    assert any(i.construct in (name, name.replace("posix", "os")) for i in r.issues)
    assert r.issues[0].location == "schema.json:content.content.callback"


def test_denylisted_reference_keeps_its_severity(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, skops_file([], {"cb": node("os", "system", "FunctionNode")}))
    assert r.issues[0].severity is Severity.CRITICAL


def test_policy_allows_a_user_type(tmp_path: Path) -> None:
    p = tmp_path / "m.skops"
    p.write_bytes(skops_file([], {"x": node("mypkg", "Thing")}))
    assert scan_file(p).verdict.value == "unsafe"
    assert scan_file(p, policy=Policy(allow=frozenset({"mypkg.Thing"}))).verdict.value == "safe"


def test_array_members_are_scanned(tmp_path: Path) -> None:
    arr = node("numpy", "ndarray", "NdArrayNode", type="numpy", file="a.npy")
    data = skops_file([("a.npy", npy_bytes("|O", (1,), payload_pickle(tmp_path)))], {"a": arr})
    assert {"MLW-SUP-001", "MLW-SUP-004"} <= rules_of(scan_bytes(tmp_path, data))


def test_nested_npz_member_is_scanned(tmp_path: Path) -> None:
    inner = zip_bytes([("data.npy", npy_bytes("|O", (1,), payload_pickle(tmp_path)))])
    sp = node("scipy.sparse._csr", "csr_matrix", "SparseMatrixNode", type="scipy", file="s.npz")
    r = scan_bytes(tmp_path, skops_file([("s.npz", inner)], {"s": sp}))
    assert any(i.location.startswith("s.npz/data.npy@") for i in r.issues)


def test_missing_member_and_bad_json(tmp_path: Path) -> None:
    arr = node("numpy", "ndarray", "NdArrayNode", type="numpy", file="gone.npy")
    r = scan_bytes(tmp_path, skops_file([], {"a": arr}))
    assert r.verdict.value == "error"
    assert "gone.npy" in r.errors[0]
    r2 = scan_bytes(tmp_path, zip_bytes([("schema.json", b"{broken")]))
    assert (r2.format, r2.verdict.value) == ("skops", "error")


def test_node_without_type_strings_is_malformed(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, skops_file([], {"a": {"__loader__": "ObjectNode", "__class__": 3}}))
    assert "MLW-SUP-008" in rules_of(r)


def test_real_skops_dump(tmp_path: Path) -> None:
    model = DecisionTreeClassifier(max_depth=2).fit(np.eye(4), [0, 1, 0, 1])
    sio.dump(model, tmp_path / "t.skops")
    r = scan_file(tmp_path / "t.skops")
    assert (r.format, r.verdict.value, r.errors) == ("skops", "safe", [])
