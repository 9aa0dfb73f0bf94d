"""Exact and near duplicates, and the same row with different labels.

Threat model: an attacker who can add rows repeats them to weigh the training towards
them, or adds copies of real rows with the opposite label (ATLAS AML.T0020, OWASP
ML02); pipelines also duplicate rows by mistake, which inflates test scores when
copies land on both sides of a split. Exact duplicates are rows with identical
features; near duplicates are rows within ``tolerance`` of each other in every feature,
measured in units of the feature's standard deviation. A group whose copies carry
different labels is a *conflict*: at most one label can be right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_number
from mlwarden.data.dataset import Dataset
from mlwarden.poisoning.detectors._result import DetectionResult

__all__ = ["Duplicates", "duplicate_groups"]

_OWNER = "Duplicates"


def duplicate_groups(
    X: npt.NDArray[np.float64], *, tolerance: float = 0.0
) -> npt.NDArray[np.int64]:
    """Group id per row: rows with the same id are (near) duplicates.

    With ``tolerance=0`` rows must be identical; otherwise features are divided by their
    standard deviation, rounded to a grid of ``tolerance`` and rows that fall in the same
    cell are grouped (so rows closer than ``tolerance`` in every feature usually, and
    rows farther than ``2 * tolerance`` in any feature never, share a group).
    """
    if tolerance > 0:
        std = X.std(axis=0)
        keys = np.round(X / np.where(std > 0, std, 1.0) / tolerance)
    else:
        keys = X
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    return np.asarray(inverse, dtype=np.int64).ravel()


class Duplicates:
    """Flag repeated rows (all copies but the first) and label conflicts (all copies).

    Parameters
    ----------
    tolerance : float, default=0.0
        0 for exact duplicates; otherwise near duplicates (see :func:`duplicate_groups`).
    """

    def __init__(self, *, tolerance: float = 0.0) -> None:
        self.tolerance = tolerance

    def detect(self, data: Dataset) -> DetectionResult:
        """Score every row: 2 for a label conflict, 1 for a repeated copy, else 0."""
        tol = check_number(_OWNER, "tolerance", self.tolerance, low=0)
        groups = duplicate_groups(data.X, tolerance=tol)
        labels = data.y
        order = np.argsort(groups, kind="stable")
        scores = np.zeros(data.n_samples)
        reasons: dict[int, str] = {}
        kind = "near duplicate" if tol > 0 else "duplicate"
        n_conflicts = n_repeats = 0
        bounds = np.flatnonzero(np.diff(groups[order])) + 1
        for members in np.split(order, bounds):
            if len(members) < 2:
                continue
            first = int(members[0])
            distinct: list[Any] = (
                [] if labels is None else sorted({str(v) for v in labels[members]})
            )
            if len(distinct) > 1:
                n_conflicts += 1
                for i in members:
                    scores[i] = 2.0
                    reasons[int(i)] = (
                        f"label conflict: {kind} of row(s) "
                        f"{_rows(members, int(i))} with labels {', '.join(distinct)}"
                    )
            else:
                for i in members[1:]:
                    n_repeats += 1
                    scores[i] = 1.0
                    reasons[int(i)] = f"{kind} of row {first}"
        flagged = scores > 0
        return DetectionResult(
            detector="duplicates",
            scores=scores,
            flagged=flagged,
            reasons=reasons,
            details={"tolerance": tol, "conflict_groups": n_conflicts, "repeats": n_repeats},
        )


def _rows(members: npt.NDArray[np.int64], me: int, limit: int = 5) -> str:
    others = [int(m) for m in members if m != me]
    text = ", ".join(str(m) for m in others[:limit])
    return text + (f" (+{len(others) - limit} more)" if len(others) > limit else "")
