"""The scanner against the generated corpus: every file's verdict, rule and format; the
CI gate's exit codes; and proof that scanning executes and imports nothing from a file.

The corpus is written by :func:`tests.supplychain_corpus.build_corpus` (real libraries
for the benign files, crafted payloads that would create a marker file). Building it
imports torch, scikit-learn, skops and ONNX, hence ``slow``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from tests.supplychain_corpus import MARKER, CorpusEntry, build_corpus

from mlwarden.supplychain import scan
from mlwarden.supplychain.result import EXIT_ERROR, EXIT_OK, EXIT_UNSAFE

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[CorpusEntry]]:
    root = tmp_path_factory.mktemp("corpus")
    return root, build_corpus(root)


def test_every_file_gets_its_expected_verdict(corpus: tuple[Path, list[CorpusEntry]]) -> None:
    root, entries = corpus
    result = scan(root, default_skips=False)  # every file, the text file included
    by_path = {f.path: f for f in result.files}
    assert set(by_path) == {str(e.path) for e in entries}, "a corpus file was not scanned"
    problems = []
    for e in entries:
        f = by_path[str(e.path)]
        rules = sorted({i.rule_id for i in f.issues})
        if f.verdict.value != e.expected or (e.rule and e.rule not in rules):
            problems.append(
                f"{e.technique}: {e.path.name}: {f.verdict.value} {rules} {f.errors[:1]}"
            )
        elif e.fmt is not None and f.format != e.fmt:
            problems.append(f"{e.technique}: {e.path.name}: format {f.format} != {e.fmt}")
        elif e.expected == "safe" and (f.errors or f.issues):
            problems.append(f"{e.technique}: safe but {f.errors} {f.issues}")
    assert not problems, "\n".join(problems)
    assert result.exit_code == EXIT_UNSAFE
    assert not (root / MARKER).exists()


def test_default_skips_leave_only_the_text_file_out(
    corpus: tuple[Path, list[CorpusEntry]],
) -> None:
    root, entries = corpus
    result = scan(root)
    text = [e for e in entries if e.technique == "text-file"]
    assert [s.path for s in result.skipped] == [str(e.path) for e in text]
    assert "repository text file" in result.skipped[0].reason
    scanned = {f.path for f in result.files}
    assert scanned == {str(e.path) for e in entries} - {str(e.path) for e in text}
    assert result.exit_code == EXIT_UNSAFE


def test_corpus_covers_every_technique(corpus: tuple[Path, list[CorpusEntry]]) -> None:
    _, entries = corpus
    verdicts = Counter(e.expected for e in entries)
    assert verdicts["safe"] >= 30 and verdicts["unsafe"] >= 40 and verdicts["error"] >= 6
    rules = {e.rule for e in entries if e.rule}
    assert {f"MLW-SUP-00{i}" for i in (1, 4, 5, 6, 7, 8, 9)} <= rules


_CHILD = r"""
import json, os, sys
from pathlib import Path
from mlwarden.supplychain import scan
root = Path(sys.argv[1])
warm = json.loads(sys.argv[2])
for p in warm:
    scan(p)
before = set(sys.modules)
result = scan(root)
print(json.dumps({
    "new": sorted(set(sys.modules) - before),
    "heavy": sorted(m for m in ("torch", "sklearn", "pandas", "skops", "onnx", "joblib",
                                "scipy", "tensorflow", "keras", "dill", "numpy", "h5py")
                    if m in sys.modules),
    "exit": result.exit_code,
    "files": len(result.files),
    "skipped": len(result.skipped),
}))
"""


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def test_scanning_imports_and_runs_nothing_from_the_files(
    corpus: tuple[Path, list[CorpusEntry]], tmp_path: Path
) -> None:
    root, entries = corpus
    # Warm up on one benign (or error) file of every format: whatever the scanner
    # imports for its own use is loaded then; scanning the malicious files must add
    # nothing at all.
    warm: dict[str, str] = {}
    for e in entries:
        if e.expected != "unsafe":
            warm.setdefault(e.fmt or e.technique, str(e.path))
    before_tree = _tree(root)
    before_cwd = sorted(os.listdir(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), json.dumps(sorted(warm.values()))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=True,
    )
    report = json.loads(out.stdout)
    assert report["new"] == [], "scanning the corpus imported new modules"
    assert report["heavy"] == [], "the scanner imported an ML framework"
    assert report["files"] + report["skipped"] == len({e.path for e in entries})
    assert report["skipped"] == 1  # the corpus' README.txt
    assert report["exit"] == EXIT_UNSAFE
    assert not (root / MARKER).exists()
    assert not (tmp_path / MARKER).exists()
    assert _tree(root) == before_tree, "scanning created or changed a file in the corpus"
    assert sorted(os.listdir(tmp_path)) == before_cwd, "scanning wrote into the cwd"


def _copy(entries: list[CorpusEntry], expected: str, dest: Path) -> Path:
    dest.mkdir()
    for e in entries:
        if e.expected == expected:
            target = dest / e.path.parent.name / e.path.name
            target.parent.mkdir(exist_ok=True)
            shutil.copy(e.path, target)
    return dest


def test_exit_codes_of_the_ci_gate(corpus: tuple[Path, list[CorpusEntry]], tmp_path: Path) -> None:
    root, entries = corpus
    benign = _copy(entries, "safe", tmp_path / "benign")
    assert scan(benign).exit_code == EXIT_OK

    one_bad = tmp_path / "one_bad"
    shutil.copytree(benign, one_bad)
    shutil.copy(root / "malicious" / "payload_p4.pkl", one_bad / "model.bin")
    bad = scan(one_bad)
    assert bad.exit_code == EXIT_UNSAFE
    assert [f.path for f in bad.files if f.issues] == [str(one_bad / "model.bin")]

    one_unknown = tmp_path / "one_unknown"
    shutil.copytree(benign, one_unknown)
    shutil.copy(root / "edge" / "random.bin", one_unknown / "weights.bin")
    assert scan(one_unknown).exit_code == EXIT_ERROR

    (tmp_path / "empty").mkdir()
    assert scan(tmp_path / "empty").exit_code == EXIT_ERROR
    assert not (root / MARKER).exists()
