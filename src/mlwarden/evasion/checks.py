"""Evasion checks: how many of the cases a model exists to catch survive an adaptive attacker.

Each check samples the rows of the class the model must catch (fraud, for a fraud
model; every row for a data set without a positive class), attacks the ones the model
gets right at increasing budgets ``eps`` and reports the *robust accuracy* — the
fraction still classified correctly — at the policy budget, with the whole curve. A
row only counts as broken when a feasible row (immutable features untouched, bounds,
integers and one-hot groups respected) fools the real model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import stats

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden._registry import register
from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.audit.check import Check, CheckResult
from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import FeatureSchema
from mlwarden.evasion.base import EvasionAttack
from mlwarden.evasion.pgd import PGD
from mlwarden.evasion.square import SquareAttack
from mlwarden.exceptions import InvalidParameterError
from mlwarden.findings.finding import Finding
from mlwarden.findings.taxonomy import Rule, Severity, ThreatFamily, register_rule
from mlwarden.models.base import Capability, Target

__all__ = ["PGDEvasionCheck", "SquareEvasionCheck"]

_REMEDIATION = (
    "Train with adversarial examples from the same threat model (PGD adversarial training "
    "or TRADES), drop or coarsen features the attacker controls when they carry little "
    "signal, add monotonic constraints where the domain allows (a higher amount should "
    "never lower the fraud score), and re-audit. For tree ensembles, combine the model with "
    "rules on immutable features the attacker cannot change."
)

RULE_WHITE_BOX = register_rule(
    Rule(
        id="MLW-EVA-001",
        title="Model can be evaded by an attacker who has the model (white-box PGD cascade)",
        family=ThreatFamily.EVASION,
        severity=Severity.HIGH,
        atlas=("AML.T0015", "AML.T0043.000"),
        owasp=("ML01",),
        description=(
            "An attacker with access to the model's gradients changes only the features "
            "they control, within a budget eps, until the model misclassifies; the metric "
            "is the fraction of target-class cases still classified correctly."
        ),
        remediation=_REMEDIATION,
    )
)

RULE_BLACK_BOX = register_rule(
    Rule(
        id="MLW-EVA-002",
        title="Model can be evaded by querying it (black-box score-based attack)",
        family=ThreatFamily.EVASION,
        severity=Severity.HIGH,
        atlas=("AML.T0015", "AML.T0043.001", "AML.T0040"),
        owasp=("ML01",),
        description=(
            "An attacker who can only query the model and read its scores searches the "
            "features they control, within a budget eps, until the model misclassifies; "
            "the metric is the fraction of target-class cases still classified correctly."
        ),
        remediation=_REMEDIATION
        + " Behind an API, return labels instead of scores and rate-limit clients.",
    )
)

RULE_WEAK_WHITE_BOX = register_rule(
    Rule(
        id="MLW-EVA-003",
        title="White-box evaluation is weaker than a black-box attack (gradients unreliable)",
        family=ThreatFamily.EVASION,
        severity=Severity.MEDIUM,
        atlas=("AML.T0043.000", "AML.T0043.001"),
        owasp=("ML01",),
        description=(
            "AutoAttack's sanity check (Croce and Hein, 2020): when a black-box attack fools "
            "the model on cases the gradient-based attacks missed at the same budget, the "
            "gradients are masked, obfuscated or uninformative (saturated outputs, discrete "
            "features, non-differentiable preprocessing), so gradient-based robustness "
            "figures alone overstate robustness. mlwarden reports the worst case of both."
        ),
        remediation=(
            "Do not trust gradient-only robustness figures for this model: rely on the "
            "worst case over white- and black-box attacks (which MLW-EVA-001 reports), "
            "expose logits rather than probabilities to the audit, and remove "
            "non-differentiable or randomised steps from the audited forward pass."
        ),
    )
)

_DEFAULT_GRID = (0.05, 0.1, 0.25, 0.5, 1.0)
_MAX_EXAMPLES = 5


class _RobustnessCheck(Check):
    """Shared logic of the evasion checks; subclasses pick the attack."""

    family: ClassVar[ThreatFamily] = ThreatFamily.EVASION
    rule: ClassVar[Rule]
    attack_label: ClassVar[str] = ""
    """Name of the attack cascade for reports, e.g. ``PGD (CE + margin)``."""
    eps: float
    eps_grid: tuple[float, ...]
    max_samples: int
    min_robust_accuracy: float
    categorical: str

    def _make_attacks(self, eps: float, target: Target | None = None) -> list[EvasionAttack]:
        """The cascade run at budget ``eps``: each attack gets the rows still standing.

        Without a ``target`` it returns every stage (for parameter validation).
        """
        raise NotImplementedError

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
        check_choice(self.id, "categorical", self.categorical, ("free", "fixed"))
        for attack in self._make_attacks(self.eps):
            attack._validate_params()

    def validate(self, target: Target, data: Dataset) -> None:
        self._validate_params()
        super().validate(target, data)
        target.encode_labels(data.labels)

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
        x, y = data.X[pool], y_all[pool]
        n = len(y)
        correct = target.predict(x) == y if n else np.zeros(0, dtype=bool)
        robust = correct.copy()
        grid = sorted({float(e) for e in self.eps_grid} | {float(self.eps)})
        curve_x, curve_y = [0.0], [float(correct.mean()) if n else float("nan")]
        per_eps: list[dict[str, Any]] = []
        x_first_broken = x.copy()
        broken_at = np.full(n, np.inf)
        broken_by = np.full(n, "", dtype=object)
        total_queries = 0
        infeasible = 0
        for step, eps in enumerate(grid):
            report_progress(progress, f"{self.id} on {target.name}", step, len(grid))
            for attack in self._make_attacks(eps, target):
                idx = np.flatnonzero(robust)
                if idx.size == 0:
                    break
                res = attack.generate(target, x[idx], y[idx], schema=data.schema, random_state=rng)
                hit = idx[res.success]
                robust[hit] = False
                x_first_broken[hit] = res.x_adv[res.success]
                broken_at[hit] = eps
                broken_by[hit] = _stage(attack)
                total_queries += int(res.queries.sum())
                infeasible += res.infeasible
            curve_x.append(eps)
            curve_y.append(float(robust.mean()) if n else float("nan"))
            per_eps.append(
                {"eps": eps, "robust_accuracy": curve_y[-1], "robust": int(robust.sum())}
            )
        report_progress(progress, f"{self.id} on {target.name}", len(grid), len(grid))

        at_eps = broken_at > self.eps
        k = int((correct & at_eps).sum())
        value = k / n if n else float("nan")
        if n:
            interval = np.asarray(stats.beta.ppf([0.025, 0.975], k + 1, n - k + 1))
            lo, hi = float(interval[0]), float(interval[1])
        else:
            lo, hi = float("nan"), float("nan")
        passed = value >= self.min_robust_accuracy
        p_below = float(stats.beta.cdf(self.min_robust_accuracy, k + 1, n - k + 1)) if n else 0.5
        confidence = 1.0 - p_below if passed else p_below
        attacks = self._make_attacks(self.eps, target)
        severity = self.rule.severity
        if n and value <= 0.1 * self.min_robust_accuracy:
            severity = Severity.CRITICAL
        evaded = int(correct.sum()) - k
        evidence: dict[str, Any] = {
            "eps": self.eps,
            "eps_units": "per-feature scale (standard deviation; 1 for binary/categorical)",
            "population": population,
            "n_evaluated": n,
            "clean_correct": int(correct.sum()),
            "robust_correct": k,
            "evaded": evaded,
            "robust_accuracy_ci95": [float(lo), float(hi)],
            "attack": self.attack_label,
            "attack_params": {_stage(a): a.get_params() for a in attacks},
            "evaded_by": {
                _stage(a): int(np.sum(broken_by[broken_at <= self.eps] == _stage(a)))
                for a in attacks
            },
            "queries": total_queries,
            "infeasible_candidates_dropped": infeasible,
            "attacker_controls": [f.name for f in data.schema.features if f.mutable],
            "categorical": self.categorical,
        }
        description = (
            f"At eps={self.eps:g} (per-feature scale units), {k} of {n} {population} "
            f"({value:.1%}) are still classified correctly after the {self.attack_label} attack "
            f"changed only attacker-controlled features; {int(correct.sum())} were before "
            f"the attack. Policy: at least {self.min_robust_accuracy:.0%}."
        )
        finding = Finding.from_rule(
            self.rule,
            target=target.name,
            check=self.id,
            metric="robust_accuracy",
            value=value,
            threshold=self.min_robust_accuracy,
            confidence=confidence,
            severity=severity,
            description=description,
            evidence=evidence,
            location=target.source,
        )
        metrics: dict[str, Any] = {
            "population": population,
            "n_evaluated": n,
            "clean_accuracy": curve_y[0],
            "robust_accuracy": value,
            "eps": self.eps,
            "per_eps": per_eps,
            "queries": total_queries,
            "curves": [
                {
                    "id": "robust_accuracy_vs_eps",
                    "title": "Robust accuracy vs perturbation budget",
                    "x_label": "eps (per-feature scale units)",
                    "y_label": "still classified correctly",
                    "label": self.attack_label,
                    "threshold": self.min_robust_accuracy,
                    "x": curve_x,
                    "y": curve_y,
                }
            ],
        }
        table = self._examples_table(target, data, x, x_first_broken, broken_at)
        if table is not None:
            metrics["tables"] = [table]
        findings = [finding, *self._extra_findings(target, attacks, correct, broken_by)]
        return CheckResult(findings=findings, metrics=metrics)

    def _extra_findings(
        self,
        target: Target,
        attacks: list[EvasionAttack],
        correct: npt.NDArray[np.bool_],
        broken_by: npt.NDArray[Any],
    ) -> list[Finding]:
        """Findings beyond the robustness one (e.g. sanity checks); none by default."""
        return []

    def _examples_table(
        self,
        target: Target,
        data: Dataset,
        x: npt.NDArray[np.float64],
        x_adv: npt.NDArray[np.float64],
        broken_at: npt.NDArray[np.float64],
    ) -> dict[str, Any] | None:
        rows = np.flatnonzero(broken_at <= self.eps)[:_MAX_EXAMPLES]
        if rows.size == 0 or data.image_shape is not None:
            return None
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
            row: list[Any] = [f"#{r_i + 1} (eps {broken_at[r]:g})"]
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
            "title": f"Adversarial examples against {target.name} ({self.attack_label})",
            "columns": header,
            "rows": out_rows,
            "highlight": highlight,
        }


def _stage(attack: EvasionAttack) -> str:
    """A label for one stage of a cascade, e.g. ``PGD-ce``."""
    loss = getattr(attack, "loss", None)
    return f"{attack.name}-{loss}" if loss else attack.name


def _cell(schema: FeatureSchema, name: str, idx: list[int], row: npt.NDArray[np.float64]) -> str:
    """A feature's value for the examples table; a one-hot group shows its category."""
    if len(idx) == 1 and schema.features[idx[0]].group is None:
        return _fmt(float(row[idx[0]]))
    hot = idx[int(np.argmax(row[idx]))]
    return schema.features[hot].name.removeprefix(f"{name}_")


def _fmt(v: float) -> str:
    v = float(v) + 0.0  # no "-0"
    return f"{v:.0f}" if v.is_integer() else f"{v:.2f}"


@register("check", "evasion.pgd")
class PGDEvasionCheck(_RobustnessCheck):
    """White-box L∞ PGD restricted to the features the attacker controls.

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
    steps, restarts : int
        PGD iterations and random restarts.
    n_queries : int
        Query budget per row of the final black-box Square stage (run when the target
        offers scores, as AutoAttack does).
    max_black_box_only : float
        MLW-EVA-003 fails when the Square stage evades more than this fraction of the
        cases the gradient-based stages could not.
    categorical : {"free", "fixed"}
        Whether attacker-controlled binary/categorical features may change.
    """

    requires: ClassVar[Capability] = Capability.LABELS | Capability.GRADIENTS
    rule: ClassVar[Rule] = RULE_WHITE_BOX
    rules: ClassVar[tuple[Rule, ...]] = (RULE_WHITE_BOX, RULE_WEAK_WHITE_BOX)
    summary: ClassVar[str] = "white-box PGD robustness on attacker-controlled features"

    def __init__(
        self,
        *,
        eps: float = 0.5,
        eps_grid: tuple[float, ...] = _DEFAULT_GRID,
        max_samples: int = 300,
        min_robust_accuracy: float = 0.5,
        steps: int = 50,
        restarts: int = 2,
        n_queries: int = 300,
        max_black_box_only: float = 0.05,
        categorical: str = "free",
    ) -> None:
        self.eps = eps
        self.eps_grid = eps_grid
        self.max_samples = max_samples
        self.min_robust_accuracy = min_robust_accuracy
        self.steps = steps
        self.restarts = restarts
        self.n_queries = n_queries
        self.max_black_box_only = max_black_box_only
        self.categorical = categorical

    attack_label: ClassVar[str] = "PGD (CE, margin) + Square"

    def _make_attacks(self, eps: float, target: Target | None = None) -> list[EvasionAttack]:
        # Cross-entropy first, then the logit margin on what survives (the margin does not
        # saturate where a confident softmax flattens the CE gradient), then, as in
        # AutoAttack, a black-box Square stage that catches masked or useless gradients.
        stages: list[EvasionAttack] = [
            PGD(
                eps=eps, steps=self.steps, restarts=self.restarts, loss=loss,
                categorical=self.categorical,
            )
            for loss in ("ce", "margin")
        ]  # fmt: skip
        if target is None or Capability.SCORES in target.capabilities:
            stages.append(
                SquareAttack(eps=eps, n_queries=self.n_queries, categorical=self.categorical)
            )
        return stages

    def _validate_params(self) -> None:
        super()._validate_params()
        check_number(self.id, "max_black_box_only", self.max_black_box_only, low=0, high=1)

    def _extra_findings(
        self,
        target: Target,
        attacks: list[EvasionAttack],
        correct: npt.NDArray[np.bool_],
        broken_by: npt.NDArray[Any],
    ) -> list[Finding]:
        black_box = [_stage(a) for a in attacks if Capability.GRADIENTS not in a.requires]
        if not black_box:
            return []
        attacked = int(correct.sum())
        extra = int(np.isin(broken_by, black_box).sum())
        value = extra / attacked if attacked else 0.0
        white = int(
            np.isin(broken_by, [_stage(a) for a in attacks if _stage(a) not in black_box]).sum()
        )
        return [
            Finding.from_rule(
                RULE_WEAK_WHITE_BOX, target=target.name, check=self.id,
                metric="black_box_only_fraction", value=value,
                threshold=self.max_black_box_only, higher_is_better=False,
                description=(
                    f"At the same budgets, the gradient-based attacks evaded {white} of "
                    f"{attacked} correctly classified cases; the black-box Square stage then "
                    f"evaded {extra} more ({value:.1%}). Policy: at most "
                    f"{self.max_black_box_only:.0%}."
                ),
                evidence={"attacked": attacked, "white_box_evaded": white,
                          "black_box_only_evaded": extra},
                location=target.source,
            )
        ]  # fmt: skip


@register("check", "evasion.square")
class SquareEvasionCheck(_RobustnessCheck):
    """Black-box Square attack (scores only) restricted to the features the attacker controls.

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
    n_queries : int
        Query budget per row and budget.
    categorical : {"free", "fixed"}
        Whether attacker-controlled binary/categorical features may change.
    """

    requires: ClassVar[Capability] = Capability.LABELS | Capability.SCORES
    rule: ClassVar[Rule] = RULE_BLACK_BOX
    rules: ClassVar[tuple[Rule, ...]] = (RULE_BLACK_BOX,)
    summary: ClassVar[str] = "black-box Square attack robustness on attacker-controlled features"

    def __init__(
        self,
        *,
        eps: float = 0.5,
        eps_grid: tuple[float, ...] = _DEFAULT_GRID,
        max_samples: int = 300,
        min_robust_accuracy: float = 0.5,
        n_queries: int = 300,
        categorical: str = "free",
    ) -> None:
        self.eps = eps
        self.eps_grid = eps_grid
        self.max_samples = max_samples
        self.min_robust_accuracy = min_robust_accuracy
        self.n_queries = n_queries
        self.categorical = categorical

    attack_label: ClassVar[str] = "Square"

    def _make_attacks(self, eps: float, target: Target | None = None) -> list[EvasionAttack]:
        return [SquareAttack(eps=eps, n_queries=self.n_queries, categorical=self.categorical)]
