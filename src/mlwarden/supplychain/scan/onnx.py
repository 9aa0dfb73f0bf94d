"""ONNX models, walked at the protobuf wire level (the ``onnx`` package is not imported).

Format: an ONNX file is a serialised ``ModelProto`` (protobuf). The scanner walks the
wire format itself: ``ModelProto.graph`` (7), ``training_info`` (20) and
``functions`` (25); in every ``GraphProto`` the nodes (1), initializers (5) and sparse
initializers (15); in every ``NodeProto`` the domain (7), op type (4) and attributes
(5), whose tensors (``t``, ``tensors``, ``sparse_tensor(s)``) and sub-graphs (``g``,
``graphs``: the bodies of ``If``, ``Loop``, ``Scan``) are walked the same way; in every
``TensorProto`` the ``data_location`` (14) and ``external_data`` (13) key/value
pairs. Tensor payloads are skipped by their length, so a multi-GB model is walked
without being read, and nothing is allocated for a length the file does not hold.

Threat model:

- **External data path traversal.** A tensor's ``external_data`` ``location`` names a
  file that ``onnx.load`` / onnxruntime read relative to the model's folder. An
  absolute path or one that climbs out with ``..`` (e.g. ``../../etc/passwd``) makes
  loading the model read an arbitrary host file into a tensor, which the model can
  then return (CVE-2022-25882 and its bypass CVE-2024-27318 in the ``onnx`` package).
  Locations are normalised (``\\`` and ``/``, ``.``/``..``) and, when the file exists,
  resolved through symlinks; any that lands outside the folder is MLW-SUP-006.
- **Custom operators.** A node whose domain is not a standard one needs a custom-op
  library, i.e. native code shipped with and trusted for the model. Accepted domains:
  ``""`` / ``ai.onnx`` (the default operator set), ``ai.onnx.ml``,
  ``ai.onnx.preview.training`` and ``com.microsoft`` (contrib operators compiled into
  onnxruntime itself). Other ``com.microsoft.*`` sub-domains (``nchwc``, ``nhwc``)
  appear only in graphs that onnxruntime optimised for one machine, not in models
  that are distributed, so they are reported for review like any other domain. A node
  that calls a function defined in the model itself (``ModelProto.functions``, same
  domain and name) is not a custom operator: the function's body is walked instead.

Malformed protobuf (a length past the end, an invalid wire type, nesting deeper
than 64 messages) gives an error verdict.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from mlwarden.supplychain.rules import RULE_ONNX
from mlwarden.supplychain.scan._context import FileScan

__all__ = ["STANDARD_DOMAINS", "check_location", "looks_like_onnx", "scan_onnx"]

STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training", "com.microsoft"}
)
"""Operator domains that need no custom-op library (see the module docstring)."""

MAX_DEPTH = 64

# message name → {field number: child message name} for length-delimited children
_CHILDREN: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "function": {7: "node", 11: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {13: "entry"},
    "entry": {},
}
_FIELD_NAMES: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training_info", 25: "functions"},
    "training": {1: "initialization", 2: "algorithm"},
    "graph": {1: "node", 5: "initializer", 15: "sparse_initializer"},
    "node": {5: "attribute"},
    "function": {7: "node", 11: "attribute_proto"},
    "attribute": {
        5: "t",
        6: "g",
        10: "tensors",
        11: "graphs",
        22: "sparse_tensor",
        23: "sparse_tensors",
    },
    "sparse": {1: "values", 2: "indices"},
    "tensor": {13: "external_data"},
    "entry": {},
}
_REPEATED = frozenset(
    {
        ("model", 20),
        ("model", 25),
        ("graph", 1),
        ("graph", 5),
        ("graph", 15),
        ("node", 5),
        ("function", 7),
        ("function", 11),
        ("attribute", 10),
        ("attribute", 11),
        ("attribute", 23),
        ("tensor", 13),
    }
)
# message name → {field number: name} of the string fields the checks need
_STRINGS: dict[str, dict[int, str]] = {
    "node": {3: "name", 4: "op_type", 7: "domain"},
    "function": {1: "name", 10: "domain"},
    "tensor": {8: "name"},
    "entry": {1: "key", 2: "value"},
    "attribute": {1: "name"},
}


class ProtobufError(ValueError):
    """The bytes are not well-formed protobuf."""


@dataclass
class _Msg:
    kind: str
    start: int
    end: int
    path: str
    depth: int
    strings: dict[str, str] = field(default_factory=dict)
    entries: list[tuple[str, str]] = field(default_factory=list)
    data_location: int = 0


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ProtobufError(f"truncated varint at offset {pos}")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError(f"varint longer than 10 bytes at offset {pos}")


def _fields(buf: memoryview, start: int, end: int):  # type: ignore[no-untyped-def]
    """Yield ``(field, wire_type, value, value_start, value_end)`` for one message."""
    pos = start
    while pos < end:
        tag_at = pos
        tag, pos = _varint(buf, pos, end)
        fnum, wt = tag >> 3, tag & 7
        if fnum == 0:
            raise ProtobufError(f"field number 0 at offset {tag_at}")
        if wt == 0:
            value, pos = _varint(buf, pos, end)
            yield fnum, wt, value, 0, 0
        elif wt == 1:
            if pos + 8 > end:
                raise ProtobufError(f"truncated fixed64 at offset {pos}")
            pos += 8
            yield fnum, wt, 0, 0, 0
        elif wt == 5:
            if pos + 4 > end:
                raise ProtobufError(f"truncated fixed32 at offset {pos}")
            pos += 4
            yield fnum, wt, 0, 0, 0
        elif wt == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise ProtobufError(
                    f"field {fnum} at offset {tag_at} claims {length} bytes past the end "
                    "of its message"
                )
            yield fnum, wt, length, pos, pos + length
            pos += length
        else:
            raise ProtobufError(f"unsupported wire type {wt} at offset {tag_at}")


def looks_like_onnx(data: memoryview) -> bool:
    """True when the file starts like a ``ModelProto``: ``ir_version`` first, then
    well-formed fields that include the graph or the opset imports (or the end)."""
    if len(data) < 4 or data[0] != 0x08:
        return False
    try:
        it = _fields(data, 0, len(data))
        fnum, wt, value, _, _ = next(it)
        if fnum != 1 or wt != 0 or not 1 <= value <= 64:
            return False
        for i, (fnum, wt, _v, _s, _e) in enumerate(it):
            if fnum in (7, 8) and wt == 2:
                return True
            if i > 32:
                return False
        return True
    except (ProtobufError, StopIteration):
        return False


def check_location(location: str, model_dir: Path | None) -> str | None:
    """Why an external-data location is unsafe, or None when it stays in the folder.

    Parameters
    ----------
    location : str
        The ``location`` value of a tensor's external data.
    model_dir : Path or None
        The folder of the model file, to resolve symlinks when the target exists.
    """
    if "\x00" in location:
        return "contains a NUL byte"
    if not location:
        return "is empty"
    unified = location.replace("\\", "/")
    win = PureWindowsPath(location)
    if unified.startswith("/") or win.drive or win.root:
        return "is an absolute path"
    norm = posixpath.normpath(unified)
    if norm == ".." or norm.startswith("../"):
        return "climbs out of the model's folder"
    if model_dir is not None:
        target = model_dir / norm
        if os.path.lexists(target):
            try:
                resolved = target.resolve()
                base = model_dir.resolve()
            except (OSError, RuntimeError):
                return "cannot be resolved (symlink loop)"
            if not resolved.is_relative_to(base):
                return f"resolves through a symlink to {resolved}, outside the model's folder"
    return None


def scan_onnx(ctx: FileScan, data: memoryview, model_dir: Path | None) -> None:
    """Walk an ONNX model and report escaping external data and custom operators."""
    try:
        custom, functions, n_nodes, n_external = _walk(ctx, data, model_dir)
    except ProtobufError as exc:
        ctx.error(f"malformed ONNX protobuf: {exc}")
        return
    for domain, op_type, path in custom:
        if (domain, op_type) in functions:
            continue
        ctx.issue(
            RULE_ONNX,
            path,
            f"custom operator {domain}::{op_type}",
            f"node uses operator {op_type!r} from domain {domain!r}, which is not a "
            "standard ONNX or onnxruntime domain: running the model needs a custom-op "
            "library (native code).",
        )
    ctx.add_scanned(len(data))
    ctx.note(f"{n_nodes} nodes walked, {n_external} tensors with external data")


def _walk(
    ctx: FileScan, data: memoryview, model_dir: Path | None
) -> tuple[list[tuple[str, str, str]], set[tuple[str, str]], int, int]:
    custom: list[tuple[str, str, str]] = []
    functions: set[tuple[str, str]] = set()
    n_nodes = 0
    n_external = 0
    has_graph = False
    stack = [_Msg("model", 0, len(data), "", 0)]
    while stack:
        msg = stack.pop()
        if msg.depth > MAX_DEPTH:
            raise ProtobufError(f"messages nested deeper than {MAX_DEPTH} at {msg.path}")
        children: list[_Msg] = []
        counters: dict[int, int] = {}
        wanted = _STRINGS.get(msg.kind, {})
        kids = _CHILDREN[msg.kind]
        for fnum, wt, value, s, e in _fields(data, msg.start, msg.end):
            if wt == 2 and fnum in wanted:
                try:
                    msg.strings[wanted[fnum]] = bytes(data[s:e]).decode("utf-8")
                except UnicodeDecodeError:
                    raise ProtobufError(f"invalid UTF-8 string at offset {s}") from None
            elif wt == 2 and fnum in kids:
                idx = counters.get(fnum, 0)
                counters[fnum] = idx + 1
                fname = _FIELD_NAMES[msg.kind][fnum]
                sub = f"{msg.path}.{fname}" if msg.path else fname
                if (msg.kind, fnum) in _REPEATED:
                    sub += f"[{idx}]"
                children.append(_Msg(kids[fnum], s, e, sub, msg.depth + 1))
            elif msg.kind == "tensor" and fnum == 14 and wt == 0:
                msg.data_location = value
        if msg.kind == "model":
            has_graph = 7 in counters
        if msg.kind == "node":
            n_nodes += 1
            domain = msg.strings.get("domain", "")
            op = msg.strings.get("op_type", "")
            name = msg.strings.get("name")
            label = f"{msg.path}({op}{', ' + name if name else ''})"
            if domain not in STANDARD_DOMAINS:
                custom.append((domain, op, label))
            for c in children:
                c.path = label + c.path[len(msg.path) :]
        elif msg.kind == "function":
            functions.add((msg.strings.get("domain", ""), msg.strings.get("name", "")))
        elif msg.kind == "tensor":
            entries = []
            for c in children:
                entries.append(_entry(data, c))
            location = next((v for k, v in entries if k == "location"), None)
            if entries or msg.data_location == 1:
                n_external += 1
                name = msg.strings.get("name", "")
                where = f"{msg.path}({name})" if name else msg.path
                if location is None:
                    ctx.error(f"{where}: tensor stored externally without a location")
                else:
                    why = check_location(location, model_dir)
                    if why is None and model_dir is not None:
                        norm = posixpath.normpath(location.replace("\\", "/"))
                        ctx.external_data.append(os.path.realpath(model_dir / norm))
                    if why:
                        ctx.issue(
                            RULE_ONNX,
                            where,
                            f"external data {location}",
                            f"tensor {name!r} loads its data from {location!r}, which "
                            f"{why}: loading the model reads that file from the host.",
                        )
            children = []
        stack.extend(reversed(children))
    if not has_graph:
        raise ProtobufError("the ModelProto has no graph")
    return custom, functions, n_nodes, n_external


def _entry(data: memoryview, msg: _Msg) -> tuple[str, str]:
    key = value = ""
    for fnum, wt, _v, s, e in _fields(data, msg.start, msg.end):
        if wt == 2 and fnum in (1, 2):
            try:
                text = bytes(data[s:e]).decode("utf-8")
            except UnicodeDecodeError:
                raise ProtobufError(f"invalid UTF-8 string at offset {s}") from None
            if fnum == 1:
                key = text
            else:
                value = text
    return key, value
