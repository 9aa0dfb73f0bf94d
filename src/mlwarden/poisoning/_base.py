"""Shared pieces of the poisoning attacks: the result type and label helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_number
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import DataError, InvalidParameterError

__all__ = ["PoisonResult"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PoisonResult:
    """What a poisoning attack returns.

    Attributes
    ----------
    data : Dataset
        The poisoned data set (same rows, in the same order, as the clean one).
    indices : ndarray of int
        Rows the attack changed (features, label or both), sorted.
    attack : str
        The attack's name.
    target_class : object or None
        The class the attacker wants triggered inputs (or flipped rows) to get.
    trigger : dict
        A JSON-serialisable description of the trigger (empty for label flips).
    original_labels : ndarray
        The labels of ``indices`` before the attack.
    """

    data: Dataset
    indices: IntArray
    attack: str
    target_class: Any = None
    trigger: dict[str, Any] = field(default_factory=dict)
    original_labels: npt.NDArray[Any] = field(default_factory=lambda: np.empty(0))

    @property
    def rate(self) -> float:
        """Share of rows changed."""
        return len(self.indices) / max(self.data.n_samples, 1)

    @property
    def mask(self) -> npt.NDArray[np.bool_]:
        """Boolean mask of changed rows."""
        m = np.zeros(self.data.n_samples, dtype=bool)
        m[self.indices] = True
        return m


def check_rate(owner: str, rate: Any) -> float:
    """``rate`` as a share in ``(0, 1)``."""
    value = check_number(owner, "rate", rate, low=0, high=1, low_open=True)
    if value >= 1:
        raise InvalidParameterError(f"{owner}: rate must be below 1, got {rate!r}")
    return value


def n_to_poison(owner: str, rate: float, n_available: int, n_total: int) -> int:
    """How many rows ``rate`` of ``n_total`` asks for; error when fewer are available."""
    k = max(1, round(rate * n_total))
    if k > n_available:
        raise DataError(
            f"{owner}: rate {rate:g} asks for {k} rows but only {n_available} can be poisoned"
        )
    return k


def resolve_class(owner: str, name: str, value: Any, labels: npt.NDArray[Any]) -> Any:
    """``value`` as one of the labels' classes (a string matches ``str(label)``)."""
    classes = np.unique(labels)
    for c in classes:
        if c == value or str(c) == str(value):
            return c.item() if isinstance(c, np.generic) else c
    shown = ", ".join(str(c) for c in classes[:20])
    raise InvalidParameterError(f"{owner}: {name}={value!r} is not a class; classes: {shown}")


def replace_rows(data: Dataset, X: FloatArray, y: npt.NDArray[Any] | None, suffix: str) -> Dataset:
    """A copy of ``data`` with new features and labels."""
    return Dataset(
        X=X,
        y=y,
        schema=data.schema,
        name=f"{data.name}-{suffix}",
        positive_label=data.positive_label,
        description=data.description,
        source=data.source,
        image_shape=data.image_shape,
    )


def set_labels(y: npt.NDArray[Any], idx: IntArray, value: Any) -> npt.NDArray[Any]:
    """A copy of ``y`` with ``y[idx] = value``, widening a string dtype if needed."""
    out = np.array(y, copy=True)
    if out.dtype.kind == "U":
        width = max(out.dtype.itemsize // 4, len(str(value)))
        out = out.astype(f"<U{width}")
    out[idx] = value
    return out
