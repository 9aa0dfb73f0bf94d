"""Tree ensembles read from fitted scikit-learn classifiers, and what the tree attacks share.

The attacks in :mod:`mlwarden.evasion.trees` are white-box: they read every split and
leaf of the model instead of querying it. This module turns a fitted
``DecisionTreeClassifier``, ``ExtraTreeClassifier``, ``RandomForestClassifier``,
``ExtraTreesClassifier``, ``GradientBoostingClassifier`` or
``HistGradientBoostingClassifier`` (binary or multi-class) into one form,
:class:`TreeEnsemble`: a list of binary trees that send a row left when
``x[feature] <= threshold`` and whose leaves add a vector of class scores, plus a
constant. The predicted class is the arg-max of the summed scores, exactly as
``predict_proba(...).argmax(axis=1)`` (forests: the averaged class frequencies;
gradient boosting: the raw scores, ``[0, raw]`` for binary models).

:class:`SplitGrid` cuts each feature's axis at the ensemble's thresholds into *cells*
in which every tree takes the same branch, snapping thresholds to the values the model
can really see: scikit-learn's trees and forests compare ``float32`` inputs, the
histogram boosting compares ``float64``, and an integer, binary or one-hot feature
only takes whole values. Every leaf becomes a box of cells. :meth:`SplitGrid.cells`
gives, per row of a :class:`~mlwarden.evasion.threat_model.PerturbationSet`, the point
of each cell closest to the original row and its cost (the move in units of the
feature's scale); both attacks search over these cells, so every row they return is
a point the model can be evaluated on, with a known L∞ distance.

XGBoost's ``XGBClassifier`` and LightGBM's ``LGBMClassifier`` are read by
:mod:`mlwarden.evasion.trees.external` (and checked against the library's own scores).
CatBoost models are refused with a clear message, as are models with native
categorical splits (one-hot encode the categories instead) and pipelines that
transform their input before the trees.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from mlwarden._random import RandomState, as_generator
from mlwarden.data.schema import FeatureKind, FeatureSchema
from mlwarden.evasion.base import AttackResult, EvasionAttack
from mlwarden.evasion.threat_model import PerturbationSet, default_schema
from mlwarden.exceptions import CapabilityError, DataError, IncompatibleModelError
from mlwarden.models.base import Capability, Target

__all__ = [
    "SUPPORTED_MODELS",
    "FeatureCells",
    "SplitGrid",
    "Tree",
    "TreeAttack",
    "TreeAttackResult",
    "TreeEnsemble",
    "read_tree_ensemble",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Precision = Literal["float32", "float64"]

SUPPORTED_MODELS = (
    "DecisionTreeClassifier",
    "ExtraTreeClassifier",
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "GradientBoostingClassifier",
    "HistGradientBoostingClassifier",
    "XGBClassifier",
    "LGBMClassifier",
)
"""Classifiers whose trees the tree attacks can read (scikit-learn, XGBoost, LightGBM)."""

_DISCRETE = (FeatureKind.INTEGER, FeatureKind.BINARY, FeatureKind.CATEGORICAL)
_GRADED = (FeatureKind.CONTINUOUS, FeatureKind.INTEGER)
_TIE = 1e-9
"""Score gap under which the extracted trees and the real model may disagree (ties)."""


# --------------------------------------------------------------------------- trees
@dataclass(frozen=True)
class Tree:
    """One binary tree in array form (scikit-learn's layout).

    Attributes
    ----------
    feature : ndarray of shape (n_nodes,)
        Split feature per node, ``-1`` at leaves.
    threshold : ndarray of shape (n_nodes,)
        A row goes left when ``x[feature] <= threshold`` (may be ``inf``).
    left, right : ndarray of shape (n_nodes,)
        Child node indices (``-1`` at leaves).
    value : ndarray of shape (n_nodes, n_classes)
        What each leaf adds to the class scores (only leaves are read).
    """

    feature: IntArray
    threshold: FloatArray
    left: IntArray
    right: IntArray
    value: FloatArray

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.feature)


@dataclass(frozen=True)
class TreeEnsemble:
    """A sum of trees: ``scores(x) = base + sum over trees of value[leaf(x)]``.

    Attributes
    ----------
    trees : tuple of Tree
        The trees, in the model's order.
    base : ndarray of shape (n_classes,)
        Constant class scores (the boosting baseline; zero for forests).
    n_features : int
        Number of input features.
    precision : {"float32", "float64"}
        The precision in which the model compares feature values with thresholds.
    model : str
        The estimator's class name (for messages).
    """

    trees: tuple[Tree, ...]
    base: FloatArray
    n_features: int
    precision: Precision
    model: str

    @property
    def n_classes(self) -> int:
        """Number of classes (score columns)."""
        return len(self.base)

    def view(self, x: npt.ArrayLike) -> FloatArray:
        """Feature values as the model compares them (rounded to ``float32`` if it does)."""
        xs = np.asarray(x, dtype=np.float64)
        if self.precision == "float32":
            return xs.astype(np.float32).astype(np.float64)
        return xs

    def scores(self, x: npt.ArrayLike) -> FloatArray:
        """Class scores, shape ``(n, n_classes)``; the arg-max is the predicted class."""
        xv = self.view(x)
        if xv.ndim != 2 or xv.shape[1] != self.n_features:
            raise DataError(f"expected rows with {self.n_features} features, got {xv.shape}")
        feature, threshold, left, right, value, roots = _flatten(self.trees)
        node = np.broadcast_to(roots, (len(xv), len(roots))).copy()
        rows = np.arange(len(xv))[:, None]
        while True:
            f = feature[node]
            inner = f >= 0
            if not inner.any():
                break
            go_left = xv[rows, np.maximum(f, 0)] <= threshold[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        out: FloatArray = self.base + value[node].sum(axis=1)
        return out

    def predict(self, x: npt.ArrayLike) -> IntArray:
        """Predicted class indices (first maximum on ties, as ``numpy.argmax``)."""
        return np.asarray(np.argmax(self.scores(x), axis=1), dtype=np.int64)


def _flatten(
    trees: tuple[Tree, ...],
) -> tuple[IntArray, FloatArray, IntArray, IntArray, FloatArray, IntArray]:
    """All trees' nodes in one set of arrays, children as global node indices."""
    sizes = np.array([t.n_nodes for t in trees], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    feature = np.concatenate([t.feature for t in trees]).astype(np.int64)
    threshold = np.concatenate([t.threshold for t in trees]).astype(np.float64)
    left = np.concatenate(
        [np.where(t.left >= 0, t.left + o, -1) for t, o in zip(trees, offsets, strict=True)]
    )
    right = np.concatenate(
        [np.where(t.right >= 0, t.right + o, -1) for t, o in zip(trees, offsets, strict=True)]
    )
    value = np.concatenate([t.value for t in trees]).astype(np.float64)
    return feature, threshold, left.astype(np.int64), right.astype(np.int64), value, offsets


# ------------------------------------------------------------------------- reading
def read_tree_ensemble(model: Any, *, by: str = "this attack") -> TreeEnsemble:
    """Read the trees of a fitted tree classifier (or of a target wrapping one).

    Parameters
    ----------
    model : SklearnTarget or estimator
        A :class:`~mlwarden.models.SklearnTarget` or a fitted estimator; a
        :class:`~sklearn.pipeline.Pipeline` is accepted when every step before the
        final tree model is ``"passthrough"``.
    by : str
        Who asks (for error messages).

    Returns
    -------
    TreeEnsemble

    Raises
    ------
    CapabilityError
        If the model is not one of :data:`SUPPORTED_MODELS` (or is a HistGradientBoosting
        model with categorical splits, a gradient boosting model with a custom ``init``
        estimator, a multi-output model, or a pipeline that transforms its input).
    """
    from mlwarden.models.sklearn import SklearnTarget

    supported = ", ".join(SUPPORTED_MODELS)
    if isinstance(model, Target):
        if not isinstance(model, SklearnTarget):
            raise CapabilityError(
                f"{by} reads the trees of a scikit-learn tree model ({supported}); "
                f"{model.name!r} is a {model.kind} target whose model cannot be read"
            )
        est = model.estimator
    else:
        est = model
    est = _unwrap_pipeline(est, by)
    kind = type(est).__name__
    module = type(est).__module__.split(".")[0]
    if module == "xgboost" and hasattr(est, "get_booster") and hasattr(est, "classes_"):
        from mlwarden.evasion.trees.external import read_xgboost

        return read_xgboost(est, by=by)
    if module == "lightgbm" and hasattr(est, "booster_") and hasattr(est, "classes_"):
        from mlwarden.evasion.trees.external import read_lightgbm

        return read_lightgbm(est, by=by)
    if module in ("xgboost", "lightgbm", "catboost"):
        raise CapabilityError(
            f"{by}: {kind} ({module}) models are not supported; supported: {supported}"
        )
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import BaseDecisionTree

    if getattr(est, "n_outputs_", 1) != 1:
        raise CapabilityError(f"{by}: multi-output {kind} models are not supported")
    if isinstance(est, BaseDecisionTree) and hasattr(est, "classes_"):
        trees: tuple[Tree, ...] = (_read_sklearn_tree(est.tree_, proba=True, scale=1.0),)
        base = np.zeros(len(est.classes_))
        return TreeEnsemble(trees, base, int(est.n_features_in_), "float32", kind)
    if isinstance(est, RandomForestClassifier | ExtraTreesClassifier):
        n = len(est.estimators_)
        trees = tuple(
            _read_sklearn_tree(t.tree_, proba=True, scale=1.0 / n) for t in est.estimators_
        )
        base = np.zeros(len(est.classes_))
        return TreeEnsemble(trees, base, int(est.n_features_in_), "float32", kind)
    if isinstance(est, GradientBoostingClassifier):
        return _read_gradient_boosting(est, by)
    if isinstance(est, HistGradientBoostingClassifier):
        return _read_hist_gradient_boosting(est, by)
    raise CapabilityError(
        f"{by} reads the trees of {supported}; got a {kind}, which it cannot read"
    )


def _unwrap_pipeline(est: Any, by: str) -> Any:
    steps = getattr(est, "steps", None)
    if steps is None or not hasattr(est, "named_steps"):
        return est
    transforms = [name for name, step in steps[:-1] if step not in (None, "passthrough")]
    if transforms:
        raise CapabilityError(
            f"{by} reads the trees of the model itself, but this Pipeline transforms its input "
            f"first ({', '.join(transforms)}): attack the final tree model on transformed "
            "features, or use a black-box attack (Square) on the pipeline"
        )
    return steps[-1][1]


def _read_sklearn_tree(tree: Any, *, proba: bool, scale: float) -> Tree:
    value = np.asarray(tree.value, dtype=np.float64)[:, 0, :]
    if proba:
        total = value.sum(axis=1, keepdims=True)
        value = np.divide(value, total, out=np.zeros_like(value), where=total > 0)
    feature = np.asarray(tree.feature, dtype=np.int64)
    leaf = np.asarray(tree.children_left) < 0
    feature = np.where(leaf, -1, feature)
    return Tree(
        feature=feature,
        threshold=np.asarray(tree.threshold, dtype=np.float64),
        left=np.asarray(tree.children_left, dtype=np.int64),
        right=np.asarray(tree.children_right, dtype=np.int64),
        value=value * scale,
    )


def class_columns(n_classes: int, k: int, column: FloatArray) -> FloatArray:
    """Leaf values of a tree that adds to raw score ``k``, as class-score columns."""
    out = np.zeros((len(column), n_classes))
    # Binary boosting has one raw score r: class scores are [0, r].
    out[:, 1 if n_classes == 2 else k] = column
    return out


def _read_gradient_boosting(est: Any, by: str) -> TreeEnsemble:
    from sklearn.dummy import DummyClassifier

    kind = type(est).__name__
    init = getattr(est, "init_", None)
    if not (isinstance(init, DummyClassifier) or (isinstance(init, str) and init == "zero")):
        raise CapabilityError(
            f"{by}: {kind} with a custom init estimator is not supported (its starting "
            "scores depend on the input); refit with init=None or init='zero'"
        )
    n_classes = len(est.classes_)
    lr = float(est.learning_rate)
    trees = []
    for stage in est.estimators_:
        for k, reg in enumerate(stage):
            t = _read_sklearn_tree(reg.tree_, proba=False, scale=lr)
            trees.append(
                Tree(
                    t.feature,
                    t.threshold,
                    t.left,
                    t.right,
                    class_columns(n_classes, k, t.value[:, 0]),
                )
            )
    n_features = int(est.n_features_in_)
    probe = np.zeros((1, n_features))
    raw = np.asarray(est.decision_function(probe), dtype=np.float64).reshape(-1)
    partial = TreeEnsemble(tuple(trees), np.zeros(n_classes), n_features, "float32", kind)
    scores = partial.scores(probe)[0]
    base = np.zeros(n_classes)
    if n_classes == 2:
        base[1] = raw[0] - scores[1]
    else:
        base = raw - scores
    return TreeEnsemble(tuple(trees), base, n_features, "float32", kind)


def _read_hist_gradient_boosting(est: Any, by: str) -> TreeEnsemble:
    kind = type(est).__name__
    cats = getattr(est, "is_categorical_", None)
    if cats is not None and np.any(cats):
        raise CapabilityError(
            f"{by}: {kind} with categorical features (categorical splits) is not supported; "
            "one-hot encode the categories (a FeatureSchema one-hot group) and refit"
        )
    n_classes = len(est.classes_)
    trees = []
    for iteration in est._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]):
                raise CapabilityError(
                    f"{by}: {kind} has categorical splits, which are not supported; "
                    "one-hot encode the categories and refit"
                )
            leaf = nodes["is_leaf"].astype(bool)
            trees.append(
                Tree(
                    feature=np.where(leaf, -1, nodes["feature_idx"].astype(np.int64)),
                    threshold=np.asarray(nodes["num_threshold"], dtype=np.float64),
                    left=np.where(leaf, -1, nodes["left"].astype(np.int64)),
                    right=np.where(leaf, -1, nodes["right"].astype(np.int64)),
                    value=class_columns(n_classes, k, np.asarray(nodes["value"], np.float64)),
                )
            )
    baseline = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    base = np.zeros(n_classes)
    if n_classes == 2:
        base[1] = baseline[0]
    else:
        base = baseline.copy()
    return TreeEnsemble(tuple(trees), base, int(est.n_features_in_), "float64", kind)


# ---------------------------------------------------------------------------- grid
@dataclass(frozen=True)
class FeatureCells:
    """One feature's cells seen from each row of a perturbation set.

    Cell ``c`` holds the values ``v`` with ``thresholds[c-1] < v <= thresholds[c]``.

    Attributes
    ----------
    value : ndarray of shape (n, n_cells)
        The point of each cell closest to the row's original value (the original
        value itself in the row's own cell).
    cost : ndarray of shape (n, n_cells)
        The move to that point in units of the feature's scale (0 for binary and
        categorical features, which are free choices); ``inf`` where not allowed.
    allowed : ndarray of shape (n, n_cells)
        Cells reachable inside the row's box (a contiguous range).
    start : ndarray of shape (n,)
        The cell of the original value.
    """

    value: FloatArray
    cost: FloatArray
    allowed: BoolArray
    start: IntArray

    @property
    def low(self) -> IntArray:
        """First allowed cell per row."""
        return np.asarray(np.argmax(self.allowed, axis=1), dtype=np.int64)

    @property
    def high(self) -> IntArray:
        """Last allowed cell per row."""
        n_cells = self.allowed.shape[1]
        return np.asarray(n_cells - 1 - np.argmax(self.allowed[:, ::-1], axis=1), dtype=np.int64)


@dataclass(frozen=True)
class SplitGrid:
    """The ensemble's thresholds as per-feature cells, and each leaf as a box of cells.

    Attributes
    ----------
    ensemble : TreeEnsemble
        The trees.
    schema : FeatureSchema
        The features' kinds (whole-valued features get whole-number cells).
    thresholds : tuple of ndarray
        Per feature, the sorted distinct snapped thresholds (``m`` thresholds make
        ``m + 1`` cells).
    integral : ndarray of shape (n_features,)
        Features that only take whole values.
    leaf_tree : ndarray of shape (n_leaves,)
        Tree of each reachable leaf.
    leaf_node : ndarray of shape (n_leaves,)
        Global node index (trees concatenated) of each reachable leaf.
    leaf_value : ndarray of shape (n_leaves, n_classes)
        What each leaf adds to the class scores.
    leaf_lo, leaf_hi : ndarray of shape (n_leaves, n_features)
        Leaf ``l`` holds the rows whose cell on feature ``f`` is in
        ``[leaf_lo[l, f], leaf_hi[l, f])``.
    node_split : ndarray of shape (n_nodes,)
        Per node, the index of its snapped threshold in its feature's list
        (``m`` when the threshold is ``+inf``, ``-1`` when ``-inf``).
    """

    ensemble: TreeEnsemble
    schema: FeatureSchema
    thresholds: tuple[FloatArray, ...]
    integral: BoolArray
    leaf_tree: IntArray
    leaf_node: IntArray
    leaf_value: FloatArray
    leaf_lo: IntArray
    leaf_hi: IntArray
    node_split: IntArray

    @property
    def n_features(self) -> int:
        """Number of features."""
        return len(self.thresholds)

    @property
    def n_leaves(self) -> int:
        """Number of reachable leaves."""
        return len(self.leaf_tree)

    @classmethod
    def build(cls, ensemble: TreeEnsemble, schema: FeatureSchema) -> SplitGrid:
        """Cut the axes at the ensemble's thresholds and box every leaf."""
        d = ensemble.n_features
        if len(schema) != d:
            raise IncompatibleModelError(
                f"the schema has {len(schema)} features, the {ensemble.model} {d}"
            )
        integral = schema.mask(*_DISCRETE)
        onehot = schema.mask(FeatureKind.BINARY, FeatureKind.CATEGORICAL)
        feature, threshold, left, right, value, roots = _flatten(ensemble.trees)
        n_nodes = len(feature)
        snapped = np.full(n_nodes, np.nan)
        inner = feature >= 0
        thresholds = []
        node_split = np.full(n_nodes, -1, dtype=np.int64)
        for f in range(d):
            at = inner & (feature == f)
            raw = threshold[at]
            finite = np.isfinite(raw)
            snap = np.where(
                finite,
                _snap_down(raw, integral=bool(integral[f]), precision=ensemble.precision),
                raw,
            )
            snapped[at] = snap
            values = np.unique(snap[finite])
            if onehot[f]:
                values = np.union1d(values, [0.0])  # 0/1 columns always get their "== 0" cell
            thresholds.append(values.astype(np.float64))
            idx = np.searchsorted(values, snap)
            idx = np.where(snap == np.inf, len(values), idx)
            idx = np.where(snap == -np.inf, -1, idx)
            node_split[at] = idx
        n_cells = np.array([len(t) + 1 for t in thresholds], dtype=np.int64)
        lo = np.zeros((n_nodes, d), dtype=np.int32)
        hi = np.broadcast_to(n_cells.astype(np.int32), (n_nodes, d)).copy()
        frontier = roots
        while frontier.size:
            frontier = frontier[feature[frontier] >= 0]
            if not frontier.size:
                break
            feat = feature[frontier]
            k = node_split[frontier]
            lch, rch = left[frontier], right[frontier]
            lo[lch] = lo[frontier]
            hi[lch] = hi[frontier]
            hi[lch, feat] = np.minimum(hi[frontier, feat], k + 1)
            lo[rch] = lo[frontier]
            hi[rch] = hi[frontier]
            lo[rch, feat] = np.maximum(lo[frontier, feat], k + 1)
            frontier = np.concatenate([lch, rch])
        tree_of = np.repeat(np.arange(len(ensemble.trees)), [t.n_nodes for t in ensemble.trees])
        leaf = np.flatnonzero(~inner & np.all(lo < hi, axis=1))
        return cls(
            ensemble=ensemble,
            schema=schema,
            thresholds=tuple(thresholds),
            integral=integral,
            leaf_tree=tree_of[leaf].astype(np.int64),
            leaf_node=leaf.astype(np.int64),
            leaf_value=value[leaf],
            leaf_lo=lo[leaf].astype(np.int64),
            leaf_hi=hi[leaf].astype(np.int64),
            node_split=node_split,
        )

    def cell_of(self, f: int, values: npt.ArrayLike) -> IntArray:
        """Cell index of each value on feature ``f`` (as the model sees it)."""
        v = np.asarray(values, dtype=np.float64)
        if not self.integral[f]:
            v = self.ensemble.view(v)
        return np.asarray(np.searchsorted(self.thresholds[f], v, side="left"), dtype=np.int64)

    def cells(self, pset: PerturbationSet) -> tuple[FeatureCells, ...]:
        """Per feature, every row's closest point in each cell, its cost and reachability."""
        schema = pset.schema
        weight = np.where(schema.mutable & schema.mask(*_GRADED), 1.0 / schema.scale, 0.0)
        out = []
        for f in range(self.n_features):
            thr = self.thresholds[f]
            x0 = pset.x0[:, f][:, None]
            integral = bool(self.integral[f])
            upper = np.concatenate([thr, [np.inf]])[None, :]
            if integral:
                lower_edge = np.concatenate([[-np.inf], thr + 1.0])[None, :]
                lo = np.ceil(pset.lower[:, f] - 1e-9)[:, None]
                hi = np.floor(pset.upper[:, f] + 1e-9)[:, None]
            else:
                lower_edge = np.concatenate(
                    [[-np.inf], _next_up(thr, precision=self.ensemble.precision)]
                )[None, :]
                lo = pset.lower[:, f][:, None]
                hi = pset.upper[:, f][:, None]
            start = self.cell_of(f, pset.x0[:, f])
            c = np.arange(len(thr) + 1)[None, :]
            s = start[:, None]
            value = np.where(c > s, lower_edge, np.where(c < s, upper, x0))
            allowed = (c == s) | ((value >= lo) & (value <= hi))
            value = np.where(allowed, value, x0)
            cost = np.where(allowed, np.abs(value - x0) * weight[f], np.inf)
            out.append(FeatureCells(value=value, cost=cost, allowed=allowed, start=start))
        return tuple(out)


def _snap_down(theta: FloatArray, *, integral: bool, precision: Precision) -> FloatArray:
    """The largest value the model can see that still satisfies ``x <= theta``."""
    if integral:
        return np.floor(theta)
    if precision == "float64":
        return theta.astype(np.float64)
    f32 = theta.astype(np.float32)
    down = np.where(f32.astype(np.float64) > theta, np.nextafter(f32, np.float32(-np.inf)), f32)
    return np.asarray(down, dtype=np.float64)


def _next_up(theta: FloatArray, *, precision: Precision) -> FloatArray:
    """The smallest value the model can see above each (already snapped) threshold."""
    if precision == "float64":
        return np.nextafter(theta, np.inf)
    f32 = theta.astype(np.float32)
    return np.asarray(np.nextafter(f32, np.float32(np.inf)), dtype=np.float64)


# ----------------------------------------------------------------- result and base
@dataclass(frozen=True)
class TreeAttackResult(AttackResult):
    """An :class:`~mlwarden.evasion.AttackResult` plus the L∞ distances the tree attacks find.

    Attributes
    ----------
    distance : ndarray of shape (n,)
        L∞ distance of ``x_adv`` from the original row, in feature-scale units over the
        continuous and integer features (binary and categorical moves are free choices
        of the threat model and cost nothing): ``0`` for rows the model already gets
        wrong, ``inf`` where no adversarial example was found.
    lower_bound : ndarray of shape (n,)
        A proven lower bound on the smallest such distance inside the search box
        (``inf``: the box holds no adversarial example; ``0``: nothing is known).
    proven : ndarray of shape (n,)
        Rows where ``distance`` is proven minimal (or, for failed rows, where the box is
        proven to hold no adversarial example): ``lower_bound == distance``.
    """

    distance: FloatArray
    lower_bound: FloatArray
    proven: BoolArray


@dataclass(frozen=True)
class _Outcome:
    x_adv: FloatArray
    queries: IntArray
    distance: FloatArray
    lower_bound: FloatArray
    proven: BoolArray


def _start(pset: PerturbationSet, wrong: BoolArray) -> _Outcome:
    """The outcome before any search: rows already misclassified are at distance 0."""
    n = len(wrong)
    distance = np.full(n, np.inf)
    distance[wrong] = 0.0
    return _Outcome(
        x_adv=pset.x0.copy(),
        queries=np.zeros(n, dtype=np.int64),
        distance=distance,
        lower_bound=np.zeros(n),
        proven=np.asarray(wrong, dtype=bool).copy(),
    )


class TreeAttack(EvasionAttack):
    """Base class of the attacks that read a tree ensemble.

    Threat model: white-box (every split and leaf is read), untargeted, an L∞ budget
    ``eps`` in feature-scale units within the schema's constraints (see
    :class:`~mlwarden.evasion.threat_model.PerturbationSet`). The target must be a
    :class:`~mlwarden.models.SklearnTarget` wrapping one of :data:`SUPPORTED_MODELS`;
    anything else raises :class:`~mlwarden.exceptions.CapabilityError` before the
    first query. Before searching, the trees read are checked against the model's own
    predictions on the rows (one query per row), so that a misread model can never be
    reported robust. Subclasses implement :meth:`_search`.
    """

    requires: ClassVar[Capability] = Capability.LABELS | Capability.SCORES
    white_box: ClassVar[bool] = True
    _outcome: _Outcome | None = None

    categorical: str

    def generate(
        self,
        target: Target,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        schema: FeatureSchema | None = None,
        random_state: RandomState = None,
    ) -> TreeAttackResult:
        """Craft adversarial rows within the L∞ budget ``eps`` (see :class:`TreeAttackResult`).

        Parameters
        ----------
        target : Target
            A :class:`~mlwarden.models.SklearnTarget` wrapping a supported tree model.
        x : array-like of shape (n, d)
            Rows to perturb.
        y : array-like of shape (n,)
            True class indices.
        schema : FeatureSchema, optional
            Feature constraints (immutable, integer, binary, one-hot groups, bounds).
        random_state : int, Generator or None
            Seed.
        """
        self._outcome = None
        try:
            result = super().generate(target, x, y, schema=schema, random_state=random_state)
            outcome = self._outcome
        finally:
            self._outcome = None
        assert outcome is not None
        return _attach(result, outcome)

    def minimal_distance(
        self,
        target: Target,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        schema: FeatureSchema | None = None,
        random_state: RandomState = None,
    ) -> TreeAttackResult:
        """Like :meth:`generate`, without the budget: the smallest L∞ distance anywhere.

        The search box is the schema's bounds (``eps`` is ignored); binary and
        categorical features follow ``categorical`` as in :meth:`generate`. The distances
        are in :attr:`TreeAttackResult.distance`.
        """
        self._validate_params()
        target.require(self.requires, by=self.name)
        xs = np.asarray(x, dtype=np.float64)
        ys = np.asarray(y, dtype=np.int64).reshape(-1)
        if xs.ndim != 2 or len(xs) != len(ys):
            raise DataError(f"{self.name}: x must be (n, d) with one label per row")
        if schema is None:
            schema = default_schema(target)
        rng = as_generator(random_state)
        pset = unbounded_set(xs, schema, categorical=self.categorical)
        start = time.perf_counter()
        self._outcome = None
        try:
            x_adv, queries = self._run(target, pset, ys, rng)
            outcome = self._outcome
        finally:
            self._outcome = None
        assert outcome is not None
        feasible = pset.contains(x_adv)
        x_adv = np.where(feasible[:, None], x_adv, xs)
        success = target.predict(x_adv) != ys if len(xs) else np.zeros(0, dtype=bool)
        result = AttackResult(
            x_adv=x_adv,
            success=np.asarray(success, dtype=bool),
            queries=queries.astype(np.int64),
            infeasible=int((~feasible).sum()),
            seconds=time.perf_counter() - start,
        )
        return _attach(result, outcome)

    def _run(
        self,
        target: Target,
        pset: PerturbationSet,
        y: IntArray,
        rng: np.random.Generator,
    ) -> tuple[FloatArray, IntArray]:
        ensemble = read_tree_ensemble(target, by=self.name)  # CapabilityError before queries
        n = len(y)
        if n == 0:
            empty = np.zeros(0)
            self._outcome = _Outcome(
                pset.x0.copy(), np.zeros(0, np.int64), empty, empty, np.zeros(0, bool)
            )
            return self._outcome.x_adv, self._outcome.queries
        if y.min() < 0 or y.max() >= ensemble.n_classes:
            raise IncompatibleModelError(
                f"{self.name}: class indices must be in [0, {ensemble.n_classes})"
            )
        grid = SplitGrid.build(ensemble, pset.schema)
        real = target.predict(pset.x0)
        check_faithful(ensemble, pset.x0, real, by=self.name)
        outcome = self._search(target, grid, pset, y, real != y, rng)
        self._outcome = outcome
        return outcome.x_adv, outcome.queries + 1

    @abstractmethod
    def _search(
        self,
        target: Target,
        grid: SplitGrid,
        pset: PerturbationSet,
        y: IntArray,
        wrong: BoolArray,
        rng: np.random.Generator,
    ) -> _Outcome:
        """Search every row (``wrong``: already misclassified) and report the outcome."""


def _attach(result: AttackResult, outcome: _Outcome) -> TreeAttackResult:
    distance = outcome.distance.copy()
    proven = outcome.proven.copy()
    lost = ~result.success & np.isfinite(distance)  # reverted by the final re-check
    distance[lost] = np.inf
    proven[lost] = False
    base = {f.name: getattr(result, f.name) for f in fields(AttackResult)}
    return TreeAttackResult(
        **base, distance=distance, lower_bound=outcome.lower_bound.copy(), proven=proven
    )


def unbounded_set(x: FloatArray, schema: FeatureSchema, *, categorical: str) -> PerturbationSet:
    """The perturbation set with no budget: graded features anywhere within their bounds."""
    pset = PerturbationSet.build(x, 1.0, schema, categorical=categorical)
    graded = schema.mutable & schema.mask(*_GRADED)
    lower, upper = pset.lower.copy(), pset.upper.copy()
    lower[:, graded] = np.minimum(schema.lower[graded], x[:, graded])
    upper[:, graded] = np.maximum(schema.upper[graded], x[:, graded])
    return PerturbationSet(
        x0=pset.x0, lower=lower, upper=upper, step_unit=pset.step_unit, schema=schema
    )


def check_faithful(ensemble: TreeEnsemble, x: FloatArray, real: IntArray, *, by: str) -> None:
    """Refuse to attack when the trees read do not reproduce the model's predictions.

    A misread model would make the attack report robustness it has not measured.
    Disagreements on exact ties (which float rounding may break either way) are allowed.
    """
    scores = ensemble.scores(x)
    local = np.argmax(scores, axis=1)
    rows = np.arange(len(x))
    gap = np.abs(scores[rows, local] - scores[rows, real])
    bad = (local != real) & (gap > _TIE * np.maximum(1.0, np.abs(scores).max(axis=1)))
    if bad.any():
        raise IncompatibleModelError(
            f"{by}: the trees read from the {ensemble.model} disagree with its predictions "
            f"on {int(bad.sum())} of {len(x)} rows; refusing to attack a misread model"
        )


def distance_of(pset: PerturbationSet, x: FloatArray) -> FloatArray:
    """L∞ distance in scale units over the mutable continuous and integer features."""
    schema = pset.schema
    graded = schema.mutable & schema.mask(*_GRADED)
    if not graded.any():
        return np.zeros(len(x))
    diff = np.abs(x[:, graded] - pset.x0[:, graded]) / schema.scale[graded]
    return np.asarray(diff.max(axis=1), dtype=np.float64)
