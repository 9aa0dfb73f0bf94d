"""Scan model files and folders before anything loads them.

:func:`scan` takes files and folders (walked recursively, in sorted order) and returns
a :class:`~mlwarden.supplychain.result.ScanResult` whose ``exit_code`` is the CI gate:
0 only when every file was scanned completely and is safe, 1 when any file is unsafe,
2 when any file or path could not be scanned (or there was nothing to scan). Each
file's format is detected from its content, never from its name, and the scanner
never imports or executes anything from a file: pickles are walked opcode by
opcode, archives member by member, JSON and protobuf as data.

Symbolic links inside a scanned folder are not followed: a link to a file or folder
inside the same tree is reported with a note (its target is scanned in its own
right), and a link that leaves the tree (or dangles) is an error, because a loader
would follow it to something that was not scanned.

Some paths are skipped and listed apart in :attr:`ScanResult.skipped`, never counted
as scanned: version-control folders (``.git``, ``.hg``, ``.svn``) and repository text
files (``README*``, ``LICENSE*``, ``*.md``, ``*.txt`` ... whose content is text in no
model format and not a pickle) unless ``default_skips=False``, and whatever an
``exclude`` pattern matches. The rules are in :mod:`mlwarden.supplychain.skips`.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden.supplychain.policy import Policy
from mlwarden.supplychain.result import FileResult, ScanResult, SkippedPath

# Importing the package mlwarden.supplychain.scan here, before the package
# ``__init__`` binds the *function* scan, keeps that binding: later (lazy) imports of
# its submodules only set attributes on the package, never on mlwarden.supplychain.
from mlwarden.supplychain.scan._context import FileScan, human_bytes
from mlwarden.supplychain.skips import (
    DEFAULT_SKIP_FOLDERS,
    ExcludeRule,
    doc_file_rule,
    exclude_rules,
    excluded,
)

__all__ = ["scan", "scan_file"]

_DEFAULT_POLICY = Policy()

_SortKey = tuple[int, tuple[str, ...]]
"""(index of the path argument, parts of the path relative to it): the scan order."""


@dataclass(frozen=True)
class _Item:
    """A file to scan: a link's note or error, or the text-file name rule it matched."""

    path: Path
    key: _SortKey
    link: str | None = None
    doc: str | None = None


class _Skips:
    """Skipped paths, collected out of order and listed in scan order."""

    def __init__(self) -> None:
        self._items: list[tuple[_SortKey, SkippedPath]] = []

    def add(self, key: _SortKey, path: Path, reason: str, *, folder: bool = False) -> None:
        self._items.append((key, SkippedPath(str(path), reason, folder)))

    def count(self, arg: int) -> tuple[int, int]:
        """(files, folders) skipped under path argument ``arg``."""
        mine = [s for k, s in self._items if k[0] == arg]
        folders = sum(s.folder for s in mine)
        return len(mine) - folders, folders

    def sorted(self) -> list[SkippedPath]:
        return [s for _, s in sorted(self._items, key=lambda item: item[0])]


def scan_file(path: str | Path, *, policy: Policy | None = None) -> FileResult:
    """Scan one file.

    Parameters
    ----------
    path : str or Path
        The file (a symbolic link given here is followed).
    policy : Policy or None
        Extra allowed / denied globals and size limits; the defaults when None.

    Returns
    -------
    FileResult
        Its format, issues, errors, notes, globals, bytes scanned and time. Never
        raises for a bad file: a missing, unreadable, empty, truncated or unknown
        file gets an error, and an unexpected failure inside a format scanner is
        reported as an error naming the file and the exception type.
    """
    return _scan_one(Path(path), policy)[0]


def _scan_one(
    p: Path, policy: Policy | None, doc: str | None = None
) -> tuple[FileResult, list[str], str | None]:
    """The file's result, the external data files it makes its loader read, and why it
    was skipped (only for a file whose name matched the text-file rule ``doc``)."""
    pol = policy if policy is not None else _DEFAULT_POLICY
    result = FileResult(path=str(p))
    ctx = FileScan(str(p), pol, result)
    start = perf_counter()
    skip: str | None = None
    try:
        skip = _scan_into(ctx, p, doc)
    except Exception as exc:  # the last line of defence: a verdict, never a traceback
        ctx.error(f"internal error while scanning ({type(exc).__name__}: {exc})")
    result.seconds = perf_counter() - start
    return result, ctx.external_data, skip


def _scan_into(ctx: FileScan, p: Path, doc: str | None) -> str | None:
    """Scan ``p`` into ``ctx``; return a skip reason instead when ``doc`` (the name rule
    of a repository text file) is given and the content agrees with the name."""
    try:
        st = p.stat()
    except FileNotFoundError:
        ctx.error("no such file" if not os.path.lexists(p) else "dangling symbolic link")
        return None
    except OSError as exc:
        ctx.error(f"cannot read the file ({exc.strerror or exc})")
        return None
    if stat.S_ISDIR(st.st_mode):
        ctx.error("is a directory; use scan() to scan a folder")
        return None
    if not stat.S_ISREG(st.st_mode):
        ctx.error("not a regular file (device, FIFO or socket); not read")
        return None
    limit = ctx.policy.max_file_bytes
    if limit is not None and st.st_size > limit:
        ctx.error(
            f"the file is {human_bytes(st.st_size)}, over the policy's max_file_bytes "
            f"({human_bytes(limit)}); not scanned"
        )
        return None
    if st.st_size == 0:
        if doc is not None:
            return f"empty repository text file (name matches {doc})"
        ctx.result.format = "empty"
        ctx.error("the file is empty")
        return None
    from mlwarden.supplychain.scan.dispatch import dispatch

    try:
        fh = p.open("rb")
    except OSError as exc:
        ctx.error(f"cannot read the file ({exc.strerror or exc})")
        return None
    with fh:
        try:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            ctx.error(f"cannot map the file into memory ({exc})")
            return None
        view = memoryview(mm)
        try:
            decision = "scan"
            if doc is not None:
                from mlwarden.supplychain.skips import text_file_decision

                decision = text_file_decision(view, path=ctx.path, policy=ctx.policy)
            if decision == "skip":
                return (
                    f"repository text file (name matches {doc}): its content is text, "
                    "in no model format and not a pickle"
                )
            if decision == "pickle":
                from mlwarden.supplychain.scan.pickles import scan_pickle_file

                ctx.result.format = scan_pickle_file(ctx, view)
            else:
                ctx.result.format = dispatch(ctx, view, path=p, fileobj=fh)
        finally:
            view.release()
            # A view still referenced (in a traceback) keeps the map open until freed.
            with contextlib.suppress(BufferError):
                mm.close()
    return None


def scan(
    paths: str | Path | Sequence[str | Path],
    *,
    policy: Policy | None = None,
    progress: ProgressCallback | None = None,
    exclude: str | Sequence[str] | None = None,
    default_skips: bool = True,
) -> ScanResult:
    """Scan files and folders (recursively) and return every file's verdict.

    Parameters
    ----------
    paths : str, Path or sequence of them
        Files and folders. Folders are walked recursively in sorted order; every
        file found gets a :class:`FileResult` unless it is skipped.
    policy : Policy or None
        Extra allowed / denied globals, size limits and ``exclude`` patterns.
    progress : callable or None
        ``progress(task, done, total)`` after each file.
    exclude : str, sequence of str or None
        Glob patterns of files and folders not to read (``--exclude``), matched
        against the path relative to the scanned folder (POSIX form; for a path given
        here, the path as given) and against the name; ``*`` crosses ``/`` and ``**/``
        may match no folder. The exact rule is in :mod:`mlwarden.supplychain.skips`.
        Added to the policy's ``exclude`` patterns.
    default_skips : bool, default=True
        Skip version-control folders (``.git``, ``.hg``, ``.svn``) and repository text
        files (``README*``, ``LICENSE*``, ``*.md``, ``*.txt`` ...) whose content is
        text in no model format and not a pickle (content beats name: a pickle named
        ``README.md`` is scanned like any other). False scans every file.

    Returns
    -------
    ScanResult
        ``files`` in scan order, ``skipped`` (every path not read, with the reason),
        and ``errors`` for paths that do not exist, folders with no files and folders
        whose files were all skipped; :attr:`ScanResult.exit_code` is the CI gate.
        Skipped paths never make a scan fail, but a scan that read nothing at all
        exits 2.

    Raises
    ------
    InvalidParameterError
        If an ``exclude`` pattern (here or in the policy) is not a non-empty string.

    Examples
    --------
    >>> from mlwarden.supplychain import scan
    >>> scan("models/", exclude=["examples/*"]).exit_code  # doctest: +SKIP
    0
    """
    rules = exclude_rules(exclude, policy)
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    result = ScanResult()
    skips = _Skips()
    todo: list[_Item] = []
    walked: dict[int, Path] = {}  # folder arguments whose files are in todo
    for arg, raw in enumerate(items):
        p = Path(raw)
        key: _SortKey = (arg, ())
        if not os.path.lexists(p):
            result.errors.append(f"{p}: no such file or directory")
            continue
        reason = excluded(rules, p.as_posix(), p.name)
        if reason is not None:
            skips.add(key, p, reason, folder=p.is_dir())
        elif p.is_dir():
            if default_skips and p.name in DEFAULT_SKIP_FOLDERS and not p.is_symlink():
                skips.add(key, p, _vcs_reason(p.name), folder=True)
                continue
            found = _walk(p, arg, result.errors, skips, rules, default_skips)
            if found or skips.count(arg) != (0, 0):
                walked[arg] = p
            else:
                result.errors.append(f"{p}: the directory holds no files to scan")
            todo.extend(found)
        else:
            doc = doc_file_rule(p.name) if default_skips and not p.is_symlink() else None
            todo.append(_Item(p, key, doc=doc))
    total = len(todo)
    external: dict[str, str] = {}  # data file -> model that reads it
    scanned: set[int] = set()  # path arguments with a file in result.files
    for done, item in enumerate(todo, start=1):
        if item.link is None:
            file_result, refs, skip = _scan_one(item.path, policy, item.doc)
            if skip is not None:
                skips.add(item.key, item.path, skip)
            else:
                result.files.append(file_result)
                external.update((r, str(item.path)) for r in refs)
                scanned.add(item.key[0])
        else:
            result.files.append(_link_result(item.path, item.link))
            scanned.add(item.key[0])
        report_progress(progress, f"scan {item.path}", done, total)
    for arg, folder in walked.items():  # a folder whose every file was skipped
        if arg not in scanned:
            result.errors.append(f"{folder}: nothing to scan: {_skipped_text(*skips.count(arg))}")
    result.skipped = skips.sorted()
    _claim_external_data(result.files, external)
    if not result.files and not result.errors and result.skipped:
        n_folders = sum(s.folder for s in result.skipped)
        what = _skipped_text(len(result.skipped) - n_folders, n_folders)
        result.errors.append(f"nothing to scan: {what}")
    return result


def _vcs_reason(name: str) -> str:
    return f"version-control metadata ({name} folder): no model loader reads it"


def _skipped_text(n_files: int, n_folders: int) -> str:
    """``"3 files skipped"``, ``"2 files and 1 folder skipped"``."""
    parts = [
        f"{n} {word if n == 1 else word + 's'}"
        for n, word in ((n_files, "file"), (n_folders, "folder"))
        if n
    ]
    return " and ".join(parts) + " skipped"


def _claim_external_data(files: list[FileResult], external: dict[str, str]) -> None:
    """Files of no known format that a scanned ONNX model reads as raw tensor data are
    that model's weights, not unknown files: they hold bytes that become numbers."""
    if not external:
        return
    for r in files:
        if r.format != "unknown" or r.issues or not all("unknown format" in e for e in r.errors):
            continue
        model = external.get(os.path.realpath(r.path))
        if model is None:
            continue
        r.format = "onnx-external-data"
        r.errors.clear()
        r.notes.append(
            f"raw tensor data that {model} loads as external data (bytes read into "
            "tensors, never parsed as code)"
        )


def _walk(
    root: Path,
    arg: int,
    errors: list[str],
    skips: _Skips,
    rules: Sequence[ExcludeRule],
    default_skips: bool,
) -> list[_Item]:
    """Every file under ``root`` to scan, sorted by path; symbolic links are not
    followed. Folders that cannot be listed are added to ``errors`` (never skipped
    silently); excluded and default-skipped folders and files go to ``skips``."""
    out: list[_Item] = []
    base = root.resolve()

    def unreadable(exc: OSError) -> None:
        errors.append(f"{exc.filename}: cannot list the directory ({exc.strerror or exc})")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        dirnames.sort()
        here = Path(dirpath)
        rel_here = here.relative_to(root).parts
        links = [d for d in dirnames if (here / d).is_symlink()]
        kept: list[str] = []
        for d in dirnames:
            if d in links:
                continue
            key: _SortKey = (arg, (*rel_here, d))
            reason = excluded(rules, "/".join(key[1]), d)
            if reason is None and default_skips and d in DEFAULT_SKIP_FOLDERS:
                reason = _vcs_reason(d)
            if reason is not None:
                skips.add(key, here / d, reason, folder=True)
            else:
                kept.append(d)
        dirnames[:] = kept
        for name in sorted([*filenames, *links]):
            p = here / name
            key = (arg, (*rel_here, name))
            reason = excluded(rules, "/".join(key[1]), name)
            if reason is not None:
                skips.add(key, p, reason, folder=name in links)
            elif p.is_symlink():
                out.append(_Item(p, key, link=_classify_link(p, base)))
            else:
                out.append(_Item(p, key, doc=doc_file_rule(name) if default_skips else None))
    out.sort(key=lambda item: item.key)
    return out


def _classify_link(p: Path, base: Path) -> str:
    try:
        target = os.readlink(p)
        resolved = p.resolve(strict=True)
    except (OSError, RuntimeError):
        return f"error:symbolic link to {_readlink(p)!r} whose target does not exist; not followed"
    if resolved.is_relative_to(base):
        return (
            f"note:symbolic link to {target!r} inside the scanned folder; not followed "
            "(its target is scanned in its own right)"
        )
    return (
        f"error:symbolic link to {str(resolved)!r}, outside the scanned folder; not followed, "
        "so what a loader would read through it was not scanned"
    )


def _readlink(p: Path) -> str:
    try:
        return os.readlink(p)
    except OSError:
        return "?"


def _link_result(p: Path, link: str) -> FileResult:
    kind, _, message = link.partition(":")
    r = FileResult(path=str(p), format="symlink")
    if kind == "note":
        r.notes.append(message)
    else:
        r.errors.append(f"{p}: {message}")
    return r
