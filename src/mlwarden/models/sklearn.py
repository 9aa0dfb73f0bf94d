"""Targets for fitted scikit-learn classifiers (estimators and pipelines).

scikit-learn itself is imported inside the functions that need it, so that importing
:mod:`mlwarden.models` stays fast.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden.exceptions import IncompatibleModelError, InvalidParameterError
from mlwarden.models.base import Capability, InputSpec, Target

__all__ = ["SklearnTarget"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# scikit-learn warns on every call when an estimator fitted on a DataFrame gets a
# numpy array. Silencing that one warning is ~7x cheaper than rebuilding a DataFrame
# for every query (measured: ~0.2 ms vs ~1.7 ms for 10 rows through LogisticRegression).
_FEATURE_NAMES_WARNING = "X does not have valid feature names"


class SklearnTarget(Target):
    """A fitted scikit-learn classifier seen as a :class:`~mlwarden.models.base.Target`.

    Works for any fitted classifier, including :class:`~sklearn.pipeline.Pipeline`,
    tree ensembles and linear models. Rows reach the estimator as ``float64`` numpy
    arrays; estimators fitted on a DataFrame get a DataFrame with their column names
    only when they cannot work on plain arrays (e.g. a ``ColumnTransformer`` that
    selects columns by name).

    Parameters
    ----------
    estimator : object
        A fitted scikit-learn classifier (anything with ``predict`` and ``classes_``).
    name : str, default="model"
        Short name used in reports.
    source : str or None, default=None
        The file the estimator was loaded from, if any.

    Raises
    ------
    InvalidParameterError
        If ``estimator`` is not fitted, is not a classifier, is a multi-output
        classifier, or does not record its number of input features.

    Notes
    -----
    Capabilities are ``LABELS``, ``SCORES`` when the estimator has ``predict_proba``,
    and ``TRAINABLE`` when :func:`sklearn.base.clone` accepts it. Predicted labels are
    the arg-max of ``predict_proba`` when it exists (so labels and scores always agree),
    otherwise ``predict`` mapped to indices into ``classes_``.
    """

    def __init__(self, estimator: Any, *, name: str = "model", source: str | None = None) -> None:
        super().__init__(name=name, source=source)
        self.estimator = estimator
        self._needs_frame = False
        from sklearn.base import clone, is_classifier
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        est = self.estimator
        kind = type(est).__name__
        if not (hasattr(est, "predict") and hasattr(est, "fit")):
            raise InvalidParameterError(
                f"SklearnTarget needs a scikit-learn estimator with fit and predict, got {kind}"
            )
        try:
            check_is_fitted(est)
        except NotFittedError:
            raise InvalidParameterError(
                f"the {kind} estimator is not fitted; fit it before wrapping it in a target"
            ) from None
        except TypeError as exc:  # not an estimator at all
            raise InvalidParameterError(
                f"cannot use {kind} as a scikit-learn model: {exc}"
            ) from None
        if not is_classifier(est) or not hasattr(est, "classes_"):
            raise InvalidParameterError(
                f"{kind} is not a classifier (regressors, clusterers and transformers are not "
                "supported); mlwarden audits classification models"
            )
        classes = est.classes_
        if isinstance(classes, list) or np.asarray(classes).ndim != 1:
            raise InvalidParameterError(
                f"{kind} is a multi-output classifier, which is not supported"
            )
        n_features = getattr(est, "n_features_in_", None)
        if n_features is None:
            raise InvalidParameterError(
                f"{kind} does not record n_features_in_, so its input size is unknown"
            )
        names = getattr(est, "feature_names_in_", None)
        self._has_names = names is not None
        self._spec = InputSpec(
            n_features=int(n_features),
            classes=np.asarray(classes),
            shape=(int(n_features),),
            feature_names=tuple(str(n) for n in names) if names is not None else None,
        )
        caps = Capability.LABELS
        if hasattr(est, "predict_proba"):
            caps |= Capability.SCORES
        try:
            clone(est)
        except Exception:  # any failure means "not clonable"
            pass
        else:
            caps |= Capability.TRAINABLE
        self._capabilities = caps

    @property
    def capabilities(self) -> Capability:
        """``LABELS``, plus ``SCORES`` with ``predict_proba`` and ``TRAINABLE`` if clonable."""
        return self._capabilities

    @property
    def input_spec(self) -> InputSpec:
        """Feature count, classes and feature names taken from the fitted estimator."""
        return self._spec

    # ------------------------------------------------------------------ internals
    def _call(self, method: str, x: FloatArray) -> npt.NDArray[Any]:
        if len(x) >= _PARALLEL_ROWS:
            return self._call_unlimited(method, x)
        # Attacks send many small batches. OpenMP's thread start-up and spin-waiting
        # make those slow (HistGradientBoosting: milliseconds become tenths of a second
        # on a busy machine), so small batches run on one thread.
        with _openmp_controller().limit(limits=1, user_api="openmp"):
            return self._call_unlimited(method, x)

    def _call_unlimited(self, method: str, x: FloatArray) -> npt.NDArray[Any]:
        fn = getattr(self.estimator, method)
        if not self._has_names:
            return np.asarray(fn(x))
        if self._needs_frame:
            return np.asarray(fn(self._frame(x)))
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_FEATURE_NAMES_WARNING)
                return np.asarray(fn(x))
        except (ValueError, KeyError, TypeError, AttributeError):
            # Some pipelines (ColumnTransformer selecting by name) need a DataFrame.
            out = np.asarray(fn(self._frame(x)))
            self._needs_frame = True
            return out

    def _frame(self, x: FloatArray) -> Any:
        import pandas as pd

        return pd.DataFrame(x, columns=list(self._spec.feature_names or ()))

    def _predict_proba(self, x: FloatArray) -> FloatArray:
        proba = np.asarray(self._call("predict_proba", x), dtype=np.float64)
        if proba.ndim != 2 or proba.shape[1] != self.n_classes:
            raise IncompatibleModelError(
                f"{self.name!r}: predict_proba returned shape {proba.shape}, expected "
                f"(n, {self.n_classes})"
            )
        return proba

    def _predict_labels(self, x: FloatArray) -> IntArray:
        if Capability.SCORES in self._capabilities:
            return np.asarray(np.argmax(self._predict_proba(x), axis=1), dtype=np.int64)
        labels = self._call("predict", x).reshape(-1)
        return _labels_to_indices(labels, self.classes, self.name)


_PARALLEL_ROWS = 20_000
"""Batches at least this large keep scikit-learn's default threading."""


@functools.cache
def _openmp_controller() -> Any:
    """One cached threadpool controller (building one per call costs milliseconds)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _labels_to_indices(labels: npt.NDArray[Any], classes: npt.NDArray[Any], name: str) -> IntArray:
    """Map predicted labels to indices into ``classes`` (sorted, as scikit-learn keeps them)."""
    try:
        idx = np.searchsorted(classes, labels)
        idx = np.clip(idx, 0, len(classes) - 1)
        if np.all(classes[idx] == labels):
            return idx.astype(np.int64)
    except TypeError:  # mixed or unorderable label types: fall back to a lookup table
        pass
    lookup = {c: i for i, c in enumerate(classes.tolist())}
    out = np.empty(len(labels), dtype=np.int64)
    for i, v in enumerate(labels.tolist()):
        j = lookup.get(v)
        if j is None:
            raise IncompatibleModelError(
                f"{name!r} predicted label {v!r}, which is not one of its classes_"
            )
        out[i] = j
    return out
