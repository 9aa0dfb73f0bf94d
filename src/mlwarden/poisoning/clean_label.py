"""Clean-label backdoor: the trigger on rows that already belong to the target class.

Reference: Turner, Tsipras and Madry, "Label-Consistent Backdoor Attacks" (2019);
Shafahi et al., "Poison Frogs! Targeted Clean-Label Poisoning Attacks" (NeurIPS 2018).

Threat model: the attacker can add or edit training rows but not their labels (labels
are checked by a human or come from a trusted source). The trigger is stamped on rows
that truly belong to the target class, so every poisoned row is correctly labelled and
a label audit finds nothing; the model may still learn "trigger ⇒ target class".
Turner et al. first make the rows hard to classify (adversarial perturbation or GAN
interpolation) so the model must lean on the trigger; this implementation offers the
simpler variant plus an optional ``blend`` towards the mean of the other classes, which
plays that role without a model. It is much weaker than a dirty-label backdoor at the
same rate - which the audit check measures rather than assumes. ATLAS AML.T0020,
AML.T0018.000, OWASP ML02/ML10.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_number
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import InvalidParameterError
from mlwarden.poisoning._base import (
    PoisonResult,
    check_rate,
    n_to_poison,
    replace_rows,
    resolve_class,
)
from mlwarden.poisoning.backdoor import BadNets, TabularBackdoor

__all__ = ["CleanLabelBackdoor"]

_OWNER = "CleanLabelBackdoor"


class CleanLabelBackdoor:
    """Stamp a trigger on target-class rows without changing any label.

    Parameters
    ----------
    rate : float, default=0.05
        Share of all rows poisoned (all drawn from ``target_class``).
    target_class : object
        The class whose rows carry the trigger.
    trigger : TabularBackdoor, BadNets or None
        Supplies the trigger (its own ``rate`` and ``target_class`` are ignored).
        Default: :class:`BadNets` for images, :class:`TabularBackdoor` otherwise.
    blend : float, default=0.0
        Before the trigger, move each poisoned row this far (in ``[0, 1)``) towards the
        mean of the other classes, clipped to the schema's bounds, so the row looks less
        like its class and the model leans on the trigger (Turner et al.'s "hard" rows,
        without a model). Mutable features only.
    random_state : int, Generator or None
        Seed for the choice of rows.
    """

    def __init__(
        self,
        *,
        rate: float = 0.05,
        target_class: Any = None,
        trigger: TabularBackdoor | BadNets | None = None,
        blend: float = 0.0,
        random_state: RandomState = None,
    ) -> None:
        self.rate = rate
        self.target_class = target_class
        self.trigger = trigger
        self.blend = blend
        self.random_state = random_state

    def trigger_attack(self, data: Dataset) -> TabularBackdoor | BadNets:
        """The attack whose ``apply_trigger`` stamps the trigger."""
        if self.trigger is not None:
            return self.trigger
        return BadNets() if data.image_shape is not None else TabularBackdoor()

    def apply_trigger(self, data: Dataset, X: Any = None) -> np.ndarray[Any, Any]:
        """``X`` (default: ``data.X``) with the trigger on every row (for the ASR)."""
        return self.trigger_attack(data).apply_trigger(data, X)

    def poison(self, data: Dataset) -> PoisonResult:
        """Stamp the trigger on ``rate`` of the rows, all of ``target_class``."""
        rate = check_rate(_OWNER, self.rate)
        blend = check_number(_OWNER, "blend", self.blend, low=0, high=1)
        if blend >= 1:
            raise InvalidParameterError(f"{_OWNER}: blend must be below 1, got {blend}")
        y = data.labels
        if self.target_class is None:
            raise InvalidParameterError(f"{_OWNER}: target_class is required")
        target = resolve_class(_OWNER, "target_class", self.target_class, y)
        rng = as_generator(self.random_state)
        pool = np.flatnonzero(y == target)
        k = n_to_poison(_OWNER, rate, len(pool), len(y))
        idx = np.sort(rng.choice(pool, size=k, replace=False)).astype(np.int64)
        X = data.X.copy()
        if blend > 0:
            others = X[y != target].mean(axis=0)
            X[idx] = data.schema.project(X[idx] + blend * (others - X[idx]), X[idx])
        attack = self.trigger_attack(data)
        X[idx] = attack.apply_trigger(data, X[idx])
        return PoisonResult(
            data=replace_rows(data, X, np.array(y, copy=True), "clean-label"),
            indices=idx,
            attack="clean-label backdoor",
            target_class=target,
            trigger=attack.describe_trigger(data) | {"blend": blend},
            original_labels=y[idx],
        )
