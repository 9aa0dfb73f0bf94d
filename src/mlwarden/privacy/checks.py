"""The privacy audit check: membership inference against the model's own training rows.

Threat model: the attacker queries the model's scores and holds records from the same
population (ATLAS AML.T0024.000, OWASP ML04). The check needs two things an audit does
not always have, and skips with the reason when one is missing: the rows the model was
trained on (``members``: a :class:`~mlwarden.data.Dataset`, ``mlwarden audit
--train-data``) — the audit data are the non-members — and a way to retrain reference
models: a scikit-learn model (cloned) or a ``trainer(X, y, seed) -> Target``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from mlwarden._progress import ProgressCallback
from mlwarden._registry import register
from mlwarden._validation import check_int, check_number
from mlwarden.audit.check import Check, CheckResult, check_training_rows, retrain_skip_reason
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.findings.finding import Finding
from mlwarden.findings.taxonomy import Rule, Severity, ThreatFamily
from mlwarden.models.base import Capability, Target
from mlwarden.privacy.rules import (
    RULE_ATTRIBUTE_INFERENCE,
    RULE_DP_CONFIG,
    RULE_INVERSION,
    RULE_LOW_FPR_UNRESOLVED,
    RULE_MEMBERSHIP,
)

__all__ = ["AttributeCheck", "DPCheck", "InversionCheck", "MembershipCheck"]

_FPR = 0.01


@register("check", "privacy.membership")
class MembershipCheck(Check):
    """Membership inference (loss threshold, LiRA, RMIA) on the model's training rows.

    Parameters
    ----------
    members : Dataset or None
        The rows the model was trained on (same columns as the audit data). The audit
        data are the non-members. Without it the check is skipped.
    trainer : callable or None
        ``trainer(X, y, seed) -> Target`` retraining a reference model like the audited
        one; default: a clone of the target's scikit-learn estimator.
    n_models : int
        Reference models (even); each trains on half of members plus non-members.
    max_records : int
        Members and non-members scored at most (each).
    max_tpr : float
        Pass when the strongest attack's true-positive rate at 1 % false positives is at
        most this (a random guess scores 0.01).
    max_auc : float
        Pass when the strongest attack's AUC is at most this (a random guess scores 0.5);
        reported as a second finding, since a model can leak on average (AUC) while its
        scores tie too much to single out records at a low false-positive rate.
    """

    family: ClassVar[ThreatFamily] = ThreatFamily.PRIVACY
    rules: ClassVar[tuple[Rule, ...]] = (RULE_MEMBERSHIP, RULE_LOW_FPR_UNRESOLVED)
    requires: ClassVar[Capability] = Capability.LABELS | Capability.SCORES
    summary: ClassVar[str] = (
        "membership inference (LiRA, RMIA, loss threshold) with reference models"
    )
    needs: ClassVar[str] = "scores, the training rows, and a way to retrain the model"

    def __init__(
        self,
        *,
        members: Dataset | None = None,
        trainer: Callable[..., Target] | None = None,
        n_models: int = 4,
        max_records: int = 1000,
        max_tpr: float = 0.05,
        max_auc: float = 0.6,
    ) -> None:
        self.members = members
        self.trainer = trainer
        self.n_models = n_models
        self.max_records = max_records
        self.max_tpr = max_tpr
        self.max_auc = max_auc

    def skip_reason(self, target: Target, data: Dataset) -> str | None:
        reason = super().skip_reason(target, data)
        if reason is not None:
            return reason
        if self.members is None:
            return (
                "needs the rows the model was trained on (mlwarden audit --train-data, or "
                "check parameter 'members'); the audit data are the non-members"
            )
        return retrain_skip_reason(target, self.trainer, f"reference models like {target.name!r}")

    def validate(self, target: Target, data: Dataset) -> None:
        super().validate(target, data)
        n = check_int(self.id, "n_models", self.n_models, minimum=2)
        if n % 2:
            raise InvalidParameterError(
                f"{self.id}: n_models must be even (paired half-splits), got {n}"
            )
        check_int(self.id, "max_records", self.max_records, minimum=10)
        check_number(self.id, "max_tpr", self.max_tpr, low=0, high=1)
        check_number(self.id, "max_auc", self.max_auc, low=0, high=1)
        check_training_rows(self.id, self.members, data)

    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        from mlwarden.privacy.membership import RMIA, LiRA, LossThreshold
        from mlwarden.privacy.reference import ReferenceModels, SklearnTrainer

        assert self.members is not None  # validate() ran
        trainer = self.trainer or SklearnTrainer(getattr(target, "estimator", None))
        X_in, y_in = self.members.X, target.encode_labels(self.members.labels)
        X_out, y_out = data.X, target.encode_labels(data.labels)
        # Reference models train on half-splits of members + non-members (paired, so every
        # record is in half of them); only a sample of each side is scored.
        X = np.vstack([X_in, X_out])
        y = np.concatenate([y_in, y_out])
        n_in, n_out = len(X_in), len(X_out)
        members = _sample(np.arange(n_in), self.max_records, random_state)
        # A quarter of the non-members stay out of the scored candidates: RMIA compares
        # each candidate with population records (z) that are not candidates themselves.
        shuffled = n_in + random_state.permutation(n_out)
        nonmembers = _sample(shuffled[max(1, n_out // 4) :], self.max_records, random_state)
        reference = ReferenceModels(
            n_models=self.n_models, trainer=trainer, random_state=random_state
        ).fit(X, y, progress=progress)
        labels = target.classes[y]
        results = [
            attack.infer(
                target, X, labels, members=members, nonmembers=nonmembers,
                reference=reference, random_state=random_state,
            )
            for attack in (LossThreshold(), LiRA(online=True), RMIA(online=True))
        ]  # fmt: skip
        best = max(results, key=lambda r: (r.metrics.tpr(_FPR).tpr, r.metrics.auc))
        at = best.metrics.tpr(_FPR)
        metrics: dict[str, Any] = {r.attack: r.metrics.to_dict() for r in results} | {
            "strongest": best.attack,
            "n_reference_models": self.n_models,
            "curves": [_roc_curve(r) for r in results],
        }
        rows, scores = best.risk_ranking(5)
        evidence = {
            "strongest_attack": best.attack,
            "auc": best.metrics.auc,
            "tpr_at_1pct_fpr": at.tpr,
            "tpr_ci": [at.ci_low, at.ci_high],
            "members_scored": len(members),
            "nonmembers_scored": len(nonmembers),
            "assumptions": best.assumptions,
            "attacks": {r.attack: {"auc": r.metrics.auc, "tpr_at_1pct_fpr":
                                   r.metrics.tpr(_FPR).tpr} for r in results},
            "most_exposed_training_rows": [int(i) for i in rows],
            "their_scores": [float(s) for s in scores],
        }  # fmt: skip
        by_auc = max(results, key=lambda r: r.metrics.auc)
        findings = [
            Finding.from_rule(
                RULE_MEMBERSHIP,
                target=target.name,
                check=self.id,
                metric="auc",
                value=by_auc.metrics.auc,
                threshold=self.max_auc,
                higher_is_better=False,
                severity=Severity.MEDIUM,
                description=(
                    f"On average the strongest attack ({by_auc.attack}) tells training "
                    f"records from others with AUC {by_auc.metrics.auc:.3f} (0.5 is a "
                    "random guess)."
                ),
                evidence=evidence,
            )
        ]
        if at.resolved:
            findings.append(
                Finding.from_rule(
                    RULE_MEMBERSHIP,
                    target=target.name,
                    check=self.id,
                    metric="tpr_at_1pct_fpr",
                    value=at.tpr,
                    threshold=self.max_tpr,
                    higher_is_better=False,
                    description=(
                        f"The strongest attack ({best.attack}, {self.n_models} reference "
                        f"models) finds {at.tpr:.1%} of training records at 1 % false "
                        f"positives (95 % interval {at.ci_low:.1%}–{at.ci_high:.1%}; a "
                        f"random guess finds 1 %), AUC {best.metrics.auc:.3f}."
                    ),
                    evidence=evidence,
                )
            )
        else:
            findings.append(
                Finding.from_rule(
                    RULE_LOW_FPR_UNRESOLVED,
                    target=target.name,
                    check=self.id,
                    metric="nonmembers_scored",
                    value=float(len(nonmembers)),
                    threshold=1 / _FPR,
                    severity=Severity.INFO,
                    evidence=evidence,
                )
            )
        return CheckResult(findings=findings, metrics=metrics)


@register("check", "privacy.attribute")
class AttributeCheck(Check):
    """Attribute inference: does the model reveal a sensitive column beyond imputation?

    The audit data are split in two: half are the attacker's auxiliary rows (the
    sensitive column known; the imputation baseline trains on them), half are
    non-members. The model's training rows are the members.

    Parameters
    ----------
    attribute : str or None
        The sensitive column (a binary or numeric feature, or a categorical group's
        name). Without it the check is skipped.
    members : Dataset or None
        The rows the model was trained on. Without them the check is skipped.
    max_records : int
        Members and non-members attacked at most (each).
    max_leakage : float
        Pass when the model-using attacker beats the imputation baseline on the
        training rows by at most this much accuracy.
    """

    family: ClassVar[ThreatFamily] = ThreatFamily.PRIVACY
    rules: ClassVar[tuple[Rule, ...]] = (RULE_ATTRIBUTE_INFERENCE,)
    requires: ClassVar[Capability] = Capability.LABELS
    summary: ClassVar[str] = "attribute inference of a sensitive column, against imputation"
    needs: ClassVar[str] = "labels, the training rows, and the sensitive column's name"

    def __init__(
        self,
        *,
        attribute: str | None = None,
        members: Dataset | None = None,
        max_records: int = 1000,
        max_leakage: float = 0.05,
    ) -> None:
        self.attribute = attribute
        self.members = members
        self.max_records = max_records
        self.max_leakage = max_leakage

    def skip_reason(self, target: Target, data: Dataset) -> str | None:
        reason = super().skip_reason(target, data)
        if reason is not None:
            return reason
        if self.attribute is None:
            return "needs the sensitive column's name (mlwarden audit --sensitive COLUMN)"
        if self.members is None:
            return "needs the rows the model was trained on (mlwarden audit --train-data)"
        return None

    def validate(self, target: Target, data: Dataset) -> None:
        super().validate(target, data)
        check_int(self.id, "max_records", self.max_records, minimum=10)
        check_number(self.id, "max_leakage", self.max_leakage, low=0, high=1)
        if len(data) < 20:
            raise DataError(f"{self.id}: needs at least 20 audit rows (got {len(data)})")

    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        from mlwarden.privacy.attribute import AttributeInference, attribute_inference_finding

        assert self.members is not None and self.attribute is not None  # validate() ran
        order = random_state.permutation(len(data))
        half = len(data) // 2
        auxiliary = data.subset(order[:half], name=f"{data.name}-auxiliary")
        rest = order[half:][: self.max_records]
        non_members = data.subset(np.sort(rest), name=f"{data.name}-non-members")
        picked = _sample(np.arange(len(self.members)), self.max_records, random_state)
        members = self.members.subset(picked, name=self.members.name)
        result = AttributeInference(attribute=self.attribute, random_state=random_state).infer(
            target, members=members, non_members=non_members, auxiliary=auxiliary
        )
        finding = attribute_inference_finding(
            result, target=target.name, check=self.id, max_leakage=self.max_leakage
        )
        # Wall time varies between runs; the report's timings hold it.
        finding.evidence.pop("seconds", None)
        metrics = {k: v for k, v in result.to_dict().items() if k != "seconds"}
        return CheckResult(findings=[finding], metrics=metrics)


@register("check", "privacy.dp")
class DPCheck(Check):
    """The differential-privacy guarantee a model file claims: is it strong, and does it
    hold?

    ``mlwarden harden dp`` records the training's epsilon (PRV and RDP accountants),
    delta, sampling and row count in the model file; this check turns them into
    MLW-PRI-004 findings: epsilon above the policy limit, delta not below 1 / n, sampling
    other than Poisson. A model whose file records no DP training is skipped.

    Parameters
    ----------
    max_epsilon : float
        Pass when the accountant's epsilon is at most this.
    """

    family: ClassVar[ThreatFamily] = ThreatFamily.PRIVACY
    rules: ClassVar[tuple[Rule, ...]] = (RULE_DP_CONFIG,)
    requires: ClassVar[Capability] = Capability.NONE
    summary: ClassVar[str] = "differential-privacy guarantee recorded with the model"
    needs: ClassVar[str] = "a model trained with DP (mlwarden harden dp)"

    def __init__(self, *, max_epsilon: float = 8.0) -> None:
        self.max_epsilon = max_epsilon

    def skip_reason(self, target: Target, data: Dataset) -> str | None:
        if not isinstance(target.training.get("differential_privacy"), dict):
            return (
                f"{target.name!r} records no differential-privacy training (train one "
                "with mlwarden harden dp)"
            )
        return None

    def validate(self, target: Target, data: Dataset) -> None:
        check_number(self.id, "max_epsilon", self.max_epsilon, low=0, low_open=True)
        self.require_applicable(target, data)  # the DP record needs no labelled data

    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        from mlwarden.privacy.dp import delta_finding, epsilon_finding, sampling_finding

        dp = target.training["differential_privacy"]
        try:
            eps = float(dp["epsilon_prv"])
            delta = float(dp["delta"])
            n = int(dp["n_samples"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"{target.name!r}: the model's differential-privacy record is incomplete "
                f"({type(exc).__name__}: {exc})"
            ) from None
        findings = [
            epsilon_finding(
                eps, delta=delta, max_epsilon=self.max_epsilon, accountant="prv",
                target=target.name,
            ),
            delta_finding(delta, n, target=target.name),
            sampling_finding(
                poisson_sampling=bool(dp.get("poisson_sampling", False)), target=target.name
            ),
        ]  # fmt: skip
        return CheckResult(findings=findings, metrics={"differential_privacy": dict(dp)})


@register("check", "privacy.inversion")
class InversionCheck(Check):
    """Model inversion (MI-Face): can each class's look be reconstructed from the model?

    Runs on image models with gradients (a data set with an image shape); the report
    shows the reconstructions beside the class means of the audit data.

    Parameters
    ----------
    max_iter : int
        Gradient steps per class at most.
    max_identification_rate : float
        Pass when at most this share of reconstructions is closer to its own class mean
        than to any other.
    """

    family: ClassVar[ThreatFamily] = ThreatFamily.PRIVACY
    rules: ClassVar[tuple[Rule, ...]] = (RULE_INVERSION,)
    requires: ClassVar[Capability] = Capability.LABELS | Capability.SCORES | Capability.GRADIENTS
    summary: ClassVar[str] = "model inversion (MI-Face) of each class, images in the report"
    needs: ClassVar[str] = "gradients and image data"

    def __init__(self, *, max_iter: int = 300, max_identification_rate: float = 0.5) -> None:
        self.max_iter = max_iter
        self.max_identification_rate = max_identification_rate

    def skip_reason(self, target: Target, data: Dataset) -> str | None:
        reason = super().skip_reason(target, data)
        if reason is not None:
            return reason
        if data.image_shape is None:
            return "model inversion reconstructs images: the data set has no image shape"
        return None

    def validate(self, target: Target, data: Dataset) -> None:
        super().validate(target, data)
        check_int(self.id, "max_iter", self.max_iter)
        check_number(
            self.id, "max_identification_rate", self.max_identification_rate, low=0, high=1
        )

    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        from mlwarden.privacy.inversion import ModelInversion, inversion_figure, inversion_finding

        result = ModelInversion(max_iter=self.max_iter, patience=min(100, self.max_iter)).invert(
            target, reference=data
        )
        finding = inversion_finding(
            result,
            target=target.name,
            check=self.id,
            max_identification_rate=self.max_identification_rate,
        )
        finding.evidence.pop("seconds", None)
        metrics = {k: v for k, v in result.to_dict().items() if k != "seconds"}
        metrics["figures"] = [
            {
                "title": "model inversion: reconstruction (top) vs class mean (bottom)",
                "svg": inversion_figure(result, image_shape=data.image_shape),
            }
        ]
        return CheckResult(findings=[finding], metrics=metrics)


def _sample(index: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    if len(index) <= k:
        return index
    return np.sort(rng.choice(index, size=k, replace=False))


def _roc_curve(result: Any) -> dict[str, Any]:
    """A log-log ROC curve for the report (points with a zero TPR cannot be drawn on a
    log axis and are left out)."""
    fpr, tpr = result.roc_points(60)
    keep = tpr > 0
    return {
        "id": "membership_roc",
        "title": "Membership inference ROC (log-log: the low false-positive end matters)",
        "x_label": "false positive rate",
        "y_label": "true positive rate",
        "x_scale": "log",
        "y_scale": "log",
        "label": result.attack,
        "x": [float(v) for v in fpr[keep]],
        "y": [float(v) for v in tpr[keep]],
    }
