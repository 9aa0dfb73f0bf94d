"""The :class:`Target` interface: a model seen the way an attacker sees it.

A target is the only place where an ML framework is touched. Everything else in
mlwarden talks numpy to it: ``float64`` feature rows in, class indices,
probabilities, logits or input gradients out. A target declares what it offers
(:class:`Capability`) and an :class:`InputSpec`; an attack that needs something the
target lacks calls :meth:`Target.require` and fails with
:class:`~mlwarden.exceptions.CapabilityError` before doing any work. Every row passed
to a prediction method is counted in :attr:`Target.n_queries`.
"""

from __future__ import annotations

import enum
import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden.exceptions import (
    CapabilityError,
    DataError,
    IncompatibleModelError,
    InvalidParameterError,
)

__all__ = [
    "LOSSES",
    "TARGETED_LOSSES",
    "Capability",
    "InputSpec",
    "Target",
    "check_loss",
    "loss_from_logits",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

LOSSES = ("ce", "margin", "dlr", "ce-targeted", "margin-targeted", "dlr-targeted")
"""Losses of :meth:`Target.loss_gradient`; ascending any of them is the attack direction."""
TARGETED_LOSSES = ("ce-targeted", "margin-targeted", "dlr-targeted")
"""The losses that pull towards a ``target_class`` instead of away from the true class."""
_MIN_CLASSES = {"dlr": (3, "margin"), "dlr-targeted": (4, "margin-targeted")}
_DLR_EPS = 1e-12


class Capability(enum.Flag):
    """What a target lets a caller observe or do."""

    NONE = 0
    LABELS = enum.auto()
    """Predicted class labels."""
    SCORES = enum.auto()
    """Class probabilities (or other scores that rank classes)."""
    LOGITS = enum.auto()
    """Pre-softmax logits."""
    GRADIENTS = enum.auto()
    """Gradients of a loss with respect to the input."""
    TRAINABLE = enum.auto()
    """The model can be cloned and re-trained."""

    def names(self) -> list[str]:
        """Return the lower-case names of the capabilities set in this flag."""
        return [c.name.lower() for c in Capability if c.name and c.value and c in self]


@dataclass(frozen=True)
class InputSpec:
    """What a target accepts.

    Parameters
    ----------
    n_features : int
        Number of features per row (the flattened size for images).
    shape : tuple of int
        Shape of one input row as the model sees it, e.g. ``(8, 8)`` for digits.
    lower, upper : ndarray of shape (n_features,) or None
        Declared valid input range per feature; ``None`` when unbounded.
    classes : ndarray
        The class labels, in the order of the model's outputs.
    feature_names : tuple of str or None
        Feature names when the model records them.
    """

    n_features: int
    classes: npt.NDArray[Any]
    shape: tuple[int, ...] = ()
    lower: FloatArray | None = None
    upper: FloatArray | None = None
    feature_names: tuple[str, ...] | None = None

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)


@dataclass(eq=False)
class Target(ABC):
    """A model under audit, wrapped so that attacks can query it.

    Subclasses implement :meth:`_predict_proba` (if they offer scores),
    :meth:`_predict_labels`, and optionally :meth:`_logits` and :meth:`_loss_gradient`.
    The public methods validate inputs, count queries and check capabilities.

    Attributes
    ----------
    name : str
        A short name used in reports.
    capabilities : Capability
        What the target offers.
    input_spec : InputSpec
        What the target accepts.
    source : str or None
        The file the model was loaded from, if any.
    training : dict
        What the model file records about how the model was trained (e.g.
        ``{"differential_privacy": {"epsilon": ..., "delta": ..., ...}}``, written by
        ``mlwarden harden dp``); empty when nothing is known.
    n_queries : int
        Number of rows sent to prediction methods so far.
    """

    name: str = field(default="model", kw_only=True)
    source: str | None = field(default=None, kw_only=True)
    training: dict[str, Any] = field(default_factory=dict, kw_only=True)
    n_queries: int = field(default=0, init=False)
    n_gradient_queries: int = field(default=0, init=False)

    @property
    @abstractmethod
    def capabilities(self) -> Capability:
        """What the target offers."""

    @property
    @abstractmethod
    def input_spec(self) -> InputSpec:
        """What the target accepts."""

    @property
    def kind(self) -> str:
        """Framework name used in reports (``sklearn``, ``torch``, ``onnx``, ``callable``)."""
        return type(self).__name__.removesuffix("Target").lower()

    @property
    def classes(self) -> npt.NDArray[Any]:
        """Class labels in output order."""
        return self.input_spec.classes

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return self.input_spec.n_classes

    # ------------------------------------------------------------------ public API
    def require(self, capability: Capability, *, by: str = "this operation") -> None:
        """Raise :class:`CapabilityError` unless the target offers ``capability``."""
        missing = capability & ~self.capabilities
        if missing:
            raise CapabilityError(
                f"{by} needs {', '.join(missing.names())} from the target, but "
                f"{self.name!r} ({self.kind}) offers only "
                f"{', '.join(self.capabilities.names()) or 'nothing'}"
            )

    def predict(self, x: npt.ArrayLike) -> IntArray:
        """Predicted class indices (into :attr:`classes`) for each row of ``x``."""
        self.require(Capability.LABELS, by="predict")
        xs = self._check_x(x)
        self.n_queries += len(xs)
        return np.asarray(self._predict_labels(xs), dtype=np.int64)

    def predict_proba(self, x: npt.ArrayLike) -> FloatArray:
        """Class probabilities, shape ``(n, n_classes)``."""
        self.require(Capability.SCORES, by="predict_proba")
        xs = self._check_x(x)
        self.n_queries += len(xs)
        return np.asarray(self._predict_proba(xs), dtype=np.float64)

    def logits(self, x: npt.ArrayLike) -> FloatArray:
        """Pre-softmax logits, shape ``(n, n_classes)``."""
        self.require(Capability.LOGITS, by="logits")
        xs = self._check_x(x)
        self.n_queries += len(xs)
        return np.asarray(self._logits(xs), dtype=np.float64)

    def loss_gradient(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        loss: str = "ce",
        target_class: npt.ArrayLike | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Per-row loss and its gradient with respect to the input.

        Every loss is oriented so that *ascending* it attacks: the larger the value,
        the more adversarial the row. With ``z`` the logits (log-probabilities for a
        model that only returns probabilities), ``y`` the true and ``t`` the target
        class, and ``z_(1) >= z_(2) >= ...`` the sorted logits:

        ``"ce"``
            Cross-entropy of ``y``.
        ``"margin"``
            ``max_{i != y} z_i - z_y``; positive once the row is misclassified.
        ``"dlr"``
            Difference of logits ratio (Croce and Hein, 2020),
            ``-(z_y - max_{i != y} z_i) / (z_(1) - z_(3) + 1e-12)``: the margin made
            invariant to shifting and rescaling the logits. Needs 3 classes or more.
        ``"ce-targeted"``
            Minus the cross-entropy of ``t``.
        ``"margin-targeted"``
            ``z_t - z_y``. For two classes it is the same as ``"margin"``.
        ``"dlr-targeted"``
            ``-(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2 + 1e-12)``. Needs 4 classes
            or more.

        Parameters
        ----------
        x : array-like of shape (n, n_features)
            Raw input rows (before any preprocessing the target declares).
        y : array-like of shape (n,)
            Class indices (not labels) the loss is computed against.
        loss : str, default="ce"
            One of :data:`LOSSES`.
        target_class : array-like of shape (n,) or None
            Class index each row is pulled towards; required by the targeted losses
            (:data:`TARGETED_LOSSES`), refused by the others, and never equal to ``y``.

        Returns
        -------
        loss : ndarray of shape (n,)
        gradient : ndarray of shape (n, n_features)
            Gradient of the per-row loss with respect to ``x``; ascending it attacks.

        Raises
        ------
        InvalidParameterError
            For an unknown loss, a DLR loss on too few classes (use the margin losses
            there), or a missing, superfluous or invalid ``target_class``.
        """
        xs, ys, ts = self._gradient_query(x, y, loss, target_class, by="loss_gradient")
        # Subclasses written before the targeted losses take (x, y, loss) only.
        if ts is None:
            value, grad = self._loss_gradient(xs, ys, loss)
        else:
            value, grad = self._loss_gradient(xs, ys, loss, ts)
        return np.asarray(value, dtype=np.float64), np.asarray(grad, dtype=np.float64)

    @property
    def gradient_gives_labels(self) -> bool:
        """True when :meth:`loss_gradient_labels` answers from one forward pass, so that
        the prediction costs no extra query."""
        return type(self)._loss_gradient_labels is not Target._loss_gradient_labels

    def loss_gradient_labels(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        loss: str = "ce",
        target_class: npt.ArrayLike | None = None,
    ) -> tuple[FloatArray, FloatArray, IntArray]:
        """:meth:`loss_gradient` plus the predicted class of each row of ``x``.

        Gradient attacks need both at every step. Targets whose gradient pass already
        computes the outputs (torch) return the prediction from that same forward pass,
        which counts as one query per row; the others answer with a separate
        :meth:`predict`, counted as such.

        Returns
        -------
        loss : ndarray of shape (n,)
        gradient : ndarray of shape (n, n_features)
        labels : ndarray of shape (n,)
            Predicted class index of each row, as :meth:`predict` would return it.
        """
        if not self.gradient_gives_labels:
            value, grad = self.loss_gradient(x, y, loss=loss, target_class=target_class)
            return value, grad, self.predict(x)
        xs, ys, ts = self._gradient_query(x, y, loss, target_class, by="loss_gradient_labels")
        value, grad, labels = self._loss_gradient_labels(xs, ys, loss, ts)
        return (
            np.asarray(value, dtype=np.float64),
            np.asarray(grad, dtype=np.float64),
            np.asarray(labels, dtype=np.int64),
        )

    def _gradient_query(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        loss: str,
        target_class: npt.ArrayLike | None,
        *,
        by: str,
    ) -> tuple[FloatArray, IntArray, IntArray | None]:
        """Validate a gradient query's arguments and count it; return ``x, y, t``."""
        self.require(Capability.GRADIENTS, by=by)
        check_loss(loss, self.n_classes, targeted=target_class is not None)
        xs = self._check_x(x)
        ys = self._check_classes(y, len(xs), "labels")
        ts = None
        if target_class is not None:
            ts = self._check_classes(target_class, len(xs), "target classes")
            same = ts == ys
            if same.any():
                raise InvalidParameterError(
                    f"target_class equals the true class in {int(same.sum())} row(s) "
                    f"(first: row {int(np.argmax(same))})"
                )
        self.n_queries += len(xs)
        self.n_gradient_queries += len(xs)
        return xs, ys, ts

    def _check_classes(self, y: npt.ArrayLike, n: int, what: str) -> IntArray:
        ys = np.asarray(y, dtype=np.int64).reshape(-1)
        if len(ys) != n:
            raise DataError(f"loss_gradient: {n} rows but {len(ys)} {what}")
        if ys.size and (ys.min() < 0 or ys.max() >= self.n_classes):
            raise IncompatibleModelError(
                f"class indices must be in [0, {self.n_classes}); got {ys.min()}..{ys.max()}"
            )
        return ys

    def encode_labels(self, y: npt.ArrayLike) -> IntArray:
        """Map class labels to indices into :attr:`classes`.

        Raises
        ------
        IncompatibleModelError
            If a label is not one of the model's classes.
        """
        ys = np.asarray(y).reshape(-1)
        classes = self.classes
        if ys.dtype.kind in "biuf" and classes.dtype.kind in "biuf" and len(classes):
            # Fast path for numeric labels; falls through to name the unknown ones.
            order = np.argsort(classes, kind="stable")
            ordered = classes[order]
            pos = np.clip(np.searchsorted(ordered, ys), 0, len(ordered) - 1)
            if np.all(ordered[pos] == ys):
                return np.asarray(order[pos], dtype=np.int64)
        lookup = {_label_key(c): i for i, c in enumerate(classes.tolist())}
        out = np.empty(len(ys), dtype=np.int64)
        unknown: set[str] = set()
        for i, v in enumerate(ys.tolist()):
            idx = lookup.get(_label_key(v))
            if idx is None:
                unknown.add(repr(v))
                out[i] = -1
            else:
                out[i] = idx
        if unknown:
            shown = ", ".join(sorted(unknown)[:5])
            raise IncompatibleModelError(
                f"the data has labels the model {self.name!r} does not know: {shown} "
                f"(model classes: {', '.join(map(repr, classes.tolist()))})"
            )
        return out

    def fingerprint(self) -> str | None:
        """SHA-256 of the model file, when the target was loaded from one."""
        if self.source is None:
            return None
        h = hashlib.sha256()
        with open(self.source, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable description for reports."""
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "sha256": self.fingerprint(),
            "capabilities": self.capabilities.names(),
            "n_features": self.input_spec.n_features,
            "classes": [_jsonable(c) for c in self.classes.tolist()],
        }

    # ------------------------------------------------------------ for subclasses
    def _check_x(self, x: npt.ArrayLike) -> FloatArray:
        try:
            xs = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"inputs to {self.name!r} must be numeric: {exc}") from None
        n_features = self.input_spec.n_features
        if xs.ndim == 1:
            xs = xs.reshape(1, -1)
        elif xs.ndim > 2:
            xs = xs.reshape(len(xs), -1)
        if xs.shape[1] != n_features:
            raise IncompatibleModelError(
                f"model {self.name!r} expects {n_features} features per row, got {xs.shape[1]}"
            )
        if not np.all(np.isfinite(xs)):
            raise DataError(f"inputs to {self.name!r} contain NaN or infinite values")
        return xs

    def _predict_labels(self, x: FloatArray) -> IntArray:
        return np.asarray(np.argmax(self._predict_proba(x), axis=1), dtype=np.int64)

    def _predict_proba(self, x: FloatArray) -> FloatArray:  # pragma: no cover - guarded
        raise CapabilityError(f"{self.name!r} offers no scores")

    def _logits(self, x: FloatArray) -> FloatArray:  # pragma: no cover - guarded
        raise CapabilityError(f"{self.name!r} offers no logits")

    def _loss_gradient(
        self, x: FloatArray, y: IntArray, loss: str, target_class: IntArray | None = None
    ) -> tuple[FloatArray, FloatArray]:  # pragma: no cover - guarded
        """Per-row ``loss`` and input gradient; arguments are already validated."""
        raise CapabilityError(f"{self.name!r} offers no gradients")

    def _loss_gradient_labels(
        self, x: FloatArray, y: IntArray, loss: str, target_class: IntArray | None
    ) -> tuple[
        FloatArray, FloatArray, IntArray
    ]:  # pragma: no cover - never called unless overridden
        """Override to return the prediction from the gradient's own forward pass."""
        raise NotImplementedError


def check_loss(loss: object, n_classes: int, *, targeted: bool | None = None) -> str:
    """Check that ``loss`` is one of :data:`LOSSES` and usable with ``n_classes`` classes.

    Parameters
    ----------
    loss : str
        The loss name.
    n_classes : int
        Number of classes of the model.
    targeted : bool or None
        Whether a ``target_class`` is given; ``None`` skips that check.

    Raises
    ------
    InvalidParameterError
        With a message that says what to use instead.
    """
    if not isinstance(loss, str) or loss not in LOSSES:
        raise InvalidParameterError(
            f"loss must be one of {', '.join(map(repr, LOSSES))}, got {loss!r}"
        )
    if loss in _MIN_CLASSES:
        need, instead = _MIN_CLASSES[loss]
        if n_classes < need:
            raise InvalidParameterError(
                f"loss {loss!r} needs at least {need} classes and the model has "
                f"{n_classes}: use {instead!r}"
            )
    if targeted is not None:
        wants = loss in TARGETED_LOSSES
        if wants and not targeted:
            raise InvalidParameterError(f"loss {loss!r} needs target_class (one class per row)")
        if targeted and not wants:
            raise InvalidParameterError(
                f"target_class is only used by the targeted losses "
                f"({', '.join(map(repr, TARGETED_LOSSES))}), not by {loss!r}"
            )
    return loss


def loss_from_logits(
    z: npt.ArrayLike,
    y: npt.ArrayLike,
    loss: str,
    target_class: npt.ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """The losses of :meth:`Target.loss_gradient` and their gradients with respect to logits.

    A numpy reference for targets whose input gradient is a logit gradient times a
    Jacobian (linear models), and for tests. Arguments are not validated.

    Parameters
    ----------
    z : array-like of shape (n, k)
        Logits.
    y : array-like of shape (n,)
        True class indices.
    loss : str
        One of :data:`LOSSES`.
    target_class : array-like of shape (n,) or None
        Target class indices for the targeted losses.

    Returns
    -------
    value : ndarray of shape (n,)
    dz : ndarray of shape (n, k)
        Gradient of each row's loss with respect to that row's logits.
    """
    zs = np.asarray(z, dtype=np.float64)
    ys = np.asarray(y, dtype=np.int64).reshape(-1)
    n, k = zs.shape
    rows = np.arange(n)
    onehot_y = np.zeros((n, k))
    onehot_y[rows, ys] = 1.0
    ts = None if target_class is None else np.asarray(target_class, dtype=np.int64).reshape(-1)

    def _ce(cls: IntArray) -> tuple[FloatArray, FloatArray]:
        s = zs - zs.max(axis=1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        onehot = np.zeros((n, k))
        onehot[rows, cls] = 1.0
        return -logp[rows, cls], np.exp(logp) - onehot

    if loss == "ce":
        return _ce(ys)
    if loss == "ce-targeted":
        assert ts is not None
        v, g = _ce(ts)
        return -v, -g
    # The margin-like losses: numerator (z_other - z_y) over a scale (1 for margins).
    if ts is None:
        others = np.where(onehot_y > 0, -np.inf, zs)
        other = np.argmax(others, axis=1)
    else:
        other = ts
    num = zs[rows, other] - zs[rows, ys]
    dnum = -onehot_y
    dnum[rows, other] += 1.0
    if loss in ("margin", "margin-targeted"):
        return num, dnum
    order = np.argsort(-zs, axis=1, kind="stable")
    dden = np.zeros((n, k))
    dden[rows, order[:, 0]] += 1.0
    if loss == "dlr":
        dden[rows, order[:, 2]] -= 1.0
    else:  # dlr-targeted
        dden[rows, order[:, 2]] -= 0.5
        dden[rows, order[:, 3]] -= 0.5
    den = (dden * zs).sum(axis=1) + _DLR_EPS
    value = num / den
    grad = dnum / den[:, None] - (num / den**2)[:, None] * dden
    return value, grad


def _label_key(v: Any) -> Any:
    """Normalise a label for lookup so that ``1``, ``1.0`` and ``np.int64(1)`` match."""
    if isinstance(v, bool | np.bool_):
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, bytes):
        return v.decode()
    return v


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v
