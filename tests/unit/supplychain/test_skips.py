"""Skipped paths: default skips (version-control folders, repository text files),
``exclude`` patterns, and content beating names (a pickle called README.md is scanned).

The malicious pickles are written as raw opcodes and never loaded.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from tests.supplychain_corpus import MARKER, payload_pickle, safetensors_bytes

from mlwarden.exceptions import InvalidParameterError
from mlwarden.supplychain import Policy, SkippedPath, scan, scan_file
from mlwarden.supplychain.result import EXIT_ERROR, EXIT_OK, EXIT_UNSAFE
from mlwarden.supplychain.skips import (
    ExcludeRule,
    doc_file_rule,
    exclude_rules,
    is_text,
    text_file_decision,
)

# Protocol 0 (plain ASCII): GLOBAL 'os system' | MARK | STRING 'echo' | TUPLE | REDUCE | STOP
EVIL_P0 = b"cos\nsystem\n(S'echo'\ntR."
# Protocol 0 with INST: MARK | STRING 'echo' | INST 'os system' | STOP. "(S" is also a
# valid zlib header, which format detection must not take it for.
EVIL_P0_INST = b"(S'echo'\nios\nsystem\n."
# Protocol 0 starting with PERSID, which format detection does not recognise as a
# pickle: only the pickle walker run over the text file finds the import.
EVIL_P0_PERSID = b"Pid\ncos\nsystem\n(S'echo'\ntR."
# Protocol 2: PROTO | GLOBAL 'os system' | MARK | BINUNICODE 'true' | TUPLE | REDUCE | STOP
EVIL_P2 = b"\x80\x02cos\nsystem\n(X\x04\x00\x00\x00truetR."


def _hf_repo(root: Path) -> Path:
    """A folder laid out like a Hugging Face repository clone."""
    (root / ".git" / "objects" / "ab").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".git" / "objects" / "ab" / "cdef").write_bytes(b"x\x01\x4b\xca\xc9\x4f\x52")
    (root / "README.md").write_text("---\nlicense: mit\n---\n# My model\n\nUse it well.\n")
    (root / "LICENSE").write_text("MIT License\n\nCopyright (c) 2024 Someone\n")
    (root / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    (root / ".gitignore").write_text("")
    (root / "CITATION.cff").write_text("cff-version: 1.2.0\ntitle: My model\n")
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "vocab.txt").write_text("[PAD]\n[UNK]\nhéllo\n", encoding="utf-8")
    (root / "model.safetensors").write_bytes(safetensors_bytes({}, b""))
    (root / "config.json").write_text('{"hidden_size": 8}')
    (root / "head.pkl").write_bytes(pickle.dumps({"w": [0.5]}, protocol=4))
    return root


def _rel(root: Path, paths: list[str]) -> list[str]:
    return [Path(p).relative_to(root).as_posix() for p in paths]


# --------------------------------------------------------------------------- defaults


def test_a_model_repository_clone_passes_and_lists_what_it_skipped(tmp_path: Path) -> None:
    root = _hf_repo(tmp_path / "repo")
    r = scan(root)
    assert r.exit_code == EXIT_OK, (r.errors, [f.errors for f in r.files])
    assert _rel(root, [f.path for f in r.files]) == [
        "config.json", "head.pkl", "model.safetensors"
    ]  # fmt: skip
    assert _rel(root, [s.path for s in r.skipped]) == [
        ".git", ".gitattributes", ".gitignore", "CITATION.cff", "LICENSE", "README.md",
        "tokenizer/vocab.txt",
    ]  # fmt: skip
    by_name = {Path(s.path).name: s for s in r.skipped}
    # the version-control folder is one entry, not one per file in it
    assert by_name[".git"].folder and "version-control" in by_name[".git"].reason
    assert not any(".git/" in s.path for s in r.skipped)
    assert by_name["README.md"] == SkippedPath(
        str(root / "README.md"),
        "repository text file (name matches README*): its content is text, in no model "
        "format and not a pickle",
    )
    assert "empty" in by_name[".gitignore"].reason
    assert "*.txt" in by_name["vocab.txt"].reason


def test_no_default_skips_scans_everything(tmp_path: Path) -> None:
    root = _hf_repo(tmp_path / "repo")
    r = scan(root, default_skips=False)
    assert r.exit_code == EXIT_ERROR
    assert r.skipped == []
    names = _rel(root, [f.path for f in r.files])
    assert ".git/HEAD" in names and "README.md" in names and "LICENSE" in names
    readme = next(f for f in r.files if f.path.endswith("README.md"))
    assert "unknown format" in readme.errors[0]


@pytest.mark.parametrize(
    "name", ["README.md", "notes.txt", "LICENSE", "CHANGELOG.md", "readme", "docs.rst"]
)
@pytest.mark.parametrize("payload", [EVIL_P0, EVIL_P0_INST, EVIL_P0_PERSID, EVIL_P2])
def test_content_beats_name_a_pickle_named_like_a_text_file_is_caught(
    tmp_path: Path, name: str, payload: bytes
) -> None:
    (tmp_path / name).write_bytes(payload)
    (tmp_path / "model.safetensors").write_bytes(safetensors_bytes({}, b""))
    for r in (scan(tmp_path), scan(tmp_path / name)):
        assert r.exit_code == EXIT_UNSAFE, (r.skipped, [f.errors for f in r.files])
        assert r.skipped == []
        bad = next(f for f in r.files if f.path.endswith(name))
        assert bad.format == "pickle"
        assert [i.construct for i in bad.issues] == ["os.system"]
        assert bad.issues[0].rule_id == "MLW-SUP-001"


def test_a_real_malicious_pickle_named_readme_is_caught(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_bytes(payload_pickle(tmp_path, protocol=0))
    r = scan(tmp_path)
    assert r.exit_code == EXIT_UNSAFE and r.skipped == []
    assert not (tmp_path / MARKER).exists()


def test_a_benign_protocol_0_pickle_named_notes_txt_is_scanned_not_skipped(
    tmp_path: Path,
) -> None:
    (tmp_path / "notes.txt").write_bytes(pickle.dumps({"a": [1, 2]}, protocol=0))
    r = scan(tmp_path)
    assert r.exit_code == EXIT_OK and r.skipped == []
    assert r.files[0].format == "pickle"


@pytest.mark.parametrize(
    ("content", "fmt"),
    [(b"\x00\x01\x02 binary", "unknown"),  # not text: an unknown file, as without the name
     (b"caf\xe9 latin-1\n", "unknown"),  # not UTF-8
     (b"text with a \x07 bell\n", "unknown"),  # a control byte
     (b'{"a": 1}', "json")],  # a detected format is scanned as that format
)  # fmt: skip
def test_a_text_name_on_other_content_is_scanned(tmp_path: Path, content: bytes, fmt: str) -> None:
    (tmp_path / "README.txt").write_bytes(content)
    r = scan(tmp_path)
    assert r.skipped == []
    assert [f.format for f in r.files] == [fmt]
    assert r.exit_code == (EXIT_OK if fmt == "json" else EXIT_ERROR)


def test_a_text_file_with_another_name_is_still_an_error(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_text("# not a model\n")
    r = scan(tmp_path)
    assert r.exit_code == EXIT_ERROR and r.skipped == []
    assert "unknown format" in r.files[0].errors[0]


def test_scan_file_scans_the_file_it_is_given(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# hello\n")
    result = scan_file(tmp_path / "README.md")
    assert result.verdict.value == "error" and "unknown format" in result.errors[0]


def test_a_symbolic_link_named_readme_is_not_default_skipped(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(pickle.dumps([1]))
    outside = tmp_path.parent / f"{tmp_path.name}-outside.md"
    outside.write_text("# elsewhere\n")
    (tmp_path / "README.md").symlink_to(outside)
    r = scan(tmp_path)
    assert r.skipped == []
    link = next(f for f in r.files if f.path.endswith("README.md"))
    assert link.format == "symlink" and "outside the scanned folder" in link.errors[0]


def test_vcs_folders_are_exact_names_and_given_folders_count(tmp_path: Path) -> None:
    for name in (".git", ".hg", ".svn", ".GIT"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "evil.pkl").write_bytes(EVIL_P2)
    r = scan(tmp_path)
    assert sorted(Path(s.path).name for s in r.skipped) == [".git", ".hg", ".svn"]
    assert all(s.folder for s in r.skipped)
    assert [Path(f.path).parent.name for f in r.files] == [".GIT"]  # not a VCS folder
    assert r.exit_code == EXIT_UNSAFE
    given = scan(tmp_path / ".git")
    assert [s.path for s in given.skipped] == [str(tmp_path / ".git")]
    assert given.exit_code == EXIT_ERROR


# --------------------------------------------------------------------------- nothing left


def test_a_folder_holding_only_skipped_files_scanned_nothing(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref\n")
    (root / "README.md").write_text("# docs\n")
    (root / "LICENSE").write_text("MIT\n")
    r = scan(root)
    assert r.exit_code == EXIT_ERROR and r.files == []
    assert r.errors == [f"{root}: nothing to scan: 2 files and 1 folder skipped"]
    assert len(r.skipped) == 3


def test_a_skipped_file_given_alone_scanned_nothing(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# hi\n")
    r = scan(tmp_path / "README.md")
    assert r.exit_code == EXIT_ERROR
    assert r.errors == ["nothing to scan: 1 file skipped"]
    assert [s.path for s in r.skipped] == [str(tmp_path / "README.md")]


def test_one_docs_only_folder_among_others_is_reported(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "a.pkl").write_bytes(pickle.dumps([1]))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# guide\n")
    r = scan([tmp_path / "models", tmp_path / "docs"])
    assert r.exit_code == EXIT_ERROR  # like an empty folder: a path with nothing scanned
    assert r.errors == [f"{tmp_path / 'docs'}: nothing to scan: 1 file skipped"]
    assert scan(tmp_path).exit_code == EXIT_OK  # the parent folder had a file to scan


# --------------------------------------------------------------------------- exclude


def _tree(root: Path) -> Path:
    for rel in ("a.pkl", "sub/b.pkl", "sub/deep/c.pkl", "examples/x.pkl", "examples/y/z.pkl"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(pickle.dumps(rel))
    (root / "examples" / "evil.pkl").write_bytes(EVIL_P2)
    return root


@pytest.mark.parametrize(
    ("pattern", "skipped"),
    [("*.pkl", ["a.pkl", "examples/evil.pkl", "examples/x.pkl", "examples/y/z.pkl",
                "sub/b.pkl", "sub/deep/c.pkl"]),  # names at any depth, file by file
     ("b.pkl", ["sub/b.pkl"]),
     ("sub/b.pkl", ["sub/b.pkl"]),
     ("sub/*", ["sub/b.pkl", "sub/deep"]),  # * crosses /; the folder deep matches sub/*
     ("**/c.pkl", ["sub/deep/c.pkl"]),
     ("**/a.pkl", ["a.pkl"]),  # **/ may match no folder
     ("sub/**/c.pkl", ["sub/deep/c.pkl"]),
     ("examples", ["examples"]),  # a folder: one entry
     ("examples/", ["examples"]),
     ("./sub/b.pkl", ["sub/b.pkl"]),
     ("examples/**", ["examples"]),
     ("deep", ["sub/deep"]),
     ("nothing-matches-*", [])],
)  # fmt: skip
def test_exclude_rule(tmp_path: Path, pattern: str, skipped: list[str]) -> None:
    root = _tree(tmp_path / "t")
    r = scan(root, exclude=[pattern])
    got = _rel(root, [s.path for s in r.skipped])
    assert got == skipped
    assert all(s.reason == f"excluded by --exclude {pattern}" for s in r.skipped)
    folders = {_rel(root, [s.path])[0] for s in r.skipped if s.folder}
    assert folders == {g for g in got if (root / g).is_dir()}
    scanned = set(_rel(root, [f.path for f in r.files]))
    assert not scanned & set(got)
    assert (
        len(scanned)
        + sum(len(list((root / g).rglob("*.pkl"))) if (root / g).is_dir() else 1 for g in got)
        == 6
    )
    hides_evil = any(g in ("examples", "examples/evil.pkl") for g in got)
    expected = EXIT_ERROR if not scanned else EXIT_OK if hides_evil else EXIT_UNSAFE
    assert r.exit_code == expected


def test_an_excluded_folder_hides_its_files_and_says_so(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    assert scan(root).exit_code == EXIT_UNSAFE
    r = scan(root, exclude="examples")  # a single pattern may be a string
    assert r.exit_code == EXIT_OK
    assert r.skipped == [
        SkippedPath(str(root / "examples"), "excluded by --exclude examples", folder=True)
    ]


def test_exclude_an_explicit_file_argument(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    r = scan([root / "a.pkl", root / "examples" / "evil.pkl"], exclude=["evil.pkl"])
    assert r.exit_code == EXIT_OK
    assert [s.path for s in r.skipped] == [str(root / "examples" / "evil.pkl")]
    r = scan(root / "examples" / "evil.pkl", exclude=[f"{root.as_posix()}/examples/*"])
    assert r.exit_code == EXIT_ERROR and r.errors == ["nothing to scan: 1 file skipped"]


def test_exclude_is_checked_before_the_default_skips(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# hi\n")
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(1))
    r = scan(tmp_path, exclude=["*.md"])
    assert [s.reason for s in r.skipped] == ["excluded by --exclude *.md"]


def test_skipped_are_listed_in_scan_order_across_arguments(tmp_path: Path) -> None:
    b = _hf_repo(tmp_path / "b")
    a = _tree(tmp_path / "a")
    r = scan([b, a], exclude=["examples"])
    paths = [s.path for s in r.skipped]
    assert paths[-1] == str(a / "examples")
    assert paths[:-1] == sorted(paths[:-1], key=lambda p: Path(p).relative_to(b).parts)


@pytest.mark.parametrize(
    ("exclude", "needle"),
    [([1], "exclude[0] must be a string"), (["ok", ""], "exclude[1] is an empty pattern"),
     (5, "exclude must be a glob pattern or a list")],
)  # fmt: skip
def test_bad_exclude_is_a_clear_error(tmp_path: Path, exclude: object, needle: str) -> None:
    with pytest.raises(InvalidParameterError, match=needle.replace("[", r"\[")):
        scan(tmp_path, exclude=exclude)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- policy


def test_policy_file_exclude(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text('exclude = ["examples"]\n', encoding="utf-8")
    policy = Policy.load(policy_file)
    assert policy.exclude == ("examples",)
    assert policy.with_allowed(["x.Y"]).exclude == ("examples",)
    r = scan(root, policy=policy, exclude=["a.pkl"])
    assert r.exit_code == EXIT_OK
    assert [s.reason for s in r.skipped] == [
        "excluded by --exclude a.pkl",
        "excluded by the policy's exclude examples",
    ]


@pytest.mark.parametrize("value", ['"examples"', "[1]", '[""]', "true"])
def test_policy_file_bad_exclude(tmp_path: Path, value: str) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(f"exclude = {value}\n", encoding="utf-8")
    with pytest.raises(InvalidParameterError, match="'exclude' must be a list") as info:
        Policy.load(policy_file)
    assert "policy.toml" in str(info.value)


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("name", "rule"),
    [("README.md", "README*"), ("readme", "README*"), ("Readme.rst", "README*"),
     ("LICENSE-APACHE", "LICENSE*"), ("licence.txt", "LICENCE*"), ("NOTICE", "NOTICE*"),
     ("COPYING.LESSER", "COPYING*"), ("CHANGELOG", "CHANGELOG*"), ("AUTHORS.md", "AUTHORS*"),
     ("citation.cff", "CITATION.cff"), ("guide.MD", "*.md"), ("merges.txt", "*.txt"),
     ("index.rst", "*.rst"), (".gitattributes", ".gitattributes"), (".gitignore", ".gitignore"),
     ("model.pkl", None), ("notes.md.pkl", None), ("config.json", None), (".git", None)],
)  # fmt: skip
def test_doc_file_rule(name: str, rule: str | None) -> None:
    assert doc_file_rule(name) == rule


def test_exclude_rules_order_and_variants() -> None:
    rules = exclude_rules(["**/x/**"], Policy(exclude=("a/",)))
    assert [r.pattern for r in rules] == ["a/", "**/x/**"]
    assert isinstance(rules[0], ExcludeRule) and rules[0].matches("a", "a")
    assert rules[1].matches("x", "x") and rules[1].matches("p/x/q.pkl", "q.pkl")
    assert not rules[1].matches("xy/q.pkl", "q.pkl")
    assert exclude_rules(None, None) == []


def test_is_text_reads_the_whole_file_across_chunks() -> None:
    big = b"a" * ((1 << 20) - 1) + "é".encode() + b"\n"  # a character across a chunk border
    assert is_text(memoryview(big))
    assert not is_text(memoryview(big + b"\x00"))
    assert not is_text(memoryview(big[: 1 << 20]))  # cut inside the character
    assert is_text(memoryview(b"tab\tCR\r\nFF\x0c ESC\x1b[0m\n"))


def test_text_file_decision() -> None:
    def decide(data: bytes) -> str:
        return text_file_decision(memoryview(data), path="f", policy=Policy())

    assert decide(b"# Title\n\nSome text.\n") == "skip"
    assert decide(EVIL_P0_PERSID) == "pickle"  # format detection misses it: the walker does not
    assert decide(EVIL_P0) == "scan"  # detected as a pickle: scanned as usual
    assert decide(b"\x00\x01") == "scan"
    assert decide(json.dumps({"a": 1}).encode()) == "scan"
    assert decide(b"12345678{ not safetensors\n") == "skip"  # detection's lenient guess


def test_prose_that_parses_as_a_few_opcodes_is_still_text() -> None:
    def decide(data: bytes) -> str:
        return text_file_decision(memoryview(data), path="f", policy=Policy())

    # GLOBAL / INST of "modules" that are no Python name: pickle.load fails importing them
    assert decide(b"cff-version: 1.2.0\ntitle: My model\n") == "skip"
    assert decide(b"certifi==2024.2.2\ncharset-normalizer==3.3.2\nidna==3.6\n") == "skip"
    # ... but a Python name is an import, whatever follows
    assert decide(b"cos\nsystem\nthis is not a pickle\n") != "skip"
    assert decide(b"ios\nsystem\n") != "skip"
    # text that starts like JSON but is not JSON (a BERT vocab.txt) is text
    assert decide(b"[PAD]\n[UNK]\n[CLS]\n") == "skip"
    assert decide(b'[{"chat_template": "{{ x }}"}]') == "scan"


def test_a_protocol_0_pickle_starting_like_a_zlib_header_is_a_pickle(tmp_path: Path) -> None:
    import zlib

    from mlwarden.supplychain.scan.detect import compression, detect

    assert compression(EVIL_P0_INST) == "zlib"  # "(S" passes the 2-byte zlib check
    assert detect(memoryview(EVIL_P0_INST)).kind == "pickle"
    real = zlib.compress(pickle.dumps([1, 2]))
    assert detect(memoryview(real)) == detect(memoryview(real[:64]))
    assert detect(memoryview(real)).kind == "compressed"
    (tmp_path / "model.bin").write_bytes(EVIL_P0_INST)  # not only under a text name
    r = scan_file(tmp_path / "model.bin")
    assert r.verdict.value == "unsafe" and r.globals == ["os.system"]
