"""skops archives (``skops.io.dump``), checked without importing skops or scikit-learn.

Format: a zip archive whose ``schema.json`` describes the object tree; every node
has ``__class__``, ``__module__`` and ``__loader__`` (``ObjectNode``, ``DictNode``,
``FunctionNode``, ``MethodNode``, ``TypeNode``, ``NdArrayNode`` ...), children under
``content`` (and ``key_types``, ``attrs`` ...), and large arrays live in ``.npy`` (or
scipy ``.npz``) members that a node's ``file`` names.

Threat model: skops was designed to avoid pickle's code execution: loading
constructs only the types the schema names, and refuses types that are not trusted.
But whatever type a user trusts is imported and instantiated (``ObjectNode``),
called (``FunctionNode``, ``PartialNode``), or has a method looked up on it
(``MethodNode``), so a schema that names ``os.system`` or ``builtins.eval`` and a
user who trusts the file's own list of "untrusted types" (``trusted=
get_untrusted_types(file=...)``, a common pattern) is code execution. Every type,
function and method the schema references goes through the same allowlist decision
as pickle globals (:func:`mlwarden.supplychain.allowlist.decide`); refusals are
MLW-SUP-009, with the severity of the decision (critical for denylisted names).
Array members are scanned as ``.npy`` (an object array there would be a pickle) and
scipy ``.npz`` members as archives.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlwarden.supplychain.rules import RULE_SKOPS_UNTRUSTED
from mlwarden.supplychain.scan._context import MAX_NESTING, FileScan, ZipView, join_member

if TYPE_CHECKING:
    from mlwarden.supplychain.allowlist import Decision
    from mlwarden.supplychain.policy import Policy

__all__ = ["MAX_SCHEMA", "is_skops_zip", "scan_skops"]

MAX_SCHEMA = 256 << 20
"""Largest ``schema.json`` parsed (256 MiB)."""


def is_skops_zip(names: list[str]) -> bool:
    """True for a skops archive."""
    return "schema.json" in names


def _references(node: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``(module, qualname)`` pairs loading this node imports."""
    refs: list[tuple[str, str]] = []
    module, cls = node.get("__module__"), node.get("__class__")
    if isinstance(module, str) and isinstance(cls, str):
        refs.append((module, cls))
        if node.get("__loader__") == "MethodNode":
            content = node.get("content")
            if isinstance(content, dict):
                obj, func = content.get("obj"), content.get("func")
                if isinstance(obj, dict) and isinstance(func, str):
                    om, oc = obj.get("__module__"), obj.get("__class__")
                    if isinstance(om, str) and isinstance(oc, str):
                        refs.append((om, f"{oc}.{func}"))
    return refs


def scan_skops(ctx: FileScan, zv: ZipView, *, prefix: str = "", depth: int = 0) -> None:
    """Check every type in a skops schema and scan its array members."""
    from mlwarden.supplychain.allowlist import decide
    from mlwarden.supplychain.scan.numpy import NPY_MAGIC, scan_npy, scan_npz

    for name in zv.duplicates():
        ctx.malformed(
            join_member(prefix, name),
            f"duplicate member {name}",
            f"the archive holds several members named {name}; every copy was scanned.",
        )
    schema_where = join_member(prefix, "schema.json")
    schema: Any = None
    for m in zv.find("schema.json"):
        try:
            content, crc_ok = zv.read(m, MAX_SCHEMA)
        except ValueError as exc:
            ctx.error(f"cannot read the member: {exc}", schema_where)
            continue
        if not crc_ok:
            ctx.malformed(schema_where, "CRC mismatch", "the CRC-32 of schema.json does not match.")
        ctx.add_scanned(len(content))
        try:
            schema = json.loads(bytes(content))
        except (ValueError, RecursionError) as exc:
            ctx.error(f"schema.json is not valid JSON ({type(exc).__name__})", schema_where)
            continue
        _check_schema(ctx, schema, schema_where, decide)
    if isinstance(schema, dict):
        ctx.note(f"skops protocol {schema.get('protocol')!r}")
    names = set(zv.names)
    referenced = _files(schema)
    for f in sorted(referenced - names):
        ctx.error(f"the schema references member {f!r}, which the archive does not hold")
    for m in zv:
        if m.name == "schema.json":
            continue
        where = join_member(prefix, m.name)
        try:
            content, crc_ok = zv.read(m, ctx.max_decompressed)
        except ValueError as exc:
            ctx.error(f"cannot read the member: {exc}", where)
            continue
        if not crc_ok:
            ctx.malformed(where, "CRC mismatch", f"the CRC-32 of {m.name} does not match.")
        head = bytes(content[:8])
        if head.startswith(NPY_MAGIC):
            scan_npy(ctx, content, member=where, depth=depth)
        elif head.startswith(b"PK\x03\x04") and depth < MAX_NESTING:
            try:
                inner = ZipView(io.BytesIO(bytes(content)), content)
            except Exception as exc:  # zipfile raises several types on bad archives
                ctx.error(f"corrupt nested archive ({type(exc).__name__}: {exc})", where)
                continue
            try:
                scan_npz(ctx, inner, prefix=where, depth=depth + 1)
            finally:
                inner.close()
        elif m.name not in referenced:
            ctx.note(f"{where}: not referenced by the schema; skops never reads it")


def _files(schema: Any) -> set[str]:
    out: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and "__loader__" in node:
                out.add(f)
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    return out


def _check_schema(
    ctx: FileScan,
    schema: Any,
    where: str,
    decide: Callable[[str, str, Policy | None], Decision],
) -> None:
    n_nodes = 0
    refused: set[str] = set()
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(node))))
            continue
        if not isinstance(node, dict):
            continue
        if "__loader__" in node or "__module__" in node or "__class__" in node:
            n_nodes += 1
            module, cls = node.get("__module__"), node.get("__class__")
            if not (isinstance(module, str) and isinstance(cls, str)):
                ctx.malformed(
                    f"{where}:{path}",
                    "node without __module__/__class__ strings",
                    "a schema node does not name its type with strings.",
                )
            for mod, qual in _references(node):
                d = decide(mod, qual, ctx.policy)
                if d.allowed or d.name in refused:
                    continue
                refused.add(d.name)
                ctx.issue(
                    RULE_SKOPS_UNTRUSTED,
                    f"{where}:{path}" if path else where,
                    d.name,
                    f"loading needs {d.name} ({node.get('__loader__', 'node')}): {d.reason}.",
                    severity=d.severity,
                )
        stack.extend(
            (v, f"{path}.{k}" if path else str(k))
            for k, v in reversed(list(node.items()))
            if isinstance(v, dict | list)
        )
    ctx.note(f"{where}: {n_nodes} schema nodes checked against the allowlist")
