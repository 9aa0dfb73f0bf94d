"""Reading the trees of XGBoost and LightGBM classifiers into a :class:`TreeEnsemble`.

The tree attacks are white-box: a model whose trees are misread is attacked in the
wrong place, and an attack that finds nothing there reports false robustness. So each
reader follows its library's own comparison rule and precision, and the result is
checked against the library's raw scores before any attack uses it:

* **XGBoost** (``gbtree`` and ``dart`` boosters, numerical splits) sends a row to the
  left ("yes") child when ``x < split_condition``, comparing ``float32`` values; the
  threshold is stored as the largest ``float32`` below the split condition, so the
  ensemble's ``x <= threshold`` rule takes the same branch for every ``float32`` input.
  Trees map to classes through the model's ``tree_info``; ``dart`` trees are scaled by
  their drop weights.
* **LightGBM** (numerical splits) sends a row left when ``x <= threshold`` in
  ``float64``; trees map to classes round-robin (``num_tree_per_iteration``). In
  random-forest mode the scores are the trees' sum, as LightGBM's own raw score (its
  probabilities use the average, which has the same arg-max).

The constant part (XGBoost's ``base_score``, LightGBM's initial score) is not parsed
from the model's configuration, whose format changes between versions: it is the
difference between the library's own raw score and the trees' sum on one row. Then
:func:`verify_ensemble` compares the ensemble's scores with the library's raw scores on
rows chosen around the model's thresholds and refuses a model it cannot reproduce.

Categorical splits, linear trees (LightGBM ``linear_tree``), multi-output trees,
``gblinear`` boosters and LightGBM's ``zero_as_missing`` are refused with a clear
message. Missing values never reach the trees here: the attacks' inputs are finite.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden.evasion.trees.ensemble import Precision, Tree, TreeEnsemble, class_columns
from mlwarden.exceptions import CapabilityError, IncompatibleModelError

__all__ = ["read_lightgbm", "read_xgboost", "verify_ensemble"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_N_VERIFY = 64


def _raw_scores(raw: Any, n_classes: int) -> FloatArray:
    """A library's raw margin output as class scores (``[0, r]`` for binary models)."""
    r = np.asarray(raw, dtype=np.float64)
    if n_classes == 2:
        r = r.reshape(-1)
        return np.stack([np.zeros_like(r), r], axis=1)
    return r.reshape(len(r), n_classes)


def _finish(
    trees: list[Tree],
    n_classes: int,
    n_features: int,
    precision: Precision,
    kind: str,
    raw: Any,
    by: str,
) -> TreeEnsemble:
    """Add the constant (library's raw score minus the trees on one row), then verify."""
    if not trees:
        raise CapabilityError(f"{by}: the {kind} model has no trees")
    partial = TreeEnsemble(tuple(trees), np.zeros(n_classes), n_features, precision, kind)
    probe = np.zeros((1, n_features))
    base = (_raw_scores(raw(probe), n_classes) - partial.scores(probe))[0]
    ensemble = TreeEnsemble(tuple(trees), base, n_features, precision, kind)
    verify_ensemble(ensemble, lambda x: _raw_scores(raw(x), n_classes), by=by)
    return ensemble


def verify_ensemble(
    ensemble: TreeEnsemble,
    raw_scores: Any,
    *,
    by: str = "this attack",
    random_state: int = 0,
) -> None:
    """Refuse an ensemble whose scores differ from the model's own raw scores.

    The rows are drawn around the ensemble's thresholds (just below and just above
    them), where a misread comparison rule or precision shows first.

    Parameters
    ----------
    ensemble : TreeEnsemble
        The trees as read.
    raw_scores : callable
        ``raw_scores(x) -> (n, n_classes)`` class scores from the library itself.
    by : str
        Who asks (for the message).
    random_state : int
        Seed of the rows drawn.

    Raises
    ------
    IncompatibleModelError
        If any score differs by more than ``1e-4`` (relative to the score scale).
    """
    rng = np.random.default_rng(random_state)
    thresholds: list[list[float]] = [[] for _ in range(ensemble.n_features)]
    for tree in ensemble.trees:
        inner = tree.feature >= 0
        for f, t in zip(tree.feature[inner], tree.threshold[inner], strict=True):
            if np.isfinite(t):
                thresholds[int(f)].append(float(t))
    x = rng.normal(size=(_N_VERIFY, ensemble.n_features))
    for f, ts in enumerate(thresholds):
        if ts:
            picks = np.asarray(ts)[rng.integers(len(ts), size=_N_VERIFY)]
            eps = np.maximum(np.abs(picks), 1.0) * 1e-6
            x[:, f] = picks + np.where(rng.random(_N_VERIFY) < 0.5, -eps, eps)
    x[0] = 0.0
    ours = ensemble.scores(x)
    theirs = np.asarray(raw_scores(x), dtype=np.float64)
    scale = max(1.0, float(np.abs(theirs).max()))
    worst = float(np.abs(ours - theirs).max())
    if worst > 1e-4 * scale:
        raise IncompatibleModelError(
            f"{by}: the {ensemble.model} trees as read give scores up to {worst:.3g} away "
            "from the model's own raw scores; refusing to attack a misread model "
            "(use a black-box attack such as Square instead)"
        )


# --------------------------------------------------------------------------- XGBoost
def read_xgboost(est: Any, *, by: str = "this attack") -> TreeEnsemble:
    """Read a fitted ``xgboost.XGBClassifier`` (``gbtree`` or ``dart`` booster).

    Parameters
    ----------
    est : xgboost.XGBClassifier
        The fitted classifier.
    by : str
        Who asks (for error messages).

    Returns
    -------
    TreeEnsemble

    Raises
    ------
    CapabilityError
        For ``gblinear`` boosters, categorical splits and multi-output trees.
    IncompatibleModelError
        If the trees as read do not reproduce the model's raw scores.
    """
    kind = type(est).__name__
    booster = est.get_booster()
    model = json.loads(bytes(booster.save_raw("json")).decode())
    gb = model["learner"]["gradient_booster"]
    name = gb.get("name", "")
    if name not in ("gbtree", "dart"):
        raise CapabilityError(f"{by}: XGBoost {name!r} boosters have no trees to read")
    tree_model = gb["gbtree"]["model"] if name == "dart" else gb["model"]
    weights = gb.get("weight_drop", [1.0] * len(tree_model["trees"])) if name == "dart" else None
    n_classes = len(est.classes_)
    n_features = int(est.n_features_in_)
    tree_info = [int(c) for c in tree_model["tree_info"]]
    trees = []
    for i, t in enumerate(tree_model["trees"]):
        if int(t["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise CapabilityError(f"{by}: XGBoost multi-output trees are not supported")
        if any(int(s) != 0 for s in t.get("split_type", [])):
            raise CapabilityError(
                f"{by}: {kind} has categorical splits, which are not supported; "
                "one-hot encode the categories and refit"
            )
        left = np.asarray(t["left_children"], dtype=np.int64)
        right = np.asarray(t["right_children"], dtype=np.int64)
        cond = np.asarray(t["split_conditions"], dtype=np.float32)
        leaf = left < 0
        # yes-branch when x < cond (float32): the same as x <= the float32 just below cond.
        below = np.nextafter(cond, np.float32(-np.inf)).astype(np.float64)
        value = np.where(leaf, cond.astype(np.float64), 0.0)
        if weights is not None:
            value = value * float(weights[i])
        trees.append(
            Tree(
                feature=np.where(leaf, -1, np.asarray(t["split_indices"], dtype=np.int64)),
                threshold=np.where(leaf, 0.0, below),
                left=np.where(leaf, -1, left),
                right=np.where(leaf, -1, right),
                value=class_columns(n_classes, tree_info[i], value),
            )
        )

    def raw(x: FloatArray) -> Any:
        return est.predict(x, output_margin=True)

    return _finish(trees, n_classes, n_features, "float32", kind, raw, by)


# -------------------------------------------------------------------------- LightGBM
def read_lightgbm(est: Any, *, by: str = "this attack") -> TreeEnsemble:
    """Read a fitted ``lightgbm.LGBMClassifier`` (numerical splits).

    Parameters
    ----------
    est : lightgbm.LGBMClassifier
        The fitted classifier.
    by : str
        Who asks (for error messages).

    Returns
    -------
    TreeEnsemble

    Raises
    ------
    CapabilityError
        For categorical splits, linear trees and ``zero_as_missing`` models.
    IncompatibleModelError
        If the trees as read do not reproduce the model's raw scores.
    """
    kind = type(est).__name__
    dump = est.booster_.dump_model()
    per_iteration = int(dump.get("num_tree_per_iteration", 1))
    n_classes = len(est.classes_)
    n_features = int(est.n_features_in_)
    infos = dump["tree_info"]
    # Random-forest mode (average_output) divides the trees' sum by their number before
    # the sigmoid/softmax, but its raw score is the sum: the arg-max is the same either way,
    # and the sum is what the raw scores are checked against.
    scale = 1.0
    trees = []
    for i, info in enumerate(infos):
        nodes = _LightGBMTree(by, kind)
        nodes.add(info["tree_structure"])
        trees.append(
            Tree(
                feature=np.asarray(nodes.feature, dtype=np.int64),
                threshold=np.asarray(nodes.threshold, dtype=np.float64),
                left=np.asarray(nodes.left, dtype=np.int64),
                right=np.asarray(nodes.right, dtype=np.int64),
                value=class_columns(
                    n_classes, i % per_iteration, np.asarray(nodes.value, dtype=np.float64) * scale
                ),
            )
        )

    def raw(x: FloatArray) -> Any:
        return est.predict(x, raw_score=True)

    return _finish(trees, n_classes, n_features, "float64", kind, raw, by)


class _LightGBMTree:
    """One LightGBM tree's nested JSON nodes flattened into arrays (pre-order)."""

    def __init__(self, by: str, kind: str) -> None:
        self.by = by
        self.kind = kind
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.left: list[int] = []
        self.right: list[int] = []
        self.value: list[float] = []

    def add(self, node: dict[str, Any]) -> int:
        idx = len(self.feature)
        self.feature.append(-1)
        self.threshold.append(0.0)
        self.left.append(-1)
        self.right.append(-1)
        self.value.append(0.0)
        if "split_feature" not in node:
            if "leaf_coeff" in node:
                raise CapabilityError(
                    f"{self.by}: LightGBM linear trees (linear_tree=True) are not supported"
                )
            self.value[idx] = float(node.get("leaf_value", 0.0))
            return idx
        if node.get("decision_type", "<=") != "<=":
            raise CapabilityError(
                f"{self.by}: {self.kind} has categorical splits, which are not supported; "
                "one-hot encode the categories and refit"
            )
        if node.get("missing_type") == "Zero":
            raise CapabilityError(
                f"{self.by}: {self.kind} treats zeros as missing (zero_as_missing=True), "
                "which is not supported; refit without it"
            )
        self.feature[idx] = int(node["split_feature"])
        self.threshold[idx] = float(node["threshold"])
        self.left[idx] = self.add(node["left_child"])
        self.right[idx] = self.add(node["right_child"])
        return idx
