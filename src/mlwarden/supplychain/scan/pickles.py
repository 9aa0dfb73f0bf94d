"""Plain pickle files, and pickles stacked one after another in one stream.

Format: Python's pickle protocols 0 to 5 (``pickle.dump``); a file may hold several
pickles back to back (``pickle.dump`` called in a loop, read back by repeated
``pickle.load``), and joblib writes NumPy array data inline after the pickle opcodes
that build each array.

Threat model: unpickling runs whatever callables the stream names (``GLOBAL`` /
``STACK_GLOBAL`` + ``REDUCE``), the technique behind most malicious models on model
hubs (JFrog, "Data Scientists Targeted by Malicious Hugging Face ML Models with
Silent Backdoor", 2024; Trail of Bits, "Never a dill moment: Exploiting machine
learning pickle files", 2021, and the Fickling tool; Protect AI's modelscan and
"Sleepy Pickle"). The opcode analysis and the allowlist belong to
:func:`mlwarden.supplychain.pickle_scan.scan_pickle`; this module walks the stream:
it scans each stacked pickle in turn, and reports data after the last pickle that
is not a pickle (MLW-SUP-008), since a second reader may interpret it.
"""

from __future__ import annotations

from mlwarden.supplychain.scan._context import FileScan, human_bytes
from mlwarden.supplychain.scan.detect import looks_like_pickle

__all__ = ["MAX_STACKED", "scan_pickle_file", "scan_pickle_stream"]

MAX_STACKED = 10_000
"""Most pickles scanned back to back in one stream before giving up (error)."""


def scan_pickle_stream(
    ctx: FileScan,
    data: memoryview,
    *,
    member: str = "",
    base_offset: int = 0,
    joblib_frames: bool = True,
    depth: int = 0,
) -> bool:
    """Scan every pickle stacked in ``data``; True when the stream was parsed to its end.

    Parameters
    ----------
    ctx : FileScan
        Where issues, errors and globals go.
    data : memoryview
        The stream; ``data[0]`` is the first byte of the first pickle.
    member : str
        The archive member or container the stream came from ("" for the file).
    base_offset : int
        Offset of ``data[0]`` in the member or file, for issue locations.
    joblib_frames : bool
        Skip joblib's inline array data after ``NumpyArrayWrapper`` objects
        (see :func:`~mlwarden.supplychain.pickle_scan.scan_pickle`).
    depth : int
        Nesting depth of the stream (pickles inside pickles).
    """
    from mlwarden.supplychain.pickle_scan import scan_pickle

    pos = 0
    count = 0
    while pos < len(data):
        if count >= MAX_STACKED:
            ctx.error(f"more than {MAX_STACKED} pickles stacked in one stream", member)
            return False
        ps = scan_pickle(
            data[pos:],
            path=ctx.path,
            member=member,
            base_offset=base_offset + pos,
            policy=ctx.policy,
            joblib_frames=joblib_frames,
            depth=depth,
        )
        ctx.add_pickle(ps, member)
        count += 1
        ctx.add_scanned(ps.end)
        if not ps.complete or ps.end <= 0:
            return False
        pos += ps.end
        rest = data[pos:]
        if not len(rest):
            break
        if looks_like_pickle(bytes(rest[: 1 << 16])):
            continue
        where = f"{member}@{base_offset + pos}" if member else f"@{base_offset + pos}"
        ctx.malformed(
            where,
            f"{human_bytes(len(rest))} after the end of the pickle",
            f"{len(rest)} bytes follow the end of the pickle and are not a pickle; "
            "pickle.load ignores them, but another reader of the file may not.",
        )
        break
    if count > 1:
        ctx.note(f"{member + ': ' if member else ''}{count} pickles stacked in one stream")
    return True


def scan_pickle_file(ctx: FileScan, data: memoryview) -> str:
    """Scan a file that starts with a pickle; returns the format name.

    A legacy ``torch.save`` file (a pickle of torch's magic number first) is handed
    to :func:`mlwarden.supplychain.scan.pytorch.scan_legacy`. A pickle that imports
    ``joblib.numpy_pickle`` classes is a joblib file.
    """
    from mlwarden.supplychain.scan.pytorch import is_legacy_torch, scan_legacy

    if is_legacy_torch(data):
        scan_legacy(ctx, data)
        return "pytorch-legacy"
    scan_pickle_stream(ctx, data)
    return "joblib" if is_joblib(ctx.result.globals) else "pickle"


def is_joblib(globals_: list[str]) -> bool:
    """True when the pickle's globals show joblib wrote it."""
    return any(g.startswith("joblib.numpy_pickle") for g in globals_)
