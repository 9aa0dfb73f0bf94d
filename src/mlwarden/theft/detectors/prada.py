"""PRADA: flag clients whose queries are spaced too regularly to be natural.

Reference
---------
M. Juuti, S. Szyller, S. Marchal, N. Asokan. "PRADA: Protecting against DNN Model
Stealing Attacks." IEEE EuroS&P 2019. https://arxiv.org/abs/1805.02628

Threat model
------------
A client with query access (labels only suffices) to a deployed classifier sends
synthetic queries to train a copy of it (model extraction, MITRE ATLAS
AML.T0024.002, OWASP ML05). Synthetic queries built by perturbing a few seeds
(Papernot et al.'s Jacobian-based augmentation, boundary-hugging steps) sit at
regular distances from earlier queries, while natural queries' nearest-neighbour
distances look roughly normal. PRADA tests that with Shapiro-Wilk. The defender sees
every query of the client and the model's answer; the attacker does not know the
threshold. An attacker who mixes natural rows into the stream, or spaces synthetic
queries to mimic natural ones, can evade it (the paper says so too); pair it with the
out-of-distribution monitor and, after the fact, watermarks.
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
    EXTRACTION_ATLAS,
    EXTRACTION_OWASP,
    ClientBase,
    Detector,
    FloatArray,
    RingBuffer,
    scale_from,
)

__all__ = ["PRADA"]


@dataclass
class _ClassGroup:
    points: RingBuffer
    dists: RingBuffer
    threshold: float = 0.0
    dist_sum: float = 0.0
    dist_sq: float = 0.0
    n_dists: int = 0


@dataclass
class _PradaState(ClientBase):
    groups: dict[Hashable, _ClassGroup] = field(default_factory=dict)
    dmins: RingBuffer | None = None
    since_test: int = 0
    tested: float | None = None


class PRADA(Detector):
    """PRADA (Juuti et al. 2019), with bounded per-client memory.

    For each query ``x`` with answered class ``c``, the detector computes ``d``, the
    smallest L2 distance (features divided by ``scale``) from ``x`` to the client's
    earlier queries of class ``c`` (the class's "growing set"), and adds ``d`` to the
    client's distance set ``D``. ``x`` joins the growing set when ``d`` exceeds the
    class threshold ``T_c = max(T_c, mean - std)`` of the distances that admitted
    earlier members. Once ``D`` holds ``min_queries`` distances, the Shapiro-Wilk
    statistic ``W`` of ``D`` (values more than 3 standard deviations from the mean
    dropped, as in the paper) is computed; the client is flagged when ``W < delta``.

    Bounded-memory compromise (a departure from the paper, which keeps everything):
    each class's growing set keeps only its last ``max_points`` members (ring buffer,
    one vectorised distance computation per query, O(max_points * n_features)), the
    distance set keeps the last ``window`` distances, and the Shapiro-Wilk test runs
    every ``test_every`` queries. A slow attacker who spreads synthetic queries over
    more than ``max_points`` members per class is compared with a shorter history;
    a burst of unnatural spacing shorter than ``test_every`` queries may go untested.

    Parameters
    ----------
    delta : float or None, default=None
        Flag when the Shapiro-Wilk ``W`` falls below this. The paper tunes it per
        model between 0.87 and 0.96. ``None`` calibrates it in :meth:`fit`: the
        reference rows are replayed as ``n_calibration_streams`` benign clients
        (grouped by the ``labels`` given to :meth:`fit`, else as one class), and
        ``delta_ = 1 - (1 - W_min) * (1 + margin)``, where ``W_min`` is the lowest
        ``W`` they reach: the benign deficit ``1 - W`` widened by ``margin``. On tabular
        data with heavy-tailed features natural nearest-neighbour distances are far
        from normal, so the calibrated ``delta_`` can be low enough that PRADA
        rarely fires; the attribute ``calibration_w_`` shows the benign ``W``
        values so this can be checked.
    min_queries : int, default=50
        Distances needed before the first test (the paper uses 100).
    window : int, default=400
        Distances kept for the test (the last ones).
    max_points : int, default=500
        Growing-set members kept per class.
    test_every : int, default=5
        Run the test every this many distances.
    max_classes : int, default=256
        Distinct answered labels tracked per client; further labels share one group.
    scale : float or array-like, optional
        Per-feature divisor of the distance; by default a robust spread (IQR / 1.349,
        the standard deviation where that is 0) of the reference rows.
    n_calibration_streams : int, default=3
        Benign streams simulated when ``delta`` is ``None``.
    calibration_length : int, default=3000
        Queries per simulated stream at most.
    margin : float, default=2.0
        Relative widening of the lowest benign deficit ``1 - W`` (``delta_`` is
        clipped at 0, where PRADA never fires).
    max_clients : int, default=100_000
        Clients tracked at most (least recently seen forgotten first).
    random_state : int, Generator or None, default=None
        Seed of the calibration's stream order.
    """

    name = "prada"
    threat = "extraction"
    atlas = EXTRACTION_ATLAS
    owasp = EXTRACTION_OWASP
    direction = "below"

    def __init__(
        self,
        *,
        delta: float | None = None,
        min_queries: int = 50,
        window: int = 400,
        max_points: int = 500,
        test_every: int = 5,
        max_classes: int = 256,
        scale: Any = None,
        n_calibration_streams: int = 3,
        calibration_length: int = 3000,
        margin: float = 2.0,
        max_clients: int = 100_000,
        random_state: RandomState = None,
    ) -> None:
        self.delta = delta
        self.min_queries = min_queries
        self.window = window
        self.max_points = max_points
        self.test_every = test_every
        self.max_classes = max_classes
        self.scale = scale
        self.n_calibration_streams = n_calibration_streams
        self.calibration_length = calibration_length
        self.margin = margin
        self.max_clients = max_clients
        self.random_state = random_state

    def _validate_params(self) -> None:
        owner = "PRADA"
        if self.delta is not None:
            check_number(owner, "delta", self.delta, low=0.0, high=1.0, low_open=True)
        check_int(owner, "n_calibration_streams", self.n_calibration_streams, minimum=1)
        check_int(owner, "calibration_length", self.calibration_length, minimum=1)
        check_number(owner, "margin", self.margin, low=0.0)
        check_int(owner, "min_queries", self.min_queries, minimum=3)
        check_int(owner, "window", self.window, minimum=self.min_queries)
        check_int(owner, "max_points", self.max_points, minimum=1)
        check_int(owner, "test_every", self.test_every, minimum=1)
        check_int(owner, "max_classes", self.max_classes, minimum=1)
        check_int(owner, "max_clients", self.max_clients, minimum=1)

    def _fit(self, X: FloatArray, y: Any) -> None:
        self.scale_ = scale_from(X, self.scale, "PRADA")
        self._inv_scale = 1.0 / self.scale_
        if self.delta is not None:
            self.delta_ = float(self.delta)
            self.calibration_w_: FloatArray = np.empty(0)
            return
        rng = as_generator(self.random_state)
        self.delta_ = 0.0  # never fires while calibrating
        self._calibrating = True
        ws: list[float] = []
        length = min(self.calibration_length, X.shape[0])
        try:
            for _ in range(self.n_calibration_streams):
                order = rng.permutation(X.shape[0])[:length]
                state = self._new_state()
                for i in order:
                    state.n_queries += 1
                    self._step(state, X[i], None if y is None else y[i].item())
                    if state.tested is not None:
                        ws.append(state.tested)
        finally:
            self._calibrating = False
        self.calibration_w_ = np.asarray(ws, dtype=np.float64)
        if not ws:
            raise DataError(
                f"PRADA: calibration needs more than min_queries = {self.min_queries} "
                f"reference rows per stream, got {length}"
            )
        deficit = 1.0 - float(self.calibration_w_.min())
        self.delta_ = max(1.0 - deficit * (1.0 + self.margin), 0.0)

    def _new_state(self) -> _PradaState:
        return _PradaState(dmins=RingBuffer(self.window))

    def _threshold(self) -> float:
        return self.delta_

    def _group(self, state: _PradaState, label: Hashable | None) -> _ClassGroup:
        key: Hashable = label
        if isinstance(label, np.generic):
            key = label.item()
        try:
            group = state.groups.get(key)
        except TypeError:
            raise DataError(f"PRADA: a label must be hashable, got {label!r}") from None
        if group is None:
            if len(state.groups) >= self.max_classes:
                key = "__other__"
                group = state.groups.get(key)
            if group is None:
                group = _ClassGroup(
                    points=RingBuffer(self.max_points, self.n_features_in_),
                    dists=RingBuffer(self.max_points),
                )
                state.groups[key] = group
        return group

    def _step(self, state: _PradaState, x: FloatArray, label: Hashable | None) -> float | None:
        state.tested = None
        z = x * self._inv_scale
        group = self._group(state, label)
        if group.points.count == 0:
            group.points.append(z)
            return None
        diff = group.points.view() - z
        d = float(np.sqrt(np.min(np.einsum("ij,ij->i", diff, diff))))
        dmins = state.dmins
        assert dmins is not None
        dmins.append(d)
        if d > group.threshold:
            group.points.append(z)
            # running mean / std of the admitted distances (over the kept window)
            if group.dists.count == group.dists.capacity:
                old = group.dists.oldest()
                group.dist_sum -= old
                group.dist_sq -= old * old
            group.dists.append(d)
            group.dist_sum += d
            group.dist_sq += d * d
            n = group.dists.count
            mean = group.dist_sum / n
            var = max(group.dist_sq / n - mean * mean, 0.0)
            group.threshold = max(group.threshold, mean - var**0.5)
        state.since_test += 1
        if dmins.count < self.min_queries or state.since_test < self.test_every:
            return None
        state.since_test = 0
        if self.delta_ <= 0.0 and not getattr(self, "_calibrating", False):
            return None  # W >= 0: a threshold of 0 can never fire, so skip the test's cost
        w = self.statistic(dmins.view())
        state.tested = w
        return w if w < self.delta_ else None

    @staticmethod
    def statistic(distances: Any) -> float:
        """Shapiro-Wilk ``W`` of ``distances`` after dropping values beyond 3 sigma.

        Returns 1.0 (perfectly normal) when fewer than 3 values remain, and 0.0 when
        they are all equal (a degenerate, maximally unnatural spacing).
        """
        from scipy.stats import shapiro

        d = np.asarray(distances, dtype=np.float64)
        mu, sd = float(d.mean()), float(d.std())
        if sd == 0.0:
            return 0.0 if d.size >= 3 else 1.0
        kept = d[np.abs(d - mu) < 3.0 * sd]
        if kept.size < 3:
            return 1.0
        if float(kept.std()) == 0.0:
            return 0.0
        return float(shapiro(kept).statistic)
