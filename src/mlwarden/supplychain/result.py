"""What a scan returns: one :class:`FileResult` per file, issues and errors kept apart.

A file is ``safe`` only when it was scanned completely and nothing was found; it is
``unsafe`` when any issue was found (even if part of it could not be scanned); it is
``error`` when it could not be scanned completely and nothing was found in the part
that was. "Nothing scanned" is never "safe" (modelscan's lesson: keep issues, errors
and skipped items apart): paths the scan deliberately did not read (version-control
folders, repository text files, ``exclude`` patterns) are listed as
:class:`SkippedPath` items of their own, never counted as safe files.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from mlwarden.findings.taxonomy import Severity

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_UNSAFE",
    "FileResult",
    "ScanIssue",
    "ScanResult",
    "SkippedPath",
    "Verdict",
]

EXIT_OK = 0
"""Every file was scanned completely and is safe."""
EXIT_UNSAFE = 1
"""At least one file is unsafe."""
EXIT_ERROR = 2
"""No file is unsafe, but at least one could not be scanned (or there was nothing to scan)."""


class Verdict(str, enum.Enum):
    """A file's verdict."""

    SAFE = "safe"
    UNSAFE = "unsafe"
    ERROR = "error"


@dataclass(frozen=True)
class ScanIssue:
    """One dangerous construct found in a file.

    Parameters
    ----------
    rule_id : str
        ``MLW-SUP-NNN`` (see :mod:`mlwarden.supplychain.rules`).
    severity : Severity
        ``critical``, ``high``, ``medium`` or ``low``.
    path : str
        The file on disk.
    location : str
        Where inside the file: the archive member (``archive/data.pkl``), the byte
        offset of the opcode (``@1234``), a layer path (``layers[3].config``), or both
        (``archive/data.pkl@1234``). Empty when the issue is about the whole file.
    construct : str
        What was found: the global (``os.system``), the opcode or the construct
        (``Lambda layer``, ``external data ../../etc/passwd``).
    message : str
        One sentence for a person: what it is and why it is dangerous.
    """

    rule_id: str
    severity: Severity
    path: str
    location: str
    construct: str
    message: str


@dataclass
class FileResult:
    """The scan of one file.

    Parameters
    ----------
    path : str
        The file on disk.
    format : str
        The format detected from the content (``pickle``, ``joblib``, ``joblib-zf``,
        ``pytorch-zip``, ``torchscript``, ``pytorch-legacy``, ``pytorch-tar``, ``numpy``,
        ``numpy-npz``, ``safetensors``, ``onnx``, ``onnx-external-data``, ``keras``,
        ``keras-h5``, ``hdf5``, ``gguf``, ``skops``, ``json``, ``gzip+pickle``,
        ``xz+joblib``, ...; ``empty``, ``symlink``, ``zip``, ``tar`` or ``unknown`` for
        files that could not be scanned).
    issues : list of ScanIssue
        Everything dangerous that was found.
    errors : list of str
        Why the file, or part of it, could not be scanned (unknown format, truncated
        stream, unreadable member). Each names the file and, where it applies, the member.
    notes : list of str
        Facts worth knowing that are not a verdict (e.g. "tensor storage skipped: 12
        members, 1.0 GB").
    globals : list of str
        Every global a pickle in the file imports, in order of first appearance, for
        reviewers and ``--allow`` lists.
    bytes_scanned : int
        Bytes read and parsed (tensor storage that was skipped is not counted).
    seconds : float
        Wall time spent on the file.
    """

    path: str
    format: str = "unknown"
    issues: list[ScanIssue] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    globals: list[str] = field(default_factory=list)
    bytes_scanned: int = 0
    seconds: float = 0.0

    @property
    def verdict(self) -> Verdict:
        """``unsafe`` if any issue, else ``error`` if any error, else ``safe``."""
        if self.issues:
            return Verdict.UNSAFE
        if self.errors:
            return Verdict.ERROR
        return Verdict.SAFE


@dataclass(frozen=True)
class SkippedPath:
    """A file or folder the scan deliberately did not read.

    Parameters
    ----------
    path : str
        The file or folder on disk.
    reason : str
        Why it was skipped, for a person (``"excluded by --exclude *.md"``,
        ``"version-control metadata (.git folder) ..."``).
    folder : bool, default=False
        True when a whole folder was skipped (one entry, not one per file in it).
    """

    path: str
    reason: str
    folder: bool = False


@dataclass
class ScanResult:
    """The scan of one or more paths (directories are expanded to every file in them).

    Parameters
    ----------
    files : list of FileResult
        One per file, in the order they were scanned (sorted within a directory).
    errors : list of str
        Problems with the paths themselves (a path that does not exist, an empty directory,
        a folder whose files were all skipped).
    skipped : list of SkippedPath
        Files and folders deliberately not read (default skips and ``exclude``
        patterns). They never make a scan fail, and never count as scanned: a scan
        whose paths were all skipped scanned nothing (exit code 2).
    """

    files: list[FileResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[SkippedPath] = field(default_factory=list)

    @property
    def issues(self) -> list[ScanIssue]:
        """Every issue of every file."""
        return [i for f in self.files for i in f.issues]

    @property
    def exit_code(self) -> int:
        """Fail closed: 1 if any file is unsafe; else 2 if any file or path could not be
        scanned, or nothing was scanned at all; else 0. Skipped paths play no part."""
        if any(f.verdict is Verdict.UNSAFE for f in self.files):
            return EXIT_UNSAFE
        if self.errors or not self.files or any(f.verdict is Verdict.ERROR for f in self.files):
            return EXIT_ERROR
        return EXIT_OK

    @property
    def safe(self) -> bool:
        """True only when :attr:`exit_code` is 0."""
        return self.exit_code == EXIT_OK
