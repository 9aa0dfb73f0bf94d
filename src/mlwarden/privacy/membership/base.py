"""Shared pieces of the membership-inference attacks: the result type and the base class.

Threat model common to all of them: the attacker queries the target on candidate records
and decides, per record, whether it was in the training set. The auditor knows the truth
(``members`` and ``nonmembers``, row indices into the candidate matrix ``X``) and turns the
attack's scores into :mod:`mlwarden.privacy.metrics`. Attacks that use reference models
(LiRA, RMIA) get a fitted :class:`~mlwarden.privacy.reference.ReferenceModels` whose
population is the same ``X`` and ``y``.
"""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._random import RandomState, as_generator
from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.models.base import Capability, Target
from mlwarden.privacy.metrics import (
    DEFAULT_FPRS,
    MembershipMetrics,
    log_roc_points,
    membership_metrics,
    risk_ranking,
)
from mlwarden.privacy.reference import ReferenceModels

__all__ = ["MembershipAttack", "MembershipResult"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class MembershipResult:
    """What a membership-inference attack returns.

    Attributes
    ----------
    attack : str
        The attack's name.
    scores : ndarray of shape (m,)
        Membership score per scored record; higher means "more likely a member".
    labels : ndarray of shape (m,)
        ``True`` for members.
    index : ndarray of shape (m,)
        Row of ``X`` each score belongs to (members first, then non-members).
    metrics : MembershipMetrics
        AUC, balanced accuracy and TPR at low FPR.
    assumptions : dict
        The threat model of the run: ``data_access``, ``capability``,
        ``n_reference_models``, ``mode`` (online/offline or ``None``), ``queries``.
    n_queries : int
        Rows sent to the target.
    seconds : float
        Wall time (reference training excluded).
    extra : dict of ndarray
        Attack-specific per-record values (e.g. RMIA's likelihood ratio).
    """

    attack: str
    scores: FloatArray
    labels: BoolArray
    index: IntArray
    metrics: MembershipMetrics
    assumptions: dict[str, Any]
    n_queries: int
    seconds: float
    extra: dict[str, FloatArray] = field(default_factory=dict)

    def risk_ranking(self, k: int = 10) -> tuple[IntArray, FloatArray]:
        """Rows of ``X`` of the ``k`` most exposed members, with their scores."""
        return risk_ranking(self.scores, self.labels, k=k, index=self.index)

    def roc_points(self, n_points: int = 200) -> tuple[FloatArray, FloatArray]:
        """Log-spaced ROC points for a log-log plot (:func:`log_roc_points`)."""
        return log_roc_points(self.scores, self.labels, n_points=n_points)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (no per-record arrays)."""
        return {
            "attack": self.attack,
            "metrics": self.metrics.to_dict(),
            "assumptions": dict(self.assumptions),
            "n_queries": self.n_queries,
            "seconds": self.seconds,
        }


class MembershipAttack(ABC):
    """Base class: keyword-only hyper-parameters in ``__init__``, work in :meth:`infer`."""

    requires: ClassVar[Capability] = Capability.SCORES
    name: ClassVar[str] = ""
    needs_reference: ClassVar[bool] = False
    data_access: ClassVar[str] = "target outputs on the candidate records"

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters given to ``__init__``."""
        sig = inspect.signature(type(self).__init__)
        return {
            p.name: getattr(self, p.name)
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    def _validate_params(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`InvalidParameterError` for unusable hyper-parameters."""

    def _mode(self) -> str | None:
        return None

    def infer(
        self,
        target: Target,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        members: npt.ArrayLike,
        nonmembers: npt.ArrayLike,
        reference: ReferenceModels | None = None,
        fprs: tuple[float, ...] = DEFAULT_FPRS,
        random_state: RandomState = None,
    ) -> MembershipResult:
        """Score the records ``members`` and ``nonmembers`` of ``X`` and measure the attack.

        Parameters
        ----------
        target : Target
            The model under audit.
        X : array-like of shape (n, d)
            Candidate records (for reference attacks: the reference population).
        y : array-like of shape (n,)
            Their labels (as the target's classes).
        members, nonmembers : array-like of int
            Rows of ``X`` that were / were not in the target's training set; disjoint.
        reference : ReferenceModels, optional
            Fitted on ``X, y``; required by LiRA and RMIA.
        fprs : tuple of float
            False positive rates at which the TPR is reported.
        random_state : int, Generator or None
            Seed (label-only noise, RMIA's population sample).

        Raises
        ------
        CapabilityError
            If the target lacks what the attack needs (before any query).
        InvalidParameterError
            For bad hyper-parameters, overlapping or out-of-range ``members`` /
            ``nonmembers``, or a missing ``reference``.
        DataError
            For malformed ``X`` / ``y`` or a ``reference`` fitted on other data.
        """
        self._validate_params()
        target.require(self.requires, by=self.name)
        xs, ys = _check_xy(self.name, X, y)
        idx, labels = _check_split(self.name, members, nonmembers, len(xs))
        if self.needs_reference:
            if not isinstance(reference, ReferenceModels):
                raise InvalidParameterError(
                    f"{self.name}: reference must be a fitted ReferenceModels (fit it on the "
                    f"same X and y), got {type(reference).__name__}"
                )
            reference.check_population(xs, ys)
        y_t = target.encode_labels(ys)
        rng = as_generator(random_state)
        q0 = target.n_queries
        start = time.perf_counter()
        scores, extra = self._score(target, xs, y_t, idx, reference, rng)
        seconds = time.perf_counter() - start
        n_queries = target.n_queries - q0
        metrics = membership_metrics(scores, labels, fprs=fprs)
        k = reference.n_models_ if self.needs_reference and reference is not None else 0
        assumptions = {
            "data_access": self.data_access,
            "capability": ", ".join(self.requires.names()),
            "n_reference_models": k,
            "mode": self._mode(),
            "queries": n_queries,
        }
        return MembershipResult(
            attack=self.name,
            scores=np.asarray(scores, dtype=np.float64),
            labels=labels,
            index=idx,
            metrics=metrics,
            assumptions=assumptions,
            n_queries=n_queries,
            seconds=seconds,
            extra=extra,
        )

    @abstractmethod
    def _score(
        self,
        target: Target,
        X: FloatArray,
        y: IntArray,
        index: IntArray,
        reference: ReferenceModels | None,
        rng: np.random.Generator,
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        """Scores of the rows ``X[index]`` (``y``: target class indices of all rows)."""


def _check_xy(owner: str, X: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, Any]:
    try:
        xs = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{owner}: X must be numeric: {exc}") from None
    ys = np.asarray(y).reshape(-1)
    if xs.ndim != 2 or len(xs) != len(ys):
        raise DataError(
            f"{owner}: X must be (n, d) with one label per row, got X {xs.shape} and "
            f"{len(ys)} labels"
        )
    return xs, ys


def _as_rows(owner: str, name: str, rows: npt.ArrayLike, n: int) -> IntArray:
    r = np.asarray(rows).reshape(-1)
    if r.dtype == np.bool_:
        if len(r) != n:
            raise InvalidParameterError(f"{owner}: {name} as a mask must have {n} entries")
        r = np.flatnonzero(r)
    if r.size == 0:
        raise InvalidParameterError(f"{owner}: {name} is empty; give at least one row")
    if r.dtype.kind not in "iu":
        raise InvalidParameterError(f"{owner}: {name} must hold integer row indices")
    if r.min() < 0 or r.max() >= n:
        raise InvalidParameterError(f"{owner}: {name} has rows outside [0, {n})")
    uniq, counts = np.unique(r, return_counts=True)
    if (counts > 1).any():
        raise InvalidParameterError(
            f"{owner}: {name} lists row {int(uniq[counts > 1][0])} more than once"
        )
    return r.astype(np.int64)


def _check_split(
    owner: str, members: npt.ArrayLike, nonmembers: npt.ArrayLike, n: int
) -> tuple[IntArray, BoolArray]:
    mem = _as_rows(owner, "members", members, n)
    non = _as_rows(owner, "nonmembers", nonmembers, n)
    both = np.intersect1d(mem, non)
    if both.size:
        raise InvalidParameterError(
            f"{owner}: members and nonmembers overlap: {both.size} row(s) given as both "
            f"(first: row {int(both[0])})"
        )
    idx = np.concatenate([mem, non])
    labels = np.r_[np.ones(len(mem), dtype=bool), np.zeros(len(non), dtype=bool)]
    return idx, labels
