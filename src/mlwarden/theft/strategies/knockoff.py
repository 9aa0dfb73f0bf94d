"""Natural-data queries from a pool of unlabelled rows (Knockoff Nets, Orekondy et al. 2019).

Reference: T. Orekondy, B. Schiele and M. Fritz, "Knockoff Nets: Stealing Functionality
of Black-Box Models", CVPR 2019. The attacker queries natural inputs it already holds
(random sampling, their ``random`` policy) and trains a copy on the answers.

Threat model: the attacker holds unlabelled rows from the same or a similar population
(for a fraud model: other transactions) and can query the victim's labels or scores.
Rows are sent without replacement; once the pool is spent, further queries are pool
rows jittered by ``jitter`` feature-scale units (projected onto the schema), so the
budget is spent exactly.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mlwarden._validation import check_number
from mlwarden.theft.strategies.base import ExtractionState, ExtractionStrategy, FloatArray

__all__ = ["KnockoffStrategy"]


class KnockoffStrategy(ExtractionStrategy):
    """Random rows from the attacker's pool.

    Parameters
    ----------
    jitter : float, default=0.1
        Noise (in feature-scale units) added to pool rows reused once every row has
        been sent.
    """

    name: ClassVar[str] = "knockoff"
    needs_pool: ClassVar[bool] = True

    def __init__(self, *, jitter: float = 0.1) -> None:
        self.jitter = jitter

    def validate(self) -> None:
        check_number("knockoff", "jitter", self.jitter, low=0)

    def propose(self, n: int, state: ExtractionState) -> FloatArray:
        """``n`` pool rows not sent yet, then jittered copies."""
        assert state.pool is not None
        free = state.unused_pool()
        take = state.rng.permutation(free)[:n]
        rows = [state.take_pool(take)] if take.size else []
        extra = n - take.size
        if extra > 0:
            base = state.pool[state.rng.integers(0, len(state.pool), size=extra)]
            rows.append(state.perturb(base, float(self.jitter)))
        return np.vstack(rows) if rows else np.zeros((0, state.n_features))
