"""Stateful k-nearest-neighbour detection of black-box evasion probing.

Reference
---------
S. Chen, N. Carlini, D. Wagner. "Stateful Detection of Black-Box Adversarial
Attacks." ACM SPAI workshop (AsiaCCS) 2020. https://arxiv.org/abs/1907.05587

Threat model
------------
A client with query access searches for an adversarial example of one input
(HopSkipJump, boundary attack, score-based random search, or plain small steps
around a point): MITRE ATLAS AML.T0043.001 (black-box optimisation) with AML.T0042
(verifying the attack), OWASP ML01. Such searches send many queries that are very
close to each other, far closer than ordinary traffic. The detector keeps each
client's last ``buffer_size`` queries and fires when the mean distance of a new query
to its ``k`` nearest buffered neighbours drops below a threshold calibrated on benign
data. An attacker who spreads the search across many accounts (Sybil attack) or
interleaves far-away queries evades it; the paper discusses both.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_int, check_number
from mlwarden.exceptions import DataError
from mlwarden.theft.detectors.base import (
    PROBING_ATLAS,
    PROBING_OWASP,
    ClientBase,
    Detector,
    FloatArray,
    RingBuffer,
    _as_row,
    _client_id,
    scale_from,
)

__all__ = ["KNNProbeDetector"]


@dataclass
class _KnnState(ClientBase):
    buffer: RingBuffer | None = None
    hits: list[int] = field(default_factory=list)


class KNNProbeDetector(Detector):
    """k-NN stateful probing detector (Chen, Carlini & Wagner 2019), bounded.

    Per client, a ring buffer of the last ``buffer_size`` queries (features divided
    by ``scale``). For each new query, the score is the mean L2 distance to its ``k``
    nearest buffered queries (computed once the buffer holds ``k`` queries). A score
    below ``threshold_`` is a hit; the client is flagged when ``min_hits`` hits fall
    within its last ``hit_window`` queries (one isolated near-duplicate, such as a
    retried request, is not enough).

    :meth:`fit` calibrates ``threshold_``: it simulates benign clients by scoring
    reference rows against buffers of other reference rows, and takes the ``fpr``
    quantile of those scores, i.e. the per-query false-positive rate on traffic like
    the reference data. The hit rule then makes client-level false alarms much rarer
    than ``fpr``.

    Parameters
    ----------
    k : int, default=10
        Neighbours averaged.
    buffer_size : int, default=500
        Queries kept per client.
    fpr : float, default=0.001
        Per-query false-positive rate used to calibrate the threshold.
    min_hits : int, default=5
        Hits needed within ``hit_window`` queries to flag the client.
    hit_window : int, default=25
        Window (in queries) for ``min_hits``.
    threshold : float, optional
        A fixed threshold instead of the calibrated one.
    scale : float or array-like, optional
        Per-feature divisor; by default a robust spread of the reference rows.
    n_calibration : int, default=2000
        Reference rows scored during calibration at most.
    max_clients : int, default=100_000
        Clients tracked at most (least recently seen forgotten first).
    random_state : int, Generator or None, default=None
        Seed of the calibration's sampling.
    """

    name = "knn_probe"
    threat = "evasion probing"
    atlas = PROBING_ATLAS
    owasp = PROBING_OWASP
    direction = "below"

    def __init__(
        self,
        *,
        k: int = 10,
        buffer_size: int = 500,
        fpr: float = 0.001,
        min_hits: int = 5,
        hit_window: int = 25,
        threshold: float | None = None,
        scale: Any = None,
        n_calibration: int = 2000,
        max_clients: int = 100_000,
        random_state: RandomState = None,
    ) -> None:
        self.k = k
        self.buffer_size = buffer_size
        self.fpr = fpr
        self.min_hits = min_hits
        self.hit_window = hit_window
        self.threshold = threshold
        self.scale = scale
        self.n_calibration = n_calibration
        self.max_clients = max_clients
        self.random_state = random_state

    def _validate_params(self) -> None:
        owner = "KNNProbeDetector"
        check_int(owner, "k", self.k, minimum=1)
        check_int(owner, "buffer_size", self.buffer_size, minimum=self.k)
        check_number(owner, "fpr", self.fpr, low=0.0, high=0.5, low_open=True)
        check_int(owner, "min_hits", self.min_hits, minimum=1)
        check_int(owner, "hit_window", self.hit_window, minimum=self.min_hits)
        if self.threshold is not None:
            check_number(owner, "threshold", self.threshold, low=0.0, low_open=True)
        check_int(owner, "n_calibration", self.n_calibration, minimum=10)
        check_int(owner, "max_clients", self.max_clients, minimum=1)

    def _fit(self, X: FloatArray, y: Any) -> None:
        self.scale_ = scale_from(X, self.scale, "KNNProbeDetector")
        self._inv_scale = 1.0 / self.scale_
        if self.threshold is not None:
            self.threshold_ = float(self.threshold)
            self.calibration_scores_: FloatArray = np.empty(0)
            return
        if X.shape[0] < self.k + 2:
            raise DataError(
                f"KNNProbeDetector: calibration needs more than k + 1 = {self.k + 1} "
                f"reference rows, got {X.shape[0]}"
            )
        rng = as_generator(self.random_state)
        Z = X * self._inv_scale
        n = Z.shape[0]
        order = rng.permutation(n)
        n_query = min(self.n_calibration, max(n // 4, 1))
        queries = Z[order[:n_query]]
        pool = Z[order[n_query:]]
        size = min(self.buffer_size, pool.shape[0])
        if size < self.k:
            size = pool.shape[0]
        scores = np.empty(n_query)
        for start in range(0, n_query, 256):
            q = queries[start : start + 256]
            # each simulated client has its own random buffer drawn from the pool
            idx = rng.integers(0, pool.shape[0], size=(q.shape[0], size))
            buf = pool[idx]
            dist = np.sqrt(((buf - q[:, None, :]) ** 2).sum(axis=2))
            nearest = np.partition(dist, self.k - 1, axis=1)[:, : self.k]
            scores[start : start + q.shape[0]] = nearest.mean(axis=1)
        self.calibration_scores_ = scores
        self.threshold_ = float(np.quantile(scores, self.fpr))
        if self.threshold_ <= 0.0:
            positive = scores[scores > 0]
            self.threshold_ = float(positive.min()) / 2 if positive.size else 1e-12

    def _new_state(self) -> _KnnState:
        return _KnnState(buffer=RingBuffer(self.buffer_size, self.n_features_in_))

    def _threshold(self) -> float:
        return self.threshold_

    def score(self, client: Any, x: Any) -> float | None:
        """The current k-NN score of ``x`` against ``client``'s buffer (no update)."""
        self._check_fitted()
        state = self.states_.peek(_client_id(client))
        row = _as_row(x, self.n_features_in_, self.name) * self._inv_scale
        if state is None or state.buffer is None or state.buffer.count < self.k:
            return None
        return self._knn(state.buffer, row)

    def _knn(self, buffer: RingBuffer, z: FloatArray) -> float:
        diff = buffer.view() - z
        d2 = np.einsum("ij,ij->i", diff, diff)
        k = self.k
        if d2.shape[0] > k:
            d2 = np.partition(d2, k - 1)[:k]
        return float(np.sqrt(d2).mean())

    def _step(self, state: _KnnState, x: FloatArray, label: Hashable | None) -> float | None:
        z = x * self._inv_scale
        buffer = state.buffer
        assert buffer is not None
        fired: float | None = None
        if buffer.count >= self.k:
            s = self._knn(buffer, z)
            if s < self.threshold_:
                hits = state.hits
                hits.append(state.n_queries)
                cutoff = state.n_queries - self.hit_window
                while hits and hits[0] <= cutoff:
                    hits.pop(0)
                if len(hits) >= self.min_hits:
                    fired = s
        buffer.append(z)
        return fired
