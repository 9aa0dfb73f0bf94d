"""Attribute inference on tabular data, always measured against an imputation baseline.

Fredrikson, Lantz, Jha, Lin, Page and Ristenpart, "Privacy in Pharmacogenetics: An
End-to-End Case Study of Personalized Warfarin Dosing", USENIX Security 2014; Yeom,
Giacomelli, Fredrikson and Jha, "Privacy Risk in Machine Learning: Analyzing the
Connection to Overfitting", CSF 2018; Jayaraman and Evans, "Are Attribute Inference
Attacks Just Imputation?", CCS 2022.

Threat model: black-box query access to the model's scores (or only its labels). The
attacker knows a target record's other features and its true label, but not one
sensitive column (a binary column, a one-hot categorical group, or a numeric column
cut into bins). They also hold auxiliary rows from the same population, disjoint from
the training set, in which the sensitive column is known. Three attackers are compared
on the model's training rows (members) and on held-out rows (non-members):

``"model"``
    Fredrikson et al.: complete the record with each candidate value, query the model,
    and pick the value under which the true label is most likely (weighted by the
    candidate's prior frequency in the auxiliary data).
``"imputation"``
    The baseline that needs no model: a classifier trained on the auxiliary rows
    predicts the sensitive value from the other features and the label.
``"model_aided"``
    Model-aided imputation (Jayaraman and Evans): the same imputer with the model's
    per-candidate scores added as features.

What the model leaks is the best model-using attacker's accuracy *minus* the
imputation baseline's: a high attack accuracy alone says nothing when the other
features already give the attribute away. The same difference on non-members is what
the model reveals about the population; its excess on members is what it reveals
about the individuals it was trained on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import FeatureKind
from mlwarden.exceptions import DataError, IncompatibleModelError, InvalidParameterError
from mlwarden.findings.finding import Finding
from mlwarden.findings.taxonomy import Severity
from mlwarden.models.base import Capability, Target
from mlwarden.privacy.rules import RULE_ATTRIBUTE_INFERENCE

__all__ = [
    "AttributeInference",
    "AttributeInferenceResult",
    "MethodScore",
    "attribute_inference_finding",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

METHODS = ("model", "imputation", "model_aided")
"""The attackers compared, in report order; ``"imputation"`` is the baseline."""
_LOG_FLOOR = math.log(1e-12)


@dataclass(frozen=True)
class MethodScore:
    """How well one attacker recovers the sensitive attribute on one population.

    Attributes
    ----------
    accuracy : float
        Share of rows whose sensitive value (or bin) is guessed exactly.
    accuracy_ci : tuple of float
        Wilson score interval of ``accuracy`` at the attack's confidence level.
    balanced_accuracy : float
        Mean per-value recall (chance is ``1 / n_candidates``).
    auc : float or None
        ROC AUC of the attacker's score for value 1, for binary attributes only
        (``None`` otherwise, or when one value is absent from the rows).
    n : int
        Number of rows evaluated.
    """

    accuracy: float
    accuracy_ci: tuple[float, float]
    balanced_accuracy: float
    auc: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "accuracy": self.accuracy,
            "accuracy_ci": list(self.accuracy_ci),
            "balanced_accuracy": self.balanced_accuracy,
            "auc": self.auc,
            "n": self.n,
        }


@dataclass(frozen=True)
class AttributeInferenceResult:
    """What :meth:`AttributeInference.infer` returns.

    Attributes
    ----------
    attribute : str
        The sensitive column (or categorical group).
    kind : str
        ``"binary"``, ``"categorical"`` or ``"binned"`` (a numeric column cut into bins).
    candidates : tuple of str
        Printable candidate values, in the order of the attackers' guesses.
    members, non_members : dict of str to MethodScore
        Scores per attacker (keys :data:`METHODS`) on the training rows and held-out rows.
    leakage_members : float
        Best model-using attacker's accuracy minus the imputation baseline's, on members.
    leakage_members_ci : tuple of float
        Confidence interval of that paired difference (normal approximation).
    leakage_non_members : float
        The same difference on non-members.
    leakage_non_members_ci : tuple of float
        Its confidence interval.
    best_method : str
        The model-using attacker behind ``leakage_members``.
    assumptions : tuple of str
        What the attacker is assumed to know and be able to do.
    queries : int
        Rows sent to the target.
    seconds : float
        Wall time.
    params : dict
        The attack's hyper-parameters.
    """

    attribute: str
    kind: str
    candidates: tuple[str, ...]
    members: dict[str, MethodScore]
    non_members: dict[str, MethodScore]
    leakage_members: float
    leakage_members_ci: tuple[float, float]
    leakage_non_members: float
    leakage_non_members_ci: tuple[float, float]
    best_method: str
    assumptions: tuple[str, ...]
    queries: int
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def member_specific_leakage(self) -> float:
        """Leakage on members minus leakage on non-members: what the model reveals about
        the individuals it was trained on beyond what it reveals about the population."""
        return self.leakage_members - self.leakage_non_members

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "attribute": self.attribute,
            "kind": self.kind,
            "candidates": list(self.candidates),
            "members": {k: v.to_dict() for k, v in self.members.items()},
            "non_members": {k: v.to_dict() for k, v in self.non_members.items()},
            "leakage_members": self.leakage_members,
            "leakage_members_ci": list(self.leakage_members_ci),
            "leakage_non_members": self.leakage_non_members,
            "leakage_non_members_ci": list(self.leakage_non_members_ci),
            "member_specific_leakage": self.member_specific_leakage,
            "best_method": self.best_method,
            "assumptions": list(self.assumptions),
            "queries": self.queries,
            "seconds": self.seconds,
            "params": dict(self.params),
        }


@dataclass(frozen=True)
class _Attribute:
    """The sensitive attribute resolved against the schema and the auxiliary data."""

    name: str
    kind: str
    columns: list[int]
    values: FloatArray  # (k, len(columns)): what each candidate writes into the columns
    labels: tuple[str, ...]
    edges: FloatArray | None  # inner bin edges for "binned"

    @property
    def k(self) -> int:
        return len(self.values)

    def encode(self, X: FloatArray) -> IntArray:
        """Candidate index of each row's true value."""
        cols = X[:, self.columns]
        if self.kind == "categorical":
            return np.asarray(np.argmax(cols, axis=1), dtype=np.int64)
        if self.kind == "binary":
            return np.asarray(cols[:, 0] >= 0.5, dtype=np.int64)
        assert self.edges is not None
        return np.asarray(np.searchsorted(self.edges, cols[:, 0], side="right"), dtype=np.int64)


class AttributeInference:
    """Infer a sensitive tabular attribute from a model's outputs, against imputation.

    Parameters
    ----------
    attribute : str
        Name of the sensitive column, or of a one-hot categorical group.
    n_bins : int, default=4
        For a numeric (continuous or integer) attribute with more than ``n_bins``
        distinct values in the auxiliary data: the number of quantile bins it is cut
        into; each candidate is its bin's median. Fewer distinct values are used as is.
    use_prior : bool, default=True
        Weight the model attacker's per-candidate likelihood by the candidate's
        frequency in the auxiliary data (Fredrikson et al.'s maximum a posteriori rule).
    observed_output : bool, default=False
        Assume the attacker also saw the model's output on the true record (an API's
        answer, Yeom et al.'s setting) and give it to the model-aided imputer as extra
        features; costs one more query per row.
    imputer : {"auto", "hgb", "logistic"}, default="auto"
        Classifier of the imputation attackers: scikit-learn's
        ``HistGradientBoostingClassifier``, a standardised ``LogisticRegression``, or
        (``"auto"``) whichever of the two predicts the attribute better in 3-fold
        cross-validation on the auxiliary rows. A weak baseline overstates the leakage,
        so ``"auto"`` is the default; the choice is recorded in ``params["imputer_used"]``.
    confidence_level : float, default=0.95
        Level of the reported intervals.
    random_state : int, numpy Generator or None
        Seed of the imputer.

    Notes
    -----
    The model attacker reads probabilities (``Capability.SCORES``) when the target
    offers them and only predicted labels otherwise (a candidate then scores 1 when the
    completed record is classified as its true label). Queries: one per candidate per
    evaluated row, and as many again for the auxiliary rows (model-aided imputation),
    plus one per row with ``observed_output``.

    The reported leakage uses whichever model-using attacker is more accurate on the
    members; that choice favours finding leakage slightly, and its interval does not
    account for it. A model that ignores the attribute gives the model attacker no
    signal at all, and its leakage stays at or below zero within the interval.

    Examples
    --------
    >>> attack = AttributeInference(attribute="sex", imputer="logistic", random_state=0)
    >>> result = attack.infer(target, members=train, non_members=test, auxiliary=aux)
    ... # doctest: +SKIP
    >>> result.leakage_members  # doctest: +SKIP
    """

    name = "AttributeInference"

    def __init__(
        self,
        *,
        attribute: str,
        n_bins: int = 4,
        use_prior: bool = True,
        observed_output: bool = False,
        imputer: str = "auto",
        confidence_level: float = 0.95,
        random_state: RandomState = None,
    ) -> None:
        self.attribute = attribute
        self.n_bins = n_bins
        self.use_prior = use_prior
        self.observed_output = observed_output
        self.imputer = imputer
        self.confidence_level = confidence_level
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters given to ``__init__``."""
        return {
            "attribute": self.attribute,
            "n_bins": self.n_bins,
            "use_prior": self.use_prior,
            "observed_output": self.observed_output,
            "imputer": self.imputer,
            "confidence_level": self.confidence_level,
            "random_state": self.random_state
            if not isinstance(self.random_state, np.random.Generator)
            else "Generator",
        }

    def _validate_params(self) -> None:
        if not isinstance(self.attribute, str) or not self.attribute:
            raise InvalidParameterError(
                f"{self.name}: attribute must be a column or group name, got {self.attribute!r}"
            )
        check_int(self.name, "n_bins", self.n_bins, minimum=2)
        for flag in ("use_prior", "observed_output"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidParameterError(
                    f"{self.name}: {flag} must be True or False, got {getattr(self, flag)!r}"
                )
        check_choice(self.name, "imputer", self.imputer, ("auto", "hgb", "logistic"))
        check_number(
            self.name, "confidence_level", self.confidence_level, low=0.5, high=1.0, low_open=True
        )
        if self.confidence_level >= 1.0:
            raise InvalidParameterError(
                f"{self.name}: confidence_level must be below 1, got {self.confidence_level!r}"
            )

    # ------------------------------------------------------------------ the verb
    def infer(
        self,
        target: Target,
        *,
        members: Dataset,
        non_members: Dataset,
        auxiliary: Dataset,
    ) -> AttributeInferenceResult:
        """Run the three attackers and measure the model's leakage over imputation.

        Parameters
        ----------
        target : Target
            The model; needs ``Capability.LABELS`` (scores are used when offered).
        members : Dataset
            Labelled rows the model was trained on.
        non_members : Dataset
            Labelled rows from the same population the model did not see.
        auxiliary : Dataset
            The attacker's labelled rows, disjoint from both, with the sensitive
            attribute known; the imputers are trained on them.

        Returns
        -------
        AttributeInferenceResult

        Raises
        ------
        CapabilityError
            If the target offers no labels (before any query).
        InvalidParameterError
            For unusable hyper-parameters.
        DataError
            If the attribute names no column or group of the data, the data sets'
            columns differ, a data set has no labels, a population or the auxiliary
            data has no rows, or the attribute takes fewer than 2 values.
        IncompatibleModelError
            If the model does not take the attribute as an input.
        """
        self._validate_params()
        target.require(Capability.LABELS, by=self.name)
        sets = {"members": members, "non_members": non_members, "auxiliary": auxiliary}
        for label, ds in sets.items():
            if not isinstance(ds, Dataset):
                raise DataError(f"{self.name}: {label} must be a Dataset, got {type(ds).__name__}")
            if ds.n_samples == 0:
                what = "auxiliary rows" if label == "auxiliary" else f"rows in {label}"
                raise DataError(f"{self.name}: no {what}; the attack needs some")
            ds.labels  # noqa: B018 - raises DataError when unlabelled
            if ds.feature_names != members.feature_names:
                raise DataError(
                    f"{self.name}: {label} has columns {ds.feature_names[:5]}... that differ "
                    f"from the members' columns"
                )
        attr = self._resolve(target, members, auxiliary)
        rng = as_generator(self.random_state)
        start_time = time.perf_counter()
        q0 = target.n_queries

        use_scores = Capability.SCORES in target.capabilities
        aux_y = target.encode_labels(auxiliary.labels)
        aux_t = attr.encode(auxiliary.X)
        prior = np.bincount(aux_t, minlength=attr.k).astype(np.float64) + 1.0
        log_prior = np.log(prior / prior.sum())
        aux_scores = self._model_scores(target, attr, auxiliary.X, aux_y, use_scores)
        if self.observed_output:
            aux_scores = np.hstack([aux_scores, self._observed(target, auxiliary.X, use_scores)])
        keep = np.setdiff1d(np.arange(members.n_features), attr.columns)
        n_classes = target.n_classes

        def features(X: FloatArray, y: IntArray, scores: FloatArray | None) -> FloatArray:
            parts = [X[:, keep], np.eye(n_classes)[y]]
            if scores is not None:
                cand = scores[:, : attr.k]
                parts += [scores, cand - cand.max(axis=1, keepdims=True)]
            return np.hstack(parts)

        seed = int(rng.integers(0, 2**31 - 1))
        aux_features = features(auxiliary.X, aux_y, None)
        kind = self.imputer
        if kind == "auto":
            kind = _best_imputer(aux_features, aux_t, seed)
        imputer = _Imputer(kind, seed, attr.k).fit(aux_features, aux_t)
        aided = _Imputer(kind, seed, attr.k).fit(features(auxiliary.X, aux_y, aux_scores), aux_t)

        scores_by_pop: dict[str, dict[str, MethodScore]] = {}
        diffs: dict[str, dict[str, FloatArray]] = {}
        for pop, ds in (("members", members), ("non_members", non_members)):
            y = target.encode_labels(ds.labels)
            truth = attr.encode(ds.X)
            s = self._model_scores(target, attr, ds.X, y, use_scores)
            s_aided = s
            if self.observed_output:
                s_aided = np.hstack([s, self._observed(target, ds.X, use_scores)])
            post = s + (log_prior if self.use_prior else 0.0)
            probs = {
                "model": _softmax(post),
                "imputation": imputer.predict_proba(features(ds.X, y, None)),
                "model_aided": aided.predict_proba(features(ds.X, y, s_aided)),
            }
            pop_scores: dict[str, MethodScore] = {}
            correct: dict[str, FloatArray] = {}
            for method in METHODS:
                guess = np.argmax(probs[method], axis=1)
                correct[method] = (guess == truth).astype(np.float64)
                pop_scores[method] = _score(truth, guess, probs[method], attr.k, self._z())
            scores_by_pop[pop] = pop_scores
            diffs[pop] = {m: correct[m] - correct["imputation"] for m in ("model", "model_aided")}

        member_acc = {m: scores_by_pop["members"][m].accuracy for m in ("model", "model_aided")}
        best = max(member_acc, key=lambda m: member_acc[m])
        z = self._z()
        lm, lm_ci = _paired(diffs["members"][best], z)
        ln, ln_ci = _paired(diffs["non_members"][best], z)
        assumptions = (
            f"the attacker knows every feature of a target record except {attr.name!r}",
            "the attacker knows the record's true label",
            f"the attacker holds {auxiliary.n_samples} auxiliary rows from the same population, "
            f"disjoint from the training data, with {attr.name!r} known",
            "the attacker can query the model with "
            + ("probabilities" if use_scores else "predicted labels only")
            + f" ({attr.k} queries per record)",
        ) + (
            ("the attacker saw the model's output on the true record",)
            if self.observed_output
            else ()
        )
        return AttributeInferenceResult(
            attribute=attr.name,
            kind=attr.kind,
            candidates=attr.labels,
            members=scores_by_pop["members"],
            non_members=scores_by_pop["non_members"],
            leakage_members=lm,
            leakage_members_ci=lm_ci,
            leakage_non_members=ln,
            leakage_non_members_ci=ln_ci,
            best_method=best,
            assumptions=assumptions,
            queries=target.n_queries - q0,
            seconds=time.perf_counter() - start_time,
            params={**self.get_params(), "imputer_used": kind},
        )

    # -------------------------------------------------------------- internals
    def _z(self) -> float:
        from scipy import stats

        return float(stats.norm.ppf(0.5 + self.confidence_level / 2))

    def _resolve(self, target: Target, data: Dataset, aux: Dataset) -> _Attribute:
        schema = data.schema
        name = self.attribute
        groups = schema.groups
        if name in groups:
            columns = groups[name]
            kind = "categorical"
        elif name in schema.names:
            columns = [schema.index(name)]
            fkind = schema.features[columns[0]].kind
            kind = {FeatureKind.BINARY: "binary", FeatureKind.CATEGORICAL: "column"}.get(
                fkind, "numeric"
            )
            if kind == "column":
                raise DataError(
                    f"{self.name}: {name!r} is one column of the categorical group "
                    f"{schema.features[columns[0]].group!r}; name the group instead"
                )
        else:
            raise DataError(
                f"{self.name}: no column or categorical group named {name!r} in {data.name!r} "
                f"(columns: {', '.join(schema.names[:8])}{', ...' if len(schema) > 8 else ''})"
            )
        spec = target.input_spec
        model_names = spec.feature_names
        if model_names is not None and not all(schema.names[c] in model_names for c in columns):
            raise IncompatibleModelError(
                f"{self.name}: the model {target.name!r} does not take {name!r} as an input; "
                "an attribute the model never sees cannot leak through it (use the imputation "
                "baseline alone)"
            )
        if spec.n_features != data.n_features:
            raise IncompatibleModelError(
                f"{self.name}: the model {target.name!r} takes {spec.n_features} features but "
                f"the data has {data.n_features}; it cannot be queried with {name!r} filled in"
            )
        if kind == "categorical":
            k = len(columns)
            return _Attribute(
                name, kind, columns, np.eye(k), tuple(schema.names[c] for c in columns), None
            )
        if kind == "binary":
            return _Attribute(name, kind, columns, np.array([[0.0], [1.0]]), ("0", "1"), None)
        col = aux.X[:, columns[0]]
        distinct = np.unique(col)
        if len(distinct) < 2:
            raise DataError(
                f"{self.name}: {name!r} takes fewer than 2 distinct values in the auxiliary "
                "data; there is nothing to infer"
            )
        if len(distinct) <= self.n_bins:
            edges = (distinct[1:] + distinct[:-1]) / 2
            reps = distinct
        else:
            edges = np.unique(np.quantile(col, np.linspace(0, 1, self.n_bins + 1)[1:-1]))
            which = np.searchsorted(edges, col, side="right")
            reps = np.array([np.median(col[which == b]) for b in range(len(edges) + 1)])
        labels = tuple(_fmt_bin(edges, b) for b in range(len(reps)))
        return _Attribute(name, "binned", columns, reps.reshape(-1, 1), labels, edges)

    def _observed(self, target: Target, X: FloatArray, use_scores: bool) -> FloatArray:
        """The model's output on the true records: probabilities, or a one-hot label."""
        if use_scores:
            return target.predict_proba(X)
        return np.asarray(np.eye(target.n_classes)[target.predict(X)], dtype=np.float64)

    def _model_scores(
        self, target: Target, attr: _Attribute, X: FloatArray, y: IntArray, use_scores: bool
    ) -> FloatArray:
        """Log-likelihood of each row's true label under each candidate, shape (n, k)."""
        n, k = len(X), attr.k
        queries = np.repeat(X, k, axis=0)
        queries[:, attr.columns] = np.tile(attr.values, (n, 1))
        yy = np.repeat(y, k)
        if use_scores:
            p = target.predict_proba(queries)[np.arange(n * k), yy]
            out = np.log(np.clip(p, 1e-12, 1.0))
        else:
            out = np.where(target.predict(queries) == yy, 0.0, _LOG_FLOOR)
        return np.asarray(out.reshape(n, k), dtype=np.float64)


def _best_imputer(X: FloatArray, t: IntArray, seed: int) -> str:
    """The imputer kind with the better 3-fold cross-validated accuracy (ties: logistic)."""
    counts = np.bincount(t)
    folds = int(min(3, counts[counts > 0].min())) if len(counts[counts > 0]) > 1 else 0
    if folds < 2:
        return "logistic"
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    k = int(t.max()) + 1
    acc = {}
    for kind in ("logistic", "hgb"):
        hits = 0
        for train, test in splitter.split(X, t):
            model = _Imputer(kind, seed, k).fit(X[train], t[train])
            hits += int(np.sum(np.argmax(model.predict_proba(X[test]), axis=1) == t[test]))
        acc[kind] = hits
    return "hgb" if acc["hgb"] > acc["logistic"] else "logistic"


class _Imputer:
    """A classifier predicting the candidate index; a constant when one value is seen."""

    def __init__(self, kind: str, seed: int, k: int) -> None:
        self.kind = kind
        self.seed = seed
        self.k = k
        self.model: Any = None
        self.classes_: IntArray = np.zeros(0, dtype=np.int64)

    def fit(self, X: FloatArray, t: IntArray) -> _Imputer:
        self.classes_ = np.unique(t)
        if len(self.classes_) < 2:
            return self
        if self.kind == "hgb":
            from sklearn.ensemble import HistGradientBoostingClassifier

            self.model = HistGradientBoostingClassifier(
                max_iter=100,
                max_leaf_nodes=15,
                l2_regularization=1.0,
                early_stopping=False,
                random_state=self.seed,
            )
        else:
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            self.model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        self.model.fit(X, t)
        return self

    def predict_proba(self, X: FloatArray) -> FloatArray:
        out = np.zeros((len(X), self.k), dtype=np.float64)
        if self.model is None:
            out[:, self.classes_[0]] = 1.0
        else:
            out[:, self.classes_] = self.model.predict_proba(X)
        return out


def _softmax(s: FloatArray) -> FloatArray:
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def _fmt_bin(edges: FloatArray, b: int) -> str:
    lo = "-inf" if b == 0 else f"{edges[b - 1]:.4g}"
    hi = "inf" if b == len(edges) else f"{edges[b]:.4g}"
    return f"[{lo}, {hi})"


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials (``(nan, nan)`` if n is 0)."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def _score(truth: IntArray, guess: IntArray, probs: FloatArray, k: int, z: float) -> MethodScore:
    n = len(truth)
    hits = int(np.sum(guess == truth))
    recalls = [float(np.mean(guess[truth == c] == c)) for c in range(k) if np.any(truth == c)]
    auc: float | None = None
    if k == 2 and 0 < int(truth.sum()) < n:
        from sklearn.metrics import roc_auc_score

        auc = float(roc_auc_score(truth, probs[:, 1]))
    return MethodScore(
        accuracy=hits / n,
        accuracy_ci=_wilson(hits, n, z),
        balanced_accuracy=float(np.mean(recalls)),
        auc=auc,
        n=n,
    )


def _paired(d: FloatArray, z: float) -> tuple[float, tuple[float, float]]:
    """Mean of paired differences and its normal-approximation interval."""
    n = len(d)
    mean = float(d.mean())
    # Never narrower than one discordant pair's worth, so that ties do not give a zero width.
    se = max(float(d.std(ddof=1)) if n > 1 else 1.0, 1.0 / math.sqrt(n)) / math.sqrt(n)
    return mean, (max(-1.0, mean - z * se), min(1.0, mean + z * se))


# ---------------------------------------------------------------------- finding
def attribute_inference_finding(
    result: AttributeInferenceResult,
    *,
    target: str,
    check: str = "privacy.attribute",
    max_leakage: float = 0.05,
    max_member_specific_leakage: float = 0.05,
    location: str | None = None,
) -> Finding:
    """Turn an :class:`AttributeInferenceResult` into an MLW-PRI-002 finding.

    The metric is ``leakage_members``: the best model-using attacker's accuracy on the
    training rows minus the imputation baseline's. The finding fails above
    ``max_leakage``; its severity is raised to high when the leakage on members also
    exceeds the leakage on non-members by more than ``max_member_specific_leakage``
    (the model reveals its training records, not only the population's statistics).

    Parameters
    ----------
    result : AttributeInferenceResult
        The attack's result.
    target : str
        Name of the model.
    check : str
        Id of the check reported.
    max_leakage : float, default=0.05
        Largest accepted accuracy advantage over imputation, in ``[0, 1]``.
    max_member_specific_leakage : float, default=0.05
        Member-specific leakage above which the severity becomes high.
    location : str or None
        Model file, for SARIF.

    Returns
    -------
    Finding
    """
    check_number("attribute_inference_finding", "max_leakage", max_leakage, low=0.0, high=1.0)
    check_number(
        "attribute_inference_finding",
        "max_member_specific_leakage",
        max_member_specific_leakage,
        low=0.0,
        high=1.0,
    )
    value = result.leakage_members
    lo, hi = result.leakage_members_ci
    # Rough confidence in the verdict: how far the threshold sits from the estimate,
    # in units of the interval's half-width (normal approximation).
    half = max((hi - lo) / 2, 1e-12)
    from scipy import stats

    z_level = float(stats.norm.ppf(0.5 + float(result.params.get("confidence_level", 0.95)) / 2))
    confidence = float(stats.norm.cdf(abs(value - max_leakage) / half * z_level))
    member_specific = result.member_specific_leakage
    severity = (
        Severity.HIGH
        if (value > max_leakage and member_specific > max_member_specific_leakage)
        else None
    )
    base = result.members["imputation"].accuracy
    best = result.members[result.best_method].accuracy
    description = (
        f"Knowing every other feature and the label, an attacker guesses {result.attribute!r} "
        f"of training records with {best:.1%} accuracy using the model ({result.best_method}), "
        f"against {base:.1%} for imputation without the model: an advantage of {value:+.1%} "
        f"(CI {lo:+.1%} to {hi:+.1%}); on held-out records the advantage is "
        f"{result.leakage_non_members:+.1%}. Policy: at most {max_leakage:.0%}."
    )
    evidence = {
        **result.to_dict(),
        "max_member_specific_leakage": max_member_specific_leakage,
    }
    return Finding.from_rule(
        RULE_ATTRIBUTE_INFERENCE,
        target=target,
        check=check,
        metric="attribute_advantage_over_imputation",
        value=value,
        threshold=max_leakage,
        higher_is_better=False,
        confidence=confidence,
        severity=severity,
        description=description,
        evidence=evidence,
        location=location,
    )
