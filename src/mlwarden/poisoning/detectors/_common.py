"""Helpers shared by the detectors."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import DataError

__all__ = ["class_codes", "get_representations", "show"]


def class_codes(data: Dataset) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    """The classes and each row's class code."""
    classes, codes = np.unique(data.labels, return_inverse=True)
    return classes, codes.astype(np.int64)


def get_representations(
    owner: str,
    data: Dataset,
    representations: npt.ArrayLike | None,
    *,
    seed: int,
    hidden: tuple[int, ...] = (128, 64),
    epochs: int = 40,
) -> npt.NDArray[np.float64]:
    """The given representations (checked), or a small MLP's penultimate layer."""
    if representations is None:
        from mlwarden.poisoning.detectors.representations import penultimate_activations

        _, codes = class_codes(data)
        return penultimate_activations(data.X, codes, hidden=hidden, epochs=epochs, seed=seed)
    reps = np.asarray(representations, dtype=np.float64)
    if reps.ndim != 2 or len(reps) != data.n_samples:
        raise DataError(
            f"{owner}: representations must have one row per data row "
            f"({data.n_samples}), got shape {reps.shape}"
        )
    if not np.isfinite(reps).all():
        raise DataError(f"{owner}: representations contain NaN or infinite values")
    return reps


def show(value: Any) -> str:
    """``repr`` of a label as Python writes it (``5``, ``'fraud'``), not NumPy's."""
    return repr(value.item() if isinstance(value, np.generic) else value)
