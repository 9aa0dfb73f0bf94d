"""Targets for plain Python functions (a prediction API, a hand-written model, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mlwarden.exceptions import IncompatibleModelError, InvalidParameterError
from mlwarden.models.base import Capability, InputSpec, Target, _label_key

__all__ = ["CallableTarget"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_OUTPUTS = ("labels", "probabilities", "logits")


class CallableTarget(Target):
    """A function from rows to predictions, seen as a :class:`~mlwarden.models.base.Target`.

    Parameters
    ----------
    fn : callable
        Maps an ``(n, n_features)`` ``float64`` array to one of: ``n`` class labels
        (``output="labels"``; values are labels from ``classes``), an
        ``(n, n_classes)`` array of probabilities, or of logits.
    n_features : int
        Number of features per row.
    classes : array-like or None, default=None
        Class labels in output order. Defaults to ``range(n_classes)``.
    n_classes : int or None, default=None
        Number of classes when ``classes`` is not given. For scores or logits, when
        neither is given, ``fn`` is called once on a row of zeros to find out (that
        call is not counted in :attr:`n_queries`).
    output : {"probabilities", "logits", "labels"}, default="probabilities"
        What ``fn`` returns.
    name : str, default="model"
        Short name used in reports.
    source : str or None, default=None
        Where the function came from, if anywhere.

    Raises
    ------
    InvalidParameterError
        If ``fn`` is not callable, a parameter is invalid, or the classes cannot be
        determined.

    Notes
    -----
    Capabilities: ``LABELS`` for a label-only function; ``LABELS|SCORES`` for
    probabilities; ``LABELS|SCORES|LOGITS`` for logits. Outputs of the wrong shape,
    and labels that are not among ``classes``, raise
    :class:`~mlwarden.exceptions.IncompatibleModelError` at prediction time.
    """

    def __init__(
        self,
        fn: Callable[[FloatArray], Any],
        *,
        n_features: int,
        classes: npt.ArrayLike | None = None,
        n_classes: int | None = None,
        output: Literal["probabilities", "logits", "labels"] = "probabilities",
        name: str = "model",
        source: str | None = None,
    ) -> None:
        super().__init__(name=name, source=source)
        if not callable(fn):
            raise InvalidParameterError(f"fn must be callable, got {type(fn).__name__}")
        if output not in _OUTPUTS:
            raise InvalidParameterError(
                f"output must be 'probabilities', 'logits' or 'labels', got {output!r}"
            )
        if isinstance(n_features, bool) or not isinstance(n_features, int | np.integer):
            raise InvalidParameterError(f"n_features must be an integer, got {n_features!r}")
        if n_features < 1:
            raise InvalidParameterError(f"n_features must be positive, got {n_features}")
        self.fn = fn
        self.output: Literal["probabilities", "logits", "labels"] = output
        n_features = int(n_features)

        if classes is not None:
            labels = np.asarray(classes)
            if labels.ndim != 1 or len(labels) < 2:
                raise InvalidParameterError("classes must be a 1-D list of at least 2 labels")
            if n_classes is not None and int(n_classes) != len(labels):
                raise InvalidParameterError(
                    f"n_classes={n_classes} but {len(labels)} classes were given"
                )
        elif n_classes is not None:
            if int(n_classes) < 2:
                raise InvalidParameterError(f"n_classes must be at least 2, got {n_classes}")
            labels = np.arange(int(n_classes))
        elif output == "labels":
            raise InvalidParameterError(
                "a label-only callable needs classes (or n_classes) to know the label set"
            )
        else:
            out = np.asarray(fn(np.zeros((1, n_features), dtype=np.float64)), dtype=np.float64)
            if out.ndim != 2 or out.shape[0] != 1 or out.shape[1] < 2:
                raise InvalidParameterError(
                    f"fn returned shape {out.shape} for one row; expected (1, n_classes) {output}"
                )
            labels = np.arange(out.shape[1])
        self._spec = InputSpec(n_features=n_features, classes=labels, shape=(n_features,))
        self._lookup = {_label_key(c): i for i, c in enumerate(labels.tolist())}
        caps = Capability.LABELS
        if output != "labels":
            caps |= Capability.SCORES
        if output == "logits":
            caps |= Capability.LOGITS
        self._capabilities = caps

    @property
    def capabilities(self) -> Capability:
        """``LABELS``, plus ``SCORES`` (and ``LOGITS``) for functions returning them."""
        return self._capabilities

    @property
    def input_spec(self) -> InputSpec:
        """Feature count and classes as declared."""
        return self._spec

    # ------------------------------------------------------------------ internals
    def _scores(self, x: FloatArray) -> FloatArray:
        try:
            out = np.asarray(self.fn(x), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise IncompatibleModelError(
                f"{self.name!r}: the function returned non-numeric {self.output}: {exc}"
            ) from None
        if out.shape != (len(x), self.n_classes):
            raise IncompatibleModelError(
                f"{self.name!r}: the function returned shape {out.shape} for {len(x)} rows; "
                f"expected ({len(x)}, {self.n_classes}) {self.output}"
            )
        return out

    def _predict_proba(self, x: FloatArray) -> FloatArray:
        s = self._scores(x)
        if self.output == "probabilities":
            return s
        s = s - s.max(axis=1, keepdims=True)
        e = np.exp(s)
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)

    def _logits(self, x: FloatArray) -> FloatArray:
        return self._scores(x)

    def _predict_labels(self, x: FloatArray) -> IntArray:
        if self.output != "labels":
            return np.asarray(np.argmax(self._scores(x), axis=1), dtype=np.int64)
        raw = np.asarray(self.fn(x)).reshape(-1)
        if len(raw) != len(x):
            raise IncompatibleModelError(
                f"{self.name!r}: the function returned {len(raw)} labels for {len(x)} rows"
            )
        try:
            uniq, inverse = np.unique(raw, return_inverse=True)
        except TypeError:  # unorderable mixed labels: map one by one
            uniq, inverse = raw, np.arange(len(raw))
        codes = np.empty(len(uniq), dtype=np.int64)
        for i, v in enumerate(uniq.tolist()):
            j = self._lookup.get(_label_key(v))
            if j is None:
                known = ", ".join(map(repr, self.classes.tolist()))
                raise IncompatibleModelError(
                    f"{self.name!r}: the function returned label {v!r}, "
                    f"which is not one of its classes ({known})"
                )
            codes[i] = j
        return np.asarray(codes[inverse.reshape(-1)], dtype=np.int64)
