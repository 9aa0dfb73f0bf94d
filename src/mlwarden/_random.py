"""Seeding helpers: ``random_state`` is stored as given and turned into generators at run time."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwarden.exceptions import InvalidParameterError

__all__ = ["RandomState", "as_generator", "torch_generator"]

RandomState = int | np.random.Generator | None


def as_generator(random_state: RandomState) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` for ``random_state``.

    ``None`` gives fresh entropy, an ``int`` a seeded generator, and a generator is
    returned unchanged.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (
        isinstance(random_state, int | np.integer) and not isinstance(random_state, bool)
    ):
        if random_state is not None and int(random_state) < 0:
            raise InvalidParameterError(f"random_state must be >= 0, got {random_state}")
        return np.random.default_rng(random_state)
    raise InvalidParameterError(
        f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}"
    )


def torch_generator(rng: np.random.Generator) -> Any:
    """A ``torch.Generator`` seeded from ``rng`` (imports torch lazily)."""
    import torch

    gen = torch.Generator()
    gen.manual_seed(int(rng.integers(0, 2**63 - 1)))
    return gen
