"""LiRA: the likelihood-ratio membership attack with reference models.

Carlini, Chien, Nasr, Song, Terzis and Tramèr, "Membership Inference Attacks From First
Principles", IEEE S&P 2022.

Threat model: black-box access to the target's class probabilities (or logits); the
attacker holds a population from the target's distribution containing the candidate
records, and knows the target's training procedure well enough to train reference models
(:class:`~mlwarden.privacy.reference.ReferenceModels`, paired half-splits: every record
is IN for half of them and OUT for the other half).

For each record the signal is the logit-scaled confidence of the true class,
``φ = log(p_y / (1 - p_y))``. Online, Gaussians are fitted to the record's IN and OUT
reference scores and the score is the log-likelihood ratio
``log N(φ; μ_in, σ_in²) - log N(φ; μ_out, σ_out²)``. Offline, only OUT models are used:
the one-sided test ``Pr[Z < φ]``, ``Z ~ N(μ_out, σ_out²)``, is reported as the
standardised ``(φ - μ_out) / σ_out``, which ranks records identically without
saturating at 1. With few reference models the per-record variances are unreliable and a
global variance (the mean of the per-record variances) is used instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from mlwarden._validation import check_number
from mlwarden.exceptions import InvalidParameterError
from mlwarden.models.base import Capability, Target
from mlwarden.privacy.membership.base import FloatArray, IntArray, MembershipAttack
from mlwarden.privacy.reference import ReferenceModels, target_log_scores, true_class_logit

__all__ = ["LiRA"]

GLOBAL_VARIANCE_BELOW = 64
"""``fix_variance="auto"`` uses a global variance with fewer reference models than this."""


class LiRA(MembershipAttack):
    """Likelihood-ratio attack (online or offline).

    Parameters
    ----------
    online : bool, default=True
        Use IN and OUT reference models (online) or OUT models only (offline).
    fix_variance : bool or "auto", default="auto"
        Use one global variance for IN (and one for OUT) scores instead of per-record
        variances; ``"auto"`` does so with fewer than 64 reference models.
    min_std : float, default=1e-6
        Floor on the standard deviations (degenerate reference scores).
    """

    requires: ClassVar[Capability] = Capability.SCORES
    name: ClassVar[str] = "lira"
    needs_reference: ClassVar[bool] = True
    data_access: ClassVar[str] = (
        "target probabilities; a population containing the candidates; the training procedure"
    )

    def __init__(
        self, *, online: bool = True, fix_variance: bool | str = "auto", min_std: float = 1e-6
    ) -> None:
        self.online = online
        self.fix_variance = fix_variance
        self.min_std = min_std

    def _validate_params(self) -> None:
        if not isinstance(self.online, bool):
            raise InvalidParameterError(f"{self.name}: online must be a bool, got {self.online!r}")
        if self.fix_variance not in (True, False, "auto"):
            raise InvalidParameterError(
                f"{self.name}: fix_variance must be True, False or 'auto', "
                f"got {self.fix_variance!r}"
            )
        check_number(self.name, "min_std", self.min_std, low=0.0, low_open=True)

    def _mode(self) -> str:
        return "online" if self.online else "offline"

    def _score(
        self,
        target: Target,
        X: FloatArray,
        y: IntArray,
        index: IntArray,
        reference: ReferenceModels | None,
        rng: np.random.Generator,
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        assert reference is not None
        phi_ref = reference.signals("logit")[:, index]
        in_mask = reference.in_mask_[:, index]
        fix = self.fix_variance
        if fix == "auto":
            fix = reference.n_models_ < GLOBAL_VARIANCE_BELOW
        mu_out, std_out = _gaussian(phi_ref, ~in_mask, bool(fix), self.min_std, "OUT")
        phi = true_class_logit(target_log_scores(target, X[index]), y[index])
        extra: dict[str, Any] = {"phi": phi, "mu_out": mu_out, "std_out": std_out}
        if not self.online:
            return (phi - mu_out) / std_out, extra
        mu_in, std_in = _gaussian(phi_ref, in_mask, bool(fix), self.min_std, "IN")
        extra.update(mu_in=mu_in, std_in=std_in)
        return _log_normal(phi, mu_in, std_in) - _log_normal(phi, mu_out, std_out), extra


def _gaussian(
    phi: FloatArray, mask: Any, fix: bool, min_std: float, which: str
) -> tuple[FloatArray, FloatArray]:
    """Per-record mean and standard deviation of the ``mask``-ed reference scores."""
    count = mask.sum(axis=0)
    if (count == 0).any():
        row = int(np.argmax(count == 0))
        raise InvalidParameterError(
            f"lira: record {row} of the scored records has no {which} reference model; "
            + (
                "online LiRA needs IN models for every record (it was excluded from the "
                "reference training): use online=False"
                if which == "IN"
                else "every record needs OUT reference models"
            )
        )
    mu = np.where(mask, phi, 0.0).sum(axis=0) / count
    var = np.where(mask, (phi - mu) ** 2, 0.0).sum(axis=0) / count
    if fix:
        var = np.full_like(var, var.mean())
    return mu, np.sqrt(np.maximum(var, min_std**2))


def _log_normal(x: FloatArray, mu: FloatArray, std: FloatArray) -> FloatArray:
    return np.asarray(
        -0.5 * np.log(2.0 * np.pi * std**2) - (x - mu) ** 2 / (2.0 * std**2), dtype=np.float64
    )
