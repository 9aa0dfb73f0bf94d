"""JSON files that ship with models: ``config.json``, ``tokenizer_config.json``, Keras
``model.to_json()`` configs.

Format: UTF-8 JSON (at most 64 MiB is parsed).

Threat model: JSON is data, ``json.load`` runs nothing, so a JSON file is safe unless
a loader turns part of it into code. Two loaders do: Keras' ``model_from_json``
rebuilds every layer a config names, including ``Lambda`` layers and objects from any
``module`` (checked exactly like a ``.keras`` archive's ``config.json``, MLW-SUP-005),
and Hugging Face tokenizers render ``chat_template`` (a string, or a list of
``{"name", "template"}``) with Jinja2 on every conversation (checked like a GGUF chat
template for server-side template injection, MLW-SUP-007; CVE-2024-34359 was the
GGUF variant). A file that is not valid JSON gets an error verdict.
"""

from __future__ import annotations

import json
from typing import Any

from mlwarden.supplychain.rules import RULE_GGUF_TEMPLATE
from mlwarden.supplychain.scan._context import FileScan, human_bytes

__all__ = ["MAX_JSON", "looks_like_json", "scan_json"]

MAX_JSON = 64 << 20
"""Largest JSON file parsed (64 MiB)."""


def looks_like_json(head: bytes) -> bool:
    """True when the file starts (after a BOM and whitespace) with ``{`` or ``[`` and the
    first bytes are text."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if text[:1] not in (b"{", b"["):
        return False
    try:
        text[:256].decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end is fine
        return exc.start >= len(text[:256]) - 3
    return True


def scan_json(ctx: FileScan, data: memoryview) -> None:
    """Parse the JSON; check Keras model configs and chat templates in it."""
    from mlwarden.supplychain.scan.gguf import check_template
    from mlwarden.supplychain.scan.keras import check_config

    if len(data) > MAX_JSON:
        ctx.error(
            f"a JSON file of {human_bytes(len(data))}, over the {human_bytes(MAX_JSON)} limit"
        )
        return
    try:
        doc = json.loads(bytes(data).decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:
        ctx.error(f"unknown format: starts like JSON but is not valid JSON ({type(exc).__name__})")
        return
    ctx.add_scanned(len(data))
    if isinstance(doc, dict) and "class_name" in doc and "config" in doc:
        n = check_config(ctx, doc, "")
        ctx.note(f"Keras model config: {n} serialised objects checked")
    n_templates = 0
    for where, template in _chat_templates(doc):
        n_templates += 1
        for construct, why in check_template(template):
            ctx.issue(
                RULE_GGUF_TEMPLATE,
                where,
                construct,
                f"the chat template {why}; rendered outside a sandbox this runs Python code.",
            )
    checked = f"; {n_templates} chat template(s) checked" if n_templates else ""
    ctx.note(f"JSON data (holds no code){checked}")


def _chat_templates(doc: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                sub = f"{path}.{k}" if path else str(k)
                if k == "chat_template":
                    if isinstance(v, str):
                        found.append((sub, v))
                    elif isinstance(v, list):
                        for i, item in enumerate(v):
                            if isinstance(item, dict) and isinstance(item.get("template"), str):
                                found.append((f"{sub}[{i}]", item["template"]))
                elif isinstance(v, dict | list):
                    stack.append((v, sub))
        elif isinstance(node, list):
            stack.extend(
                (v, f"{path}[{i}]") for i, v in enumerate(node) if isinstance(v, dict | list)
            )
    return found
