"""Projected Gradient Descent (L∞), with random restarts and feasible-set projection.

Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning Models Resistant
to Adversarial Attacks", ICLR 2018.

Threat model: white-box (input gradients), untargeted, L∞ budget ``eps`` in units of
each feature's scale. Tabular constraints are handled by searching in the relaxed
box of the :class:`~mlwarden.evasion.threat_model.PerturbationSet` and checking the
*projected* (integer, one-hot, immutable-respecting) candidate on the real model at
every step: a row counts as broken only when a feasible row fools the model. Rows
stop being attacked once broken, so the cost falls as the attack succeeds.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.data.schema import FeatureKind
from mlwarden.evasion.base import EvasionAttack
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.models.base import Capability, Target

__all__ = ["PGD"]

_GRADED = (FeatureKind.CONTINUOUS, FeatureKind.INTEGER)


class PGD(EvasionAttack):
    """L∞ projected gradient descent.

    Parameters
    ----------
    eps : float
        L∞ budget in feature-scale units.
    steps : int
        Gradient steps per restart.
    step_size : float or None
        Step in feature-scale units; default ``2.5 * eps / steps`` (Madry et al.).
        Relaxed binary/categorical features move ``2.5 / steps`` per step.
    random_start : bool
        Start each restart from a uniform point of the box (else from ``x``).
    restarts : int
        Independent restarts; rows broken by one restart are not attacked again.
    loss : {"ce", "margin"}
        Cross-entropy or logit margin.
    categorical : {"free", "fixed"}
        Whether mutable binary/categorical features may change.

    Notes
    -----
    With ``steps=1``, ``step_size=eps`` and ``random_start=False`` it is exactly FGSM.
    """

    requires: ClassVar[Capability] = Capability.LABELS | Capability.GRADIENTS
    name: ClassVar[str] = "PGD"

    def __init__(
        self,
        *,
        eps: float = 0.3,
        steps: int = 50,
        step_size: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        loss: str = "ce",
        categorical: str = "free",
    ) -> None:
        self.eps = eps
        self.steps = steps
        self.step_size = step_size
        self.random_start = random_start
        self.restarts = restarts
        self.loss = loss
        self.categorical = categorical

    def _validate_params(self) -> None:
        super()._validate_params()
        check_int(self.name, "steps", self.steps)
        check_int(self.name, "restarts", self.restarts)
        if self.step_size is not None:
            check_number(self.name, "step_size", self.step_size, low=0, low_open=True)
        check_choice(self.name, "loss", self.loss, ("ce", "margin"))

    def _run(
        self,
        target: Target,
        pset: PerturbationSet,
        y: npt.NDArray[np.int64],
        rng: np.random.Generator,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        n = len(y)
        step = self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps
        # Graded features move `step` scale units; relaxed discrete ones 2.5/steps of [0, 1].
        alpha = np.where(pset.step_unit > 0, pset.step_unit, 0.0)
        graded = pset.schema.mask(*_GRADED) & pset.movable
        alpha = np.where(graded, alpha * step, alpha * min(1.0, 2.5 / self.steps))
        x_adv = pset.x0.copy()
        broken = np.zeros(n, dtype=bool)
        queries = np.zeros(n, dtype=np.int64)
        for _ in range(self.restarts):
            rows = np.flatnonzero(~broken)
            if rows.size == 0:
                break
            sub = pset.rows(rows)
            x = rng.uniform(sub.lower, sub.upper) if self.random_start else sub.x0.copy()
            ys = y[rows]
            for _ in range(self.steps):
                _, grad = target.loss_gradient(x, ys, loss=self.loss)
                x = sub.clip(x + alpha * np.sign(grad))
                cand = sub.project(x)
                hit = target.predict(cand) != ys
                queries[rows] += 2
                x_adv[rows] = cand
                if hit.any():
                    broken[rows[hit]] = True
                    keep = ~hit
                    rows, x, ys = rows[keep], x[keep], ys[keep]
                    sub = sub.rows(np.flatnonzero(keep))
                    if rows.size == 0:
                        break
        return x_adv, queries
