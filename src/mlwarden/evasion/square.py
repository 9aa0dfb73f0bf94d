"""Square Attack (score-based random search), adapted to tabular threat models.

Andriushchenko, Croce, Flammarion and Hein, "Square Attack: a query-efficient
black-box adversarial attack via random search", ECCV 2020.

Threat model: black-box, the attacker sees class scores (probabilities) only;
untargeted; L∞ budget ``eps`` in units of each feature's scale; at most
``n_queries`` model queries per row. Square Attack samples perturbations at the
vertices of the L∞ ball on a random subset of coordinates (a "square" for images)
and keeps a change only when the margin loss drops. For tabular data the subset is
drawn over *attackable units*: one graded feature, one binary feature, or one whole
categorical group (which then takes a random category). Because it needs neither
gradients nor smoothness, it also works on tree ensembles, whose outputs are
piecewise constant.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_int, check_number
from mlwarden.data.schema import FeatureKind
from mlwarden.evasion.base import EvasionAttack
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.models.base import Capability, Target

__all__ = ["SquareAttack"]


def _p_selection(p_init: float, it: int, n_queries: int) -> float:
    """Square Attack's schedule of the fraction of coordinates changed per step."""
    it = int(it / n_queries * 10_000)
    for cut, div in (
        (8000, 512),
        (6000, 256),
        (4000, 128),
        (2000, 64),
        (1000, 32),
        (500, 16),
        (200, 8),
        (50, 4),
        (10, 2),
    ):
        if it > cut:
            return p_init / div
    return p_init


class SquareAttack(EvasionAttack):
    """Score-based random search at the vertices of the L∞ box.

    Parameters
    ----------
    eps : float
        L∞ budget in feature-scale units.
    n_queries : int
        Query budget per row (including the initial query).
    p_init : float
        Initial fraction of attackable units changed per step (decays with the
        paper's schedule).
    interior_rate : float
        Share of graded-feature proposals drawn uniformly inside the box rather than at
        a vertex (the paper uses vertices only, which is optimal for locally linear
        models but misses evasions of piecewise-constant ones such as tree ensembles).
    categorical : {"free", "fixed"}
        Whether mutable binary/categorical features may change.
    """

    requires: ClassVar[Capability] = Capability.LABELS | Capability.SCORES
    name: ClassVar[str] = "Square"

    def __init__(
        self,
        *,
        eps: float = 0.3,
        n_queries: int = 1000,
        p_init: float = 0.3,
        interior_rate: float = 0.25,
        categorical: str = "free",
    ) -> None:
        self.eps = eps
        self.n_queries = n_queries
        self.p_init = p_init
        self.interior_rate = interior_rate
        self.categorical = categorical

    def _validate_params(self) -> None:
        super()._validate_params()
        check_int(self.name, "n_queries", self.n_queries)
        check_number(self.name, "p_init", self.p_init, low=0, high=1, low_open=True)
        check_number(self.name, "interior_rate", self.interior_rate, low=0, high=1)

    def _run(
        self,
        target: Target,
        pset: PerturbationSet,
        y: npt.NDArray[np.int64],
        rng: np.random.Generator,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        n = len(y)
        schema = pset.schema
        movable = pset.movable
        graded = np.flatnonzero(movable & schema.mask(FeatureKind.CONTINUOUS, FeatureKind.INTEGER))
        binary = np.flatnonzero(movable & schema.mask(FeatureKind.BINARY))
        groups = [np.asarray(idx) for idx in schema.groups.values() if movable[idx].all()]
        n_units = len(graded) + len(binary) + len(groups)
        queries = np.zeros(n, dtype=np.int64)
        if n == 0 or n_units == 0:
            return pset.x0.copy(), queries

        def margin(
            x: npt.NDArray[np.float64], ys: npt.NDArray[np.int64]
        ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
            p = target.predict_proba(x)
            rows = np.arange(len(ys))
            p_true = p[rows, ys]
            other = p.copy()
            other[rows, ys] = -np.inf
            fooled = np.argmax(p, axis=1) != ys
            return p_true - other.max(axis=1), fooled

        # Initialise at a random vertex of the box on every graded feature.
        x_best = pset.x0.copy()
        vertex = np.where(
            rng.random((n, len(graded))) < 0.5, pset.lower[:, graded], pset.upper[:, graded]
        )
        x_best[:, graded] = vertex
        x_best = pset.project(x_best)
        best, fooled = margin(x_best, y)
        queries += 1
        # With only continuous movable features, proposals drawn inside the box are
        # feasible rows already: no projection needed.
        discrete = schema.mask(FeatureKind.INTEGER, FeatureKind.BINARY, FeatureKind.CATEGORICAL)
        needs_projection = bool(np.any(movable & discrete))
        n_graded, n_binary = len(graded), len(binary)
        act = np.flatnonzero(~fooled)
        sub = pset.rows(act) if needs_projection else pset
        for it in range(1, self.n_queries):
            if act.size == 0:
                break
            k = max(1, round(_p_selection(self.p_init, it, self.n_queries) * n_units))
            k = min(k, n_units)
            # k distinct attackable units per row, uniformly at random.
            if k == 1:
                units = rng.integers(n_units, size=(act.size, 1))
            elif k == n_units:
                units = np.broadcast_to(np.arange(n_units), (act.size, n_units))
            else:
                units = np.argpartition(rng.random((act.size, n_units)), k - 1, axis=1)[:, :k]
            new = x_best[act]
            r, c = np.nonzero(units < n_graded)
            if r.size:
                feat = graded[units[r, c]]
                lo, hi = pset.lower[act[r], feat], pset.upper[act[r], feat]
                vert = np.where(rng.random(r.size) < 0.5, lo, hi)
                # Piecewise-constant models (tree ensembles) can be fooled inside the box
                # and not at its vertices: a share of proposals is drawn uniformly.
                inner = lo + (hi - lo) * rng.random(r.size)
                new[r, feat] = np.where(rng.random(r.size) < self.interior_rate, inner, vert)
            if n_binary:
                r, c = np.nonzero((units >= n_graded) & (units < n_graded + n_binary))
                if r.size:
                    feat = binary[units[r, c] - n_graded]
                    new[r, feat] = 1.0 - new[r, feat]
            for g, idx in enumerate(groups):
                rows = np.flatnonzero(np.any(units == n_graded + n_binary + g, axis=1))
                if rows.size:
                    hot = rng.integers(len(idx), size=rows.size)
                    block = np.zeros((rows.size, len(idx)))
                    block[np.arange(rows.size), hot] = 1.0
                    new[np.ix_(rows, idx)] = block
            if needs_projection:
                new = sub.project(new)
            m, f = margin(new, y[act])
            queries[act] += 1
            better = (m < best[act]) | f
            upd = act[better]
            x_best[upd] = new[better]
            best[upd] = m[better]
            fooled[upd] = f[better]
            if f.any():
                keep = ~f
                act = act[keep]
                if needs_projection:
                    sub = sub.rows(np.flatnonzero(keep))
        return x_best, queries
