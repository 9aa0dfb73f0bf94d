"""Query logs: the JSON Lines files ``mlwarden theft detect`` replays through the detectors.

Format
------
UTF-8 text, one JSON object per line (blank lines are skipped), in arrival order::

    {"client": "api-key-17", "x": [12.5, 3.0, 0, 1], "label": 0, "ts": "2026-11-29T15:00:00Z"}

``client`` (required)
    Who sent the query: a non-empty string, or an integer (read as its decimal string).
``x`` (required)
    The query's features: a list of numbers (no NaN or infinity), the same length on
    every line (and equal to the reference data's number of features when there is
    one).
``label`` (optional)
    The model's answer: a string, integer, boolean or ``null``. PRADA groups a client's
    queries by it; without it every query counts as one class.
``ts`` (optional)
    When the query arrived (any JSON value; kept, not interpreted). Lines are replayed
    in file order.

Other keys are ignored, so a gateway's richer log lines can be replayed as they are.
Every error names the file and the 1-based line number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden.exceptions import DataFileError

__all__ = ["Query", "iter_queries", "read_query_log", "write_query_log"]


@dataclass(frozen=True)
class Query:
    """One line of a query log.

    Attributes
    ----------
    client : str
        Who sent the query.
    x : ndarray of shape (n_features,)
        The features, as ``float64``.
    label : str, int, bool or None
        The model's answer, if logged.
    ts : object
        The arrival time as logged (``None`` when absent).
    line : int
        1-based line number in the file.
    """

    client: str
    x: npt.NDArray[np.float64]
    label: Hashable | None
    ts: Any
    line: int


def _parse(text: str, where: str, n_features: int | None, number: int) -> Query:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFileError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise DataFileError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "client" not in obj:
        raise DataFileError(f"{where}: missing field 'client'")
    client = obj["client"]
    if isinstance(client, bool) or not isinstance(client, str | int):
        raise DataFileError(f"{where}: 'client' must be a string or an integer, got {client!r}")
    client = str(client)
    if not client:
        raise DataFileError(f"{where}: 'client' is empty")
    if "x" not in obj:
        raise DataFileError(f"{where}: missing field 'x' (the query's features)")
    raw = obj["x"]
    if not isinstance(raw, list) or not raw:
        raise DataFileError(f"{where}: 'x' must be a non-empty list of numbers")
    for i, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise DataFileError(f"{where}: 'x'[{i}] must be a finite number, got {v!r}")
    if n_features is not None and len(raw) != n_features:
        raise DataFileError(f"{where}: 'x' has {len(raw)} features, expected {n_features}")
    label = obj.get("label")
    if label is not None and not isinstance(label, str | int | float):
        raise DataFileError(
            f"{where}: 'label' must be a string, number, boolean or null, got {label!r}"
        )
    x = np.asarray(raw, dtype=np.float64)
    return Query(client=client, x=x, label=label, ts=obj.get("ts"), line=number)


def iter_queries(
    lines: Iterable[str], *, source: str = "<query log>", n_features: int | None = None
) -> Iterator[Query]:
    """Parse query-log lines (see the module docstring for the format).

    Parameters
    ----------
    lines : iterable of str
        The lines, in order.
    source : str
        Name used in error messages (usually the file's path).
    n_features : int, optional
        Expected length of ``x``; by default the first line's length, which every
        later line must match.

    Yields
    ------
    Query

    Raises
    ------
    DataFileError
        A line that is not a JSON object, misses ``client`` or ``x``, holds a bad
        value, or has a different number of features; the message names ``source``
        and the line number.
    """
    expected = n_features
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        where = f"{source}, line {number}"
        query = _parse(text, where, expected, number)
        if expected is None:
            expected = query.x.shape[0]
        yield query


def read_query_log(path: str | Path, *, n_features: int | None = None) -> Iterator[Query]:
    """Read a JSON Lines query log lazily (constant memory, any file size).

    Parameters
    ----------
    path : str or Path
        The log file.
    n_features : int, optional
        Expected number of features of every query.

    Yields
    ------
    Query

    Raises
    ------
    DataFileError
        The file cannot be read, is not UTF-8, or a line is malformed (the message
        names the file and line).
    """
    p = Path(path)
    try:
        fh = p.open(encoding="utf-8")
    except FileNotFoundError:
        raise DataFileError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise DataFileError(f"{p}: is a directory, not a query log") from None
    except OSError as exc:
        raise DataFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
    with fh:
        try:
            yield from iter_queries(fh, source=str(p), n_features=n_features)
        except UnicodeDecodeError:
            raise DataFileError(f"{p}: not UTF-8 text") from None


def write_query_log(path: str | Path, queries: Iterable[tuple[Any, Any, Any]]) -> Path:
    """Write ``(client, x, label)`` triples as a query log (``label`` may be ``None``).

    Returns
    -------
    Path
        The file written.
    """
    p = Path(path)
    try:
        with p.open("w", encoding="utf-8") as fh:
            for client, x, label in queries:
                row: dict[str, Any] = {
                    "client": client if isinstance(client, str) else int(client),
                    "x": [float(v) for v in np.asarray(x, dtype=np.float64).ravel()],
                }
                if label is not None:
                    row["label"] = label.item() if isinstance(label, np.generic) else label
                fh.write(json.dumps(row) + "\n")
    except OSError as exc:
        raise DataFileError(f"{p}: cannot write: {exc.strerror or exc}") from None
    return p
