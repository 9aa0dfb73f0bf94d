"""The poisoning audit checks: retrain on poisoned data and measure what the attacker gets.

Threat model: the attacker controls a share of the training rows (ATLAS AML.T0020,
AML.T0018.000; OWASP ML02, ML10). Each check poisons the model's training data at
several rates, retrains the model the way it was trained - a clone of its scikit-learn
estimator, or a ``trainer(X, y, seed) -> Target`` - and measures the result on clean
held-out rows.

Training data: the rows the model was trained on (``members``, ``mlwarden audit
--train-data``) are poisoned and the audit data are the held-out rows. Without them,
the check splits the audit data (70 % to poison and train on, 30 % held out) and says
so in the evidence: the retrained model is then a stand-in trained on less data, which
is the usual trade-off when the training set is not at hand. A model with no way to be
retrained (a torch or ONNX file alone) is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden._registry import register
from mlwarden._validation import check_int, check_number
from mlwarden.audit.check import Check, CheckResult, check_training_rows, retrain_skip_reason
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import InvalidParameterError
from mlwarden.findings.finding import Finding
from mlwarden.findings.taxonomy import Rule, ThreatFamily
from mlwarden.models.base import Capability, Target
from mlwarden.poisoning.rules import RULE_BACKDOOR, RULE_LABEL_FLIP, RULE_SUSPICIOUS_ROWS

__all__ = ["BackdoorCheck", "LabelFlipCheck", "TrainingDataCheck"]


class _RetrainCheck(Check):
    """Shared parts: training data, trainer, rates."""

    family: ClassVar[ThreatFamily] = ThreatFamily.POISONING
    requires: ClassVar[Capability] = Capability.LABELS
    needs: ClassVar[str] = "a way to retrain the model (scikit-learn model or trainer)"
    members: Dataset | None
    trainer: Callable[..., Target] | None
    rates: Sequence[float]

    def skip_reason(self, target: Target, data: Dataset) -> str | None:
        reason = super().skip_reason(target, data)
        if reason is not None:
            return reason
        return retrain_skip_reason(target, self.trainer, f"{target.name!r} on poisoned data")

    def validate(self, target: Target, data: Dataset) -> None:
        super().validate(target, data)
        rates = list(self.rates)
        if not rates:
            raise InvalidParameterError(f"{self.id}: rates must not be empty")
        for r in rates:
            check_number(self.id, "rates", r, low=0, high=0.5, low_open=True)
        check_training_rows(self.id, self.members, data)

    def _split(self, data: Dataset, rng: np.random.Generator) -> tuple[Dataset, Dataset, str]:
        if self.members is not None:
            return self.members, data, "the model's training rows (--train-data)"
        train, test = data.split(test_size=0.3, random_state=rng)
        return (
            train,
            test,
            (
                "70 % of the audit data (no training rows given: pass mlwarden audit "
                "--train-data to poison the real training set); 30 % held out"
            ),
        )

    def _fit(
        self, target: Target, X: npt.NDArray[np.float64], y: npt.NDArray[np.int64], seed: int
    ) -> Target:
        if self.trainer is not None:
            return self.trainer(X, y, seed)
        from mlwarden.privacy.reference import SklearnTrainer

        return SklearnTrainer(getattr(target, "estimator", None))(X, y, seed)


@register("check", "poisoning.backdoor")
class BackdoorCheck(_RetrainCheck):
    """Retrain with a backdoor (tabular pattern or BadNets patch) at several rates.

    Parameters
    ----------
    members : Dataset or None
        The rows the model was trained on; without them 70 % of the audit data.
    trainer : callable or None
        ``trainer(X, y, seed) -> Target``; default a clone of the target's estimator.
    rates : sequence of float, default=(0.01, 0.05, 0.1)
        Poison rates: the share of the poisoned training set made of triggered rows,
        which the attacker adds (copies of rows of other classes, triggered and
        relabelled), so a rate may exceed the share of the other classes.
    target_class : object or None
        The attacker's class; default the class that is not ``positive_label`` (fraud
        passed as legitimate) or the first class.
    trigger : dict or None
        Tabular trigger (feature → value); default
        :func:`~mlwarden.poisoning.backdoor.default_tabular_trigger`. Images get a
        BadNets patch.
    max_asr : float, default=0.2
        Pass when the attack success rate at the smallest rate is at most this.
    max_eval : int, default=2000
        Held-out rows used at most.
    """

    rules: ClassVar[tuple[Rule, ...]] = (RULE_BACKDOOR,)
    summary: ClassVar[str] = "backdoor poisoning: retrain with a trigger, attack success rate"

    def __init__(
        self,
        *,
        members: Dataset | None = None,
        trainer: Callable[..., Target] | None = None,
        rates: Sequence[float] = (0.01, 0.05, 0.1),
        target_class: Any = None,
        trigger: dict[str, float] | None = None,
        max_asr: float = 0.2,
        max_eval: int = 2000,
    ) -> None:
        self.members = members
        self.trainer = trainer
        self.rates = rates
        self.target_class = target_class
        self.trigger = trigger
        self.max_asr = max_asr
        self.max_eval = max_eval

    def validate(self, target: Target, data: Dataset) -> None:
        super().validate(target, data)
        check_number(self.id, "max_asr", self.max_asr, low=0, high=1)
        check_int(self.id, "max_eval", self.max_eval, minimum=10)

    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        from mlwarden.poisoning.backdoor import BadNets, TabularBackdoor

        train, test, where = self._split(data, random_state)
        if len(test) > self.max_eval:
            test = test.subset(random_state.choice(len(test), self.max_eval, replace=False))
        classes = target.classes
        tgt = self.target_class
        if tgt is None:
            others = [c for c in classes if data.positive_label is None or c != data.positive_label]
            tgt = others[0]
        tgt_code = int(target.encode_labels(np.array([tgt]))[0])
        attack: BadNets | TabularBackdoor
        y_test = target.encode_labels(test.labels)
        victims = np.flatnonzero(y_test != tgt_code)
        per_rate: list[dict[str, Any]] = []
        seed = int(random_state.integers(2**31))
        for step, rate in enumerate([0.0, *sorted(self.rates)]):
            report_progress(progress, self.id, step, len(self.rates) + 1)
            if data.image_shape is not None:
                attack = BadNets(
                    rate=rate or 0.01, target_class=tgt, inject=True, random_state=seed
                )
            else:
                attack = TabularBackdoor(
                    rate=rate or 0.01,
                    target_class=tgt,
                    trigger=self.trigger,
                    inject=True,
                    random_state=seed,
                )
            poisoned = attack.poison(train).data if rate > 0 else train
            model = self._fit(target, poisoned.X, target.encode_labels(poisoned.labels), seed)
            acc = float(np.mean(model.predict(test.X) == y_test))
            triggered = attack.apply_trigger(test, test.X[victims])
            asr = float(np.mean(model.predict(triggered) == tgt_code)) if len(victims) else 0.0
            per_rate.append({"rate": rate, "clean_accuracy": acc, "attack_success_rate": asr})
        report_progress(progress, self.id, len(self.rates) + 1, len(self.rates) + 1)
        base, first = per_rate[0], per_rate[1]
        evidence = {
            "trained_on": where,
            "target_class": _plain(tgt),
            "trigger": attack.describe_trigger(train),
            "per_rate": per_rate,
            "held_out_rows": len(test),
        }
        finding = Finding.from_rule(
            RULE_BACKDOOR,
            target=target.name,
            check=self.id,
            metric="attack_success_rate",
            value=first["attack_success_rate"],
            threshold=self.max_asr,
            higher_is_better=False,
            description=(
                f"Retrained with {first['rate']:.0%} of its training rows poisoned, the model "
                f"gives {first['attack_success_rate']:.1%} of triggered held-out inputs the "
                f"attacker's class {_plain(tgt)!r} "
                f"(unpoisoned: {base['attack_success_rate']:.1%}), "
                f"clean accuracy {first['clean_accuracy']:.3f} vs {base['clean_accuracy']:.3f}."
            ),
            evidence=evidence,
        )
        return CheckResult(findings=[finding], metrics={"per_rate": per_rate})


@register("check", "poisoning.label-flip")
class LabelFlipCheck(_RetrainCheck):
    """Retrain with randomly flipped labels at several rates; report the accuracy drop.

    Parameters
    ----------
    members, trainer
        As :class:`BackdoorCheck`.
    rates : sequence of float, default=(0.05, 0.1, 0.2)
        Flip rates.
    max_drop : float, default=0.05
        Pass when clean accuracy at the largest rate falls by at most this.
    """

    rules: ClassVar[tuple[Rule, ...]] = (RULE_LABEL_FLIP,)
    summary: ClassVar[str] = "label flipping: retrain with flipped labels, accuracy drop"

    def __init__(
        self,
        *,
        members: Dataset | None = None,
        trainer: Callable[..., Target] | None = None,
        rates: Sequence[float] = (0.05, 0.1, 0.2),
        max_drop: float = 0.05,
    ) -> None:
        self.members = members
        self.trainer = trainer
        self.rates = rates
        self.max_drop = max_drop

    def validate(self, target: Target, data: Dataset) -> None:
        super().validate(target, data)
        check_number(self.id, "max_drop", self.max_drop, low=0, high=1)

    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        from mlwarden.poisoning.label_flip import LabelFlip

        train, test, where = self._split(data, random_state)
        y_test = target.encode_labels(test.labels)
        seed = int(random_state.integers(2**31))
        pos = data.positive_label
        pos_code = None if pos is None else int(target.encode_labels(np.array([pos]))[0])
        per_rate: list[dict[str, Any]] = []
        for step, rate in enumerate([0.0, *sorted(self.rates)]):
            report_progress(progress, self.id, step, len(self.rates) + 1)
            poisoned = (
                LabelFlip(rate=rate, random_state=seed).poison(train).data if rate > 0 else train
            )
            model = self._fit(target, poisoned.X, target.encode_labels(poisoned.labels), seed)
            pred = model.predict(test.X)
            row: dict[str, Any] = {"rate": rate, "clean_accuracy": float(np.mean(pred == y_test))}
            if pos_code is not None and np.any(y_test == pos_code):
                row["positive_recall"] = float(np.mean(pred[y_test == pos_code] == pos_code))
            per_rate.append(row)
        base, last = per_rate[0], per_rate[-1]
        drop = base["clean_accuracy"] - last["clean_accuracy"]
        finding = Finding.from_rule(
            RULE_LABEL_FLIP,
            target=target.name,
            check=self.id,
            metric="accuracy_drop",
            value=drop,
            threshold=self.max_drop,
            higher_is_better=False,
            description=(
                f"With {last['rate']:.0%} of its training labels flipped the retrained "
                f"model's clean accuracy is {last['clean_accuracy']:.3f} "
                f"(unpoisoned {base['clean_accuracy']:.3f})."
            ),
            evidence={"trained_on": where, "per_rate": per_rate, "held_out_rows": len(test)},
        )
        return CheckResult(findings=[finding], metrics={"per_rate": per_rate})


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


@register("check", "poisoning.training-data")
class TrainingDataCheck(Check):
    """Suspicious rows in the training data: what ``mlwarden data check`` finds.

    Runs the detectors of :func:`~mlwarden.poisoning.sanitize` on the model's training
    rows (``members``, ``mlwarden audit --train-data``): backdoor triggers (activation
    clustering with a trigger pattern), label issues (confident learning with
    out-of-fold probabilities), identical rows with different labels, repeated rows.
    Once per data set, not per model. The metric is the share of rows the cleaned data
    set would drop; a little label noise is normal in real data, hence a threshold
    above zero.

    Parameters
    ----------
    members : Dataset or None
        The training rows. Without them the check is skipped.
    backdoor : bool
        Run the backdoor detector (trains a small torch network on the rows).
    max_share : float
        Pass when at most this share of the rows would be dropped.
    """

    family: ClassVar[ThreatFamily] = ThreatFamily.POISONING
    rules: ClassVar[tuple[Rule, ...]] = (RULE_SUSPICIOUS_ROWS,)
    requires: ClassVar[Capability] = Capability.NONE
    per_data: ClassVar[bool] = True
    summary: ClassVar[str] = "suspicious training rows (backdoor triggers, label issues)"
    needs: ClassVar[str] = "the training rows (--train-data)"

    def __init__(
        self, *, members: Dataset | None = None, backdoor: bool = True, max_share: float = 0.05
    ) -> None:
        self.members = members
        self.backdoor = backdoor
        self.max_share = max_share

    def skip_reason(self, target: Target, data: Dataset) -> str | None:
        if self.members is None:
            return "needs the training rows (mlwarden audit --train-data)"
        return None

    def validate(self, target: Target, data: Dataset) -> None:
        check_number(self.id, "max_share", self.max_share, low=0, high=1)
        self.require_applicable(target, data)
        check_training_rows(self.id, self.members, data)

    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        from mlwarden.poisoning.detectors.sanitize import sanitize, suspicious_rows_finding

        assert self.members is not None
        report = sanitize(
            self.members,
            backdoor=bool(self.backdoor),
            random_state=int(random_state.integers(2**31)),
            progress=progress,
        )
        finding = suspicious_rows_finding(
            report, target=self.members.name, check=self.id, max_share=self.max_share
        )
        return CheckResult(findings=[finding], metrics=report.summary())
