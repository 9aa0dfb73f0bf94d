"""GGUF: the header parser, its size caps, and chat-template injection checks."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from tests.supplychain_corpus import (
    CHATML_TEMPLATE,
    LLAMA3_TEMPLATE,
    SSTI_CONCAT_TEMPLATE,
    SSTI_TEMPLATE,
    _gguf_kvs,
    gguf_bytes,
    payload_pickle,
    rules_of,
    scan_bytes,
)

from mlwarden.supplychain.scan.gguf import check_template

BENIGN = [
    CHATML_TEMPLATE,
    LLAMA3_TEMPLATE,
    # Mistral style: raise_exception, loop.index, strip
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'].strip() + ' [/INST]' }}"
    "{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
    # tools with tojson, items(), selectattr by a plain attribute, loop controls
    "{% for tool in tools %}{{ tool.function.name }}: {{ tool.function.parameters | tojson }}"
    "{% for k, v in tool.function.parameters.items() %}{{ k }}{% endfor %}{% endfor %}"
    "{% for m in messages | selectattr('role', 'equalto', 'user') %}{{ m.content }}"
    "{% if loop.last %}{% break %}{% endif %}{% endfor %}",
    # HF generation tags and int arithmetic in subscripts
    "{% for m in messages %}{% generation %}{{ messages[loop.index0 - 1]['content'] }}"
    "{% endgeneration %}{% endfor %}",
    "{% set system = messages[0]['content'] if messages[0]['role'] == 'system' else '' %}"
    "{{ system }}",
]

ATTACKS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ x['__class__'] }}",
    "{{ x|attr('__class__') }}",
    "{{ x|attr('__cla' ~ 'ss__') }}",
    "{{ x|attr(['_'*2, 'class', '_'*2]|join) }}",
    "{{ x[('__cla' ~ 'ss__')] }}",
    "{% set a = '__cla' + 'ss__' %}{{ x[a] }}",
    "{% set a = '__ssalc__'|reverse %}{{ x[a] }}",
    "{{ lipsum.__globals__['os'].popen('true').read() }}",
    "{{ cycler.__init__.__globals__.os.popen('true').read() }}",
    "{{ joiner }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ request.application }}",
    "{{ config.items() }}",
    "{{ self._TemplateReference__context }}",
    "{{ x|map(attribute='__class__')|list }}",
    "{% include 'other.j2' %}",
    "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ x.popen('true') }}",
    "{{ x|attr(y) }}",
    "{{ x[y ~ 'z'] }}",
    "{% if %}{{ x.__class__ }}",  # not parseable: checked as text
    "{% if %}{{ x|attr('a') }}",
]


@pytest.mark.parametrize("template", BENIGN)
def test_benign_templates_pass(template: str) -> None:
    assert check_template(template) == []


@pytest.mark.parametrize("template", ATTACKS)
def test_attacks_are_found(template: str) -> None:
    assert check_template(template), template


def test_corpus_attack_templates() -> None:
    constructs = {c for c, _ in check_template(SSTI_CONCAT_TEMPLATE)}
    assert "cycler" in constructs
    assert any(c.startswith("string built as '__init__'") for c in constructs)
    assert check_template(SSTI_TEMPLATE)


def test_benign_file(tmp_path: Path) -> None:
    r = scan_bytes(tmp_path, gguf_bytes(_gguf_kvs(CHATML_TEMPLATE)), "m.bin")
    assert (r.format, r.verdict.value, r.errors) == ("gguf", "safe", [])
    assert any("1 chat template checked" in n for n in r.notes)


def test_template_variants_and_arrays_are_checked(tmp_path: Path) -> None:
    kvs = [
        *_gguf_kvs(CHATML_TEMPLATE),
        ("tokenizer.chat_template.tool_use", 8, SSTI_TEMPLATE),
        ("tokenizer.chat_template.extra", 9, (8, [CHATML_TEMPLATE, "{{ x.__class__ }}"])),
    ]
    r = scan_bytes(tmp_path, gguf_bytes(kvs))
    assert rules_of(r) == {"MLW-SUP-007"}
    assert {i.location for i in r.issues} == {
        "tokenizer.chat_template.tool_use",
        "tokenizer.chat_template.extra",
    }


def test_big_endian_file(tmp_path: Path) -> None:
    le = gguf_bytes([("general.name", 8, "x")])
    # a big-endian header: version and counts byte-swapped, strings' lengths too
    be = b"GGUF" + struct.pack(">IQQ", 3, 0, 1)
    be += (
        struct.pack(">Q", 12) + b"general.name" + struct.pack(">I", 8) + struct.pack(">Q", 1) + b"x"
    )
    r = scan_bytes(tmp_path, be)
    assert (r.verdict.value, r.errors) == ("safe", [])
    assert le[:4] == be[:4]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "version 1"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 60) + b"k" * 64, "claims"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1 << 40) + b"\x00" * 64, "more than"),
        (
            b"GGUF"
            + struct.pack("<IQQ", 3, 0, 1)
            + struct.pack("<Q", 1)
            + b"k"
            + struct.pack("<IIQ", 9, 8, 1 << 50)
            + b"\x00" * 64,
            "claims",
        ),
        (
            b"GGUF"
            + struct.pack("<IQQ", 3, 0, 1)
            + struct.pack("<Q", 1)
            + b"k"
            + struct.pack("<I", 99)
            + b"\x00" * 64,
            "unknown value type",
        ),
        (gguf_bytes([("a", 4, 1)])[:70], "truncated at offset"),
    ],
)
def test_hostile_headers_are_errors(tmp_path: Path, data: bytes, message: str) -> None:
    r = scan_bytes(tmp_path, data)
    assert (r.format, r.verdict.value) == ("gguf", "error")
    assert message in r.errors[0]


def test_template_before_a_broken_header_is_still_checked(tmp_path: Path) -> None:
    data = gguf_bytes(_gguf_kvs(SSTI_TEMPLATE))
    r = scan_bytes(tmp_path, data[: data.index(b"token_embd") + 4])
    assert r.verdict.value == "unsafe"
    assert r.errors


def test_oversized_template_is_not_waved_through(tmp_path: Path) -> None:
    big = "{{ messages[0]['content'] }}" * 50_000  # 1.4 MB
    r = scan_bytes(tmp_path, gguf_bytes(_gguf_kvs(big)))
    assert r.verdict.value == "error"
    assert "too large to check" in r.errors[0]


def test_stand_alone_jinja_chat_templates_are_checked(tmp_path: Path) -> None:
    """Hugging Face's ``chat_template.jinja``: benign passes, SSTI is caught, and content
    still beats the name (a pickle called .jinja is scanned as a pickle)."""
    from mlwarden.supplychain import scan, scan_file

    benign = tmp_path / "benign" / "chat_template.jinja"
    benign.parent.mkdir()
    benign.write_text("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}")
    bad = tmp_path / "bad" / "chat_template.jinja"
    bad.parent.mkdir()
    bad.write_text(SSTI_TEMPLATE)
    ok = scan_file(benign)
    assert (ok.verdict.value, ok.format) == ("safe", "jinja-template")
    flagged = scan_file(bad)
    assert flagged.verdict.value == "unsafe"
    assert {i.rule_id for i in flagged.issues} == {"MLW-SUP-007"}
    assert scan(benign.parent).exit_code == 0
    assert scan(bad.parent).exit_code == 1
    disguised = tmp_path / "template.j2"
    disguised.write_bytes(payload_pickle(tmp_path))
    assert scan_file(disguised).verdict.value == "unsafe"
    assert scan_file(disguised).format.startswith("pickle")
