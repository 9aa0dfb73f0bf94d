"""Label flipping: the simplest poisoning attack.

Reference: Biggio, Nelson and Laskov, "Support Vector Machines Under Adversarial Label
Noise" (ACML 2011); Xiao, Xiao and Eckert, "Adversarial Label Flips Attack on Support
Vector Machines" (ECAI 2012).

Threat model: the attacker controls the labels of a share of the training rows (a
crowd-sourced labelling job, a feedback loop that learns from user reports, an insider)
but not their features. ``mode="random"`` flips each chosen row to another class drawn
uniformly (label noise, degrades accuracy); ``mode="targeted"`` flips rows of
``source_class`` to ``target_class`` only (e.g. fraud relabelled as legitimate, so the
model learns to let that fraud through). ATLAS AML.T0020, OWASP ML02.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_choice
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import InvalidParameterError
from mlwarden.poisoning._base import (
    PoisonResult,
    check_rate,
    n_to_poison,
    replace_rows,
    resolve_class,
    set_labels,
)

__all__ = ["LabelFlip"]

_OWNER = "LabelFlip"


class LabelFlip:
    """Flip the labels of a share of the rows.

    Parameters
    ----------
    rate : float, default=0.1
        Share of *all* rows whose label is flipped, in ``(0, 1)``.
    mode : {"random", "targeted"}, default="random"
        ``"random"``: rows drawn uniformly from the whole data set, each given another
        class drawn uniformly. ``"targeted"``: rows of ``source_class`` relabelled as
        ``target_class``.
    source_class, target_class : object or None
        For ``mode="targeted"``: flip ``source_class`` rows to ``target_class``. With
        two classes either one may be omitted (it is the other class).
    random_state : int, Generator or None
        Seed for the choice of rows and new labels.
    """

    def __init__(
        self,
        *,
        rate: float = 0.1,
        mode: str = "random",
        source_class: Any = None,
        target_class: Any = None,
        random_state: RandomState = None,
    ) -> None:
        self.rate = rate
        self.mode = mode
        self.source_class = source_class
        self.target_class = target_class
        self.random_state = random_state

    def poison(self, data: Dataset) -> PoisonResult:
        """Return a copy of ``data`` with flipped labels and the rows that were flipped."""
        rate = check_rate(_OWNER, self.rate)
        mode = check_choice(_OWNER, "mode", self.mode, ("random", "targeted"))
        rng = as_generator(self.random_state)
        y = data.labels
        classes = np.unique(y)
        if len(classes) < 2:
            raise InvalidParameterError(f"{_OWNER}: the labels have a single class")
        if mode == "random":
            k = n_to_poison(_OWNER, rate, len(y), len(y))
            idx = np.sort(rng.choice(len(y), size=k, replace=False)).astype(np.int64)
            codes = np.searchsorted(classes, y[idx])
            shift = rng.integers(1, len(classes), size=k)
            new = classes[(codes + shift) % len(classes)]
            y_new = np.array(y, copy=True)
            y_new[idx] = new
            return PoisonResult(
                data=replace_rows(data, data.X.copy(), y_new, "label-flip"),
                indices=idx,
                attack="label-flip (random)",
                original_labels=y[idx],
            )
        source, target = self._classes(classes, y)
        pool = np.flatnonzero(y == source)
        k = n_to_poison(_OWNER, rate, len(pool), len(y))
        idx = np.sort(rng.choice(pool, size=k, replace=False)).astype(np.int64)
        return PoisonResult(
            data=replace_rows(data, data.X.copy(), set_labels(y, idx, target), "label-flip"),
            indices=idx,
            attack="label-flip (targeted)",
            target_class=target,
            trigger={"source_class": _plain(source)},
            original_labels=y[idx],
        )

    def _classes(self, classes: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> tuple[Any, Any]:
        src, tgt = self.source_class, self.target_class
        if src is None and tgt is None:
            raise InvalidParameterError(
                f"{_OWNER}: mode='targeted' needs target_class (and source_class with "
                "more than two classes)"
            )
        if src is not None:
            src = resolve_class(_OWNER, "source_class", src, y)
        if tgt is not None:
            tgt = resolve_class(_OWNER, "target_class", tgt, y)
        if src is None or tgt is None:
            if len(classes) != 2:
                raise InvalidParameterError(
                    f"{_OWNER}: with {len(classes)} classes give both source_class and target_class"
                )
            known = src if src is not None else tgt
            other = _plain(classes[0] if classes[1] == known else classes[1])
            src, tgt = (src, other) if src is not None else (other, tgt)
        if src == tgt:
            raise InvalidParameterError(f"{_OWNER}: source_class and target_class are equal")
        return src, tgt


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
