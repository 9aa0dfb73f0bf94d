"""Model extraction: copy a model by querying it (:func:`extract`).

References: F. Tramèr et al., "Stealing Machine Learning Models via Prediction APIs",
USENIX Security 2016 (retraining attacks, uniform queries); N. Papernot et al.,
"Practical Black-Box Attacks against Machine Learning", ASIA CCS 2017 (Jacobian-based
augmentation, transfer of adversarial examples); T. Orekondy et al., "Knockoff Nets:
Stealing Functionality of Black-Box Models", CVPR 2019 (natural-data queries).

Threat model (ATLAS AML.T0024.002 "Extract AI Model", OWASP ML05 "Model Theft"): the
attacker can send rows to the model's prediction interface (a library object or a URL)
and reads back labels, or labels and probabilities; it knows the input format (the
schema) and, depending on the strategy, holds no data (``uniform``), a few seed rows
(``jacobian``) or a pool of unlabelled rows (``knockoff``, ``active``). It trains a
surrogate on the answers. Every row sent counts against ``budget``, which is spent
exactly. The auditor's own queries (the victim's labels on the held-out rows that
measure fidelity) are counted apart.

The copy is measured by *fidelity* (how often the surrogate agrees with the victim on
held-out rows) and *accuracy* (on their true labels), as curves over the queries spent,
and by *transferability*: the share of evasion examples crafted on the surrogate that
also fool the victim (:func:`transferability`).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden._random import RandomState, as_generator
from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import FeatureSchema
from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.models.base import Capability, Target
from mlwarden.theft.strategies import ExtractionStrategy, make_strategy
from mlwarden.theft.strategies.base import ExtractionState, free_schema

__all__ = [
    "CurvePoint",
    "ExtractionResult",
    "TransferResult",
    "extract",
    "transferability",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SurrogateSpec = Any
"""``None`` (default model), an unfitted scikit-learn classifier (cloned), or a factory
``() -> classifier``."""

_MIN_SOFT_WEIGHT = 1e-3
_SCORE_MODES: tuple[Any, ...] = ("auto", "weights", "logits", True, False)


@dataclass(frozen=True)
class CurvePoint:
    """The surrogate measured after ``queries`` queries."""

    queries: int
    fidelity: float
    accuracy: float | None
    balanced_fidelity: float = float("nan")
    """Agreement averaged over the victim's answers (each class weighs the same), so that
    a copy that always answers the majority class scores ``1 / n_classes``, not the
    majority's share."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "queries": self.queries,
            "fidelity": self.fidelity,
            "balanced_fidelity": self.balanced_fidelity,
            "accuracy": self.accuracy,
        }


@dataclass
class ExtractionResult:
    """What :func:`extract` returns.

    Attributes
    ----------
    surrogate : Target
        The stolen copy, a usable target (wrapping :attr:`estimator`).
    estimator : object
        The fitted scikit-learn classifier behind :attr:`surrogate`.
    strategy : str
        Strategy name.
    queries : int
        Queries the attacker spent (equal to the budget).
    curve : list of CurvePoint
        Fidelity and accuracy on the held-out rows at each budget checkpoint.
    used_scores : bool
        Whether the surrogate was trained on the victim's probabilities.
    victim : Target
        The model that was copied.
    X_queried : ndarray
        The rows sent.
    y_queried : ndarray
        The victim's answers, as class indices.
    evaluation_queries : int
        The auditor's queries to label the held-out rows (not part of the budget).
    baseline_fidelity : float
        Agreement of a constant guess (the victim's most frequent answer on the
        held-out rows): fidelity means something only above it.
    seconds : float
        Wall time.
    scores_as : {"weights", "logits"} or None
        How the probabilities were used (see ``use_scores``); ``None`` for labels.
    """

    surrogate: Target
    estimator: Any
    strategy: str
    queries: int
    curve: list[CurvePoint]
    used_scores: bool
    victim: Target
    X_queried: FloatArray = field(repr=False)
    y_queried: IntArray = field(repr=False)
    evaluation_queries: int = 0
    baseline_fidelity: float = float("nan")
    seconds: float = 0.0
    scores_as: str | None = None

    @property
    def fidelity(self) -> float:
        """Fidelity at the full budget (NaN without held-out rows)."""
        return self.curve[-1].fidelity if self.curve else float("nan")

    @property
    def accuracy(self) -> float | None:
        """Accuracy at the full budget (``None`` without true labels)."""
        return self.curve[-1].accuracy if self.curve else None

    @property
    def balanced_fidelity(self) -> float:
        """Balanced fidelity at the full budget (see :class:`CurvePoint`)."""
        return self.curve[-1].balanced_fidelity if self.curve else float("nan")

    def queries_to(self, fidelity: float, *, balanced: bool = False) -> int | None:
        """The first checkpoint's query count at which (balanced) fidelity reached
        ``fidelity``; ``None`` when it never did within the budget."""
        for point in self.curve:
            value = point.balanced_fidelity if balanced else point.fidelity
            if value >= fidelity:
                return point.queries
        return None

    def transferability(
        self,
        x: npt.ArrayLike,
        *,
        schema: FeatureSchema | None = None,
        attack: Any = None,
        eps: float = 0.5,
        max_rows: int = 200,
        random_state: RandomState = None,
    ) -> TransferResult:
        """:func:`transferability` of evasion examples from the surrogate to the victim."""
        return transferability(
            self.surrogate,
            self.victim,
            x,
            schema=schema,
            attack=attack,
            eps=eps,
            max_rows=max_rows,
            random_state=random_state,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the queried rows)."""
        return {
            "strategy": self.strategy,
            "queries": self.queries,
            "used_scores": self.used_scores,
            "scores_as": self.scores_as,
            "fidelity": self.fidelity,
            "balanced_fidelity": self.balanced_fidelity,
            "accuracy": self.accuracy,
            "baseline_fidelity": self.baseline_fidelity,
            "curve": [p.to_dict() for p in self.curve],
            "evaluation_queries": self.evaluation_queries,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class TransferResult:
    """Evasion examples crafted on a surrogate, replayed on the victim.

    Attributes
    ----------
    attack : str
        The evasion attack run on the surrogate.
    n_rows : int
        Rows attacked (rows where surrogate and victim agreed).
    surrogate_success : float
        Share of rows whose adversarial version fools the surrogate.
    transfer_rate : float
        Among those, the share that also fools the victim (NaN when none fooled the
        surrogate).
    victim_fooled : float
        Share of all attacked rows whose adversarial version fools the victim.
    """

    attack: str
    n_rows: int
    surrogate_success: float
    transfer_rate: float
    victim_fooled: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)


# ---------------------------------------------------------------------- the attack
def extract(
    target: Any,
    *,
    budget: int,
    strategy: str | ExtractionStrategy = "knockoff",
    surrogate: SurrogateSpec = None,
    pool: Dataset | npt.ArrayLike | None = None,
    test: Dataset | tuple[npt.ArrayLike, npt.ArrayLike] | npt.ArrayLike | None = None,
    schema: FeatureSchema | None = None,
    budgets: Sequence[int] | None = None,
    use_scores: bool | str = "auto",
    random_state: RandomState = None,
    progress: ProgressCallback | None = None,
) -> ExtractionResult:
    """Copy ``target`` by querying it at most ``budget`` times.

    Parameters
    ----------
    target : Target or object
        The victim: a :class:`~mlwarden.models.Target`, anything
        :func:`mlwarden.target` wraps, or an ``http(s)://`` prediction URL
        (:class:`~mlwarden.models.remote.RemoteTarget`).
    budget : int
        Queries (rows sent to the victim), spent exactly.
    strategy : {"knockoff", "pool", "uniform", "jacobian", "active"} or ExtractionStrategy
        How queries are chosen (see :mod:`mlwarden.theft.strategies`); ``"pool"`` is
        ``"knockoff"``. Pass an instance to set its parameters.
    surrogate : None, scikit-learn classifier or callable
        The copy's model: ``None`` for a ``HistGradientBoostingClassifier``, an
        unfitted classifier (cloned), or a factory returning one.
    pool : Dataset or array-like, optional
        Unlabelled rows the attacker holds. Needed by ``knockoff``; seeds for
        ``jacobian``; candidates for ``active``; optional for ``uniform`` (ranges of
        unbounded features).
    test : Dataset, (X, y) or X, optional
        Held-out rows that measure the copy; without them a fifth of ``pool`` (at most
        2,000 rows) is held out, and without a pool no curve is measured.
    schema : FeatureSchema, optional
        The input format; defaults to the schema of ``pool`` or ``test`` or the
        target's declared bounds.
    budgets : sequence of int, optional
        Checkpoints at which the copy is measured; default ``budget`` / 8, / 4, / 2, 1.
    use_scores : {"auto", "weights", "logits", True, False}
        How the victim's probabilities are used. ``"weights"`` (or ``True``): soft
        labels, each row copied once per class and weighted by its probability (the
        surrogate must take ``sample_weight``). ``"logits"``: the surrogate regresses the
        log-odds (binary) or centred log-probabilities
        (:class:`~mlwarden.theft.distill.ScoreRegressorClassifier`; ``surrogate`` is then
        a regressor, default ``HistGradientBoostingRegressor``). ``False``: labels only.
        ``"auto"``: ``"weights"`` when the target offers scores and the surrogate takes
        ``sample_weight``, else labels.
    random_state : int, Generator or None
        Seed.
    progress : callable, optional
        ``progress("extract", spent, budget)``.

    Returns
    -------
    ExtractionResult

    Raises
    ------
    InvalidParameterError
        For ``budget <= 0``, an unknown strategy or bad checkpoints.
    DataError
        When ``pool`` or ``test`` do not have the target's feature count, or a
        strategy that needs ``pool`` gets none.
    CapabilityError
        With ``use_scores=True`` on a labels-only target.
    """
    start = time.perf_counter()
    victim = _as_target(target)
    if not isinstance(budget, int | np.integer) or isinstance(budget, bool) or budget <= 0:
        raise InvalidParameterError(f"extract: budget must be an integer >= 1, got {budget!r}")
    budget = int(budget)
    strat = make_strategy(strategy)
    strat.validate()
    checkpoints = _checkpoints(budget, budgets)
    victim.require(Capability.LABELS, by="extract")
    if not any(use_scores is v or use_scores == v for v in _SCORE_MODES):
        raise InvalidParameterError(
            "extract: use_scores must be 'auto', 'weights', 'logits', True or False, "
            f"got {use_scores!r}"
        )
    if use_scores is True or use_scores in ("weights", "logits"):
        victim.require(Capability.SCORES, by=f"extract(use_scores={use_scores!r})")
    d = victim.input_spec.n_features
    pool_x = _rows(pool, d, "pool")
    test_x, test_y = _test_rows(test, d)
    rng = as_generator(random_state)
    if test_x is None and pool_x is not None and len(pool_x) >= 10:
        order = rng.permutation(len(pool_x))
        n_hold = min(2000, len(pool_x) // 5)
        test_x, pool_x = pool_x[order[:n_hold]], pool_x[order[n_hold:]]
    if strat.needs_pool and (pool_x is None or len(pool_x) == 0):
        raise DataError(f"extract: strategy {strat.name!r} needs rows from the attacker (pool)")
    schema = schema or _schema_of(pool, test) or _default_schema(victim)
    if len(schema) != d:
        raise DataError(f"extract: the schema has {len(schema)} features, the target {d}")
    factory = _surrogate_factory(surrogate)
    mode: str | None
    if use_scores is True or use_scores == "weights":
        mode = "weights"
    elif use_scores == "logits":
        mode = "logits"
        if surrogate is not None and not _is_regressor(factory()):
            raise InvalidParameterError(
                "extract: with use_scores='logits' the surrogate must be a regressor (of the "
                "victim's log-odds) or None"
            )
    elif use_scores == "auto":
        offers = Capability.SCORES in victim.capabilities
        mode = "weights" if offers and _takes_sample_weight(factory()) else None
    else:
        mode = None
    soft = mode is not None

    # The auditor's queries: the victim's labels on the held-out rows.
    before = victim.n_queries
    test_victim = None if test_x is None else victim.classes[victim.predict(test_x)]
    evaluation_queries = victim.n_queries - before

    state = ExtractionState(
        schema=free_schema(schema),
        n_classes=victim.n_classes,
        rng=rng,
        pool=pool_x,
        X=np.zeros((0, d)),
        proba=np.zeros((0, victim.n_classes)) if soft else None,
    )
    curve: list[CurvePoint] = []
    spent = 0
    attacker_start = victim.n_queries
    estimator: Any = None
    next_fit = strat.initial_size(budget) if strat.adaptive else budget + 1
    report_progress(progress, "extract", 0, budget)
    while spent < budget:
        stop = min(
            [c for c in checkpoints if c > spent] + [next_fit if next_fit > spent else budget]
        )
        rows = strat.propose(stop - spent, state)
        if len(rows) != stop - spent:  # pragma: no cover - a strategy bug
            raise RuntimeError(
                f"strategy {strat.name!r} proposed {len(rows)} rows, not {stop - spent}"
            )
        _query(victim, rows, state, soft)
        spent = stop
        report_progress(progress, "extract", spent, budget)
        refit = strat.adaptive and spent >= next_fit
        if refit or spent in checkpoints:
            estimator = _fit(factory, state, victim.classes, mode, rng, surrogate is None)
            state.surrogate_proba = _proba_fn(estimator, victim)
        if refit:
            next_fit = spent + strat.round_size(budget)
        if spent in checkpoints and test_x is not None and test_victim is not None:
            pred = estimator.predict(test_x)
            agree = pred == test_victim
            acc = None if test_y is None else float(np.mean(pred == test_y))
            per_class = [float(agree[test_victim == c].mean()) for c in np.unique(test_victim)]
            curve.append(CurvePoint(spent, float(agree.mean()), acc, float(np.mean(per_class))))
    attacker_queries = victim.n_queries - attacker_start
    if attacker_queries != budget:  # pragma: no cover - a target counting bug
        raise RuntimeError(f"extract: the target counted {attacker_queries} queries, not {budget}")
    baseline = float("nan")
    if test_victim is not None and len(test_victim):
        _, counts = np.unique(test_victim, return_counts=True)
        baseline = float(counts.max() / len(test_victim))
    from mlwarden.models import target as wrap

    return ExtractionResult(
        surrogate=wrap(estimator, name=f"{victim.name}-surrogate"),
        estimator=estimator,
        strategy=strat.name,
        queries=budget,
        curve=curve,
        used_scores=soft,
        scores_as=mode,
        victim=victim,
        X_queried=state.X,
        y_queried=state.y,
        evaluation_queries=evaluation_queries,
        baseline_fidelity=baseline,
        seconds=time.perf_counter() - start,
    )


# ------------------------------------------------------------------- transferability
def transferability(
    surrogate: Target,
    victim: Target,
    x: npt.ArrayLike,
    *,
    schema: FeatureSchema | None = None,
    attack: Any = None,
    eps: float = 0.5,
    max_rows: int = 200,
    random_state: RandomState = None,
) -> TransferResult:
    """Craft evasion examples on ``surrogate`` and measure how many also fool ``victim``.

    The rows attacked are those of ``x`` where the surrogate agrees with the victim; the
    goal is to change the victim's answer. The attack only queries the surrogate; the
    victim answers once per row before and once after (the auditor's queries).

    Parameters
    ----------
    surrogate, victim : Target
        The copy (e.g. :attr:`ExtractionResult.surrogate`) and the original.
    x : array-like of shape (n, d)
        Rows to attack.
    schema : FeatureSchema, optional
        The evasion threat model (which features the attacker controls, bounds).
    attack : EvasionAttack, optional
        Default: PGD for a surrogate with gradients, the greedy tree attack for a tree
        ensemble, HopSkipJump otherwise, each with ``eps``.
    eps : float, default=0.5
        L∞ budget in feature-scale units for the default attack.
    max_rows : int, default=200
        Rows attacked at most.
    random_state : int, Generator or None
        Seed.
    """
    rng = as_generator(random_state)
    xs = _rows(x, victim.input_spec.n_features, "x")
    assert xs is not None
    if len(xs) > max_rows:
        xs = xs[rng.choice(len(xs), size=max_rows, replace=False)]
    v_labels = victim.classes[victim.predict(xs)]
    known = np.isin(v_labels, surrogate.classes)
    s_labels = surrogate.classes[surrogate.predict(xs)]
    keep = known & (s_labels == v_labels)
    xs, v_labels = xs[keep], v_labels[keep]
    if attack is None:
        attack = _default_attack(surrogate, eps)
    name = str(getattr(attack, "name", type(attack).__name__))
    if len(xs) == 0:
        return TransferResult(name, 0, float("nan"), float("nan"), float("nan"))
    y_s = surrogate.encode_labels(v_labels)
    res = attack.generate(surrogate, xs, y_s, schema=schema, random_state=rng)
    fooled = victim.classes[victim.predict(res.x_adv)] != v_labels
    success = np.asarray(res.success, dtype=bool)
    return TransferResult(
        attack=name,
        n_rows=len(xs),
        surrogate_success=float(success.mean()),
        transfer_rate=float(fooled[success].mean()) if success.any() else float("nan"),
        victim_fooled=float(fooled.mean()),
    )


def _default_attack(surrogate: Target, eps: float) -> Any:
    from mlwarden.evasion import PGD, HopSkipJump, TreeGreedyAttack

    if Capability.GRADIENTS in surrogate.capabilities:
        return PGD(eps=eps)
    est = getattr(surrogate, "estimator", None)
    kind = type(est).__name__
    if any(
        k in kind
        for k in (
            "HistGradientBoosting",
            "RandomForest",
            "ExtraTrees",
            "DecisionTree",
            "GradientBoosting",
        )
    ):
        return TreeGreedyAttack(eps=eps)
    return HopSkipJump(eps=eps, max_queries=500)


# ------------------------------------------------------------------------- helpers
def _as_target(obj: Any) -> Target:
    if isinstance(obj, Target):
        return obj
    if isinstance(obj, str) and obj.startswith(("http://", "https://")):
        from mlwarden.models.remote import RemoteTarget

        return RemoteTarget(obj)
    from mlwarden.models import target as wrap

    return wrap(obj)


def _checkpoints(budget: int, budgets: Sequence[int] | None) -> list[int]:
    if budgets is None:
        out = {max(1, budget // 8), max(1, budget // 4), max(1, budget // 2), budget}
        return sorted(out)
    vals: set[int] = set()
    for b in budgets:
        if not isinstance(b, int | np.integer) or isinstance(b, bool) or not 0 < b <= budget:
            raise InvalidParameterError(
                f"extract: budgets must be integers in [1, budget={budget}], got {b!r}"
            )
        vals.add(int(b))
    vals.add(budget)
    return sorted(vals)


def _rows(data: Any, d: int, what: str) -> FloatArray | None:
    if data is None:
        return None
    if isinstance(data, Dataset):
        xs = np.asarray(data.X, dtype=np.float64)
    else:
        try:
            xs = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"extract: {what} must be numeric rows: {exc}") from None
    if xs.ndim == 1:
        xs = xs.reshape(1, -1)
    if xs.ndim != 2 or xs.shape[1] != d:
        shape = "x".join(map(str, xs.shape))
        raise DataError(
            f"extract: {what} must have {d} features per row (the target's), got shape {shape}"
        )
    if not np.all(np.isfinite(xs)):
        raise DataError(f"extract: {what} contains NaN or infinite values")
    return xs


def _test_rows(test: Any, d: int) -> tuple[FloatArray | None, npt.NDArray[Any] | None]:
    if test is None:
        return None, None
    if isinstance(test, Dataset):
        return _rows(test, d, "test"), test.y
    if isinstance(test, tuple):
        if len(test) != 2:
            raise DataError("extract: test must be a Dataset, (X, y) or X")
        xs = _rows(test[0], d, "test")
        assert xs is not None
        ys = np.asarray(test[1]).reshape(-1)
        if len(ys) != len(xs):
            raise DataError(f"extract: test has {len(xs)} rows but {len(ys)} labels")
        return xs, ys
    return _rows(test, d, "test"), None


def _schema_of(*data: Any) -> FeatureSchema | None:
    for item in data:
        if isinstance(item, Dataset):
            return item.schema
    return None


def _default_schema(victim: Target) -> FeatureSchema:
    from mlwarden.evasion.threat_model import default_schema

    return default_schema(victim)


def _surrogate_factory(surrogate: SurrogateSpec) -> Callable[[], Any]:
    if surrogate is None:

        def default() -> Any:
            from sklearn.ensemble import HistGradientBoostingClassifier

            return HistGradientBoostingClassifier(max_iter=100)

        return default
    if hasattr(surrogate, "fit") and hasattr(surrogate, "get_params"):
        from sklearn.base import clone

        return lambda: clone(surrogate)
    if callable(surrogate):
        return surrogate  # type: ignore[no-any-return]
    raise InvalidParameterError(
        "extract: surrogate must be None, an unfitted scikit-learn classifier or a factory "
        f"returning one, got {type(surrogate).__name__}"
    )


def _takes_sample_weight(est: Any) -> bool:
    try:
        return "sample_weight" in inspect.signature(est.fit).parameters
    except (TypeError, ValueError):  # pragma: no cover - exotic estimators
        return False


def _query(victim: Target, rows: FloatArray, state: ExtractionState, soft: bool) -> None:
    if soft:
        proba = victim.predict_proba(rows)
        labels = np.asarray(np.argmax(proba, axis=1), dtype=np.int64)
        assert state.proba is not None
        state.proba = np.vstack([state.proba, proba])
    else:
        labels = victim.predict(rows)
    state.X = np.vstack([state.X, rows])
    state.y = np.concatenate([state.y, labels])


def _fit(
    factory: Callable[[], Any],
    state: ExtractionState,
    classes: npt.NDArray[Any],
    mode: str | None,
    rng: np.random.Generator,
    default_surrogate: bool,
) -> Any:
    y = state.y
    if mode == "logits" and state.proba is not None:
        from mlwarden.theft.distill import ScoreRegressorClassifier

        seed = int(rng.integers(0, 2**31 - 1))
        reg = None if default_surrogate else _seeded(factory(), seed)
        model = ScoreRegressorClassifier(regressor=reg, classes=classes, random_state=seed)
        return model.fit(state.X, state.proba)
    if len(np.unique(y)) < 2:
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="most_frequent").fit(state.X, classes[y])
    est = _seeded(factory(), int(rng.integers(0, 2**31 - 1)))
    if mode == "weights" and state.proba is not None:
        k = state.proba.shape[1]
        X = np.repeat(state.X, k, axis=0)
        lab = np.tile(np.arange(k), len(state.X))
        w = state.proba.reshape(-1)
        keep = w >= _MIN_SOFT_WEIGHT
        if len(np.unique(lab[keep])) >= 2:
            est.fit(X[keep], classes[lab[keep]], sample_weight=w[keep])
            return est
    est.fit(state.X, classes[y])
    return est


def _seeded(est: Any, seed: int) -> Any:
    """``est`` with ``random_state=seed`` when it has one left unset."""
    params = est.get_params() if hasattr(est, "get_params") else {}
    if "random_state" in params and params["random_state"] is None:
        est.set_params(random_state=seed)
    return est


def _is_regressor(est: Any) -> bool:
    from sklearn.base import is_regressor

    return bool(is_regressor(est))


def _proba_fn(est: Any, victim: Target) -> Callable[[FloatArray], FloatArray]:
    cols = victim.encode_labels(np.asarray(est.classes_))
    k = victim.n_classes

    def proba(x: FloatArray) -> FloatArray:
        if hasattr(est, "predict_proba"):
            p = np.asarray(est.predict_proba(x), dtype=np.float64)
        else:
            p = np.zeros((len(x), len(cols)))
            p[np.arange(len(x)), np.searchsorted(est.classes_, est.predict(x))] = 1.0
        out = np.zeros((len(x), k))
        out[:, cols] = p
        return out

    return proba
