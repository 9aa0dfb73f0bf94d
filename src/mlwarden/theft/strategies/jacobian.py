"""Jacobian-based synthetic augmentation around a few seed rows (Papernot et al. 2017).

Reference: N. Papernot, P. McDaniel, I. Goodfellow, S. Jha, Z. B. Celik and A. Swami,
"Practical Black-Box Attacks against Machine Learning", ASIA CCS 2017. The attacker
starts from a handful of seed rows, trains a substitute, and grows its query set with
``x + λ · sign(∂ f_substitute[y_victim(x)] / ∂x)``: steps along the direction in which
the substitute's output for the victim's label changes most, i.e. towards the decision
boundary. λ flips sign every ``tau`` rounds (their periodic step size); each round
augments a random sample of the rows queried so far (their reservoir sampling), so the
budget grows linearly, not by doubling.

Threat model: the attacker holds only a few seed rows (drawn from ``pool``; uniform rows
when there is none) and can query labels or scores. The substitute's Jacobian is
estimated by central finite differences on its probabilities (no victim query), so any
surrogate model works; where a tree model's output is flat the step is a random sign.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mlwarden._validation import check_int, check_number
from mlwarden.theft.strategies.base import ExtractionState, ExtractionStrategy, FloatArray

__all__ = ["JacobianStrategy"]


class JacobianStrategy(ExtractionStrategy):
    """Papernot's Jacobian-based dataset augmentation.

    Parameters
    ----------
    n_seeds : int, default=100
        Seed rows queried first (also the number of rows added per round).
    step : float, default=0.3
        λ, in feature-scale units.
    tau : int, default=3
        Rounds between flips of λ's sign.
    fd_step : float, default=0.1
        Finite-difference step for the substitute's Jacobian, in feature-scale units.
    """

    name: ClassVar[str] = "jacobian"
    adaptive: ClassVar[bool] = True

    def __init__(
        self, *, n_seeds: int = 100, step: float = 0.3, tau: int = 3, fd_step: float = 0.1
    ) -> None:
        self.n_seeds = n_seeds
        self.step = step
        self.tau = tau
        self.fd_step = fd_step

    def validate(self) -> None:
        check_int("jacobian", "n_seeds", self.n_seeds)
        check_number("jacobian", "step", self.step, low=0, low_open=True)
        check_int("jacobian", "tau", self.tau)
        check_number("jacobian", "fd_step", self.fd_step, low=0, low_open=True)

    def initial_size(self, budget: int) -> int:
        return min(int(self.n_seeds), budget)

    def round_size(self, budget: int) -> int:
        return int(self.n_seeds)

    def propose(self, n: int, state: ExtractionState) -> FloatArray:
        """Seed rows first, then Jacobian steps from rows already queried."""
        if state.surrogate_proba is None or len(state.X) == 0:
            free = state.unused_pool()
            if free.size >= n:
                return state.take_pool(state.rng.permutation(free)[:n])
            return state.uniform(n)
        base_idx = state.rng.integers(0, len(state.X), size=n)
        base = state.X[base_idx]
        cls = state.y[base_idx]
        grad = self._jacobian_row(base, cls, state)
        sign = np.sign(grad)
        flat = sign == 0
        sign[flat] = state.rng.choice([-1.0, 1.0], size=int(flat.sum()))
        rnd = max(0, (len(state.X) - int(self.n_seeds)) // int(self.n_seeds))
        lam = float(self.step) * (-1.0) ** (rnd // int(self.tau))
        return np.asarray(
            state.perturb(base + lam * sign * state.schema.scale, 0.0), dtype=np.float64
        )

    def _jacobian_row(self, x: FloatArray, cls: np.ndarray, state: ExtractionState) -> FloatArray:
        """∂ p_surrogate[cls] / ∂x by central differences, shape ``(n, d)``."""
        assert state.surrogate_proba is not None
        n, d = x.shape
        h = float(self.fd_step) * state.schema.scale
        eye = np.eye(d) * h
        plus = (x[:, None, :] + eye[None]).reshape(-1, d)
        minus = (x[:, None, :] - eye[None]).reshape(-1, d)
        p = state.surrogate_proba(np.vstack([plus, minus]))
        rows = np.repeat(cls, d)
        col = p[np.arange(2 * n * d), np.concatenate([rows, rows])]
        diff = (col[: n * d] - col[n * d :]).reshape(n, d)
        return np.asarray(diff / (2 * h), dtype=np.float64)
