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
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from time import perf_counter

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden.supplychain.policy import Policy
from mlwarden.supplychain.result import FileResult, ScanResult

# Importing the package mlwarden.supplychain.scan here, before the package
# ``__init__`` binds the *function* scan, keeps that binding: later (lazy) imports of
# its submodules only set attributes on the package, never on mlwarden.supplychain.
from mlwarden.supplychain.scan._context import FileScan, human_bytes

__all__ = ["scan", "scan_file"]

_DEFAULT_POLICY = Policy()


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


def _scan_one(p: Path, policy: Policy | None) -> tuple[FileResult, list[str]]:
    """The file's result and the external data files it makes its loader read."""
    pol = policy if policy is not None else _DEFAULT_POLICY
    result = FileResult(path=str(p))
    ctx = FileScan(str(p), pol, result)
    start = perf_counter()
    try:
        _scan_into(ctx, p)
    except Exception as exc:  # the last line of defence: a verdict, never a traceback
        ctx.error(f"internal error while scanning ({type(exc).__name__}: {exc})")
    result.seconds = perf_counter() - start
    return result, ctx.external_data


def _scan_into(ctx: FileScan, p: Path) -> None:
    try:
        st = p.stat()
    except FileNotFoundError:
        ctx.error("no such file" if not os.path.lexists(p) else "dangling symbolic link")
        return
    except OSError as exc:
        ctx.error(f"cannot read the file ({exc.strerror or exc})")
        return
    if stat.S_ISDIR(st.st_mode):
        ctx.error("is a directory; use scan() to scan a folder")
        return
    if not stat.S_ISREG(st.st_mode):
        ctx.error("not a regular file (device, FIFO or socket); not read")
        return
    limit = ctx.policy.max_file_bytes
    if limit is not None and st.st_size > limit:
        ctx.error(
            f"the file is {human_bytes(st.st_size)}, over the policy's max_file_bytes "
            f"({human_bytes(limit)}); not scanned"
        )
        return
    if st.st_size == 0:
        ctx.result.format = "empty"
        ctx.error("the file is empty")
        return
    from mlwarden.supplychain.scan.dispatch import dispatch

    try:
        fh = p.open("rb")
    except OSError as exc:
        ctx.error(f"cannot read the file ({exc.strerror or exc})")
        return
    with fh:
        try:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            ctx.error(f"cannot map the file into memory ({exc})")
            return
        view = memoryview(mm)
        try:
            ctx.result.format = dispatch(ctx, view, path=p, fileobj=fh)
        finally:
            view.release()
            # A view still referenced (in a traceback) keeps the map open until freed.
            with contextlib.suppress(BufferError):
                mm.close()


def scan(
    paths: str | Path | Sequence[str | Path],
    *,
    policy: Policy | None = None,
    progress: ProgressCallback | None = None,
) -> ScanResult:
    """Scan files and folders (recursively) and return every file's verdict.

    Parameters
    ----------
    paths : str, Path or sequence of them
        Files and folders. Folders are walked recursively in sorted order; every
        file found gets a :class:`FileResult`.
    policy : Policy or None
        Extra allowed / denied globals and size limits.
    progress : callable or None
        ``progress(task, done, total)`` after each file.

    Returns
    -------
    ScanResult
        ``files`` in scan order and ``errors`` for paths that do not exist and
        folders with no files; :attr:`ScanResult.exit_code` is the CI gate.

    Examples
    --------
    >>> from mlwarden.supplychain import scan
    >>> scan("models/").exit_code  # doctest: +SKIP
    0
    """
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    result = ScanResult()
    todo: list[tuple[Path, str | None]] = []  # (path, note or error for a link)
    for raw in items:
        p = Path(raw)
        if not os.path.lexists(p):
            result.errors.append(f"{p}: no such file or directory")
        elif p.is_dir():
            found = _walk(p, result.errors)
            if not found:
                result.errors.append(f"{p}: the directory holds no files to scan")
            todo.extend(found)
        else:
            todo.append((p, None))
    total = len(todo)
    external: dict[str, str] = {}  # data file -> model that reads it
    for done, (p, link) in enumerate(todo, start=1):
        if link is None:
            file_result, refs = _scan_one(p, policy)
            result.files.append(file_result)
            external.update((r, str(p)) for r in refs)
        else:
            result.files.append(_link_result(p, link))
        report_progress(progress, f"scan {p}", done, total)
    _claim_external_data(result.files, external)
    return result


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


def _walk(root: Path, errors: list[str]) -> list[tuple[Path, str | None]]:
    """Every file under ``root``, sorted by path; symbolic links are not followed.
    Folders that cannot be listed are added to ``errors`` (never skipped silently)."""
    out: list[tuple[Path, str | None]] = []
    base = root.resolve()

    def unreadable(exc: OSError) -> None:
        errors.append(f"{exc.filename}: cannot list the directory ({exc.strerror or exc})")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        dirnames.sort()
        here = Path(dirpath)
        links = [d for d in dirnames if (here / d).is_symlink()]
        dirnames[:] = [d for d in dirnames if d not in links]
        for name in sorted([*filenames, *links]):
            p = here / name
            if p.is_symlink():
                out.append((p, _classify_link(p, base)))
            else:
                out.append((p, None))
    out.sort(key=lambda item: item[0].relative_to(root).parts)
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
