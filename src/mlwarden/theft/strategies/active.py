"""Active learning: query where the surrogate is least sure (uncertainty sampling).

References: the retraining attacks of Tramèr et al., "Stealing Machine Learning Models
via Prediction APIs" (USENIX Security 2016) already query adaptively near the current
copy's decision boundary; Chandrasekaran et al., "Exploring Connections Between Active
Learning and Model Extraction" (USENIX Security 2020) make the link with active
learning. This strategy is margin-based uncertainty sampling (Settles 2009).

Threat model: the attacker holds a pool of unlabelled rows (or, without one, samples
uniformly within the schema) and can query labels or scores. After a first random round
it trains a surrogate, then repeatedly draws candidates and queries those with the
smallest margin between the surrogate's two most likely classes, plus a share of random
rows so that regions the surrogate wrongly thinks it knows are still explored.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from mlwarden._validation import check_int, check_number
from mlwarden.theft.strategies.base import ExtractionState, ExtractionStrategy, FloatArray

__all__ = ["ActiveStrategy"]


class ActiveStrategy(ExtractionStrategy):
    """Margin-based uncertainty sampling with a refitted surrogate.

    Parameters
    ----------
    n_rounds : int, default=8
        Surrogate refits after the first round.
    initial : float, default=0.2
        Share of the budget spent on random rows before the first fit.
    n_candidates : int, default=10
        Candidates scored per query in each round.
    exploration : float, default=0.2
        Share of each round's queries drawn at random among the candidates.
    """

    name: ClassVar[str] = "active"
    adaptive: ClassVar[bool] = True

    def __init__(
        self,
        *,
        n_rounds: int = 8,
        initial: float = 0.2,
        n_candidates: int = 10,
        exploration: float = 0.2,
    ) -> None:
        self.n_rounds = n_rounds
        self.initial = initial
        self.n_candidates = n_candidates
        self.exploration = exploration

    def validate(self) -> None:
        check_int("active", "n_rounds", self.n_rounds)
        check_number("active", "initial", self.initial, low=0, high=1, low_open=True)
        check_int("active", "n_candidates", self.n_candidates)
        check_number("active", "exploration", self.exploration, low=0, high=1)

    def initial_size(self, budget: int) -> int:
        return max(1, round(float(self.initial) * budget))

    def round_size(self, budget: int) -> int:
        rest = budget - self.initial_size(budget)
        return max(1, math.ceil(rest / int(self.n_rounds)))

    def _candidates(self, m: int, state: ExtractionState) -> tuple[FloatArray, np.ndarray]:
        free = state.unused_pool()
        if free.size:
            idx = state.rng.permutation(free)[:m]
            assert state.pool is not None
            return np.asarray(state.pool[idx], dtype=np.float64), idx
        return state.uniform(m), np.full(m, -1)

    def propose(self, n: int, state: ExtractionState) -> FloatArray:
        """``n`` rows: random before the first fit, then the least certain candidates."""
        cand, idx = self._candidates(n * int(self.n_candidates), state)
        if len(cand) < n:  # pool nearly spent: top up with uniform rows
            extra = state.uniform(n - len(cand))
            cand = np.vstack([cand, extra])
            idx = np.concatenate([idx, np.full(len(extra), -1)])
        if state.surrogate_proba is None:
            pick = np.arange(n)
        else:
            p = np.sort(state.surrogate_proba(cand), axis=1)
            margin = p[:, -1] - (p[:, -2] if p.shape[1] > 1 else 0.0)
            n_random = round(float(self.exploration) * n)
            order = np.argsort(margin, kind="stable")
            sure = order[: n - n_random]
            rest = order[n - n_random :]
            pick = np.concatenate([sure, state.rng.permutation(rest)[:n_random]])
        chosen = idx[pick]
        if state.pool is not None and (chosen >= 0).any():
            state.take_pool(chosen[chosen >= 0])
        return np.asarray(cand[pick], dtype=np.float64)
