"""A surrogate that regresses the victim's log-probabilities (score distillation).

Reference: F. Tramèr et al., "Stealing Machine Learning Models via Prediction APIs",
USENIX Security 2016: confidence values are far more informative than labels, since they
locate each query relative to the decision boundary. Training a classifier on soft labels
(weighted copies of each row) uses them only through its loss; regressing the log-odds
(binary) or the centred log-probabilities (multi-class) uses them directly, which copies
tree ensembles with fewer queries.

Threat model: as :func:`~mlwarden.theft.extract` with a victim that returns
probabilities; ``use_scores="logits"`` selects this surrogate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, clone

__all__ = ["ScoreRegressorClassifier"]

FloatArray = npt.NDArray[np.float64]
_EPS = 1e-6


class ScoreRegressorClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A classifier built from regressors of a victim's log-probabilities.

    Parameters
    ----------
    regressor : scikit-learn regressor or None, default=None
        Cloned once (binary: regresses the log-odds) or once per class (multi-class:
        regresses centred log-probabilities); default a ``HistGradientBoostingRegressor``.
    classes : array-like
        Class labels, in the order of the probability columns given to :meth:`fit`.
    random_state : int or None, default=None
        Passed to the default regressor.
    """

    def __init__(
        self, *, regressor: Any = None, classes: Any = None, random_state: int | None = None
    ) -> None:
        self.regressor = regressor
        self.classes = classes
        self.random_state = random_state

    def fit(self, X: npt.ArrayLike, proba: npt.ArrayLike) -> ScoreRegressorClassifier:
        """Fit on rows ``X`` and the victim's probabilities ``proba`` (n, n_classes)."""
        xs = np.asarray(X, dtype=np.float64)
        p = np.clip(np.asarray(proba, dtype=np.float64), _EPS, 1.0)
        self.classes_ = np.asarray(self.classes)
        self.n_features_in_ = xs.shape[1]
        logp = np.log(p)
        if p.shape[1] == 2:
            targets = [logp[:, 1] - logp[:, 0]]
        else:
            targets = list((logp - logp.mean(axis=1, keepdims=True)).T)
        base = self.regressor
        if base is None:
            from sklearn.ensemble import HistGradientBoostingRegressor

            base = HistGradientBoostingRegressor(max_iter=100, random_state=self.random_state)
        self.estimators_ = [clone(base).fit(xs, t) for t in targets]
        return self

    def predict_proba(self, X: npt.ArrayLike) -> FloatArray:
        """Probabilities from the regressed log-odds / log-probabilities."""
        xs = np.asarray(X, dtype=np.float64)
        z = np.column_stack([e.predict(xs) for e in self.estimators_])
        if len(self.estimators_) == 1:
            p1 = 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -50, 50)))
            return np.column_stack([1.0 - p1, p1])
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[Any]:
        """The most probable class label of each row."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])
