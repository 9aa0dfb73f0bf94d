"""Loss / confidence threshold attack: the baseline membership inference.

Yeom, Giacomelli, Fredrikson and Jha, "Privacy Risk in Machine Learning: Analyzing the
Connection to Overfitting", IEEE CSF 2018.

Threat model: black-box access to the target's class probabilities on the candidate
records and their labels; no reference models, no other data. A record whose loss is low
(confidence in its true class high) is called a member. Every threshold is scanned by the
metrics, so the attacker's calibration of the threshold is not modelled (an upper bound
on this attack).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mlwarden._validation import check_choice
from mlwarden.models.base import Capability, Target
from mlwarden.privacy.membership.base import FloatArray, IntArray, MembershipAttack
from mlwarden.privacy.reference import (
    ReferenceModels,
    target_log_scores,
    true_class_logit,
    true_class_prob,
)

__all__ = ["LossThreshold"]

_SIGNALS = ("loss", "confidence", "logit")


class LossThreshold(MembershipAttack):
    """Score = minus the cross-entropy loss (or the confidence) of the true class.

    Parameters
    ----------
    signal : {"loss", "confidence", "logit"}, default="loss"
        ``loss``: ``log p_y`` (minus the loss); ``confidence``: ``p_y``; ``logit``:
        ``log(p_y / (1 - p_y))``. All three rank records alike; ``loss`` and ``logit``
        keep resolution where ``p_y`` rounds to 1.
    """

    requires: ClassVar[Capability] = Capability.SCORES
    name: ClassVar[str] = "loss-threshold"
    data_access: ClassVar[str] = "target probabilities on the candidate records"

    def __init__(self, *, signal: str = "loss") -> None:
        self.signal = signal

    def _validate_params(self) -> None:
        check_choice(self.name, "signal", self.signal, _SIGNALS)

    def _score(
        self,
        target: Target,
        X: FloatArray,
        y: IntArray,
        index: IntArray,
        reference: ReferenceModels | None,
        rng: np.random.Generator,
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        z = target_log_scores(target, X[index])
        yi = y[index]
        if self.signal == "logit":
            return true_class_logit(z, yi), {}
        p = true_class_prob(z, yi)
        if self.signal == "confidence":
            return p, {}
        from scipy.special import logsumexp

        logp = z[np.arange(len(yi)), yi] - logsumexp(z, axis=1)
        return np.asarray(logp, dtype=np.float64), {"confidence": p}
