"""The evaluation protocol: an AutoAttack-style cascade with sanity checks.

Croce and Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020.

:func:`evaluate` attacks every correctly classified row at increasing budgets with a
cascade of attacks chosen from what the target offers — gradient attacks when it has
gradients, a score-based search when it returns scores, a decision-based search when it
returns labels only — and each row only until it falls (a row broken at a small budget
is broken at every larger one). It reports the pointwise worst case: robust accuracy per
budget with a 95 % interval, the attack success rate, perturbation sizes and features
changed, queries and time per attack, and the sanity checks that say when the
evaluation itself cannot be trusted (probabilities instead of logits, zero gradients,
randomised outputs, a black-box attack beating the white-box ones).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_choice, check_number
from mlwarden.data.schema import FeatureKind, FeatureSchema
from mlwarden.evasion.base import EvasionAttack
from mlwarden.evasion.threat_model import default_schema
from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.models.base import Capability, Target

__all__ = ["EpsResult", "RobustnessEvaluation", "SanityIssue", "StageStats", "evaluate"]

FloatArray = npt.NDArray[np.float64]
PRESETS = ("fast", "standard")
NORMS = ("linf", "l2")


@dataclass(frozen=True)
class SanityIssue:
    """A reason to distrust an evaluation (AutoAttack's flags).

    Attributes
    ----------
    code : str
        ``probabilities_not_logits``, ``zero_gradients``, ``randomized_outputs`` or
        ``black_box_beats_white_box``.
    message : str
        What was seen and why it matters.
    value : float
        The measured quantity (a fraction of rows, or 1.0 for yes/no flags).
    """

    code: str
    message: str
    value: float


@dataclass(frozen=True)
class EpsResult:
    """Robustness at one budget."""

    eps: float
    robust_accuracy: float
    ci95: tuple[float, float]
    attack_success_rate: float
    n_robust: int


@dataclass
class StageStats:
    """What one attack of the cascade did over all budgets."""

    name: str
    white_box: bool
    evaded: int = 0
    queries: int = 0
    seconds: float = 0.0


@dataclass
class RobustnessEvaluation:
    """The result of :func:`evaluate`.

    Attributes
    ----------
    eps : list of float
        Budgets, ascending.
    n : int
        Rows evaluated.
    clean_accuracy : float
        Accuracy before any attack.
    per_eps : list of EpsResult
        Robust accuracy per budget (pointwise worst case over the cascade).
    broken_at : ndarray of shape (n,)
        Smallest budget at which each row fell (``inf``: never; ``0``: misclassified
        without attack).
    broken_by : ndarray of shape (n,)
        Name of the attack that broke each row (``""``: none; ``"clean"``: misclassified).
    x_adv : ndarray of shape (n, d)
        The adversarial row found for each broken row (the original row otherwise).
    linf : ndarray of shape (n,)
        L∞ size of each adversarial perturbation in per-feature scale units (0 if none).
    features_changed : ndarray of shape (n,)
        Number of features each adversarial row changed.
    stages : list of StageStats
        Per attack: rows evaded, queries and seconds.
    sanity : list of SanityIssue
        Reasons the evaluation may be unreliable (empty when none was seen).
    measured : dict
        Every sanity quantity that was measured, flagged or not: sanity code → value
        (a fraction of rows, or 0/1 for yes/no checks).
    """

    eps: list[float]
    n: int
    clean_accuracy: float
    per_eps: list[EpsResult]
    broken_at: FloatArray
    broken_by: npt.NDArray[Any]
    x_adv: FloatArray
    linf: FloatArray
    features_changed: npt.NDArray[np.int64]
    stages: list[StageStats] = field(default_factory=list)
    sanity: list[SanityIssue] = field(default_factory=list)
    measured: dict[str, float] = field(default_factory=dict)

    def robust_accuracy(self, eps: float) -> float:
        """Robust accuracy at budget ``eps`` (one of :attr:`eps`)."""
        for r in self.per_eps:
            if np.isclose(r.eps, eps):
                return r.robust_accuracy
        raise InvalidParameterError(f"eps={eps} was not evaluated; evaluated: {self.eps}")

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable summary."""
        return {
            "n": self.n,
            "clean_accuracy": self.clean_accuracy,
            "per_eps": [
                {"eps": r.eps, "robust_accuracy": r.robust_accuracy, "ci95": list(r.ci95),
                 "attack_success_rate": r.attack_success_rate, "robust": r.n_robust}
                for r in self.per_eps
            ],
            "stages": [
                {"attack": s.name, "white_box": s.white_box, "evaded": s.evaded,
                 "queries": s.queries, "seconds": round(s.seconds, 3)}
                for s in self.stages
            ],
            "sanity": [{"code": i.code, "message": i.message, "value": i.value}
                       for i in self.sanity],
        }  # fmt: skip


AttackFactory = Callable[[float], EvasionAttack]


@dataclass(frozen=True)
class Escalation:
    """A cascade stage that runs at a budget only when the stage before it fooled the
    model on at least one row at that budget.

    It spends a larger budget of the same search only where the cheaper round showed
    that the search finds what the attacks before it missed.
    """

    factory: AttackFactory

    def __call__(self, eps: float) -> EvasionAttack:
        return self.factory(eps)


def default_cascade(
    target: Target,
    preset: str = "fast",
    norm: str = "linf",
    *,
    schema: FeatureSchema | None = None,
    categorical: str = "free",
    square_queries: int | None = None,
) -> list[tuple[str, AttackFactory]]:
    """The attacks :func:`evaluate` (and the ``evasion.whitebox`` check) run, in order.

    As AutoAttack, when the target has gradients: APGD with the cross-entropy, then
    targeted APGD (DLR for 4+ classes, the logit margin otherwise) against the most likely
    other classes, then — when the attacker controls binary or categorical features —
    PGD over every combination of those choices (:class:`~mlwarden.evasion.SweepPGD`).
    On a tree ensemble whose trees mlwarden reads: the tree attack. Last, when the target
    returns scores, the Square Attack (L∞), which catches masked gradients.

    ``"fast"``: APGD 50 steps, the 3 most likely target classes, Square 1000 queries.
    ``"standard"`` spends AutoAttack's budgets where they pay: APGD 100 steps; up to 9
    target classes, in order of likelihood, stopping after two in a row fool no row;
    Square 1000 queries, then 4000 more (``"Square+"``) at a budget only when those first
    1000 fooled the model on a row the white-box attacks missed — the sign of masked
    gradients that Square is there to catch. Without white-box stages (a black-box
    target) Square gets its 5000 queries at once.

    Parameters
    ----------
    target : Target
        The model.
    preset : {"fast", "standard"}
        Budgets: steps, target classes and queries.
    norm : {"linf", "l2"}
        Perturbation norm (the sweep, tree and Square stages are L∞ only).
    schema : FeatureSchema, optional
        The threat model; decides whether the discrete sweep runs.
    categorical : {"free", "fixed"}
        Whether attacker-controlled binary/categorical features may change.
    square_queries : int, optional
        Queries per row of the Square stage (default 1000, or 5000 for ``"standard"``).
    """
    from mlwarden.evasion.apgd import APGD
    from mlwarden.evasion.square import SquareAttack
    from mlwarden.evasion.sweep import SweepPGD

    caps = target.capabilities
    standard = preset == "standard"
    linf = norm == "linf"
    stages: list[tuple[str, AttackFactory]] = []
    if Capability.GRADIENTS in caps:
        steps = 100 if standard else 50
        stages.append(
            ("APGD-ce", attack_factory(APGD, steps=steps, loss="ce", norm=norm,
                                       categorical=categorical))
        )  # fmt: skip
        if Capability.SCORES in caps:
            stages.append(
                ("APGD-T", attack_factory(APGD, steps=steps, loss="auto-targeted", norm=norm,
                                          n_target_classes=9 if standard else 3,
                                          target_patience=2 if standard else None,
                                          categorical=categorical))
            )  # fmt: skip
        if linf and categorical == "free" and _has_discrete_choices(schema):
            stages.append(
                ("SweepPGD", attack_factory(SweepPGD, steps=20 if standard else 10,
                                            categorical=categorical))
            )  # fmt: skip
    elif linf and is_tree_ensemble(target):
        from mlwarden.evasion.trees.heuristic import TreeGreedyAttack

        stages.append(("TreeGreedy", attack_factory(TreeGreedyAttack, categorical=categorical)))
    if Capability.SCORES in caps and linf:
        queries = square_queries or (5000 if standard else 1000)
        if standard and stages and square_queries is None:
            # After white-box attacks, Square is the check for masked gradients: a first
            # round of 1000 queries, and the remaining 4000 only when that round fooled
            # the model on rows the white-box attacks missed. Without white-box stages
            # it is the main attack and gets its whole budget at once.
            stages.append(
                ("Square", attack_factory(SquareAttack, n_queries=1000, categorical=categorical))
            )
            stages.append(
                ("Square+", Escalation(attack_factory(SquareAttack, n_queries=queries - 1000,
                                                      categorical=categorical)))
            )  # fmt: skip
        else:
            stages.append(
                ("Square", attack_factory(SquareAttack, n_queries=queries, categorical=categorical))
            )
    return stages


def _has_discrete_choices(schema: FeatureSchema | None) -> bool:
    """True when the attacker controls binary or categorical features."""
    if schema is None:
        return False
    discrete = schema.mask(FeatureKind.BINARY, FeatureKind.CATEGORICAL)
    return bool(np.any(discrete & schema.mutable))


def is_tree_ensemble(target: Target) -> bool:
    """True when the target wraps a tree ensemble whose trees mlwarden can read."""
    estimator = getattr(target, "estimator", None)
    if estimator is None:
        return False
    from mlwarden.evasion.trees.ensemble import read_tree_ensemble
    from mlwarden.exceptions import CapabilityError, IncompatibleModelError

    try:
        read_tree_ensemble(estimator)
    except (CapabilityError, IncompatibleModelError):
        # Unreadable (or unfaithfully read) trees: the black-box attacks run instead.
        return False
    return True


def attack_factory(cls: type[EvasionAttack], **params: Any) -> AttackFactory:
    """``factory(eps)`` building ``cls(eps=eps, **params)``."""

    def make(eps: float) -> EvasionAttack:
        return cls(eps=eps, **params)  # type: ignore[call-arg]

    return make


def _interval(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    from scipy import stats

    lo, hi = np.asarray(stats.beta.ppf([0.025, 0.975], k + 1, n - k + 1), dtype=np.float64)
    return (float(lo), float(hi))


def _sanity_before(
    target: Target,
    x: FloatArray,
    y: npt.NDArray[np.int64],
    schema: FeatureSchema,
    measured: dict[str, float],
) -> list[SanityIssue]:
    issues: list[SanityIssue] = []
    caps = target.capabilities
    if len(x) == 0:
        return issues
    probe = x[: min(len(x), 64)]
    if Capability.SCORES in caps:
        a, b = target.predict_proba(probe), target.predict_proba(probe)
    else:
        a, b = target.predict(probe).astype(float), target.predict(probe).astype(float)
    measured["randomized_outputs"] = 0.0 if np.array_equal(a, b) else 1.0
    if not np.array_equal(a, b):
        issues.append(
            SanityIssue(
                "randomized_outputs",
                "the same inputs gave different outputs: the model is randomised, so single "
                "attack runs understate what an attacker averaging many queries achieves",
                1.0,
            )
        )
    if Capability.GRADIENTS in caps:
        measured["probabilities_not_logits"] = 0.0 if Capability.LOGITS in caps else 1.0
        if Capability.LOGITS not in caps:
            issues.append(
                SanityIssue(
                    "probabilities_not_logits",
                    "the model returns probabilities, not logits: gradients of a saturated "
                    "softmax vanish and make gradient attacks look weaker than they are",
                    1.0,
                )
            )
        _, grad = target.loss_gradient(probe, y[: len(probe)])
        movable = schema.mutable
        zero = np.all(np.abs(grad[:, movable]) == 0.0, axis=1) if movable.any() else None
        if zero is not None:
            measured["zero_gradients"] = float(zero.mean())
        if zero is not None and zero.mean() > 0.01:
            issues.append(
                SanityIssue(
                    "zero_gradients",
                    f"{zero.mean():.0%} of rows have an exactly zero input gradient on the "
                    "features the attacker controls: gradients are masked or saturated",
                    float(zero.mean()),
                )
            )
    return issues


def evaluate(
    target: Target,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    eps: float | Sequence[float],
    norm: str = "linf",
    preset: str = "fast",
    schema: FeatureSchema | None = None,
    attacks: Sequence[tuple[str, AttackFactory]] | None = None,
    random_state: RandomState = None,
    progress: ProgressCallback | None = None,
) -> RobustnessEvaluation:
    """Evaluate robustness with a cascade of attacks, each row attacked until it falls.

    Parameters
    ----------
    target : Target
        The model.
    x : array-like of shape (n, d)
        Rows to evaluate.
    y : array-like of shape (n,)
        Their true labels (as the model's classes, not indices).
    eps : float or sequence of float
        Budgets in per-feature scale units (see :mod:`mlwarden.evasion.threat_model`).
    norm : {"linf", "l2"}
        Perturbation norm (the Square stage is L∞ only).
    preset : {"fast", "standard"}
        Attack budgets: ``"standard"`` spends more steps, restarts and queries.
    schema : FeatureSchema, optional
        The threat model's feature constraints.
    attacks : sequence of (name, factory), optional
        Replace the default cascade: ``factory(eps)`` returns an attack.
    random_state : int, Generator or None
        Seed.
    progress : callable, optional
        ``progress(task, done, total)``.

    Returns
    -------
    RobustnessEvaluation
    """
    check_choice("evaluate", "norm", norm, NORMS)
    check_choice("evaluate", "preset", preset, PRESETS)
    grid = sorted({float(check_number("evaluate", "eps", e, low=0, low_open=True))
                   for e in (eps if isinstance(eps, Sequence) else [eps])})  # fmt: skip
    if not grid:
        raise InvalidParameterError("evaluate: eps must name at least one budget")
    xs = np.asarray(x, dtype=np.float64)
    if xs.ndim != 2:
        raise DataError(f"evaluate: x must be a 2-D array, got shape {xs.shape}")
    ys = target.encode_labels(y)
    if len(ys) != len(xs):
        raise DataError(f"evaluate: {len(xs)} rows but {len(ys)} labels")
    schema = schema or default_schema(target)
    cascade = (
        list(attacks)
        if attacks is not None
        else default_cascade(target, preset, norm, schema=schema)
    )
    if not cascade:
        raise InvalidParameterError(
            f"evaluate: no attack applies to {target.name!r} "
            f"(offers {', '.join(target.capabilities.names()) or 'nothing'})"
        )
    built = [(name, factory(grid[0])) for name, factory in cascade]
    for _, attack in built:
        attack._validate_params()
        target.require(attack.requires, by=attack.name)
    rng = as_generator(random_state)

    n = len(xs)
    measured: dict[str, float] = {}
    sanity = _sanity_before(target, xs, ys, schema, measured)
    correct = target.predict(xs) == ys if n else np.zeros(0, dtype=bool)
    robust = correct.copy()
    broken_at = np.where(correct, np.inf, 0.0)
    broken_by = np.where(correct, "", "clean").astype(object)
    x_adv = xs.copy()
    stages = [
        StageStats(name=name, white_box=attack.white_box or Capability.GRADIENTS in attack.requires)
        for name, attack in built
    ]
    per_eps: list[EpsResult] = []
    n_correct = int(correct.sum())
    for step, e in enumerate(grid):
        report_progress(progress, f"evaluate {target.name}", step, len(grid))
        previous_hits = 0
        for stage, (_, factory) in zip(stages, cascade, strict=True):
            idx = np.flatnonzero(robust)
            if idx.size == 0:
                break
            if isinstance(factory, Escalation) and previous_hits == 0:
                continue
            t0 = time.perf_counter()
            res = factory(e).generate(target, xs[idx], ys[idx], schema=schema, random_state=rng)
            stage.seconds += time.perf_counter() - t0
            stage.queries += int(res.queries.sum())
            hit = idx[res.success]
            previous_hits = int(hit.size)
            stage.evaded += int(hit.size)
            robust[hit] = False
            broken_at[hit] = e
            broken_by[hit] = stage.name
            x_adv[hit] = res.x_adv[res.success]
        k = int(robust.sum())
        per_eps.append(
            EpsResult(
                eps=e,
                robust_accuracy=k / n if n else float("nan"),
                ci95=_interval(k, n),
                attack_success_rate=(n_correct - k) / n_correct if n_correct else 0.0,
                n_robust=k,
            )
        )
    report_progress(progress, f"evaluate {target.name}", len(grid), len(grid))

    white = {s.name for s in stages if s.white_box}
    black = [s for s in stages if not s.white_box]
    extra = sum(s.evaded for s in black)
    if white and black:
        measured["black_box_beats_white_box"] = extra / n_correct if n_correct else 0.0
    if white and extra:
        sanity.append(
            SanityIssue(
                "black_box_beats_white_box",
                f"black-box attacks evaded {extra} rows the gradient attacks could not at the "
                "same budget: gradients are unreliable, gradient-only figures overstate "
                "robustness",
                extra / n_correct if n_correct else 0.0,
            )
        )
    # eps bounds graded features only (categorical switches are discrete choices).
    graded = schema.mask(FeatureKind.CONTINUOUS, FeatureKind.INTEGER)
    delta = np.abs(x_adv - xs)[:, graded] / schema.scale[graded]
    attacked = np.isfinite(broken_at) & (broken_at > 0)
    linf = np.where(attacked, delta.max(axis=1, initial=0.0), 0.0)
    changed = np.sum(np.abs(x_adv - xs) > 1e-12, axis=1).astype(np.int64)
    return RobustnessEvaluation(
        eps=grid,
        n=n,
        clean_accuracy=float(correct.mean()) if n else float("nan"),
        per_eps=per_eps,
        broken_at=broken_at,
        broken_by=broken_by,
        x_adv=x_adv,
        linf=linf,
        features_changed=changed,
        stages=stages,
        sanity=sanity,
        measured=measured,
    )
