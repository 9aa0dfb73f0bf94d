"""Isolation-forest outliers: rows unlike the rest of the data.

Reference: Liu, Ting and Zhou, "Isolation Forest" (ICDM 2008).

Threat model: injected rows (ATLAS AML.T0020, OWASP ML02) that an attacker crafted far
from the natural data - extreme values, impossible combinations - are isolated by few
random splits. Outliers are not proof of poison (real data has rare rows), so the
detector reports them for review; sanitization does not drop them unless asked.
"""

from __future__ import annotations

import numpy as np

from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_int, check_number
from mlwarden.data.dataset import Dataset
from mlwarden.poisoning.detectors._result import DetectionResult

__all__ = ["IsolationForestOutliers"]

_OWNER = "IsolationForestOutliers"


class IsolationForestOutliers:
    """Score rows by isolation forest; flag the ``contamination`` most isolated.

    Parameters
    ----------
    contamination : float, default=0.01
        Share of rows flagged, in ``(0, 0.5]``.
    n_estimators : int, default=200
        Trees.
    per_class : bool, default=False
        Fit one forest per class (a row unusual *for its label*).
    random_state : int, Generator or None
        Seed of the forest.
    """

    def __init__(
        self,
        *,
        contamination: float = 0.01,
        n_estimators: int = 200,
        per_class: bool = False,
        random_state: RandomState = None,
    ) -> None:
        self.contamination = contamination
        self.n_estimators = n_estimators
        self.per_class = per_class
        self.random_state = random_state

    def detect(self, data: Dataset) -> DetectionResult:
        """Score every row of ``data`` (labels are used only with ``per_class``)."""
        from sklearn.ensemble import IsolationForest

        cont = check_number(_OWNER, "contamination", self.contamination, low=0, high=0.5,
                            low_open=True)  # fmt: skip
        n_est = check_int(_OWNER, "n_estimators", self.n_estimators)
        seed = int(as_generator(self.random_state).integers(2**31))
        groups = (
            [np.flatnonzero(data.labels == c) for c in np.unique(data.labels)]
            if self.per_class
            else [np.arange(data.n_samples)]
        )
        scores = np.zeros(data.n_samples)
        flagged = np.zeros(data.n_samples, dtype=bool)
        for idx in groups:
            if len(idx) < 2:
                continue
            forest = IsolationForest(n_estimators=n_est, contamination=cont, random_state=seed).fit(
                data.X[idx]
            )
            scores[idx] = -forest.score_samples(data.X[idx])
            flagged[idx] = forest.predict(data.X[idx]) == -1
        where = "for its class" if self.per_class else "in the data set"
        reasons = {
            int(i): f"outlier: among the {cont:.0%} most isolated rows {where} "
            f"(isolation forest score {scores[i]:.3f})"
            for i in np.flatnonzero(flagged)
        }
        return DetectionResult(
            detector="isolation-forest",
            scores=scores,
            flagged=flagged,
            reasons=reasons,
            details={"contamination": cont, "per_class": bool(self.per_class)},
        )
