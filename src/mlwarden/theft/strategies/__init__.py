"""Query strategies of the extraction attack: one file each, looked up by name."""

from __future__ import annotations

from mlwarden.exceptions import InvalidParameterError
from mlwarden.theft.strategies.active import ActiveStrategy
from mlwarden.theft.strategies.base import ExtractionState, ExtractionStrategy
from mlwarden.theft.strategies.jacobian import JacobianStrategy
from mlwarden.theft.strategies.knockoff import KnockoffStrategy
from mlwarden.theft.strategies.uniform import UniformStrategy

__all__ = [
    "STRATEGIES",
    "ActiveStrategy",
    "ExtractionState",
    "ExtractionStrategy",
    "JacobianStrategy",
    "KnockoffStrategy",
    "UniformStrategy",
    "make_strategy",
]

STRATEGIES: dict[str, type[ExtractionStrategy]] = {
    "uniform": UniformStrategy,
    "jacobian": JacobianStrategy,
    "knockoff": KnockoffStrategy,
    "pool": KnockoffStrategy,
    "active": ActiveStrategy,
}
"""Strategy names (``"pool"`` is an alias of ``"knockoff"``)."""


def make_strategy(strategy: str | ExtractionStrategy) -> ExtractionStrategy:
    """The strategy named ``strategy`` (default parameters), or ``strategy`` itself."""
    if isinstance(strategy, ExtractionStrategy):
        return strategy
    cls = STRATEGIES.get(strategy) if isinstance(strategy, str) else None
    if cls is None:
        raise InvalidParameterError(
            f"extract: strategy must be one of {', '.join(map(repr, STRATEGIES))} or an "
            f"ExtractionStrategy, got {strategy!r}"
        )
    return cls()
