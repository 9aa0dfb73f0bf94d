"""Fast Gradient Sign Method.

Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial Examples",
ICLR 2015.

Threat model: white-box (gradients of the loss with respect to the input), untargeted,
L∞ budget ``eps`` in units of each feature's scale, one step; the result is projected
onto the feasible set of the :class:`~mlwarden.evasion.threat_model.PerturbationSet`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_choice
from mlwarden.data.schema import FeatureKind
from mlwarden.evasion.base import EvasionAttack
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.models.base import Capability, Target

__all__ = ["FGSM"]


class FGSM(EvasionAttack):
    """One signed-gradient step of size ``eps``.

    Parameters
    ----------
    eps : float
        L∞ budget in feature-scale units.
    loss : {"ce", "margin"}
        Loss whose gradient is followed.
    categorical : {"free", "fixed"}
        Whether mutable binary/categorical features may change.
    """

    requires: ClassVar[Capability] = Capability.LABELS | Capability.GRADIENTS
    name: ClassVar[str] = "FGSM"

    def __init__(self, *, eps: float = 0.3, loss: str = "ce", categorical: str = "free") -> None:
        self.eps = eps
        self.loss = loss
        self.categorical = categorical

    def _validate_params(self) -> None:
        super()._validate_params()
        check_choice(self.name, "loss", self.loss, ("ce", "margin"))

    def _run(
        self,
        target: Target,
        pset: PerturbationSet,
        y: npt.NDArray[np.int64],
        rng: np.random.Generator,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        _, grad = target.loss_gradient(pset.x0, y, loss=self.loss)
        # Graded features move eps scale units; relaxed binary/categorical ones a full unit.
        graded = pset.schema.mask(FeatureKind.CONTINUOUS, FeatureKind.INTEGER)
        x = pset.x0 + np.where(graded, self.eps, 1.0) * pset.step_unit * np.sign(grad)
        return pset.project(x), np.ones(len(y), dtype=np.int64)
