"""RMIA: robust membership inference with population samples.

Zarifzadeh, Liu, Cheng and Shokri, "Low-Cost High-Power Membership Inference Attacks",
ICML 2024.

Threat model: black-box access to the target's class probabilities; a population from the
target's distribution (containing the candidates) and reference models trained on paired
half-splits of it (:class:`~mlwarden.privacy.reference.ReferenceModels`).

For a record ``x`` the likelihood ratio is ``LR(x) = Pr(x|θ) / Pr(x)``, where
``Pr(x|θ)`` is the target's probability of the true class and ``Pr(x)`` its average over
the reference models: all of them online, or, offline (OUT models only), the linear
approximation ``Pr(x) = ((1 + a) Pr_OUT(x) + (1 - a)) / 2`` of the paper. The score is the
fraction of population records ``z`` (rows of the population outside the candidates) that
``x`` dominates: ``LR(x) / LR(z) >= γ``. With a fixed set of ``z`` that fraction is a
non-decreasing function of ``LR(x)``, so ties (many records at 1.0 on an overfit model)
are broken by ``LR(x)`` itself: the reported score is the fraction plus a tie-break below
``1 / n_z`` increasing with the rank of ``LR(x)``; the ranking is then the paper's,
refined. The fraction and ``log LR(x)`` are in :attr:`MembershipResult.extra`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mlwarden._validation import check_int, check_number
from mlwarden.exceptions import InvalidParameterError
from mlwarden.models.base import Capability, Target
from mlwarden.privacy.membership.base import FloatArray, IntArray, MembershipAttack
from mlwarden.privacy.reference import ReferenceModels

__all__ = ["RMIA"]

_TINY = float(np.finfo(np.float64).tiny)


class RMIA(MembershipAttack):
    """Relative membership inference attack.

    Parameters
    ----------
    online : bool, default=True
        Average ``Pr(x|θ_ref)`` over all reference models (online) or use OUT models
        with the ``offline_a`` approximation (offline).
    gamma : float, default=1.0
        Domination threshold ``γ`` on ``LR(x) / LR(z)``.
    offline_a : float, default=0.3
        The offline approximation's ``a`` in ``[0, 1]``.
    n_population : int or None, default=None
        At most this many ``z`` records, sampled without replacement (``None``: all).
    """

    requires: ClassVar[Capability] = Capability.SCORES
    name: ClassVar[str] = "rmia"
    needs_reference: ClassVar[bool] = True
    data_access: ClassVar[str] = (
        "target probabilities; a population containing the candidates; the training procedure"
    )

    def __init__(
        self,
        *,
        online: bool = True,
        gamma: float = 1.0,
        offline_a: float = 0.3,
        n_population: int | None = None,
    ) -> None:
        self.online = online
        self.gamma = gamma
        self.offline_a = offline_a
        self.n_population = n_population

    def _validate_params(self) -> None:
        if not isinstance(self.online, bool):
            raise InvalidParameterError(f"{self.name}: online must be a bool, got {self.online!r}")
        check_number(self.name, "gamma", self.gamma, low=0.0, low_open=True)
        check_number(self.name, "offline_a", self.offline_a, low=0.0, high=1.0)
        if self.n_population is not None:
            check_int(self.name, "n_population", self.n_population, minimum=1)

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
        n = len(X)
        z_rows = np.setdiff1d(np.arange(n), index)
        if z_rows.size == 0:
            raise InvalidParameterError(
                f"{self.name}: no population records z left: every row of X is a candidate; "
                "fit the reference models on a population with rows beyond the members and "
                "nonmembers"
            )
        if self.n_population is not None and self.n_population < len(z_rows):
            z_rows = np.sort(rng.choice(z_rows, size=self.n_population, replace=False))
        p_ref = reference.signals("prob")
        if self.online:
            pr = p_ref.mean(axis=0)
        else:
            out = ~reference.in_mask_
            n_out = out.sum(axis=0)
            if (n_out[np.r_[index, z_rows]] == 0).any():
                raise InvalidParameterError(f"{self.name}: a record has no OUT reference model")
            mean_out = np.where(out, p_ref, 0.0).sum(axis=0) / np.maximum(n_out, 1)
            a = float(self.offline_a)
            pr = ((1.0 + a) * mean_out + (1.0 - a)) / 2.0
        rows = np.r_[index, z_rows]
        p_t = target.predict_proba(X[rows])[np.arange(len(rows)), y[rows]]
        ratio = np.maximum(p_t, _TINY) / np.maximum(pr[rows], _TINY)
        ratio_x, ratio_z = ratio[: len(index)], ratio[len(index) :]
        frac = (ratio_x[:, None] / ratio_z[None, :] >= self.gamma).mean(axis=1)
        from scipy.stats import rankdata

        tie = rankdata(ratio_x) / (len(ratio_x) + 1.0) / (len(ratio_z) + 1.0)
        extra = {"fraction": frac, "log_ratio": np.log(ratio_x)}
        return np.asarray(frac + tie, dtype=np.float64), extra
