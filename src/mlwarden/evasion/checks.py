"""Evasion checks: how many of the cases a model exists to catch survive an adaptive attacker.

One check per attacker's knowledge, each an :func:`~mlwarden.evasion.evaluate` cascade:

``evasion.whitebox``
    the attacker has the model: APGD (cross-entropy, then targeted) and a final Square
    stage on gradient models; the tree-reading attack on tree ensembles. Reports
    MLW-EVA-001 and the evaluation's sanity checks (MLW-EVA-003, -005, -006, -007).
``evasion.blackbox``
    the attacker reads scores: the Square Attack. MLW-EVA-002.
``evasion.decision``
    the attacker sees decisions only: HopSkipJump, for targets that return labels only.
    MLW-EVA-004.

Each check samples the rows of the class the model must catch (fraud, for a fraud
model; every row for a data set without a positive class), attacks the ones the model
gets right at increasing budgets ``eps`` (each row only until it falls) and reports the
*robust accuracy* — the fraction still classified correctly — at the policy budget,
with the curve over ``eps``. A row only counts as broken when a feasible row
(immutable features untouched, bounds, integers and one-hot groups respected) fools the
real model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._progress import ProgressCallback
from mlwarden._registry import register
from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.audit.check import Check, CheckResult
from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import FeatureSchema
from mlwarden.evasion.evaluate import (
    AttackFactory,
    RobustnessEvaluation,
    attack_factory,
    default_cascade,
    evaluate,
    is_tree_ensemble,
)
from mlwarden.evasion.rules import (
    RULE_BLACK_BOX,
    RULE_DECISION,
    RULE_PROBABILITIES,
    RULE_RANDOMIZED,
    RULE_WEAK_WHITE_BOX,
    RULE_WHITE_BOX,
    RULE_ZERO_GRADIENTS,
)
from mlwarden.exceptions import InvalidParameterError
from mlwarden.findings.finding import Finding
from mlwarden.findings.taxonomy import Rule, Severity, ThreatFamily
from mlwarden.models.base import Capability, Target

__all__ = ["BlackBoxEvasionCheck", "DecisionEvasionCheck", "WhiteBoxEvasionCheck"]

_DEFAULT_GRID = (0.05, 0.1, 0.25, 0.5, 1.0)
_MAX_EXAMPLES = 5
_PRESETS = ("fast", "standard")


class _RobustnessCheck(Check):
    """Shared logic of the evasion checks; subclasses pick the cascade."""

    family: ClassVar[ThreatFamily] = ThreatFamily.EVASION
    rule: ClassVar[Rule]
    eps: float
    eps_grid: Sequence[float]
    max_samples: int
    min_robust_accuracy: float
    preset: str
    categorical: str

    def __init__(
        self,
        *,
        eps: float = 0.5,
        eps_grid: Sequence[float] = _DEFAULT_GRID,
        max_samples: int = 300,
        min_robust_accuracy: float = 0.5,
        preset: str = "fast",
        categorical: str = "free",
    ) -> None:
        self.eps = eps
        self.eps_grid = eps_grid
        self.max_samples = max_samples
        self.min_robust_accuracy = min_robust_accuracy
        self.preset = preset
        self.categorical = categorical

    _schema: FeatureSchema | None = None
    """The schema of the data being audited (set by :meth:`validate`)."""

    def _cascade(self, target: Target) -> list[tuple[str, AttackFactory]]:
        raise NotImplementedError

    def attack_label(self, target: Target) -> str:
        """Names of the cascade's attacks, e.g. ``APGD-ce + APGD-T + Square``."""
        return " + ".join(name for name, _ in self._cascade(target))

    # ------------------------------------------------------------- validation
    def _validate_params(self) -> None:
        check_number(self.id, "eps", self.eps, low=0, low_open=True)
        check_number(self.id, "min_robust_accuracy", self.min_robust_accuracy, low=0, high=1)
        grid = self.eps_grid
        if isinstance(grid, str) or not isinstance(grid, Sequence) or not grid:
            raise InvalidParameterError(
                f"{self.id}: eps_grid must be a non-empty list of positive numbers, got {grid!r}"
            )
        for e in grid:
            check_number(self.id, "eps_grid", e, low=0, low_open=True)
        check_int(self.id, "max_samples", self.max_samples)
        check_choice(self.id, "preset", self.preset, _PRESETS)
        check_choice(self.id, "categorical", self.categorical, ("free", "fixed"))

    def validate(self, target: Target, data: Dataset) -> None:
        self._validate_params()
        self._schema = data.schema
        super().validate(target, data)
        target.encode_labels(data.labels)
        for _, factory in self._cascade(target):
            attack = factory(float(self.eps))
            attack._validate_params()
            target.require(attack.requires, by=f"check {self.id!r} ({attack.name})")

    # -------------------------------------------------------------------- run
    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        self.validate(target, data)
        rng = random_state
        y_all = target.encode_labels(data.labels)
        if data.positive_label is not None:
            pos = int(target.encode_labels([data.positive_label])[0])
            pool = np.flatnonzero(y_all == pos)
            population = f"{data.name} cases of class {data.positive_label!r}"
        else:
            pool = np.arange(len(y_all))
            population = f"{data.name} rows"
        if pool.size > self.max_samples:
            pool = np.sort(rng.choice(pool, size=self.max_samples, replace=False))
        x = data.X[pool]
        grid = sorted({float(e) for e in self.eps_grid} | {float(self.eps)})
        ev = evaluate(
            target, x, data.labels[pool], eps=grid, schema=data.schema,
            attacks=self._cascade(target), random_state=rng, progress=progress,
        )  # fmt: skip
        findings = [self._robustness_finding(target, data, ev, population)]
        findings += self._sanity_findings(target, ev)
        metrics = self._metrics(target, ev, population)
        table = self._examples_table(target, data, x, ev)
        if table is not None:
            metrics["tables"] = [table]
        return CheckResult(findings=findings, metrics=metrics)

    # -------------------------------------------------------------- reporting
    def _robustness_finding(
        self, target: Target, data: Dataset, ev: RobustnessEvaluation, population: str
    ) -> Finding:
        from scipy import stats

        n = ev.n
        k = int(np.sum(ev.broken_at > self.eps))
        value = k / n if n else float("nan")
        threshold = self.min_robust_accuracy
        if n:
            interval = np.asarray(stats.beta.ppf([0.025, 0.975], k + 1, n - k + 1))
            lo, hi = float(interval[0]), float(interval[1])
            p_below = float(stats.beta.cdf(threshold, k + 1, n - k + 1))
        else:
            lo, hi, p_below = float("nan"), float("nan"), 0.5
        passed = value >= threshold
        severity = self.rule.severity
        if n and value <= 0.1 * threshold:
            severity = Severity.CRITICAL
        clean = int(np.sum(ev.broken_by != "clean"))
        at_eps = (ev.broken_at > 0) & (ev.broken_at <= self.eps)
        label = self.attack_label(target)
        evidence: dict[str, Any] = {
            "eps": self.eps,
            "eps_units": "per-feature scale (standard deviation; 1 for binary/categorical)",
            "population": population,
            "n_evaluated": n,
            "clean_correct": clean,
            "robust_correct": k,
            "evaded": clean - k,
            "robust_accuracy_ci95": [lo, hi],
            "attack": label,
            "preset": self.preset,
            "evaded_by": {s.name: int(np.sum(ev.broken_by[at_eps] == s.name))
                          for s in ev.stages},
            "queries": sum(s.queries for s in ev.stages),
            "median_linf_of_evasions": float(np.median(ev.linf[at_eps])) if at_eps.any() else 0.0,
            "median_features_changed": (
                float(np.median(ev.features_changed[at_eps])) if at_eps.any() else 0.0
            ),
            "attacker_controls": [f.name for f in data.schema.features if f.mutable],
            "categorical": self.categorical,
        }  # fmt: skip
        description = (
            f"At eps={self.eps:g} (per-feature scale units), {k} of {n} {population} "
            f"({value:.1%}) are still classified correctly after {label} changed only "
            f"attacker-controlled features; {clean} were before the attack. "
            f"Policy: at least {threshold:.0%}."
        )
        return Finding.from_rule(
            self.rule, target=target.name, check=self.id, metric="robust_accuracy",
            value=value, threshold=threshold, confidence=1.0 - p_below if passed else p_below,
            severity=severity, description=description, evidence=evidence,
            location=target.source,
        )  # fmt: skip

    def _sanity_findings(self, target: Target, ev: RobustnessEvaluation) -> list[Finding]:
        return []

    def _metrics(self, target: Target, ev: RobustnessEvaluation, population: str) -> dict[str, Any]:
        summary = ev.summary()
        return {
            "population": population,
            "n_evaluated": ev.n,
            "clean_accuracy": ev.clean_accuracy,
            "robust_accuracy": ev.robust_accuracy(float(self.eps)),
            "eps": self.eps,
            "per_eps": summary["per_eps"],
            # wall times vary between runs; the report's timings hold them
            "stages": [{k: v for k, v in st.items() if k != "seconds"} for st in summary["stages"]],
            "queries": sum(s.queries for s in ev.stages),
            "curves": [
                {
                    "id": "robust_accuracy_vs_eps",
                    "title": "Robust accuracy vs perturbation budget",
                    "x_label": "eps (per-feature scale units)",
                    "y_label": "still classified correctly",
                    "label": self.attack_label(target),
                    "threshold": self.min_robust_accuracy,
                    "x": [0.0, *ev.eps],
                    "y": [ev.clean_accuracy, *(r.robust_accuracy for r in ev.per_eps)],
                }
            ],
        }

    def _examples_table(
        self, target: Target, data: Dataset, x: npt.NDArray[np.float64], ev: RobustnessEvaluation
    ) -> dict[str, Any] | None:
        rows = np.flatnonzero((ev.broken_at > 0) & (ev.broken_at <= self.eps))[:_MAX_EXAMPLES]
        if rows.size == 0 or data.image_shape is not None:
            return None
        x_adv = ev.x_adv
        changed = np.any(np.abs(x[rows] - x_adv[rows]) > 1e-9, axis=0)
        schema = data.schema
        # One column per changed feature; a one-hot group is one column holding its category.
        columns: list[tuple[str, list[int]]] = []
        seen_groups: set[str] = set()
        for j in np.flatnonzero(changed):
            group = schema.features[j].group
            if group is None:
                columns.append((schema.features[j].name, [int(j)]))
            elif group not in seen_groups:
                seen_groups.add(group)
                columns.append((group, schema.groups[group]))
        header = ["example"]
        scores: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None
        if Capability.SCORES in target.capabilities and data.positive_label is not None:
            pos = int(target.encode_labels([data.positive_label])[0])
            scores = (
                target.predict_proba(x[rows])[:, pos],
                target.predict_proba(x_adv[rows])[:, pos],
            )
            header += [f"P({data.positive_label!r}) before", "after"]
        header += [name for name, _ in columns]
        out_rows: list[list[Any]] = []
        highlight: list[list[int]] = []
        for r_i, r in enumerate(rows):
            row: list[Any] = [f"#{r_i + 1} (eps {ev.broken_at[r]:g}, {ev.broken_by[r]})"]
            if scores is not None:
                row += [round(float(scores[0][r_i]), 4), round(float(scores[1][r_i]), 4)]
            for name, idx in columns:
                a, b = _cell(schema, name, idx, x[r]), _cell(schema, name, idx, x_adv[r])
                if a != b:
                    highlight.append([r_i, len(row)])
                    row.append(f"{a} → {b}")
                else:
                    row.append(a)
            out_rows.append(row)
        return {
            "title": f"Adversarial examples against {target.name} ({self.id})",
            "columns": header,
            "rows": out_rows,
            "highlight": highlight,
        }


def _cell(schema: FeatureSchema, name: str, idx: list[int], row: npt.NDArray[np.float64]) -> str:
    """A feature's value for the examples table; a one-hot group shows its category."""
    if len(idx) == 1 and schema.features[idx[0]].group is None:
        return _fmt(float(row[idx[0]]))
    hot = idx[int(np.argmax(row[idx]))]
    return schema.features[hot].name.removeprefix(f"{name}_")


def _fmt(v: float) -> str:
    v = float(v) + 0.0  # no "-0"
    return f"{v:.0f}" if v.is_integer() else f"{v:.2f}"


@register("check", "evasion.whitebox")
class WhiteBoxEvasionCheck(_RobustnessCheck):
    """The attacker has the model: gradient attacks, or the tree-reading attack on trees.

    Parameters
    ----------
    eps : float
        Policy budget, in per-feature scale units.
    eps_grid : sequence of float
        Budgets for the robustness curve (``eps`` is always added).
    max_samples : int
        Rows of the target class attacked at most.
    min_robust_accuracy : float
        Pass when at least this fraction stays correctly classified at ``eps``.
    preset : {"fast", "standard"}
        Attack budgets (steps, target classes, Square queries).
    max_black_box_only : float
        MLW-EVA-003 fails when the final black-box stage evades more than this fraction
        of the correctly classified cases the white-box stages could not.
    categorical : {"free", "fixed"}
        Whether attacker-controlled binary/categorical features may change.
    """

    requires: ClassVar[Capability] = Capability.LABELS
    rule: ClassVar[Rule] = RULE_WHITE_BOX
    rules: ClassVar[tuple[Rule, ...]] = (
        RULE_WHITE_BOX, RULE_WEAK_WHITE_BOX, RULE_PROBABILITIES, RULE_ZERO_GRADIENTS,
        RULE_RANDOMIZED,
    )  # fmt: skip
    summary: ClassVar[str] = (
        "white-box robustness: APGD cascade (gradients) or tree-reading attack (trees)"
    )
    needs: ClassVar[str] = "gradients, or a tree ensemble"

    def __init__(
        self,
        *,
        eps: float = 0.5,
        eps_grid: Sequence[float] = _DEFAULT_GRID,
        max_samples: int = 300,
        min_robust_accuracy: float = 0.5,
        preset: str = "fast",
        max_black_box_only: float = 0.05,
        categorical: str = "free",
    ) -> None:
        self.eps = eps
        self.eps_grid = eps_grid
        self.max_samples = max_samples
        self.min_robust_accuracy = min_robust_accuracy
        self.preset = preset
        self.max_black_box_only = max_black_box_only
        self.categorical = categorical

    def skip_reason(self, target: Target, data: Dataset) -> str | None:
        if Capability.GRADIENTS in target.capabilities or is_tree_ensemble(target):
            return None
        return (
            f"needs gradients or a readable tree ensemble; {target.name!r} offers "
            f"{', '.join(target.capabilities.names()) or 'nothing'}"
        )

    def validate(self, target: Target, data: Dataset) -> None:
        super().validate(target, data)

    def _validate_params(self) -> None:
        super()._validate_params()
        check_number(self.id, "max_black_box_only", self.max_black_box_only, low=0, high=1)

    def _cascade(self, target: Target) -> list[tuple[str, AttackFactory]]:
        # evaluate()'s own cascade, with an audit-sized Square stage.
        return default_cascade(
            target, self.preset, schema=self._schema, categorical=self.categorical,
            square_queries=1000 if self.preset == "standard" else 300,
        )  # fmt: skip

    def _sanity_findings(self, target: Target, ev: RobustnessEvaluation) -> list[Finding]:
        out: list[Finding] = []
        messages = {i.code: i.message for i in ev.sanity}
        specs = (
            ("black_box_beats_white_box", RULE_WEAK_WHITE_BOX, "black_box_only_fraction",
             self.max_black_box_only),
            ("probabilities_not_logits", RULE_PROBABILITIES, "probability_outputs", 0.0),
            ("zero_gradients", RULE_ZERO_GRADIENTS, "zero_gradient_fraction", 0.01),
            ("randomized_outputs", RULE_RANDOMIZED, "randomized", 0.0),
        )  # fmt: skip
        for code, rule, metric, threshold in specs:
            if code not in ev.measured:
                continue
            value = ev.measured[code]
            out.append(
                Finding.from_rule(
                    rule, target=target.name, check=self.id, metric=metric, value=value,
                    threshold=threshold, higher_is_better=False,
                    description=messages.get(code, rule.description),
                    evidence={"sanity_check": code, "measured": value},
                    location=target.source,
                )
            )  # fmt: skip
        return out


@register("check", "evasion.blackbox")
class BlackBoxEvasionCheck(_RobustnessCheck):
    """The attacker reads scores: the Square Attack on attacker-controlled features.

    Parameters
    ----------
    eps : float
        Policy budget, in per-feature scale units.
    eps_grid : sequence of float
        Budgets for the robustness curve (``eps`` is always added).
    max_samples : int
        Rows of the target class attacked at most.
    min_robust_accuracy : float
        Pass when at least this fraction stays correctly classified at ``eps``.
    preset : {"fast", "standard"}
        Query budget: 300 or 1000 queries per row and budget.
    categorical : {"free", "fixed"}
        Whether attacker-controlled binary/categorical features may change.
    """

    requires: ClassVar[Capability] = Capability.LABELS | Capability.SCORES
    rule: ClassVar[Rule] = RULE_BLACK_BOX
    rules: ClassVar[tuple[Rule, ...]] = (RULE_BLACK_BOX,)
    summary: ClassVar[str] = "score-based black-box robustness (Square Attack)"

    def _cascade(self, target: Target) -> list[tuple[str, AttackFactory]]:
        from mlwarden.evasion.square import SquareAttack

        queries = 1000 if self.preset == "standard" else 300
        return [
            ("Square", attack_factory(SquareAttack, n_queries=queries,
                                      categorical=self.categorical))
        ]  # fmt: skip


@register("check", "evasion.decision")
class DecisionEvasionCheck(_RobustnessCheck):
    """The attacker sees decisions only: HopSkipJump, for targets without scores.

    Parameters
    ----------
    eps : float
        Policy budget, in per-feature scale units.
    eps_grid : sequence of float
        Budgets for the robustness curve (``eps`` is always added).
    max_samples : int
        Rows of the target class attacked at most.
    min_robust_accuracy : float
        Pass when at least this fraction stays correctly classified at ``eps``.
    preset : {"fast", "standard"}
        Query budget: 1000 or 5000 queries per row and budget.
    categorical : {"free", "fixed"}
        Whether attacker-controlled binary/categorical features may change.
    """

    requires: ClassVar[Capability] = Capability.LABELS
    rule: ClassVar[Rule] = RULE_DECISION
    rules: ClassVar[tuple[Rule, ...]] = (RULE_DECISION,)
    summary: ClassVar[str] = "decision-based robustness for label-only models (HopSkipJump)"

    def skip_reason(self, target: Target, data: Dataset) -> str | None:
        reason = super().skip_reason(target, data)
        if reason is None and Capability.SCORES in target.capabilities:
            return (
                f"{target.name!r} returns scores: the score-based attack (evasion.blackbox) "
                "is the stronger test"
            )
        return reason

    def _cascade(self, target: Target) -> list[tuple[str, AttackFactory]]:
        from mlwarden.evasion.hopskipjump import HopSkipJump

        queries = 5000 if self.preset == "standard" else 1000
        return [
            # early_stop: the check only needs to know whether a row breaks within eps
            ("HopSkipJump", attack_factory(HopSkipJump, max_queries=queries, early_stop=True,
                                           categorical=self.categorical))
        ]  # fmt: skip
