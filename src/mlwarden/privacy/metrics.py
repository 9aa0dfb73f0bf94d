"""Metrics of membership inference: AUC, balanced accuracy and TPR at a low FPR.

Carlini, Chien, Nasr, Song, Terzis and Tramèr, "Membership Inference Attacks From First
Principles", IEEE S&P 2022, argue that an attack must be judged by its true positive rate
at a low false positive rate (it tells whether *some* records are exposed with
confidence), read on a log-log ROC curve, with the AUC and balanced accuracy beside it.

Conventions: a higher score means "more likely a member"; a record is called a member
when its score is ``>= threshold``. ``labels`` are ``True`` (or 1) for members.

Threat model: none (these functions only score an attack's output). The TPR at a fixed
FPR comes with an exact Clopper–Pearson interval on the TPR over the members, at the
threshold chosen on the data (the uncertainty of that threshold itself is not included).
A TPR at FPR ``f`` means something only with at least ``1 / f`` non-members
(:func:`resolvable`); otherwise the figure is reported as unresolved (rule MLW-PRI-006).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_int, check_number
from mlwarden.exceptions import DataError, InvalidParameterError

__all__ = [
    "DEFAULT_FPRS",
    "MembershipMetrics",
    "TPRAtFPR",
    "balanced_accuracy",
    "clopper_pearson",
    "log_roc_points",
    "membership_metrics",
    "resolvable",
    "risk_ranking",
    "roc_auc",
    "roc_curve",
    "tpr_at_fpr",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

DEFAULT_FPRS = (0.01, 0.001, 0.0)
"""False positive rates reported by default: 1 %, 0.1 % and 0 % (no false positive)."""


@dataclass(frozen=True)
class TPRAtFPR:
    """True positive rate at a fixed false positive rate.

    Attributes
    ----------
    fpr : float
        The false positive rate asked for.
    tpr : float
        The largest TPR over thresholds whose empirical FPR is ``<= fpr``.
    threshold : float
        The score threshold reaching it (``inf`` when no member can be called one).
    achieved_fpr : float
        The empirical FPR at that threshold.
    ci_low, ci_high : float
        Clopper–Pearson interval for the TPR (binomial over the members).
    confidence : float
        Level of the interval.
    resolved : bool
        Whether there are enough non-members to measure this FPR (:func:`resolvable`).
    """

    fpr: float
    tpr: float
    threshold: float
    achieved_fpr: float
    ci_low: float
    ci_high: float
    confidence: float
    resolved: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary."""
        return {
            "fpr": self.fpr,
            "tpr": self.tpr,
            "threshold": self.threshold if math.isfinite(self.threshold) else None,
            "achieved_fpr": self.achieved_fpr,
            "ci": [self.ci_low, self.ci_high],
            "ci_method": "clopper-pearson",
            "confidence": self.confidence,
            "resolved": self.resolved,
        }


@dataclass(frozen=True)
class MembershipMetrics:
    """The summary of one membership-inference run.

    Attributes
    ----------
    auc : float
        Area under the ROC curve (ties count one half).
    balanced_accuracy : float
        Best balanced accuracy over all thresholds.
    tpr_at : tuple of TPRAtFPR
        TPR at each requested FPR.
    n_members, n_nonmembers : int
        Number of member and non-member records scored.
    """

    auc: float
    balanced_accuracy: float
    tpr_at: tuple[TPRAtFPR, ...]
    n_members: int
    n_nonmembers: int

    def tpr(self, fpr: float) -> TPRAtFPR:
        """The entry for ``fpr``; raises :class:`InvalidParameterError` if not computed."""
        for entry in self.tpr_at:
            if math.isclose(entry.fpr, fpr, rel_tol=1e-12, abs_tol=0.0):
                return entry
        have = ", ".join(f"{e.fpr:g}" for e in self.tpr_at)
        raise InvalidParameterError(f"fpr={fpr!r} was not computed (have: {have})")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary."""
        return {
            "auc": self.auc,
            "balanced_accuracy": self.balanced_accuracy,
            "tpr_at_fpr": [e.to_dict() for e in self.tpr_at],
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
        }


# --------------------------------------------------------------------------- inputs
def _check_scores(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    lab = np.asarray(labels).reshape(-1)
    if len(s) != len(lab):
        raise DataError(f"scores has {len(s)} entries but labels has {len(lab)}")
    if np.isnan(s).any():
        raise DataError(f"scores contain {int(np.isnan(s).sum())} NaN value(s)")
    if lab.dtype != np.bool_:
        values = set(np.unique(lab).tolist())
        if not values <= {0, 1}:
            raise DataError(f"labels must be boolean or 0/1 (member = 1), got values {values}")
        lab = lab.astype(bool)
    n_pos = int(lab.sum())
    if n_pos == 0 or n_pos == len(lab):
        raise DataError(
            f"labels need both members and non-members, got {n_pos} member(s) "
            f"and {len(lab) - n_pos} non-member(s)"
        )
    return s, lab


def _counts(s: FloatArray, lab: BoolArray) -> tuple[FloatArray, IntArray, IntArray]:
    """Distinct thresholds (descending, starting at +inf) with TP and FP counts at ``>=``."""
    order = np.argsort(-s, kind="stable")
    ss = s[order]
    ll = lab[order]
    tp = np.cumsum(ll)
    fp = np.cumsum(~ll)
    # Keep the last position of each run of equal scores.
    last = np.r_[ss[1:] != ss[:-1], True]
    thresholds = np.r_[np.inf, ss[last]]
    return (
        thresholds.astype(np.float64),
        np.r_[0, tp[last]].astype(np.int64),
        np.r_[0, fp[last]].astype(np.int64),
    )


# --------------------------------------------------------------------------- curves
def roc_curve(
    scores: npt.ArrayLike, labels: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """ROC curve: FPR and TPR at every distinct threshold (score ``>=`` threshold).

    Returns
    -------
    fpr, tpr : ndarray
        Rates, starting at ``(0, 0)`` (threshold ``+inf``) and ending at ``(1, 1)``.
    thresholds : ndarray
        Decreasing thresholds.
    """
    s, lab = _check_scores(scores, labels)
    thresholds, tp, fp = _counts(s, lab)
    n_pos = int(lab.sum())
    return fp / (len(lab) - n_pos), tp / n_pos, thresholds


def roc_auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC curve: P(member score > non-member score) + ½ P(tie)."""
    s, lab = _check_scores(scores, labels)
    from scipy.stats import rankdata

    ranks = rankdata(s)  # average ranks for ties
    n_pos = int(lab.sum())
    n_neg = len(lab) - n_pos
    u = float(ranks[lab].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def balanced_accuracy(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Best balanced accuracy ``(TPR + TNR) / 2`` over all thresholds."""
    fpr, tpr, _ = roc_curve(scores, labels)
    return float(np.max((tpr + 1.0 - fpr) / 2.0))


def resolvable(n_nonmembers: int, fpr: float) -> bool:
    """Whether ``n_nonmembers`` non-members can resolve a false positive rate of ``fpr``.

    An FPR of ``f > 0`` needs at least ``1 / f`` non-members (one false positive
    already exceeds ``f`` with fewer). ``fpr = 0`` means "the strictest threshold with
    no false positive": it is defined with one non-member or more, and stands for an
    FPR below ``1 / n_nonmembers``.
    """
    n = check_int("resolvable", "n_nonmembers", int(n_nonmembers), minimum=0)
    f = check_number("resolvable", "fpr", fpr, low=0.0, high=1.0)
    if f == 0.0:
        return n >= 1
    return n >= math.ceil(1.0 / f - 1e-9)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval for a binomial proportion ``k / n``."""
    check_int("clopper_pearson", "n", n, minimum=1)
    check_int("clopper_pearson", "k", k, minimum=0)
    if k > n:
        raise InvalidParameterError(f"clopper_pearson: k={k} exceeds n={n}")
    check_number("clopper_pearson", "confidence", confidence, low=0.0, high=1.0, low_open=True)
    from scipy.stats import beta

    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2.0, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1.0 - alpha / 2.0, k + 1, n - k))
    return low, high


def tpr_at_fpr(
    scores: npt.ArrayLike, labels: npt.ArrayLike, fpr: float, *, confidence: float = 0.95
) -> TPRAtFPR:
    """TPR at the threshold with the largest TPR whose empirical FPR is ``<= fpr``.

    ``fpr=0`` gives the fraction of members scored strictly above every non-member.
    The interval is Clopper–Pearson over the members at that threshold.
    """
    f = check_number("tpr_at_fpr", "fpr", fpr, low=0.0, high=1.0)
    check_number("tpr_at_fpr", "confidence", confidence, low=0.0, high=1.0, low_open=True)
    s, lab = _check_scores(scores, labels)
    thresholds, tp, fp = _counts(s, lab)
    n_pos = int(lab.sum())
    n_neg = len(lab) - n_pos
    ok = np.flatnonzero(fp <= f * n_neg + 1e-9)  # index 0 (threshold +inf) always qualifies
    best = int(ok[np.argmax(tp[ok])])
    k = int(tp[best])
    low, high = clopper_pearson(k, n_pos, confidence)
    return TPRAtFPR(
        fpr=f,
        tpr=k / n_pos,
        threshold=float(thresholds[best]),
        achieved_fpr=float(fp[best]) / n_neg,
        ci_low=low,
        ci_high=high,
        confidence=float(confidence),
        resolved=resolvable(n_neg, f),
    )


def log_roc_points(
    scores: npt.ArrayLike, labels: npt.ArrayLike, *, n_points: int = 200
) -> tuple[FloatArray, FloatArray]:
    """Points of the ROC curve for a log-log plot.

    The curve is read at ``n_points`` FPRs spaced evenly in log scale between
    ``1 / n_nonmembers`` and 1 (the TPR at each is :func:`tpr_at_fpr`'s), so that the
    low-FPR end is not crowded out. Zero TPRs are kept; clip them when plotting.

    Returns
    -------
    fpr, tpr : ndarray of shape (n_points,) or fewer
    """
    check_int("log_roc_points", "n_points", n_points, minimum=2)
    s, lab = _check_scores(scores, labels)
    _, tp, fp = _counts(s, lab)
    n_pos = int(lab.sum())
    n_neg = len(lab) - n_pos
    grid = np.unique(np.geomspace(1.0 / n_neg, 1.0, n_points))
    # For each grid FPR, the best TP among thresholds with fp <= grid * n_neg.
    best_tp = np.maximum.accumulate(tp)  # tp and fp both grow along the thresholds
    pos = np.searchsorted(fp, grid * n_neg + 1e-9, side="right") - 1
    return grid.astype(np.float64), best_tp[pos] / n_pos


def risk_ranking(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    k: int = 10,
    index: npt.ArrayLike | None = None,
) -> tuple[IntArray, FloatArray]:
    """The ``k`` members with the highest membership score (the most exposed records).

    Parameters
    ----------
    scores, labels : array-like of shape (n,)
        Attack scores and membership labels.
    k : int, default=10
        How many records to return (fewer if there are fewer members).
    index : array-like of shape (n,), optional
        Record ids to return in place of positions (e.g. rows of the training set).

    Returns
    -------
    records : ndarray of int
        Record ids (or positions), most exposed first; ties keep input order.
    member_scores : ndarray of float
        Their scores.
    """
    check_int("risk_ranking", "k", k, minimum=1)
    s, lab = _check_scores(scores, labels)
    ids = np.arange(len(s)) if index is None else np.asarray(index).reshape(-1)
    if len(ids) != len(s):
        raise DataError(f"risk_ranking: index has {len(ids)} entries for {len(s)} scores")
    pos = np.flatnonzero(lab)
    top = pos[np.argsort(-s[pos], kind="stable")[:k]]
    return ids[top].astype(np.int64), s[top]


def membership_metrics(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    fprs: tuple[float, ...] = DEFAULT_FPRS,
    confidence: float = 0.95,
) -> MembershipMetrics:
    """AUC, best balanced accuracy and TPR at each of ``fprs`` (with intervals)."""
    s, lab = _check_scores(scores, labels)
    n_pos = int(lab.sum())
    return MembershipMetrics(
        auc=roc_auc(s, lab),
        balanced_accuracy=balanced_accuracy(s, lab),
        tpr_at=tuple(tpr_at_fpr(s, lab, f, confidence=confidence) for f in fprs),
        n_members=n_pos,
        n_nonmembers=len(lab) - n_pos,
    )
