"""Model inversion: reconstruct what a class looks like from the model's gradients.

Fredrikson, Jha and Ristenpart, "Model Inversion Attacks that Exploit Confidence
Information and Basic Countermeasures", CCS 2015 (MI-Face).

Threat model: white-box access to the gradient of the model's loss with respect to
its input (``Capability.GRADIENTS``), and knowledge of the input range. For each
attacked class ``c``, gradient descent from a neutral input (the middle of the input
range, by default) minimises the cost ``c(x) = -log p_c(x)`` (or MI-Face's
``1 - p_c(x)``) plus optional total-variation and L2 penalties, keeping ``x`` inside
the declared input range, and stops after ``max_iter`` steps, after ``patience``
steps without improvement (MI-Face's β), or once the cost is at most ``cost_threshold``
(γ). Where each class stands for one person (faces, voices), the reconstruction is
that person's likeness; elsewhere it shows what the model has memorised about a class.

When real examples are given, each reconstruction is compared with every class's mean
example: it *identifies* its class when it correlates best with its own class's mean.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import DataError, IncompatibleModelError, InvalidParameterError
from mlwarden.findings.finding import Finding
from mlwarden.models.base import Capability, Target
from mlwarden.privacy.rules import RULE_INVERSION

__all__ = ["InversionResult", "ModelInversion", "inversion_figure", "inversion_finding"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class InversionResult:
    """What :meth:`ModelInversion.invert` returns.

    Attributes
    ----------
    classes : ndarray of shape (k,)
        The attacked class labels.
    class_index : ndarray of shape (k,)
        Their indices into the model's classes (the columns of ``similarity``).
    reconstructions : ndarray of shape (k, *input_shape)
        One reconstructed representative per class, in the target's input shape and
        inside its declared input range.
    confidence : ndarray of shape (k,)
        The model's probability of each class on its reconstruction.
    start_confidence : ndarray of shape (k,)
        The same probability on the neutral start.
    iterations : ndarray of shape (k,)
        Gradient steps taken per class.
    stopped_by : tuple of str
        Per class: ``"max_iter"``, ``"patience"`` or ``"cost_threshold"``.
    similarity : ndarray of shape (k, n_classes) or None
        Pearson correlation of each reconstruction with each class's mean real
        example (columns in the model's class order); ``None`` without real examples.
    identified : ndarray of shape (k,) or None
        True where a reconstruction correlates best with its own class's mean.
    own_distance : ndarray of shape (k,) or None
        L2 distance from each reconstruction to its own class's mean.
    nearest_other_distance : ndarray of shape (k,) or None
        L2 distance to the nearest other class's mean.
    class_means : ndarray of shape (k, *input_shape) or None
        Mean real example of each attacked class.
    queries : int
        Rows sent to the target (each gradient step counts one per class).
    seconds : float
        Wall time.
    params : dict
        The attack's hyper-parameters.
    """

    classes: npt.NDArray[Any]
    class_index: IntArray
    reconstructions: FloatArray
    confidence: FloatArray
    start_confidence: FloatArray
    iterations: IntArray
    stopped_by: tuple[str, ...]
    similarity: FloatArray | None = None
    identified: npt.NDArray[np.bool_] | None = None
    own_distance: FloatArray | None = None
    nearest_other_distance: FloatArray | None = None
    class_means: FloatArray | None = None
    queries: int = 0
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def identification_rate(self) -> float | None:
        """Share of attacked classes whose reconstruction identifies the class."""
        if self.identified is None:
            return None
        return float(np.mean(self.identified)) if self.identified.size else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (without the images)."""
        out: dict[str, Any] = {
            "classes": [_jsonable(c) for c in self.classes.tolist()],
            "confidence": self.confidence.tolist(),
            "start_confidence": self.start_confidence.tolist(),
            "iterations": self.iterations.tolist(),
            "stopped_by": list(self.stopped_by),
            "identification_rate": self.identification_rate,
            "queries": self.queries,
            "seconds": self.seconds,
            "params": dict(self.params),
        }
        if self.identified is not None and self.similarity is not None:
            own = self.similarity[np.arange(len(self.classes)), self.class_index]
            out["identified"] = self.identified.tolist()
            out["own_class_correlation"] = own.tolist()
        if self.own_distance is not None and self.nearest_other_distance is not None:
            out["own_mean_l2"] = self.own_distance.tolist()
            out["nearest_other_mean_l2"] = self.nearest_other_distance.tolist()
        return out


class ModelInversion:
    """MI-Face gradient descent on a class's cost, one reconstruction per class.

    Parameters
    ----------
    objective : {"log", "one_minus_p"}, default="log"
        Cost minimised: ``-log p_c(x)`` (steady gradients) or MI-Face's ``1 - p_c(x)``.
    step_size : float, default=0.1
        Gradient step λ, in input units.
    max_iter : int, default=500
        Most steps per class (MI-Face's α).
    patience : int, default=100
        Stop a class after this many steps without lowering its best cost (β).
    cost_threshold : float, default=0.0
        Stop a class once its (penalised) cost is at most this (γ); 0 never stops early
        for ``"log"``.
    tv_weight : float, default=0.0
        Weight of the squared total-variation penalty (images with 2-D shapes only:
        the last two axes of the input shape).
    l2_weight : float, default=0.0
        Weight of the squared L2 distance to the start.
    start : {"mid", "lower", "zeros"}, default="mid"
        Neutral start: the middle of the declared input range, its lower bound, or
        zeros (the fallback for unbounded inputs).

    Examples
    --------
    >>> result = ModelInversion(max_iter=200).invert(target, reference=train)  # doctest: +SKIP
    >>> result.identification_rate  # doctest: +SKIP
    """

    name = "ModelInversion"

    def __init__(
        self,
        *,
        objective: str = "log",
        step_size: float = 0.1,
        max_iter: int = 500,
        patience: int = 100,
        cost_threshold: float = 0.0,
        tv_weight: float = 0.0,
        l2_weight: float = 0.0,
        start: str = "mid",
    ) -> None:
        self.objective = objective
        self.step_size = step_size
        self.max_iter = max_iter
        self.patience = patience
        self.cost_threshold = cost_threshold
        self.tv_weight = tv_weight
        self.l2_weight = l2_weight
        self.start = start

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters given to ``__init__``."""
        return {
            "objective": self.objective,
            "step_size": self.step_size,
            "max_iter": self.max_iter,
            "patience": self.patience,
            "cost_threshold": self.cost_threshold,
            "tv_weight": self.tv_weight,
            "l2_weight": self.l2_weight,
            "start": self.start,
        }

    def _validate_params(self) -> None:
        n = self.name
        check_choice(n, "objective", self.objective, ("log", "one_minus_p"))
        check_number(n, "step_size", self.step_size, low=0.0, low_open=True)
        check_int(n, "max_iter", self.max_iter, minimum=1)
        check_int(n, "patience", self.patience, minimum=1)
        check_number(n, "cost_threshold", self.cost_threshold, low=0.0)
        check_number(n, "tv_weight", self.tv_weight, low=0.0)
        check_number(n, "l2_weight", self.l2_weight, low=0.0)
        check_choice(n, "start", self.start, ("mid", "lower", "zeros"))

    # ------------------------------------------------------------------ the verb
    def invert(
        self,
        target: Target,
        *,
        classes: npt.ArrayLike | None = None,
        reference: Dataset | None = None,
    ) -> InversionResult:
        """Reconstruct one representative input per class.

        Parameters
        ----------
        target : Target
            The model; needs ``Capability.GRADIENTS``.
        classes : array-like or None
            Class labels to attack (default: every class of the model).
        reference : Dataset or None
            Real labelled examples (typically the training data) to measure how close
            each reconstruction is to its class; every attacked class needs at least
            one example.

        Returns
        -------
        InversionResult

        Raises
        ------
        CapabilityError
            If the target offers no gradients (before any query).
        InvalidParameterError
            For unusable hyper-parameters, or a ``tv_weight`` on a 1-D input.
        IncompatibleModelError
            For a class label the model does not know, or reference data of another width.
        DataError
            If the reference data has no labels, or no example of an attacked class.
        """
        self._validate_params()
        target.require(Capability.GRADIENTS, by=self.name)
        spec = target.input_spec
        shape = spec.shape if spec.shape else (spec.n_features,)
        if self.tv_weight > 0 and len(shape) < 2:
            raise InvalidParameterError(
                f"{self.name}: tv_weight needs 2-D inputs (images), but the model takes "
                f"inputs of shape {shape}"
            )
        class_labels = spec.classes if classes is None else np.asarray(classes).reshape(-1)
        if class_labels.size == 0:
            raise InvalidParameterError(f"{self.name}: classes must name at least one class")
        idx = target.encode_labels(class_labels)
        means = None
        if reference is not None:
            if reference.n_features != spec.n_features:
                raise IncompatibleModelError(
                    f"{self.name}: reference data has {reference.n_features} features but the "
                    f"model {target.name!r} takes {spec.n_features}"
                )
            means = self._class_means(target, reference)
            missing = [c for c, i in zip(class_labels.tolist(), idx, strict=True)
                       if np.isnan(means[i]).any()]  # fmt: skip
            if missing:
                raise DataError(
                    f"{self.name}: reference data {reference.name!r} has no example of "
                    f"class(es) {', '.join(map(repr, missing[:5]))}"
                )

        t0 = time.perf_counter()
        q0 = target.n_queries
        d = spec.n_features
        lower = np.full(d, -np.inf) if spec.lower is None else np.asarray(spec.lower, float)
        upper = np.full(d, np.inf) if spec.upper is None else np.asarray(spec.upper, float)
        x0 = self._start(lower, upper)
        k = len(idx)
        x = np.tile(x0, (k, 1))
        best_cost, grads = self._cost(target, x, idx, x0, shape)
        best_x = x.copy()
        since = np.zeros(k, dtype=np.int64)
        iterations = np.zeros(k, dtype=np.int64)
        stopped = np.array(["max_iter"] * k, dtype=object)
        active = best_cost > self.cost_threshold
        stopped[~active] = "cost_threshold"
        for _ in range(self.max_iter):
            if not active.any():
                break
            rows = np.flatnonzero(active)
            x[rows] = np.clip(x[rows] - self.step_size * grads[rows], lower, upper)
            iterations[rows] += 1
            cost, grad = self._cost(target, x[rows], idx[rows], x0, shape)
            grads[rows] = grad
            better = cost < best_cost[rows] - 1e-12
            best_cost[rows[better]] = cost[better]
            best_x[rows[better]] = x[rows[better]]
            since[rows] = np.where(better, 0, since[rows] + 1)
            hit = best_cost[rows] <= self.cost_threshold
            stale = since[rows] >= self.patience
            stopped[rows[stale]] = "patience"
            stopped[rows[hit]] = "cost_threshold"
            active[rows[hit | stale]] = False
        confidence = np.exp(-self._log_cost(target, best_x, idx))
        start_p = np.exp(-self._log_cost(target, np.tile(x0, (k, 1)), idx))
        queries = target.n_queries - q0

        sim = identified = own_d = other_d = cm = None
        if means is not None:
            sim = np.array([[_corr(r, m) for m in means] for r in best_x])
            absent = np.asarray(np.isnan(means).any(axis=1), dtype=bool)
            masked = np.where(absent[None, :], -np.inf, sim)
            identified = np.argmax(masked, axis=1) == idx
            dist = np.linalg.norm(best_x[:, None, :] - means[None, :, :], axis=2)
            own_d = dist[np.arange(k), idx]
            dist[np.arange(k), idx] = np.inf
            dist[:, absent] = np.inf
            other_d = dist.min(axis=1)
            cm = means[idx].reshape(k, *shape)
        return InversionResult(
            classes=class_labels,
            class_index=idx,
            reconstructions=best_x.reshape(k, *shape),
            confidence=confidence,
            start_confidence=start_p,
            iterations=iterations,
            stopped_by=tuple(str(s) for s in stopped),
            similarity=sim,
            identified=identified,
            own_distance=own_d,
            nearest_other_distance=other_d,
            class_means=cm,
            queries=queries,
            seconds=time.perf_counter() - t0,
            params=self.get_params(),
        )

    # -------------------------------------------------------------- internals
    def _start(self, lower: FloatArray, upper: FloatArray) -> FloatArray:
        finite = np.isfinite(lower) & np.isfinite(upper)
        if self.start == "mid":
            x0 = np.zeros_like(lower)
            x0[finite] = (lower[finite] + upper[finite]) / 2
        elif self.start == "lower":
            x0 = np.where(np.isfinite(lower), lower, 0.0)
        else:
            x0 = np.zeros_like(lower)
        return np.asarray(np.clip(x0, lower, upper), dtype=np.float64)

    def _log_cost(self, target: Target, x: FloatArray, idx: IntArray) -> FloatArray:
        """``-log p_c(x)`` per row (one gradient query; the gradient is dropped)."""
        ce, _ = target.loss_gradient(x, idx, loss="ce")
        return ce

    def _cost(
        self,
        target: Target,
        x: FloatArray,
        idx: IntArray,
        x0: FloatArray,
        shape: tuple[int, ...],
    ) -> tuple[FloatArray, FloatArray]:
        """Penalised cost per row and its gradient."""
        ce, g = target.loss_gradient(x, idx, loss="ce")
        if self.objective == "log":
            cost, grad = ce, g
        else:
            p = np.exp(-ce)
            cost, grad = 1.0 - p, p[:, None] * g
        if self.l2_weight > 0:
            diff = x - x0
            cost = cost + self.l2_weight * np.sum(diff * diff, axis=1)
            grad = grad + 2 * self.l2_weight * diff
        if self.tv_weight > 0:
            tv, tv_grad = _tv2(x.reshape(len(x), *shape))
            cost = cost + self.tv_weight * tv
            grad = grad + self.tv_weight * tv_grad.reshape(len(x), -1)
        return cost, grad

    def _class_means(self, target: Target, reference: Dataset) -> FloatArray:
        y = target.encode_labels(reference.labels)
        means = np.full((target.n_classes, reference.n_features), np.nan)
        for c in np.unique(y):
            means[c] = reference.X[y == c].mean(axis=0)
        return means


def _tv2(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Squared total variation over the last two axes, per row, and its gradient."""
    dh = np.diff(x, axis=-2)
    dw = np.diff(x, axis=-1)
    axes = tuple(range(1, x.ndim))
    tv = np.sum(dh * dh, axis=axes) + np.sum(dw * dw, axis=axes)
    g = np.zeros_like(x)
    g[..., 1:, :] += 2 * dh
    g[..., :-1, :] -= 2 * dh
    g[..., :, 1:] += 2 * dw
    g[..., :, :-1] -= 2 * dw
    return np.asarray(tv, dtype=np.float64), g


def _corr(a: FloatArray, b: FloatArray) -> float:
    if np.isnan(b).any():
        return math.nan
    a0, b0 = a - a.mean(), b - b.mean()
    den = float(np.linalg.norm(a0) * np.linalg.norm(b0))
    return float(a0 @ b0) / den if den > 0 else 0.0


def _jsonable(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# ---------------------------------------------------------------------- figure
def inversion_figure(
    result: InversionResult,
    *,
    image_shape: tuple[int, ...] | None = None,
    title: str = "Model inversion: reconstruction vs class mean",
) -> str:
    """Draw each class's reconstruction above its class mean, as inline SVG.

    Parameters
    ----------
    result : InversionResult
        The attack's result.
    image_shape : tuple of int or None
        Shape to draw each input as: ``(h, w)``, ``(h, w, c)`` or ``(c, h, w)`` with
        ``c`` of 1 or 3. Default: the input shape, or a square for flat inputs whose
        size is a perfect square.
    title : str
        Title of the SVG (for screen readers and the HTML report).

    Returns
    -------
    str
        An inline ``<svg>`` element, as :func:`mlwarden.findings.plots.curve_plots`
        produces.

    Raises
    ------
    InvalidParameterError
        If the inputs cannot be drawn as images.
    """
    from matplotlib.figure import Figure

    from mlwarden.findings.plots import _clean_svg

    k = len(result.classes)
    recs = [_as_image(r, image_shape) for r in result.reconstructions]
    means = None
    if result.class_means is not None:
        means = [_as_image(m, image_shape) for m in result.class_means]
    grid_rows = [recs] if means is None else [recs, means]
    # One mosaic drawn by a single imshow: far faster than one axes per image.
    h, w = recs[0].shape[:2]
    pad = max(1, min(h, w) // 8)
    channels = recs[0].shape[2:]
    mosaic = np.ones(
        (len(grid_rows) * (h + pad) + pad, k * (w + pad) + pad, *channels), dtype=np.float64
    )
    for i, imgs in enumerate(grid_rows):
        for j, img in enumerate(imgs):
            lo, hi = float(np.min(img)), float(np.max(img))
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            mosaic[top : top + h, left : left + w] = (img - lo) / (hi - lo) if hi > lo else 0.0
    fig = Figure(figsize=(max(0.9 * k + 0.9, 3.0), 1.0 * len(grid_rows) + 0.6))
    fig.subplots_adjust(left=0.1, right=0.99, bottom=0.02, top=0.8)
    try:
        ax = fig.add_subplot()
        ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None, vmin=0.0, vmax=1.0)
        ax.set_axis_off()
        for i, label in enumerate(("inverted", "class mean")[: len(grid_rows)]):
            y = pad + i * (h + pad) + h / 2
            ax.text(-pad, y, label, ha="right", va="center", fontsize=7, rotation=90)
        for j in range(k):
            text = f"{_jsonable(result.classes[j])}\np={result.confidence[j]:.2f}"
            if result.identified is not None:
                text += " ✓" if result.identified[j] else " ✗"
            ax.text(pad + j * (w + pad) + w / 2, -pad, text, ha="center", va="bottom", fontsize=7)
        buf = io.StringIO()
        import matplotlib as mpl

        # A fixed salt makes the SVG's element ids, and so the report, reproducible.
        with mpl.rc_context({"svg.hashsalt": "mlwarden"}):
            fig.savefig(
                buf,
                format="svg",
                facecolor="white",
                metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
            )
    finally:
        fig.clear()
    return _clean_svg(buf.getvalue(), title, "inversion-")


def _as_image(x: FloatArray, image_shape: tuple[int, ...] | None) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if image_shape is not None:
        if int(np.prod(image_shape)) != arr.size:
            raise InvalidParameterError(
                f"inversion_figure: image_shape {image_shape} does not hold {arr.size} values"
            )
        arr = arr.reshape(image_shape)
    elif arr.ndim == 1:
        side = math.isqrt(arr.size)
        if side * side != arr.size:
            raise InvalidParameterError(
                f"inversion_figure: inputs of {arr.size} values are not square images; "
                "pass image_shape"
            )
        arr = arr.reshape(side, side)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 and not (arr.ndim == 3 and arr.shape[-1] == 3):
        raise InvalidParameterError(
            f"inversion_figure: cannot draw inputs of shape {arr.shape} as images; pass image_shape"
        )
    return arr


# ---------------------------------------------------------------------- finding
def inversion_finding(
    result: InversionResult,
    *,
    target: str,
    check: str = "privacy.inversion",
    max_identification_rate: float = 0.5,
    location: str | None = None,
) -> Finding:
    """Turn an :class:`InversionResult` into an MLW-PRI-003 finding.

    The metric is the share of attacked classes whose reconstruction correlates best
    with its own class's mean real example (chance is ``1 / n_classes``); the finding
    fails above ``max_identification_rate``.

    Parameters
    ----------
    result : InversionResult
        The attack's result, run with ``reference`` data.
    target : str
        Name of the model.
    check : str
        Id of the check reported.
    max_identification_rate : float, default=0.5
        Largest accepted share of identified classes, in ``[0, 1]``.
    location : str or None
        Model file, for SARIF.

    Returns
    -------
    Finding

    Raises
    ------
    InvalidParameterError
        If the result has no comparison with real examples, or the threshold is out
        of range.
    """
    check_number(
        "inversion_finding", "max_identification_rate", max_identification_rate, low=0.0, high=1.0
    )
    rate = result.identification_rate
    if rate is None or result.similarity is None:
        raise InvalidParameterError(
            "inversion_finding: the result has no comparison with real examples; run "
            "ModelInversion.invert with reference=..."
        )
    k = len(result.classes)
    n_classes = result.similarity.shape[1]
    hits = int(np.sum(result.identified)) if result.identified is not None else 0
    # Binomial tail of the identified count under chance (1 / n_classes per class):
    # how unlikely the verdict is to come from luck alone.
    from scipy import stats

    p_chance = float(stats.binom.sf(hits - 1, k, 1.0 / n_classes)) if k else 1.0
    passed = rate <= max_identification_rate
    confidence = 1.0 - p_chance if not passed else max(p_chance, 0.5)
    evidence = {
        **result.to_dict(),
        "n_attacked_classes": k,
        "n_identified": hits,
        "chance_rate": 1.0 / n_classes,
        "p_value_vs_chance": p_chance,
        "mean_confidence": float(np.mean(result.confidence)),
    }
    description = (
        f"Gradient descent on the model's class cost reconstructed {k} class "
        f"representative(s); {hits} of {k} ({rate:.0%}) resemble their own class's real "
        f"examples more than any other class's (chance: {1.0 / n_classes:.0%}), with mean "
        f"model confidence {evidence['mean_confidence']:.2f}. Policy: at most "
        f"{max_identification_rate:.0%}."
    )
    return Finding.from_rule(
        RULE_INVERSION,
        target=target,
        check=check,
        metric="inversion_identification_rate",
        value=rate,
        threshold=max_identification_rate,
        higher_is_better=False,
        confidence=confidence,
        description=description,
        evidence=evidence,
        location=location,
    )
