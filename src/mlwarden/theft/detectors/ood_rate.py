"""Per-client rate of out-of-distribution queries.

Reference
---------
The monitor follows the observation behind PRADA and later extraction defenses
(e.g. Kesarwani et al., "Model Extraction Warning in MLaaS Paradigm", ACSAC 2018;
Pal et al., "ActiveThief", AAAI 2020): extraction with synthetic or random queries
sends many inputs that ordinary users never send.

Threat model
------------
A client with query access extracts the model (MITRE ATLAS AML.T0024.002, OWASP
ML05) with inputs drawn uniformly within the feature bounds or generated away from
the data (synthetic augmentation). Ordinary clients send mostly in-distribution rows.
Each query is scored by its Mahalanobis distance to the reference data (features
standardised, covariance shrunk towards the identity so one-hot groups do not make it
singular); a query is "out of distribution" when that distance exceeds the
``quantile`` of the reference rows' own distances. The client is flagged when, after
``min_queries`` queries, the share of OOD queries among its last ``window`` queries
exceeds ``max_rate``. An attacker who draws queries from natural data (a stolen or
public data set) is not flagged by this monitor; PRADA and watermarks cover part of
that case.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlwarden._validation import check_int, check_number
from mlwarden.theft.detectors.base import (
    EXTRACTION_ATLAS,
    EXTRACTION_OWASP,
    ClientBase,
    Detector,
    FloatArray,
    RingBuffer,
)

__all__ = ["OODRateMonitor"]


@dataclass
class _OodState(ClientBase):
    flags: RingBuffer | None = None
    n_ood: int = 0


class OODRateMonitor(Detector):
    """Windowed per-client rate of out-of-distribution queries.

    Per query: one standardisation and one ``(n_features, n_features)`` matrix-vector
    product (the whitening is precomputed), then an O(1) update of a ring buffer of
    0/1 flags with a running count.

    Parameters
    ----------
    quantile : float, default=0.99
        A query is OOD when its distance exceeds this quantile of the reference rows'
        distances (so about ``1 - quantile`` of benign queries are OOD).
    window : int, default=50
        Last queries over which the rate is measured.
    min_queries : int, default=20
        Queries before the client can be flagged.
    max_rate : float, default=0.3
        Flag when the OOD share of the window exceeds this.
    shrinkage : float, default=0.1
        Weight of the identity in the shrunk correlation matrix (0 to 1).
    max_clients : int, default=100_000
        Clients tracked at most (least recently seen forgotten first).
    """

    name = "ood_rate"
    threat = "extraction"
    atlas = EXTRACTION_ATLAS
    owasp = EXTRACTION_OWASP
    direction = "above"

    def __init__(
        self,
        *,
        quantile: float = 0.99,
        window: int = 50,
        min_queries: int = 20,
        max_rate: float = 0.3,
        shrinkage: float = 0.1,
        max_clients: int = 100_000,
    ) -> None:
        self.quantile = quantile
        self.window = window
        self.min_queries = min_queries
        self.max_rate = max_rate
        self.shrinkage = shrinkage
        self.max_clients = max_clients

    def _validate_params(self) -> None:
        owner = "OODRateMonitor"
        check_number(owner, "quantile", self.quantile, low=0.5, high=1.0, low_open=True)
        check_int(owner, "window", self.window, minimum=1)
        check_int(owner, "min_queries", self.min_queries, minimum=1)
        check_number(owner, "max_rate", self.max_rate, low=0.0, high=1.0)
        check_number(owner, "shrinkage", self.shrinkage, low=0.0, high=1.0)
        check_int(owner, "max_clients", self.max_clients, minimum=1)

    def _fit(self, X: FloatArray, y: Any) -> None:
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.std_ = np.where(std > 0, std, 1.0)
        Z = (X - self.mean_) / self.std_
        corr = np.atleast_2d(np.cov(Z, rowvar=False))
        a = float(self.shrinkage)
        shrunk = (1.0 - a) * corr + a * np.eye(corr.shape[0])
        vals, vecs = np.linalg.eigh(shrunk)
        vals = np.maximum(vals, 1e-6)
        # whitening: ||W z|| is the Mahalanobis distance under the shrunk covariance
        self.whiten_ = (vecs / np.sqrt(vals)).T @ np.diag(1.0 / self.std_)
        self._offset = self.whiten_ @ self.mean_
        ref = self.distances(X)
        self.reference_distances_ = ref
        self.cutoff_ = float(np.quantile(ref, self.quantile))

    def distances(self, X: FloatArray) -> FloatArray:
        """Mahalanobis distance of each row of ``X`` to the reference data."""
        W = np.asarray(X, dtype=np.float64) @ self.whiten_.T - self._offset
        return np.asarray(np.sqrt((W * W).sum(axis=-1)), dtype=np.float64)

    def _new_state(self) -> _OodState:
        return _OodState(flags=RingBuffer(self.window))

    def _threshold(self) -> float:
        return float(self.max_rate)

    def _step(self, state: _OodState, x: FloatArray, label: Hashable | None) -> float | None:
        w = self.whiten_ @ x - self._offset
        ood = 1.0 if float(w @ w) > self.cutoff_ * self.cutoff_ else 0.0
        flags = state.flags
        assert flags is not None
        if flags.count == flags.capacity:
            state.n_ood -= int(flags.oldest())
        flags.append(ood)
        state.n_ood += int(ood)
        if state.n_queries < self.min_queries:
            return None
        rate = state.n_ood / flags.count
        return rate if rate > self.max_rate else None
