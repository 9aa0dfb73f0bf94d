"""The result every detector returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DetectionResult"]


@dataclass(frozen=True)
class DetectionResult:
    """Per-row scores and the rows a detector flags.

    Attributes
    ----------
    detector : str
        The detector's name.
    scores : ndarray of float, shape (n_samples,)
        Higher is more suspicious; comparable within one detector and data set only.
    flagged : ndarray of bool, shape (n_samples,)
        Rows the detector's (label-free) decision rule flags.
    reasons : dict of int to str
        One sentence per flagged row, saying why.
    details : dict
        Detector-specific, JSON-serialisable facts (thresholds, clusters, the trigger).
    """

    detector: str
    scores: npt.NDArray[np.float64]
    flagged: npt.NDArray[np.bool_]
    reasons: dict[int, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def indices(self) -> npt.NDArray[np.int64]:
        """Flagged rows, sorted."""
        return np.flatnonzero(self.flagged).astype(np.int64)

    def precision_recall(self, truth: npt.ArrayLike) -> tuple[float, float, float]:
        """Precision, recall and F1 of :attr:`flagged` against a known poison mask/index."""
        t = np.asarray(truth)
        mask = np.zeros(len(self.flagged), dtype=bool)
        if t.dtype == np.bool_:
            mask = t
        else:
            mask[t.astype(np.int64)] = True
        tp = float((self.flagged & mask).sum())
        p = tp / max(float(self.flagged.sum()), 1.0)
        r = tp / max(float(mask.sum()), 1.0)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f1
