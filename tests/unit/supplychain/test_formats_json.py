"""JSON files next to models: plain configs, Keras model JSON, tokenizer chat templates."""

from __future__ import annotations

import json
from pathlib import Path

from tests.supplychain_corpus import (
    CHATML_TEMPLATE,
    SSTI_TEMPLATE,
    _k3_input,
    _k3_lambda,
    _k3_sequential,
    rules_of,
    scan_bytes,
)


def test_plain_config_is_safe(tmp_path: Path) -> None:
    cfg = {"architectures": ["LlamaForCausalLM"], "hidden_size": 16, "model_type": "llama"}
    r = scan_bytes(tmp_path, json.dumps(cfg, indent=2).encode(), "config.json")
    assert (r.format, r.verdict.value, r.errors) == ("json", "safe", [])


def test_tokenizer_chat_templates(tmp_path: Path) -> None:
    ok = {"bos_token": "<s>", "chat_template": CHATML_TEMPLATE}
    assert scan_bytes(tmp_path, json.dumps(ok).encode()).verdict.value == "safe"
    bad = {
        "chat_template": [
            {"name": "default", "template": CHATML_TEMPLATE},
            {"name": "rag", "template": SSTI_TEMPLATE},
        ]
    }
    r = scan_bytes(tmp_path, b"\xef\xbb\xbf  \n" + json.dumps(bad).encode())
    assert rules_of(r) == {"MLW-SUP-007"}
    assert {i.location for i in r.issues} == {"chat_template[1]"}


def test_keras_model_json_is_checked_like_a_keras_config(tmp_path: Path) -> None:
    cfg = _k3_sequential([_k3_input(), _k3_lambda()])
    r = scan_bytes(tmp_path, json.dumps(cfg).encode(), "model.json")
    assert rules_of(r) == {"MLW-SUP-005"}


def test_invalid_json_is_an_error(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, b'{"a": 1,,}')
    assert (r.format, r.verdict.value) == ("json", "error")
    assert "not valid JSON" in r.errors[0]


def test_git_lfs_pointer_gets_a_clear_message(tmp_path: Path) -> None:
    ptr = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n"
    r = scan_bytes(tmp_path, ptr, "model.safetensors")
    assert r.verdict.value == "error"
    assert "Git LFS pointer" in r.errors[0]
