"""Docs are part of the feature: every rule has a page, every example runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlwarden import _registry
from mlwarden.findings.taxonomy import RULES

DOCS = Path(__file__).parents[1] / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md"))


def test_every_rule_id_has_a_docs_page():
    _registry.available("check")  # load every registered check and its rules
    assert RULES
    for rule_id, rule in RULES.items():
        page = DOCS / "findings" / f"{rule_id}.md"
        assert page.exists(), f"missing docs page for {rule_id}"
        text = page.read_text()
        assert text.startswith(f"# {rule_id}")
        assert "How to fix" in text
        for atlas_id in rule.atlas:
            assert atlas_id in text


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_examples_in_docs_run(page, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(page), "exec"), {"__name__": "__docs__"})
