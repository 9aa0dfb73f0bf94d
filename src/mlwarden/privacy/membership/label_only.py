"""Label-only membership inference by robustness to noise.

Choquette-Choo, Tramèr, Carlini and Papernot, "Label-Only Membership Inference Attacks",
ICML 2021.

Threat model: the target returns predicted labels only (no scores). The attacker queries
each candidate record and ``n_noise`` copies with Gaussian noise added (``noise_scale``
times each feature's standard deviation over ``X``); training records sit further from
the decision boundary, so more of their noisy copies keep the correct label. Score: 0 for
a record the target misclassifies, else the fraction of noisy copies still classified
correctly. Costs ``n_noise + 1`` queries per record. Noisy copies are not projected onto
a feature schema.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mlwarden._validation import check_int, check_number
from mlwarden.models.base import Capability, Target
from mlwarden.privacy.membership.base import FloatArray, IntArray, MembershipAttack
from mlwarden.privacy.reference import ReferenceModels

__all__ = ["LabelOnly"]


class LabelOnly(MembershipAttack):
    """Gaussian-noise robustness attack for label-only targets.

    Parameters
    ----------
    n_noise : int, default=50
        Noisy copies per record.
    noise_scale : float, default=0.1
        Noise standard deviation in units of each feature's standard deviation.
    """

    requires: ClassVar[Capability] = Capability.LABELS
    name: ClassVar[str] = "label-only"
    data_access: ClassVar[str] = "target labels on the candidate records and noisy copies"

    def __init__(self, *, n_noise: int = 50, noise_scale: float = 0.1) -> None:
        self.n_noise = n_noise
        self.noise_scale = noise_scale

    def _validate_params(self) -> None:
        check_int(self.name, "n_noise", self.n_noise, minimum=1)
        check_number(self.name, "noise_scale", self.noise_scale, low=0.0, low_open=True)

    def _score(
        self,
        target: Target,
        X: FloatArray,
        y: IntArray,
        index: IntArray,
        reference: ReferenceModels | None,
        rng: np.random.Generator,
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        scale = X.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0) * float(self.noise_scale)
        x = X[index]
        yi = y[index]
        correct = target.predict(x) == yi
        noise = rng.standard_normal((self.n_noise, *x.shape)) * scale
        noisy = (x[None] + noise).reshape(-1, x.shape[1])
        kept = (target.predict(noisy).reshape(self.n_noise, len(x)) == yi).mean(axis=0)
        return np.where(correct, kept, 0.0).astype(np.float64), {}
