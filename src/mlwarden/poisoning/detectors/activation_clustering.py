"""Activation clustering: the attacker's class splits into two clusters.

Reference: Chen et al., "Detecting Backdoor Attacks on Deep Neural Networks by
Activation Clustering" (AAAI SafeAI workshop 2019, arXiv 2018).

Threat model: dirty- or clean-label backdoor (ATLAS AML.T0020 / AML.T0018.000, OWASP
ML02/ML10): the rows of the attacker's class are of two kinds, genuine ones and
triggered ones, and a network trained on the data separates them in its last hidden
layer. For every class the representations are reduced (PCA, ``n_components``) and
split in two by k-means.

Deciding *which* class is poisoned is the hard part: a clean class also splits (a "1"
with a base and one without), so Chen et al.'s relative-size rule (the smaller cluster
below 35 % is poison) flags clean classes too. The default ``confirm="trigger"`` looks
for what a fixed trigger leaves behind: features on which the smaller cluster holds one
constant value that at most ``max_match`` of the other classes' rows hold (a corner patch, an
exact amount), and whose rows, with those features hidden, look like another class to a
model trained without them (dirty-label poison). Only then is the class poisoned, and
the flagged rows are the rows of that class that carry those values. This finds fixed
patterns (BadNets, tabular pattern triggers) with high precision; triggers that vary
from row to row (blended noise, warping) and clean-label poison need
``confirm="size"`` (Chen et al.'s rule) and a human look.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.data.dataset import Dataset
from mlwarden.poisoning.detectors._common import class_codes, get_representations, show
from mlwarden.poisoning.detectors._result import DetectionResult

__all__ = ["ActivationClustering"]

_OWNER = "ActivationClustering"


class ActivationClustering:
    """Cluster each class's representations in two; flag the poisoned cluster.

    Parameters
    ----------
    n_components : int, default=10
        PCA dimensions before clustering.
    confirm : {"trigger", "size"}, default="trigger"
        How a class is judged poisoned: a constant, rare feature pattern in its smaller
        cluster (see the module docstring), or the smaller cluster's relative size below
        ``size_threshold`` (Chen et al.).
    size_threshold : float, default=0.35
        For ``confirm="size"``.
    max_match : float, default=0.01
        For ``confirm="trigger"``: a trigger feature's value is held by at most this
        share of the rows of the other classes.
    min_purity : float, default=0.9
        For ``confirm="trigger"``: at least this share of all rows carrying the pattern
        must be in the class.
    min_cluster : int, default=5
        Smaller clusters are ignored.
    min_constant : float, default=0.6
        For ``confirm="trigger"``: a trigger feature holds its value on at least this
        share of the cluster (k-means may put a few clean rows in it).
    min_auc : float, default=0.75
        For ``confirm="trigger"``: the rows carrying the pattern must look like another
        class once the trigger's features are hidden - a gradient-boosted model trained
        without them and without those features must rank held-out rows of the class
        above them with at least this AUC (0 turns the test off). Genuine rows of a
        class that share a rare value (a saturated pixel) pass as genuine; clean-label
        poison (genuine rows plus a trigger) is not confirmed by this test.
    random_state : int, Generator or None
        Seed of k-means and of the network trained for representations.
    """

    def __init__(
        self,
        *,
        n_components: int = 10,
        confirm: str = "trigger",
        size_threshold: float = 0.35,
        max_match: float = 0.01,
        min_purity: float = 0.9,
        min_cluster: int = 5,
        min_constant: float = 0.6,
        min_auc: float = 0.75,
        random_state: RandomState = None,
    ) -> None:
        self.n_components = n_components
        self.confirm = confirm
        self.size_threshold = size_threshold
        self.max_match = max_match
        self.min_purity = min_purity
        self.min_cluster = min_cluster
        self.min_constant = min_constant
        self.min_auc = min_auc
        self.random_state = random_state

    def detect(
        self, data: Dataset, *, representations: npt.ArrayLike | None = None
    ) -> DetectionResult:
        """Score every row of ``data``; see :class:`SpectralSignature` for the arguments."""
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA

        n_comp = check_int(_OWNER, "n_components", self.n_components)
        confirm = check_choice(_OWNER, "confirm", self.confirm, ("trigger", "size"))
        size_thr = check_number(_OWNER, "size_threshold", self.size_threshold, low=0, high=0.5)
        check_number(_OWNER, "max_match", self.max_match, low=0, high=1)
        check_number(_OWNER, "min_purity", self.min_purity, low=0, high=1)
        min_cluster = check_int(_OWNER, "min_cluster", self.min_cluster)
        check_number(_OWNER, "min_auc", self.min_auc, low=0, high=1)
        check_number(_OWNER, "min_constant", self.min_constant, low=0, high=1, low_open=True)
        rng = as_generator(self.random_state)
        seed = int(rng.integers(2**31))
        reps = get_representations(_OWNER, data, representations, seed=seed)
        classes, codes = class_codes(data)
        scores = np.zeros(data.n_samples)
        flagged = np.zeros(data.n_samples, dtype=bool)
        reasons: dict[int, str] = {}
        per_class: list[dict[str, Any]] = []
        for c in range(len(classes)):
            idx = np.flatnonzero(codes == c)
            if len(idx) < 2 * min_cluster:
                continue
            k = min(n_comp, reps.shape[1], len(idx) - 1)
            Z = PCA(n_components=k, random_state=seed).fit_transform(reps[idx])
            labels = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(Z).labels_
            small_label = int(np.argmin(np.bincount(labels, minlength=2)))
            small = idx[labels == small_label]
            rel = len(small) / len(idx)
            scores[small] = 1.0 - rel
            info: dict[str, Any] = {"class": _plain(classes[c]), "smaller_cluster": len(small),
                                    "relative_size": rel}  # fmt: skip
            if confirm == "size":
                if len(small) >= min_cluster and rel < size_thr:
                    info["poisoned"] = True
                    flagged[small] = True
                    for i in small:
                        reasons[int(i)] = (
                            f"activation clustering: in the smaller cluster ({rel:.0%}) of "
                            f"class {show(classes[c])}"
                        )
                per_class.append(info)
                continue
            best = self._best_trigger(data, idx, Z, labels, codes == c, seed, min_cluster)
            if best is not None:
                trigger, hit, purity = best
                info |= {"trigger": {data.feature_names[j]: v for j, v in trigger},
                         "purity": purity}  # fmt: skip
                if self.min_auc > 0:
                    auc = _masked_auc(data, trigger, hit, codes == c, seed)
                    info["masked_auc"] = auc
                    if auc < self.min_auc:
                        info["poisoned"] = False  # genuine rows of the class share it
                        per_class.append(info)
                        continue
                info["poisoned"] = True
                flagged |= hit
                scores[hit] += 1.0
                shown = ", ".join(f"{data.feature_names[j]}={v:g}" for j, v in trigger[:6])
                more = f" (+{len(trigger) - 6} more)" if len(trigger) > 6 else ""
                for i in np.flatnonzero(hit):
                    reasons[int(i)] = (
                        f"backdoor trigger: carries the pattern {shown}{more}, shared by a "
                        f"cluster of class {show(classes[c])} and rare elsewhere"
                    )
            per_class.append(info)
        return DetectionResult(
            detector="activation-clustering",
            scores=scores,
            flagged=flagged,
            reasons=reasons,
            details={"confirm": confirm, "classes": per_class},
        )

    def _best_trigger(
        self,
        data: Dataset,
        idx: npt.NDArray[np.intp],
        Z: npt.NDArray[np.float64],
        two: npt.NDArray[np.int32],
        in_class: npt.NDArray[np.bool_],
        seed: int,
        min_cluster: int,
    ) -> tuple[list[tuple[int, float]], npt.NDArray[np.bool_], float] | None:
        """The trigger carried by the most rows of the class, over 2..6 clusters."""
        from sklearn.cluster import KMeans

        tol = _tolerance(data.X)
        best: tuple[list[tuple[int, float]], npt.NDArray[np.bool_], float] | None = None
        for k in range(2, 7):
            if len(idx) < k * min_cluster:
                break
            labels = two if k == 2 else KMeans(k, n_init=4, random_state=seed).fit(Z).labels_
            for j in range(k):
                members = idx[labels == j]
                if len(members) < min_cluster or len(members) > len(idx) / 2:
                    continue
                trigger = self._trigger(data, members, ~in_class)
                if not trigger:
                    continue
                hit, purity = self._carriers(data, trigger, in_class, tol)
                # Refine: the rows carrying the pattern may share more trigger features
                # than the cluster did (k-means mixes in clean rows); a fuller pattern
                # leaves out clean rows that match a partial one by chance.
                for _ in range(3):
                    fuller = self._trigger(data, np.flatnonzero(hit), ~in_class)
                    if len(fuller) <= len(trigger):
                        break
                    trigger = fuller
                    hit, purity = self._carriers(data, trigger, in_class, tol)
                if purity >= self.min_purity and (best is None or hit.sum() > best[1].sum()):
                    best = (trigger, hit, purity)
        return best

    @staticmethod
    def _carriers(
        data: Dataset,
        trigger: list[tuple[int, float]],
        in_class: npt.NDArray[np.bool_],
        tol: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.bool_], float]:
        """Rows of the class carrying the pattern, and the share of carriers in the class."""
        cols = np.array([f for f, _ in trigger])
        vals = np.array([v for _, v in trigger])
        carries = np.all(np.abs(data.X[:, cols] - vals) <= tol[cols], axis=1)
        hit = carries & in_class
        return hit, float(hit.sum() / max(int(carries.sum()), 1))

    def _trigger(
        self, data: Dataset, small: npt.NDArray[np.intp], rest: npt.NDArray[np.bool_]
    ) -> list[tuple[int, float]]:
        """Features constant on ``small`` at a value few rows of other classes hold."""
        X = data.X
        tol = _tolerance(X)
        sub = X[small]
        value = np.median(sub, axis=0)
        constant = np.mean(np.abs(sub - value) <= tol, axis=0) >= self.min_constant
        out: list[tuple[int, float]] = []
        for j in np.flatnonzero(constant):
            share = float(np.mean(np.abs(X[rest, j] - value[j]) <= tol[j]))
            if share <= self.max_match:
                out.append((int(j), float(value[j])))
        return out


def _tolerance(X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per-feature tolerance for "the same value": 1e-6 of the feature's range."""
    span = X.max(axis=0) - X.min(axis=0)
    return np.asarray(np.maximum(span * 1e-6, 1e-12), dtype=np.float64)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _masked_auc(
    data: Dataset,
    trigger: list[tuple[int, float]],
    carriers: npt.NDArray[np.bool_],
    in_class: npt.NDArray[np.bool_],
    seed: int,
) -> float:
    """Do the carriers look like another class once the trigger features are hidden?

    A model trained without the carriers and without the trigger's features scores the
    class's probability on the carriers and on held-out rows of the class that do not
    carry the pattern; the result is the AUC of "held-out row" over "carrier". Rows
    relabelled by an attacker (dirty-label poison) score low (AUC near 1); a pattern
    that genuine rows of the class share (a saturated pixel many "7"s have) does not.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    _, codes = np.unique(data.labels, return_inverse=True)
    c = int(codes[np.flatnonzero(in_class)[0]])
    others = np.flatnonzero(in_class & ~carriers)
    n_out = min(int(carriers.sum()), len(others) // 2)
    if n_out < 2:
        return 1.0
    held = rng.choice(others, size=n_out, replace=False)
    train = ~carriers
    train[held] = False
    keep_cols = np.setdiff1d(np.arange(data.n_features), [f for f, _ in trigger])
    if len(keep_cols) == 0 or len(np.unique(codes[train])) < 2:
        return 1.0
    model = HistGradientBoostingClassifier(max_iter=50, random_state=seed)
    model.fit(data.X[np.ix_(train, keep_cols)], codes[train])
    col = list(model.classes_).index(c) if c in model.classes_ else None
    if col is None:
        return 1.0
    idx = np.concatenate([held, np.flatnonzero(carriers)])
    p = model.predict_proba(data.X[np.ix_(idx, keep_cols)])[:, col]
    truth = np.r_[np.ones(len(held)), np.zeros(int(carriers.sum()))]
    return float(roc_auc_score(truth, p))
