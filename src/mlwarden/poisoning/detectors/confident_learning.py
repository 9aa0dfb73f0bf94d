"""Label issues by confident learning, on out-of-fold predicted probabilities.

Reference: Northcutt, Jiang and Chuang, "Confident Learning: Estimating Uncertainty in
Dataset Labels" (JAIR 2021). Implemented here from the paper (the cleanlab library is
AGPL-licensed and is neither used nor copied).

Threat model: labels flipped by an attacker or by noise (ATLAS AML.T0020, OWASP ML02).
Every row gets an out-of-fold predicted probability vector (a model that never saw the
row). Class *j*'s threshold ``t_j`` is the mean probability of *j* over rows labelled
*j*. A row labelled *i* counts towards the *confident joint* ``C[i, j]`` when
``p_j >= t_j`` (ties broken by the larger ``p_j``). The joint is calibrated to the label
counts; ``prune_by_noise_rate`` then flags, for every off-diagonal cell, the
``n * Q[i, j]`` rows labelled *i* with the largest margin ``p_j - p_i``;
``confident_joint`` flags the rows counted off the diagonal. A row's score is
``1 - p_label`` (its self-confidence, reversed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_choice, check_int
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import DataError
from mlwarden.poisoning.detectors._common import class_codes, show
from mlwarden.poisoning.detectors._result import DetectionResult

__all__ = [
    "ConfidentLearning",
    "LabelIssues",
    "confident_joint",
    "find_label_issues",
    "out_of_fold_probabilities",
]

_OWNER = "ConfidentLearning"
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _check(labels: npt.ArrayLike, probs: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or y.ndim != 1 or len(y) != len(p):
        raise DataError(
            f"{_OWNER}: need one probability row per label, got {y.shape} and {p.shape}"
        )
    if len(y) and (y.min() < 0 or y.max() >= p.shape[1]):
        raise DataError(f"{_OWNER}: labels must be class codes 0..{p.shape[1] - 1}")
    return y, p


def confident_joint(
    labels: npt.ArrayLike, probs: npt.ArrayLike, *, trusted: npt.ArrayLike | None = None
) -> tuple[IntArray, FloatArray, IntArray]:
    """The confident joint, the per-class thresholds and each row's confident class.

    Parameters
    ----------
    labels : array-like of int, shape (n,)
        Given class codes ``0..k-1``.
    probs : array-like of shape (n, k)
        Out-of-fold predicted probabilities.
    trusted : array-like of bool, shape (n,), optional
        Rows the thresholds are computed on (default all); a second round computes
        them on the rows the first round kept.

    Returns
    -------
    joint : ndarray of int, shape (k, k)
        ``joint[i, j]``: rows labelled *i* confidently of class *j*.
    thresholds : ndarray of shape (k,)
        ``t_j``, the mean probability of class *j* over rows labelled *j*.
    confident : ndarray of int, shape (n,)
        The row's confident class, or -1 when no class reaches its threshold.
    """
    y, p = _check(labels, probs)
    k = p.shape[1]
    base = np.ones(len(y), dtype=bool) if trusted is None else np.asarray(trusted, dtype=bool)
    thresholds = np.array(
        [p[base & (y == j), j].mean() if np.any(base & (y == j)) else np.inf for j in range(k)]
    )
    above = p >= thresholds - 1e-12
    masked = np.where(above, p, -np.inf)
    confident = np.where(above.any(axis=1), masked.argmax(axis=1), -1).astype(np.int64)
    joint = np.zeros((k, k), dtype=np.int64)
    ok = confident >= 0
    np.add.at(joint, (y[ok], confident[ok]), 1)
    return joint, thresholds, confident


def find_label_issues(
    labels: npt.ArrayLike,
    probs: npt.ArrayLike,
    *,
    method: str = "prune_by_noise_rate",
    trusted: npt.ArrayLike | None = None,
) -> npt.NDArray[np.bool_]:
    """Rows whose label is likely wrong, by confident learning.

    Parameters
    ----------
    labels, probs
        As :func:`confident_joint`.
    method : {"prune_by_noise_rate", "confident_joint"}
        See the module docstring.
    trusted : array-like of bool, optional
        As :func:`confident_joint`.
    """
    method = check_choice(_OWNER, "method", method, ("prune_by_noise_rate", "confident_joint"))
    y, p = _check(labels, probs)
    joint, _, confident = confident_joint(y, p, trusted=trusted)
    if method == "confident_joint":
        return np.asarray((confident >= 0) & (confident != y))
    k = p.shape[1]
    counts = np.bincount(y, minlength=k).astype(np.float64)
    row_sums = joint.sum(axis=1).astype(np.float64)
    calibrated = np.where(row_sums[:, None] > 0, joint / np.maximum(row_sums, 1)[:, None], 0.0)
    calibrated *= counts[:, None]  # rows of the calibrated joint sum to the label counts
    issues = np.zeros(len(y), dtype=bool)
    for i in range(k):
        rows = np.flatnonzero(y == i)
        for j in range(k):
            if i == j:
                continue
            n_ij = round(calibrated[i, j])
            if n_ij <= 0:
                continue
            margin = p[rows, j] - p[rows, i]
            top = rows[np.argsort(-margin, kind="stable")[:n_ij]]
            issues[top] = True
    return issues


def out_of_fold_probabilities(
    X: FloatArray,
    y: IntArray,
    *,
    estimator: Any = None,
    cv: int = 5,
    seed: int = 0,
    train_mask: npt.NDArray[np.bool_] | None = None,
    progress: ProgressCallback | None = None,
) -> FloatArray:
    """Out-of-fold predicted probabilities (stratified ``cv``-fold).

    ``estimator`` is a scikit-learn classifier (cloned per fold); default a
    histogram gradient-boosted tree model. With ``train_mask`` the models train only on
    those rows (every row is still predicted by the model of its fold).
    """
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    k = int(y.max()) + 1
    smallest = int(np.bincount(y, minlength=k).min())
    folds = min(cv, smallest)
    if folds < 2:
        raise DataError(
            f"{_OWNER}: every class needs at least 2 rows for out-of-fold probabilities"
        )
    base = (
        estimator
        if estimator is not None
        else HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.1, early_stopping=False, random_state=seed
        )
    )
    out = np.zeros((len(y), k))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for f, (tr, te) in enumerate(splitter.split(X, y)):
        model = clone(base)
        if "random_state" in model.get_params():
            model.set_params(random_state=seed)
        if train_mask is not None:
            tr = tr[train_mask[tr]]
        present = np.unique(y[tr])
        if len(present) < 2:  # a fold left with one class (or none) predicts it
            out[np.ix_(te, present)] = 1.0
        else:
            model.fit(X[tr], y[tr])
            cols = np.asarray(model.classes_, dtype=np.int64)
            out[np.ix_(te, cols)] = model.predict_proba(X[te])
        report_progress(progress, "out-of-fold probabilities", f + 1, folds)
    return out


@dataclass(frozen=True)
class LabelIssues(DetectionResult):
    """A :class:`DetectionResult` plus confident learning's estimates.

    Attributes
    ----------
    probabilities : ndarray of shape (n, k)
        Out-of-fold predicted probabilities.
    suggested : ndarray
        The most likely class of each row.
    joint : ndarray of int, shape (k, k)
        The confident joint (given label × likely true class).
    classes : ndarray
        The class of each column.
    """

    probabilities: FloatArray = field(default_factory=lambda: np.empty((0, 0)))
    suggested: npt.NDArray[Any] = field(default_factory=lambda: np.empty(0))
    joint: IntArray = field(default_factory=lambda: np.empty((0, 0), dtype=np.int64))
    classes: npt.NDArray[Any] = field(default_factory=lambda: np.empty(0))


class ConfidentLearning:
    """Find rows whose label is probably wrong (Northcutt et al. 2021).

    Parameters
    ----------
    estimator : scikit-learn classifier or None
        Model for the out-of-fold probabilities; default a gradient-boosted tree model.
    cv : int, default=5
        Folds.
    method : {"prune_by_noise_rate", "confident_joint"}
        Which rows to flag (see the module docstring).
    rounds : int, default=3
        Most rounds of cleaning. Round 1 is the paper's; each later round recomputes
        the out-of-fold probabilities with models trained without the rows the previous
        round flagged, and the thresholds on the rows it kept; the rounds stop when the
        flagged set changes by at most 1 % of its size. Heavy noise in a small class
        (10 % flips on a 5 % class make most of that class's labels wrong) drags its
        threshold down and inflates the estimated noise; the later rounds correct it.
        ``rounds=1`` is plain confident learning.
    random_state : int, Generator or None
        Seed of the folds and the model.
    """

    def __init__(
        self,
        *,
        estimator: Any = None,
        cv: int = 5,
        method: str = "prune_by_noise_rate",
        rounds: int = 3,
        random_state: RandomState = None,
    ) -> None:
        self.estimator = estimator
        self.cv = cv
        self.method = method
        self.rounds = rounds
        self.random_state = random_state

    def detect(
        self,
        data: Dataset,
        *,
        probabilities: npt.ArrayLike | None = None,
        progress: ProgressCallback | None = None,
    ) -> LabelIssues:
        """Score every row of ``data`` (``probabilities``: your own out-of-fold ones)."""
        cv = check_int(_OWNER, "cv", self.cv, minimum=2)
        method = check_choice(
            _OWNER, "method", self.method, ("prune_by_noise_rate", "confident_joint")
        )
        rounds = check_int(_OWNER, "rounds", self.rounds)
        classes, y = class_codes(data)
        if len(classes) < 2:
            raise DataError(f"{_OWNER}: {data.name} has a single class")
        trusted: npt.NDArray[np.bool_] | None = None
        used = 1
        issues = np.zeros(len(y), dtype=bool)
        probs: FloatArray
        if probabilities is None:
            seed = int(as_generator(self.random_state).integers(2**31))
            for r in range(rounds):
                probs = out_of_fold_probabilities(
                    data.X, y, estimator=self.estimator, cv=cv, seed=seed,
                    train_mask=trusted, progress=progress,
                )  # fmt: skip
                new = find_label_issues(y, probs, method=method, trusted=trusted)
                used = r + 1
                if r > 0 and np.sum(new != issues) <= 0.01 * max(int(issues.sum()), 1):
                    issues = new
                    break
                issues = new
                kept = np.bincount(y[~issues], minlength=len(classes))
                if r == rounds - 1 or not issues.any() or kept.min() < 2:
                    break
                trusted = ~issues
        else:
            probs = np.asarray(probabilities, dtype=np.float64)
            if probs.shape != (len(y), len(classes)):
                raise DataError(
                    f"{_OWNER}: probabilities must have shape {(len(y), len(classes))}, "
                    f"got {probs.shape}"
                )
            issues = find_label_issues(y, probs, method=method)
        joint, thresholds, _ = confident_joint(y, probs, trusted=trusted)
        suggested = classes[probs.argmax(axis=1)]
        self_conf = probs[np.arange(len(y)), y]
        reasons = {
            int(i): (
                f"label issue: labelled {show(classes[y[i]])} but a model that never saw the "
                f"row gives it {self_conf[i]:.2f} and {show(suggested[i])} "
                f"{probs[i].max():.2f} (confident learning)"
            )
            for i in np.flatnonzero(issues)
        }
        return LabelIssues(
            detector="confident-learning",
            scores=1.0 - self_conf,
            flagged=issues,
            reasons=reasons,
            details={
                "method": method,
                "rounds": used,
                "thresholds": {str(c): float(t) for c, t in zip(classes, thresholds, strict=True)},
                "joint": joint.tolist(),
                "classes": [str(c) for c in classes],
            },
            probabilities=probs,
            suggested=suggested,
            joint=joint,
            classes=classes,
        )
