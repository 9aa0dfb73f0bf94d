"""What :func:`~mlwarden.supplychain.scan` does not read: default skips and ``exclude``.

A real model folder (a Hugging Face repository clone, a training run's output) holds
files that no model loader reads: version-control metadata and the repository's own
documentation. Reported as "unknown format" they would fail every scan of such a
folder, so the scanner skips them — and lists every skipped path in the result, apart
from the files it scanned: "nothing found" never hides "not read".

**Default skips** (``default_skips=False``, ``--no-default-skips`` turn them off):

* folders named ``.git``, ``.hg`` or ``.svn`` (exact name), skipped as a whole, one
  entry per folder;
* repository text files by name, case-insensitively: ``README*``, ``LICENSE*``,
  ``LICENCE*``, ``NOTICE*``, ``COPYING*``, ``CHANGELOG*``, ``AUTHORS*``,
  ``CITATION.cff``, ``*.md``, ``*.rst``, ``*.txt``, ``.gitattributes`` and
  ``.gitignore`` — but only when the content agrees: it is text (UTF-8 without NUL or
  other control bytes), the format detection recognises no model format in it (text
  that only starts like JSON, such as a ``vocab.txt`` whose first line is ``[PAD]``,
  counts as no format when it does not parse as JSON), and the pickle walker, run over
  it anyway, finds neither a complete pickle nor an import of a Python name. Content
  beats name: a pickle named ``README.md`` (including a protocol-0 pickle, which is
  plain ASCII) is scanned as a pickle and flagged like any other; valid JSON named
  ``notes.txt`` is scanned as JSON; a binary file named ``notes.txt`` is scanned and
  reported like any other file. (Prose can parse as a few protocol-0 opcodes: a
  ``CITATION.cff`` starting ``cff-version: 1.2.0`` reads as ``GLOBAL`` of the "module"
  ``ff-version: 1.2.0``. An import whose dotted parts are not all Python identifiers
  can not be imported by ``pickle.load``, which fails there, so it does not make the
  file a pickle; any other import does.)

An empty file with one of those names is skipped too. Symbolic links are never
default-skipped (see :mod:`mlwarden.supplychain.scanner` for how they are reported).

**Exclude patterns** (``scan(paths, exclude=[...])``, ``--exclude GLOB``, a policy's
``exclude`` list). A pattern is an :mod:`fnmatch` glob (``*``, ``?``, ``[seq]``),
matched case-sensitively against both

* the path relative to the scanned folder, in POSIX form (``sub/dir/model.bin``), or,
  for a path given directly, the path as given (``models/a.pkl``); and
* the file or folder name alone (``model.bin``).

``*`` also matches across ``/`` (``docs/*`` matches everything under ``docs``);
``**`` is the same as ``*``, except that ``**/`` may also match no folder at all
(``**/*.md`` matches ``README.md``; ``a/**/b`` matches ``a/b``) and ``docs/**``
also matches the folder ``docs`` itself. A trailing ``/`` and a leading ``./`` are
ignored. A folder that matches is skipped as a whole (one entry); files are matched
one by one. A pattern that matches nothing is not an error. An excluded path is
listed as skipped with the reason ``excluded by --exclude PATTERN`` (``excluded by
the policy's exclude PATTERN`` for a policy's pattern); excludes are checked before
the default skips.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from mlwarden.exceptions import InvalidParameterError
from mlwarden.supplychain.policy import Policy

__all__ = [
    "DEFAULT_SKIP_FOLDERS",
    "DOC_FILE_PATTERNS",
    "ExcludeRule",
    "doc_file_rule",
    "exclude_rules",
    "excluded",
    "is_text",
    "text_file_decision",
]

DEFAULT_SKIP_FOLDERS: tuple[str, ...] = (".git", ".hg", ".svn")
"""Version-control metadata folders skipped as a whole by default."""

DOC_FILE_PATTERNS: tuple[str, ...] = (
    "README*", "LICENSE*", "LICENCE*", "NOTICE*", "COPYING*", "CHANGELOG*", "AUTHORS*",
    "CITATION.cff", "*.md", "*.rst", "*.txt", ".gitattributes", ".gitignore",
)  # fmt: skip
"""Names (case-insensitive) of repository text files skipped by default when their
content is text in no model format and not a pickle."""

_DOC_PATTERNS_LOWER = tuple((p, p.lower()) for p in DOC_FILE_PATTERNS)
_CONTROL = bytes(b for b in range(0x20) if b not in b"\t\n\v\f\r\x1b") + b"\x7f"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExcludeRule:
    """One ``exclude`` pattern, ready to match.

    Parameters
    ----------
    pattern : str
        The pattern as the user wrote it.
    reason : str
        What a path it matches is listed with (``excluded by --exclude PATTERN``).
    variants : tuple of str
        The globs actually tried (the pattern, and its ``**/``-may-be-empty form).
    """

    pattern: str
    reason: str
    variants: tuple[str, ...]

    def matches(self, rel: str, name: str) -> bool:
        """True when the rule matches the relative POSIX path ``rel`` or the ``name``."""
        return any(fnmatchcase(rel, v) or fnmatchcase(name, v) for v in self.variants)


def _variants(pattern: str) -> tuple[str, ...]:
    p = pattern.rstrip("/") or pattern
    while p.startswith("./") and len(p) > 2:
        p = p[2:]
    forms = [p]
    collapsed = p
    while collapsed.startswith("**/"):
        collapsed = collapsed[3:]
    while "/**/" in collapsed:
        collapsed = collapsed.replace("/**/", "/")
    forms.append(collapsed)
    if collapsed.endswith("/**"):
        forms.append(collapsed[:-3])  # "docs/**" also names the folder "docs"
    return tuple(dict.fromkeys(f for f in forms if f))


def _pattern_list(value: object, field: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        raise InvalidParameterError(
            f"{field} must be a glob pattern or a list of them, got {type(value).__name__}"
        )
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidParameterError(
                f"{field}[{i}] must be a string (a glob pattern), got {type(item).__name__}"
            )
        if not item.strip("/"):
            raise InvalidParameterError(f"{field}[{i}] is an empty pattern; give a glob")
        out.append(item)
    return out


def exclude_rules(exclude: str | Sequence[str] | None, policy: Policy | None) -> list[ExcludeRule]:
    """The rules of a scan: the policy's ``exclude`` patterns, then ``exclude``.

    Parameters
    ----------
    exclude : str, sequence of str or None
        Patterns given to :func:`~mlwarden.supplychain.scan` (``--exclude``).
    policy : Policy or None
        Its ``exclude`` patterns come first.

    Returns
    -------
    list of ExcludeRule

    Raises
    ------
    InvalidParameterError
        If a pattern is not a string or is empty; the message names ``exclude``.
    """
    rules: list[ExcludeRule] = []
    if policy is not None:
        for pattern in _pattern_list(policy.exclude, "policy.exclude"):
            reason = f"excluded by the policy's exclude {pattern}"
            rules.append(ExcludeRule(pattern, reason, _variants(pattern)))
    if exclude is not None:
        for pattern in _pattern_list(exclude, "exclude"):
            rules.append(
                ExcludeRule(pattern, f"excluded by --exclude {pattern}", _variants(pattern))
            )
    return rules


def excluded(rules: Sequence[ExcludeRule], rel: str, name: str) -> str | None:
    """The reason of the first rule that matches ``rel`` or ``name``, or None."""
    for rule in rules:
        if rule.matches(rel, name):
            return rule.reason
    return None


def doc_file_rule(name: str) -> str | None:
    """The :data:`DOC_FILE_PATTERNS` entry a file name matches (case-insensitive), or None."""
    low = name.lower()
    for pattern, lowered in _DOC_PATTERNS_LOWER:
        if fnmatchcase(low, lowered):
            return pattern
    return None


def is_text(data: memoryview) -> bool:
    """True when ``data`` is UTF-8 text without NUL or other control bytes (tab, line
    and page breaks and escape are allowed). Reads the whole buffer, in chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    n = len(data)
    for start in range(0, n, _CHUNK):
        block = bytes(data[start : start + _CHUNK])
        if len(block.translate(None, _CONTROL)) != len(block):
            return False
        try:
            decoder.decode(block, final=start + _CHUNK >= n)
        except UnicodeDecodeError:
            return False
    return True


def text_file_decision(
    data: memoryview, *, path: str, policy: Policy
) -> Literal["skip", "pickle", "scan"]:
    """What to do with a non-empty file whose name is a repository text file's.

    Parameters
    ----------
    data : memoryview
        The whole file.
    path : str
        The file, for the pickle walker's messages.
    policy : Policy
        The scan's policy (the pickle walker's allowlist).

    Returns
    -------
    {"skip", "pickle", "scan"}
        ``"scan"`` when the content is in a detected format or is not text (scan it as
        usual); ``"pickle"`` when it is text that the pickle walker reads as a pickle
        (a complete one, or one that imports anything before it breaks off) although
        format detection did not recognise it (scan it as a pickle); ``"skip"`` when
        it is text in no model format that is not a pickle.
    """
    from mlwarden.supplychain.pickle_scan import scan_pickle
    from mlwarden.supplychain.scan.detect import detect

    kind = detect(data).kind
    # "safetensors" may be detect()'s lenient guess ("{" at byte 8); a real safetensors
    # length prefix holds NUL bytes, so a text file is never one. "json" is a guess
    # from the first character: text that does not parse is no JSON for any loader.
    if kind == "json" and not _parses_as_json(data):
        kind = "unknown"
    if kind not in ("unknown", "safetensors") or not is_text(data):
        return "scan"
    ps = scan_pickle(data, path=path, policy=policy)
    prose = {g for g in ps.globals if not _python_name(g)}
    if (
        ps.complete
        or any(g not in prose for g in ps.globals)
        or any(i.construct not in prose for i in ps.issues)
    ):
        return "pickle"
    return "skip"


def _python_name(name: str) -> bool:
    """True for ``module.qualname`` made of Python identifiers (``os.system``)."""
    return all(part.isidentifier() for part in name.split("."))


def _parses_as_json(data: memoryview) -> bool:
    """True when ``data`` is valid JSON (or too large to tell: then it is scanned)."""
    import json

    from mlwarden.supplychain.scan.jsonfile import MAX_JSON

    if len(data) > MAX_JSON:
        return True
    try:
        json.loads(bytes(data).decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return False
    return True
