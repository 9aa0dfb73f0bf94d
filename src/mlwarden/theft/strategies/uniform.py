"""Uniform random queries within the schema (Tramèr et al. 2016).

Reference: F. Tramèr, F. Zhang, A. Juels, M. K. Reiter and T. Ristenpart, "Stealing
Machine Learning Models via Prediction APIs", USENIX Security 2016. Their retraining
attack queries rows drawn uniformly at random from the input space.

Threat model: the attacker knows the input format (feature names, kinds and valid
ranges: the schema) but holds no data. Every query is a row drawn uniformly within the
bounds, with integer, binary and one-hot features made valid. On structured data
(transactions, where real rows fill a small part of the space) most queries land far
from real data, so the copy agrees with the victim less than with natural queries.
"""

from __future__ import annotations

from typing import ClassVar

from mlwarden.theft.strategies.base import ExtractionState, ExtractionStrategy, FloatArray

__all__ = ["UniformStrategy"]


class UniformStrategy(ExtractionStrategy):
    """Rows drawn uniformly within the schema's bounds (no data needed)."""

    name: ClassVar[str] = "uniform"

    def __init__(self) -> None:
        pass

    def propose(self, n: int, state: ExtractionState) -> FloatArray:
        """``n`` uniform rows, projected onto the schema."""
        return state.uniform(n)
