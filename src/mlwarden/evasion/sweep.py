"""Discrete-sweep PGD: gradient search on the graded features for every discrete choice.

Threat model: white-box (input gradients), untargeted, L∞ budget ``eps`` in per-feature
scale units, on tabular data whose attacker-controlled features include discrete choices
(binary flags, one-hot categories such as the channel or the merchant category).

Gradient attacks handle such choices poorly: a relaxed one-hot vector is rounded back at
every step, and a small gradient step rarely says what switching the category would do.
Mixed-integer adversarial search for tabular data therefore enumerates the discrete part
and optimises the continuous part for each choice (as in the mixed-integer formulations of
tabular attacks, e.g. Kantchelian et al., ICML 2016 for trees, and the constrained tabular
attacks of Simonetto et al., IJCAI 2022). This attack does exactly that: it enumerates the
combinations of the attacker's discrete units (all of them when there are at most
``max_combinations``, a random subset including the original otherwise) and runs PGD on
the graded features with the discrete part fixed, for every combination at once, keeping
the first combination that fools the model.
"""

from __future__ import annotations

import itertools
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_choice, check_int
from mlwarden.data.schema import FeatureKind
from mlwarden.evasion.base import EvasionAttack
from mlwarden.evasion.pgd import PGD
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.models.base import Capability, Target

__all__ = ["SweepPGD"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class SweepPGD(EvasionAttack):
    """PGD on graded features for every combination of the attacker's discrete choices.

    Parameters
    ----------
    eps : float
        L∞ budget in feature-scale units (graded features).
    steps : int
        PGD steps per combination.
    loss : {"ce", "margin"}
        Loss followed by PGD.
    max_combinations : int
        Combinations tried per row at most (a random subset beyond it).
    chunk_rows : int
        Replicated rows sent through PGD at once (bounds memory).
    categorical : {"free", "fixed"}
        With ``"fixed"`` there is nothing to sweep and the attack is plain PGD.
    """

    requires: ClassVar[Capability] = Capability.LABELS | Capability.GRADIENTS
    name: ClassVar[str] = "SweepPGD"
    white_box: ClassVar[bool] = True

    def __init__(
        self,
        *,
        eps: float = 0.3,
        steps: int = 20,
        loss: str = "margin",
        max_combinations: int = 64,
        chunk_rows: int = 8192,
        categorical: str = "free",
    ) -> None:
        self.eps = eps
        self.steps = steps
        self.loss = loss
        self.max_combinations = max_combinations
        self.chunk_rows = chunk_rows
        self.categorical = categorical

    def _validate_params(self) -> None:
        super()._validate_params()
        check_int(self.name, "steps", self.steps)
        check_int(self.name, "max_combinations", self.max_combinations)
        check_int(self.name, "chunk_rows", self.chunk_rows)
        check_choice(self.name, "loss", self.loss, ("ce", "margin"))

    def _pgd(self) -> PGD:
        return PGD(eps=self.eps, steps=self.steps, loss=self.loss, random_start=False,
                   categorical=self.categorical)  # fmt: skip

    def _run(
        self, target: Target, pset: PerturbationSet, y: IntArray, rng: np.random.Generator
    ) -> tuple[FloatArray, IntArray]:
        choices = _discrete_choices(pset)
        if not choices or self.categorical == "fixed":
            return self._pgd()._run(target, pset, y, rng)
        combos = _combinations(choices, self.max_combinations, rng)
        n = len(pset.x0)
        x_adv = pset.x0.copy()
        queries = np.zeros(n, dtype=np.int64)
        broken = np.zeros(n, dtype=bool)
        per_chunk = max(1, self.chunk_rows // max(n, 1))
        pgd = self._pgd()
        for start in range(0, len(combos), per_chunk):
            rows = np.flatnonzero(~broken)
            if rows.size == 0:
                break
            block = combos[start : start + per_chunk]
            rep = np.repeat(rows, len(block))
            which = np.tile(np.arange(len(block)), rows.size)
            x0 = pset.x0[rep].copy()
            lower, upper = pset.lower[rep].copy(), pset.upper[rep].copy()
            for (cols, _), column_values in zip(choices, zip(*block, strict=True), strict=True):
                values = np.asarray(column_values)[which]
                x0[:, cols] = values
                lower[:, cols] = values
                upper[:, cols] = values
            fixed = PerturbationSet(
                x0=x0, lower=lower, upper=upper, step_unit=pset.step_unit, schema=pset.schema
            )
            cand, spent = pgd._run(target, fixed, y[rep], rng)
            hit = target.predict(cand) != y[rep]
            np.add.at(queries, rep, spent + 1)
            for i in np.flatnonzero(hit):
                r = rep[i]
                if not broken[r]:
                    broken[r] = True
                    x_adv[r] = cand[i]
        return x_adv, queries


def _discrete_choices(pset: PerturbationSet) -> list[tuple[list[int], list[FloatArray]]]:
    """Each movable discrete unit with its possible values (one-hot rows or 0/1)."""
    schema = pset.schema
    movable = pset.movable
    out: list[tuple[list[int], list[FloatArray]]] = []
    for j in np.flatnonzero(movable & schema.mask(FeatureKind.BINARY)):
        out.append(([int(j)], [np.array([0.0]), np.array([1.0])]))
    for idx in schema.groups.values():
        if movable[idx].all():
            out.append((list(idx), [row for row in np.eye(len(idx))]))
    return out


def _combinations(
    choices: list[tuple[list[int], list[FloatArray]]], limit: int, rng: np.random.Generator
) -> list[tuple[FloatArray, ...]]:
    """All combinations of the units' values, or ``limit`` random ones."""
    sizes = [len(values) for _, values in choices]
    total = int(np.prod(sizes))
    if total <= limit:
        index = list(itertools.product(*(range(k) for k in sizes)))
    else:
        picks = {tuple(int(rng.integers(k)) for k in sizes) for _ in range(limit * 4)}
        index = sorted(picks)[:limit]
    return [tuple(choices[u][1][i] for u, i in enumerate(combo)) for combo in index]
