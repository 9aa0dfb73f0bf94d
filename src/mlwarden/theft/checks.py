"""The theft audit check: can the model be copied within a query budget, and does hardening
its outputs slow the copy down?

Threat model (ATLAS AML.T0024.002, OWASP ML05): the attacker holds unlabelled rows from
the same population and queries the model (Knockoff Nets, Orekondy et al. 2019). The
audit data are split in two: half is the attacker's pool, half the held-out rows on
which the copy is compared with the model. The extraction runs at a few budgets as the
model answers today, and again behind label-only and rounding hardening
(:func:`~mlwarden.theft.harden_outputs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden._registry import register
from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.audit.check import Check, CheckResult
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.findings.finding import Finding
from mlwarden.findings.taxonomy import Rule, ThreatFamily
from mlwarden.models.base import Capability, Target
from mlwarden.theft.rules import RULE_EXTRACTION, RULE_SCORES_LEAK

__all__ = ["ExtractionCheck"]

_HARDENING = ("label-only", "rounding")


@register("check", "theft.extraction")
class ExtractionCheck(Check):
    """Model extraction from a pool of natural rows, with and without output hardening.

    Parameters
    ----------
    budgets : sequence of int, default=(250, 500, 1000)
        Query budgets at which the copy is measured (the largest is spent).
    max_fidelity : float, default=0.9
        Pass when the copy's fidelity (see ``metric``) stays below this at every budget.
    metric : {"balanced_fidelity", "fidelity"}, default="balanced_fidelity"
        ``fidelity`` is plain agreement on the held-out rows; ``balanced_fidelity``
        averages it over the model's answers, so that on imbalanced data (fraud) a copy
        that always answers the majority class does not score high.
    hardening : sequence of str, default=("label-only", "rounding")
        Output defenses also measured (``"label-only"``, ``"rounding"``, ``"top-k"``,
        ``"noise"``, ``"reverse-sigmoid"``); score-based ones are skipped, with the reason
        in the evidence, on labels-only models.
    max_score_gain : float, default=0.02
        MLW-THF-002 fails when scores raise the copy's fidelity (over labels only, at
        the largest budget) by more than this.
    surrogate : object, optional
        The attacker's model (see :func:`~mlwarden.theft.extract`); default a small
        HistGradientBoosting classifier.
    """

    family: ClassVar[ThreatFamily] = ThreatFamily.THEFT
    rules: ClassVar[tuple[Rule, ...]] = (RULE_EXTRACTION, RULE_SCORES_LEAK)
    requires: ClassVar[Capability] = Capability.LABELS
    summary: ClassVar[str] = (
        "model extraction (Knockoff Nets) at a few query budgets, with and without output hardening"
    )
    needs: ClassVar[str] = "labels (scores too for the hardening comparison)"

    def __init__(
        self,
        *,
        budgets: Sequence[int] = (250, 500, 1000),
        max_fidelity: float = 0.9,
        metric: str = "balanced_fidelity",
        hardening: Sequence[str] = _HARDENING,
        max_score_gain: float = 0.02,
        surrogate: Any = None,
    ) -> None:
        self.budgets = budgets
        self.max_fidelity = max_fidelity
        self.metric = metric
        self.hardening = hardening
        self.max_score_gain = max_score_gain
        self.surrogate = surrogate

    def validate(self, target: Target, data: Dataset) -> None:
        super().validate(target, data)
        from mlwarden.theft.harden import DEFENSES

        budgets = list(self.budgets) if not isinstance(self.budgets, str | int) else None
        if not budgets:
            raise InvalidParameterError(
                f"{self.id}: budgets must be a non-empty list of integers, got {self.budgets!r}"
            )
        for b in budgets:
            check_int(self.id, "budgets", b)
        check_number(self.id, "max_fidelity", self.max_fidelity, low=0, high=1)
        check_choice(self.id, "metric", self.metric, ("balanced_fidelity", "fidelity"))
        check_number(self.id, "max_score_gain", self.max_score_gain, low=0, high=1)
        if isinstance(self.hardening, str):
            raise InvalidParameterError(
                f"{self.id}: hardening must be a list of defense names, got {self.hardening!r}"
            )
        for h in self.hardening:
            check_choice(self.id, "hardening", h, DEFENSES)
        if data.n_samples < 20:
            raise DataError(
                f"{self.id}: needs at least 20 audit rows (half pool, half held-out), "
                f"got {data.n_samples}"
            )

    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        from mlwarden.theft.extraction import extract
        from mlwarden.theft.harden import harden_outputs

        pool, held_out = data.split(test_size=0.5, random_state=random_state)
        budgets = sorted({int(b) for b in self.budgets})
        budget = budgets[-1]
        surrogate = self.surrogate if self.surrogate is not None else _default_surrogate()
        has_scores = Capability.SCORES in target.capabilities
        modes: list[tuple[str, Target | None, str | None]] = [("none", target, None)]
        if has_scores:
            modes.append(("labels-attacker", target, None))
        for name in self.hardening:
            if name == "label-only" and not has_scores:
                modes.append((name, None, "the model already returns labels only"))
            elif name != "label-only" and not has_scores:
                modes.append((name, None, f"{name!r} hardens scores; the model returns labels"))
            else:
                modes.append((name, harden_outputs(target, name, random_state=random_state), None))
        seed = int(random_state.integers(0, 2**31 - 1))
        runs: dict[str, dict[str, Any]] = {}
        for i, (mode, victim, skipped) in enumerate(modes):
            report_progress(progress, self.id, i, len(modes))
            if victim is None:
                runs[mode] = {"skipped": skipped}
                continue
            before = target.n_queries
            result = extract(
                victim, budget=budget, budgets=budgets, strategy="knockoff",
                surrogate=surrogate, pool=pool, test=held_out,
                use_scores=False if mode.startswith("labels") else "auto",
                random_state=seed,
            )  # fmt: skip
            summary = result.to_dict()
            summary.pop("seconds")  # timings live in the report's timing, not its metrics
            runs[mode] = summary | {"model_queries": target.n_queries - before}
        report_progress(progress, self.id, len(modes), len(modes))

        base = runs["none"]
        key = str(self.metric)
        values = [float(p[key]) for p in base["curve"]]
        worst = int(np.nanargmax(values)) if values else 0
        value = values[worst] if values else float("nan")
        copied_at = next((p["queries"] for p in base["curve"] if p[key] >= self.max_fidelity), None)
        curves = {m: r.get("curve") for m, r in runs.items() if "curve" in r}
        evidence: dict[str, Any] = {
            "strategy": "knockoff (pool = half of the audit data)",
            "pool_rows": pool.n_samples,
            "held_out_rows": held_out.n_samples,
            "budgets": budgets,
            "metric": key,
            "copied_within_queries": copied_at,
            "baseline_fidelity": base["baseline_fidelity"],
            "used_scores": base["used_scores"],
            "curves": curves,
            "hardening": {
                m: ({"skipped": r["skipped"]} if "skipped" in r else {key: r[key]})
                for m, r in runs.items()
                if m != "none"
            },
        }
        if copied_at is not None:
            text = (
                f"A copy trained on {copied_at} queries agrees with the model at {key} "
                f"{next(p[key] for p in base['curve'] if p['queries'] == copied_at):.3f} "
                f"(threshold {self.max_fidelity:g})."
            )
        else:
            text = (
                f"Within {budget} queries the best copy reaches {key} {value:.3f}, below "
                f"{self.max_fidelity:g}."
            )
        findings = [
            Finding.from_rule(
                RULE_EXTRACTION,
                target=target.name,
                check=self.id,
                metric=key,
                value=value,
                threshold=float(self.max_fidelity),
                higher_is_better=False,
                description=text + " Plain agreement: "
                f"{base['fidelity']:.3f} (a constant guess: {base['baseline_fidelity']:.3f}).",
                evidence=evidence,
            )
        ]
        labels_run = runs.get("labels-attacker")
        if labels_run is not None and "curve" in labels_run:
            gain = float(base[key]) - float(labels_run[key])
            findings.append(
                Finding.from_rule(
                    RULE_SCORES_LEAK,
                    target=target.name,
                    check=self.id,
                    metric=f"{key}_gain_from_scores",
                    value=gain,
                    threshold=float(self.max_score_gain),
                    higher_is_better=False,
                    description=(
                        f"At {budget} queries a copy trained on the scores reaches {key} "
                        f"{base[key]:.3f}; one trained on the labels {labels_run[key]:.3f}."
                    ),
                    evidence={
                        "curves": {m: curves[m] for m in curves if m in ("none", "labels-attacker")}
                    },
                )
            )
        metrics = {"runs": runs, "metric": key}
        return CheckResult(findings=findings, metrics=metrics)


def _default_surrogate() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    # Small and fast: the audit measures a lower bound on what a patient attacker gets.
    return HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=15)
