"""Shared machinery of the stateful query detectors: alerts, bounded per-client state, replay.

A stateful detector watches the stream of queries one client sends to a model and
raises an :class:`Alert` when the stream looks like an attack (model extraction,
evasion probing) rather than ordinary use. Every detector here follows the same
contract, so the guard server can feed them live and the CLI can replay a log:

* ``fit(X_reference)`` learns what it needs from benign reference rows (feature
  scale, thresholds) and returns the detector;
* ``update(client, x, label=None)`` takes one query (one row) and the model's answer,
  updates that client's state in O(1) / O(buffer) time and returns an :class:`Alert`
  the first time the client is flagged, ``None`` otherwise;
* memory is bounded: at most ``max_clients`` clients are tracked (the least recently
  seen is forgotten first, see :class:`ClientStates`), and each client's state is a
  fixed-size set of numpy ring buffers.

State is plain Python and numpy (no open files, no locks), so it can be pickled; the
detectors are not thread-safe.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from mlwarden.exceptions import DataError, InvalidParameterError

__all__ = [
    "Alert",
    "ClientStates",
    "Detector",
    "ReplayResult",
    "RingBuffer",
    "replay",
]

FloatArray = npt.NDArray[np.float64]
_S = TypeVar("_S")

#: MITRE ATLAS / OWASP references of the two threats the detectors look for.
EXTRACTION_ATLAS: tuple[str, ...] = ("AML.T0024.002", "AML.T0040")
EXTRACTION_OWASP: tuple[str, ...] = ("ML05",)
PROBING_ATLAS: tuple[str, ...] = ("AML.T0043.001", "AML.T0042")
PROBING_OWASP: tuple[str, ...] = ("ML01",)


@dataclass(frozen=True)
class Alert:
    """A client flagged by a detector.

    Attributes
    ----------
    detector : str
        Name of the detector that fired (``"prada"``, ``"knn_probe"``, ``"ood_rate"``).
    client : str
        The client's id, as given to ``update``.
    query_index : int
        1-based number of this client's query at which the detector fired (the
        client's first query is 1).
    score : float
        The statistic that crossed the threshold (its meaning depends on the detector).
    threshold : float
        The threshold it crossed.
    direction : str
        ``"below"`` when a score under the threshold fires, ``"above"`` otherwise.
    threat : str
        ``"extraction"`` or ``"evasion probing"``.
    atlas : tuple of str
        MITRE ATLAS technique ids.
    owasp : tuple of str
        OWASP Machine Learning Security Top 10 ids.
    message : str
        One sentence for a human.
    """

    detector: str
    client: str
    query_index: int
    score: float
    threshold: float
    direction: str
    threat: str
    atlas: tuple[str, ...]
    owasp: tuple[str, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The alert as JSON-ready plain types."""
        return {
            "detector": self.detector,
            "client": self.client,
            "query_index": self.query_index,
            "score": self.score,
            "threshold": self.threshold,
            "direction": self.direction,
            "threat": self.threat,
            "atlas": list(self.atlas),
            "owasp": list(self.owasp),
            "message": self.message,
        }


class RingBuffer:
    """A fixed-capacity buffer of the last ``capacity`` rows (numpy, no reallocation).

    Parameters
    ----------
    capacity : int
        Rows kept at most; older rows are overwritten.
    n_features : int
        Width of a row; ``0`` makes a buffer of scalars.
    """

    __slots__ = ("_data", "_next", "count")

    def __init__(self, capacity: int, n_features: int = 0) -> None:
        shape = (capacity,) if n_features == 0 else (capacity, n_features)
        self._data: FloatArray = np.empty(shape, dtype=np.float64)
        self._next = 0
        self.count = 0

    @property
    def capacity(self) -> int:
        """Rows kept at most."""
        return int(self._data.shape[0])

    def append(self, row: FloatArray | float) -> None:
        """Store ``row``, overwriting the oldest row when full."""
        self._data[self._next] = row
        self._next = (self._next + 1) % self._data.shape[0]
        if self.count < self._data.shape[0]:
            self.count += 1

    def oldest(self) -> float:
        """The oldest stored scalar (the one the next append overwrites when full)."""
        idx = self._next if self.count == self._data.shape[0] else 0
        return float(self._data[idx])

    def view(self) -> FloatArray:
        """The stored rows (in storage order, not time order; a view, do not keep it)."""
        return self._data[: self.count]

    def ordered(self) -> FloatArray:
        """The stored rows, oldest first (a copy)."""
        if self.count < self._data.shape[0]:
            return self._data[: self.count].copy()
        return np.concatenate([self._data[self._next :], self._data[: self._next]])

    def clear(self) -> None:
        """Forget every row (the memory is kept)."""
        self._next = 0
        self.count = 0

    def __len__(self) -> int:
        return self.count


class ClientStates(Generic[_S]):
    """Per-client state with a bound on the number of clients (least recently used goes).

    Parameters
    ----------
    max_clients : int
        Clients tracked at most. When a new client arrives and the table is full, the
        client that sent nothing for the longest time is forgotten; if it comes back it
        starts afresh. An attacker can use this to shed state by cycling through
        ``max_clients`` fake identities, so size it above the number of clients the
        authentication layer lets in at once.
    factory : callable
        Builds a new client's state.
    """

    def __init__(self, max_clients: int, factory: Callable[[], _S]) -> None:
        self.max_clients = max_clients
        self._factory = factory
        self._states: OrderedDict[str, _S] = OrderedDict()
        self.evicted = 0

    def get(self, client: str) -> _S:
        """The state of ``client``, created (and the oldest client evicted) if needed."""
        state = self._states.get(client)
        if state is None:
            if len(self._states) >= self.max_clients:
                self._states.popitem(last=False)
                self.evicted += 1
            state = self._factory()
            self._states[client] = state
        else:
            self._states.move_to_end(client)
        return state

    def peek(self, client: str) -> _S | None:
        """The state of ``client`` without touching its recency, or ``None``."""
        return self._states.get(client)

    def pop(self, client: str) -> None:
        """Forget ``client``."""
        self._states.pop(client, None)

    def clear(self) -> None:
        """Forget every client."""
        self._states.clear()

    def __len__(self) -> int:
        return len(self._states)

    def __iter__(self) -> Iterator[str]:
        return iter(self._states)


def _client_id(client: Any) -> str:
    if isinstance(client, str):
        return client
    if isinstance(client, int | np.integer) and not isinstance(client, bool):
        return str(int(client))
    raise InvalidParameterError(
        f"client must be a string or an integer id, got {type(client).__name__}"
    )


class Detector:
    """Base class of the stateful per-client query detectors.

    Subclasses set ``name``, ``threat``, ``atlas`` and ``owasp``, implement
    :meth:`_fit`, :meth:`_new_state` and :meth:`_step`, and keep their
    hyper-parameters in a keyword-only ``__init__`` that only stores them.
    """

    name: str = "detector"
    threat: str = "extraction"
    atlas: tuple[str, ...] = EXTRACTION_ATLAS
    owasp: tuple[str, ...] = EXTRACTION_OWASP
    direction: str = "above"
    max_clients: int

    # ------------------------------------------------------------ fitting
    def fit(self, X_reference: Any, labels: Any = None) -> Detector:
        """Learn the feature scale and thresholds from benign reference rows.

        Parameters
        ----------
        X_reference : array-like of shape (n_samples, n_features)
            Rows that look like ordinary traffic (held-out data, not attack queries).
        labels : array-like of shape (n_samples,), optional
            The model's answers to those rows (only :class:`PRADA` uses them, to
            calibrate on streams grouped by class the way live traffic is).

        Returns
        -------
        self
        """
        self._validate_params()
        X = _as_matrix(X_reference, f"{self.name}: X_reference")
        self.n_features_in_ = int(X.shape[1])
        y = None
        if labels is not None:
            y = np.asarray(labels)
            if y.shape != (X.shape[0],):
                raise DataError(
                    f"{self.name}: labels must have one entry per reference row "
                    f"({X.shape[0]}), got shape {y.shape}"
                )
        self._fit(X, y)
        self.states_: ClientStates[Any] = ClientStates(self.max_clients, self._new_state)
        return self

    def _validate_params(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _fit(self, X: FloatArray, y: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _new_state(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _step(self, state: Any, x: FloatArray, label: Hashable | None) -> float | None:
        """Update ``state`` with one query; return the score if it fires, else ``None``."""
        raise NotImplementedError  # pragma: no cover - overridden

    def _threshold(self) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "states_"):
            raise InvalidParameterError(
                f"{self.name}: the detector is not fitted; call fit(X_reference) first"
            )

    # ------------------------------------------------------------ streaming
    def update(self, client: Any, x: Any, label: Hashable | None = None) -> Alert | None:
        """Feed one query of ``client`` and the model's answer ``label``.

        Parameters
        ----------
        client : str or int
            Who sent the query (an API key, an account).
        x : array-like of shape (n_features,)
            The query.
        label : hashable, optional
            The label the model answered (PRADA groups queries by it; the other
            detectors ignore it).

        Returns
        -------
        Alert or None
            An alert the first time this client is flagged; ``None`` otherwise
            (including every later query of an already flagged client, see
            :meth:`flagged`).

        Raises
        ------
        InvalidParameterError
            The detector is not fitted, or ``client`` is not a string or integer.
        DataError
            ``x`` has the wrong number of features or holds NaN / infinity.
        """
        self._check_fitted()
        cid = _client_id(client)
        row = _as_row(x, self.n_features_in_, self.name)
        state = self.states_.get(cid)
        state.n_queries += 1
        if state.flagged_at is not None:
            return None
        score = self._step(state, row, label)
        if score is None:
            return None
        state.flagged_at = state.n_queries
        return self._alert(cid, state.n_queries, score)

    def flagged(self, client: Any) -> int | None:
        """The query index at which ``client`` was flagged, or ``None`` (also if evicted)."""
        self._check_fitted()
        state = self.states_.peek(_client_id(client))
        return None if state is None else state.flagged_at

    def reset(self, client: Any = None) -> None:
        """Forget ``client`` (or every client when ``None``)."""
        self._check_fitted()
        if client is None:
            self.states_.clear()
        else:
            self.states_.pop(_client_id(client))

    @property
    def n_clients(self) -> int:
        """Clients currently tracked."""
        self._check_fitted()
        return len(self.states_)

    def _alert(self, client: str, index: int, score: float) -> Alert:
        threshold = self._threshold()
        return Alert(
            detector=self.name,
            client=client,
            query_index=index,
            score=float(score),
            threshold=float(threshold),
            direction=self.direction,
            threat=self.threat,
            atlas=self.atlas,
            owasp=self.owasp,
            message=(
                f"{self.name}: client {client!r} looks like {self.threat} after "
                f"{index} queries (score {score:.4g} {self.direction} threshold {threshold:.4g})"
            ),
        )

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters, as stored."""
        import inspect

        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.kind is p.KEYWORD_ONLY
        ]
        return {n: getattr(self, n) for n in names}


@dataclass
class ClientBase:
    """What every detector keeps per client: a query counter and the alert index."""

    n_queries: int = 0
    flagged_at: int | None = None


# ---------------------------------------------------------------- input checks
def _as_matrix(X: Any, what: str) -> FloatArray:
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what}: must be a numeric matrix ({exc})") from None
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise DataError(f"{what}: must be a 2-D matrix with at least 2 rows, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError(f"{what}: holds NaN or infinite values")
    return arr


def _as_row(x: Any, n_features: int, owner: str) -> FloatArray:
    if isinstance(x, np.ndarray) and x.dtype == np.float64 and x.ndim == 1:
        row = x
    else:
        try:
            row = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{owner}: a query must be a vector of numbers") from None
        if row.ndim == 2 and row.shape[0] == 1:
            row = row[0]
    if row.ndim != 1 or row.shape[0] != n_features:
        raise DataError(
            f"{owner}: a query must have {n_features} features, got shape {tuple(row.shape)}"
        )
    if not math.isfinite(float(row.sum())):
        raise DataError(f"{owner}: a query holds NaN or infinite values")
    return row


def scale_from(X: FloatArray, scale: Any, owner: str) -> FloatArray:
    """Per-feature scale: ``scale`` as given (scalar or vector), else a robust spread of X."""
    n = X.shape[1]
    if scale is not None:
        s = np.asarray(scale, dtype=np.float64)
        if s.ndim == 0:
            s = np.full(n, float(s))
        if s.shape != (n,) or not np.isfinite(s).all() or (s <= 0).any():
            raise InvalidParameterError(
                f"{owner}: scale must be a positive number or {n} positive numbers"
            )
        return s
    q75, q25 = np.percentile(X, [75, 25], axis=0)
    s = (q75 - q25) / 1.349
    std = X.std(axis=0)
    s = np.where(s > 0, s, std)
    return np.where(s > 0, s, 1.0)


# ---------------------------------------------------------------- replay
@dataclass
class ReplayResult:
    """What :func:`replay` found.

    Attributes
    ----------
    alerts : list of Alert
        Every alert, in stream order (at most one per detector and client).
    n_queries : int
        Queries replayed.
    queries_per_client : dict
        Queries each client sent.
    """

    alerts: list[Alert] = field(default_factory=list)
    n_queries: int = 0
    queries_per_client: dict[str, int] = field(default_factory=dict)

    @property
    def flagged_clients(self) -> dict[str, list[Alert]]:
        """Alerts grouped by client, clients in the order they were first flagged."""
        out: dict[str, list[Alert]] = {}
        for alert in self.alerts:
            out.setdefault(alert.client, []).append(alert)
        return out


def replay(
    detectors: Iterable[Detector],
    stream: Iterable[tuple[Any, Any, Hashable | None]],
) -> ReplayResult:
    """Feed a stream of ``(client, x, label)`` queries through fitted detectors.

    Parameters
    ----------
    detectors : iterable of Detector
        Fitted detectors; each keeps its own state.
    stream : iterable of (client, x, label)
        Queries in arrival order.

    Returns
    -------
    ReplayResult
    """
    dets = list(detectors)
    result = ReplayResult()
    counts = result.queries_per_client
    for client, x, label in stream:
        cid = _client_id(client)
        counts[cid] = counts.get(cid, 0) + 1
        result.n_queries += 1
        for det in dets:
            alert = det.update(cid, x, label)
            if alert is not None:
                result.alerts.append(alert)
    return result
