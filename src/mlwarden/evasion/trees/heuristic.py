"""A fast evasion attack for large tree ensembles: greedy cell search with a radius search.

Kantchelian, Tygar and Joseph, "Evasion and Hardening of Tree Ensemble Classifiers",
ICML 2016 (their fast "coordinate descent" attack, next to the exact MILP); Zhang,
Wang, Pang, Shen and Hsieh, "An Efficient Adversarial Attack for Tree Ensembles",
NeurIPS 2020 (searching the discrete space of leaves the point falls in, moving one
boundary at a time, and using each leaf's box to score all moves at once).

Threat model: white-box (the attacker reads the trees), untargeted, the same feasible
set as :class:`~mlwarden.evasion.trees.TreeMILPAttack`: an L∞ budget ``eps`` in
feature-scale units on continuous and integer features, bounds, whole integers,
immutable features fixed, binary features 0/1 and one-hot groups one-hot (free
choices with ``categorical="free"``, fixed with ``"fixed"``).

How it works. Each feature's axis is cut at the ensemble's thresholds into cells in
which no tree changes its path (:class:`~mlwarden.evasion.trees.SplitGrid`); a
one-hot group is one move among its columns. A row is a choice of one cell per
feature; its cost is the L∞ distance to the closest point of those cells. For a given
radius ``r``, a steepest-descent search starts at the original row and repeatedly
makes the single move (a feature to another cell within ``r``, or a group to another
column) that most lowers the margin of the true class, until the row is misclassified
or no move helps. Scoring every cell of a feature at once is cheap: with every other
feature held, each tree has exactly one leaf per cell, namely the leaves whose box
holds the row on every other feature, so the class scores along the axis are a prefix
sum over those leaves' cell ranges (a sparse product, vectorised over all rows). The
radius is then found by bisection over the distinct move costs of each row (at most
about ``log2`` of the number of thresholds descents), and the adversarial row found at
the smallest radius is returned. ``n_restarts - 1`` further descents per radius start
from random cells within the radius, for rows the first one did not break.

The distances are upper bounds on the minimal L∞ distance (the MILP gives the exact
value); every row returned is checked on the real model and against the threat model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_int
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.evasion.trees.ensemble import (
    FeatureCells,
    SplitGrid,
    TreeAttack,
    _Outcome,
    _start,
    distance_of,
)
from mlwarden.models.base import Target

__all__ = ["TreeGreedyAttack"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class TreeGreedyAttack(TreeAttack):
    """Greedy cell search with bisection on the L∞ radius, for large tree ensembles.

    Parameters
    ----------
    eps : float
        L∞ budget in feature-scale units.
    n_restarts : int
        Descents per radius (the first from the original row, the others from random
        cells within the radius, only for rows not yet broken).
    max_steps : int
        Most moves per descent.
    categorical : {"free", "fixed"}
        Whether mutable binary and categorical features may change.

    Notes
    -----
    :meth:`generate` returns a :class:`~mlwarden.evasion.trees.TreeAttackResult`
    whose ``distance`` is the L∞ distance of each adversarial row found (an upper bound
    on the minimal one); :meth:`minimal_distance` searches without the budget.
    """

    name: ClassVar[str] = "TreeGreedy"

    def __init__(
        self,
        *,
        eps: float = 0.3,
        n_restarts: int = 3,
        max_steps: int = 100,
        categorical: str = "free",
    ) -> None:
        self.eps = eps
        self.n_restarts = n_restarts
        self.max_steps = max_steps
        self.categorical = categorical

    def _validate_params(self) -> None:
        super()._validate_params()
        check_int(self.name, "n_restarts", self.n_restarts)
        check_int(self.name, "max_steps", self.max_steps)

    def _search(
        self,
        target: Target,
        grid: SplitGrid,
        pset: PerturbationSet,
        y: IntArray,
        wrong: BoolArray,
        rng: np.random.Generator,
    ) -> _Outcome:
        initial = _start(pset, wrong)
        x_adv, queries, distance = initial.x_adv, initial.queries, initial.distance
        lower, proven = initial.lower_bound, initial.proven
        todo = np.flatnonzero(~wrong)
        if todo.size == 0:
            return initial
        for strict in (False, True):
            search = _Search(grid, pset.rows(todo), y[todo], int(self.max_steps), strict)
            opt, found = search.bisect(int(self.n_restarts), rng)
            rows = todo[found]
            if rows.size == 0:
                break
            x_adv[rows] = search.point(np.flatnonzero(found), opt[found])
            fooled = target.predict(x_adv[rows]) != y[rows]
            queries[rows] += 1
            ok = rows[fooled]
            distance[ok] = distance_of(pset.rows(ok), x_adv[ok])
            # A score tie that float rounding in the real model breaks the other way:
            # search those rows again, asking every class to win outright.
            todo = rows[~fooled]
            x_adv[todo] = pset.x0[todo]
            if todo.size == 0:
                break
        return _Outcome(x_adv, queries, distance, lower, proven)


# --------------------------------------------------------------------------- units
@dataclass(frozen=True)
class _Unit:
    """One attackable unit: a feature (options = its cells) or a one-hot group (columns)."""

    columns: IntArray
    value: FloatArray  # (n, n_options, len(columns)) the row each option stands for
    cost: FloatArray  # (n, n_options)
    allowed: BoolArray  # (n, n_options)
    start: IntArray  # (n,)
    lo: IntArray | None = None  # feature units: leaf cell ranges [lo, hi)
    hi: IntArray | None = None
    cover: FloatArray | None = None  # group units: (n_leaves, n_options) 1 where covered

    @property
    def n_options(self) -> int:
        return int(self.cost.shape[1])

    def out(self, opt: IntArray) -> BoolArray:
        """(n, n_leaves): leaves whose box excludes the option on this unit."""
        if self.cover is not None:
            return np.asarray(self.cover[:, opt].T < 0.5, dtype=bool)
        assert self.lo is not None and self.hi is not None
        o = opt[:, None]
        return np.asarray((o < self.lo[None, :]) | (o >= self.hi[None, :]), dtype=bool)

    def sweep(self, n: int, rows: IntArray, leaves: IntArray, columns: FloatArray) -> FloatArray:
        """(n, n_options, n_columns): leaf values summed over relevant (row, leaf) pairs.

        A relevant leaf holds its row on every other unit; it adds its value to every
        option of this unit it covers (a contiguous range of cells for a feature).
        """
        out = np.empty((n, self.n_options, columns.shape[1]))
        if self.cover is not None:
            for g in range(self.n_options):
                hit = self.cover[leaves, g] > 0.5
                for c in range(columns.shape[1]):
                    w = columns[leaves[hit], c]
                    out[:, g, c] = np.bincount(rows[hit], weights=w, minlength=n)
            return out
        assert self.lo is not None and self.hi is not None
        width = self.n_options + 1
        up = rows * width + self.lo[leaves]
        down = rows * width + self.hi[leaves]
        for c in range(columns.shape[1]):
            w = columns[leaves, c]
            steps = np.bincount(up, weights=w, minlength=n * width) - np.bincount(
                down, weights=w, minlength=n * width
            )
            out[:, :, c] = np.cumsum(steps.reshape(n, width), axis=1)[:, : self.n_options]
        return out


def _feature_unit(grid: SplitGrid, f: int, fc: FeatureCells) -> _Unit:
    lo, hi = grid.leaf_lo[:, f], grid.leaf_hi[:, f]
    return _Unit(
        columns=np.array([f]),
        value=fc.value[:, :, None],
        cost=fc.cost,
        allowed=fc.allowed,
        start=fc.start,
        lo=lo,
        hi=hi,
    )


def _group_unit(grid: SplitGrid, idx: list[int], pset: PerturbationSet) -> _Unit:
    cols = np.asarray(idx)
    g = len(cols)
    eye = np.eye(g)
    cover = np.ones((grid.n_leaves, g), dtype=bool)
    for a, c in enumerate(cols):
        cell = grid.cell_of(int(c), eye[:, a])  # the column's cell under each option
        cover &= (grid.leaf_lo[:, [c]] <= cell[None, :]) & (grid.leaf_hi[:, [c]] > cell[None, :])
    n = len(pset.x0)
    lower, upper = pset.lower[:, cols], pset.upper[:, cols]
    allowed = np.all(
        (eye[None, :, :] >= lower[:, None, :]) & (eye[None, :, :] <= upper[:, None, :]), axis=2
    )
    start = np.argmax(pset.x0[:, cols], axis=1).astype(np.int64)
    allowed[np.arange(n), start] = True
    return _Unit(
        columns=cols,
        value=np.broadcast_to(eye, (n, g, g)).copy(),
        cost=np.where(allowed, 0.0, np.inf),
        allowed=allowed,
        start=start,
        cover=cover.astype(np.float64),
    )


class _Search:
    """The state shared by the descents of one batch of rows."""

    def __init__(
        self, grid: SplitGrid, pset: PerturbationSet, y: IntArray, max_steps: int, strict: bool
    ) -> None:
        self.grid = grid
        self.strict = strict
        self.pset = pset
        self.y = y
        self.max_steps = max_steps
        cells = grid.cells(pset)
        schema = pset.schema
        in_group = np.zeros(grid.n_features, dtype=bool)
        units: list[_Unit] = []
        for idx in schema.groups.values():
            in_group[idx] = True
            unit = _group_unit(grid, idx, pset)
            if np.any(unit.allowed.sum(axis=1) > 1):
                units.append(unit)
        for f in range(grid.n_features):
            if in_group[f] or len(grid.thresholds[f]) == 0:
                continue
            if np.any(cells[f].allowed.sum(axis=1) > 1):
                units.append(_feature_unit(grid, f, cells[f]))
        self.units = units
        moving = np.zeros(grid.n_features, dtype=bool)
        for u in units:
            moving[u.columns] = True
        # Leaves excluded by the features no unit moves (immutable, fixed, unused).
        n = len(y)
        fixed = np.zeros((n, grid.n_leaves), dtype=np.int32)
        for f in (int(i) for i in np.flatnonzero(~moving)):
            if len(grid.thresholds[f]) == 0:
                continue
            s = cells[f].start[:, None]
            fixed += (s < grid.leaf_lo[None, :, f]) | (s >= grid.leaf_hi[None, :, f])
        self.fixed = fixed
        k = grid.ensemble.n_classes
        value = grid.leaf_value
        base = grid.ensemble.base
        if k == 2:  # only the difference of the two scores matters
            self.columns = (value[:, 1] - value[:, 0])[:, None]
            self.base = np.array([base[1] - base[0]])
        else:
            self.columns = value
            self.base = base
        self.n_classes = k
        # Strict mode: a class must beat the true one by more than float rounding.
        self.tol = 1e-9 * (1.0 + float(np.abs(value).sum(axis=0).max() + np.abs(base).max()))

    # ------------------------------------------------------------------ judging
    def _judge(self, scores: FloatArray, y: IntArray) -> tuple[FloatArray, BoolArray]:
        """Margin of the true class (>0: still right) and misclassification, per option.

        ``scores`` has shape (n, n_options, n_columns).
        """
        if self.n_classes == 2:
            d = scores[..., 0]  # score[1] - score[0]
            is1 = (y == 1)[:, None]
            margin = np.where(is1, d, -d)
            if self.strict:
                return margin, margin < -self.tol
            pred1 = d > 0  # argmax takes class 0 on a tie
            return margin, pred1 != is1
        rows = np.arange(len(y))
        sy = scores[rows, :, y]
        other = scores.copy()
        other[rows, :, y] = -np.inf
        margin = sy - other.max(axis=2)
        if self.strict:
            return margin, margin < -self.tol
        wrong = np.argmax(scores, axis=2) != y[:, None]
        return margin, np.asarray(wrong, dtype=bool)

    def _current(self, viol: npt.NDArray[np.int32], y: IntArray) -> tuple[FloatArray, BoolArray]:
        s = (viol == 0).astype(np.float64) @ self.columns + self.base
        return self._judge(s[:, None, :], y)

    # ---------------------------------------------------------------- descending
    def descend(
        self, rows: IntArray, radius: FloatArray, opt: IntArray
    ) -> tuple[IntArray, BoolArray]:
        """Steepest descent from ``opt`` for ``rows`` within ``radius``; (options, broken)."""
        opt = opt.copy()
        y = self.y[rows]
        outs = [u.out(opt[:, j]) for j, u in enumerate(self.units)]
        viol = self.fixed[rows].copy()
        for o in outs:
            viol += o
        margin, broken = self._current(viol, y)
        margin, broken = margin[:, 0], broken[:, 0]
        allowed = [u.allowed[rows] & (u.cost[rows] <= radius[:, None]) for u in self.units]
        costs = [u.cost[rows] for u in self.units]
        active = ~broken
        for _ in range(self.max_steps):
            act = np.flatnonzero(active)
            if act.size == 0 or not self.units:
                break
            best_adv = np.zeros(act.size, dtype=bool)
            best_val = np.full(act.size, np.inf)
            best_unit = np.full(act.size, -1)
            best_opt = np.zeros(act.size, dtype=np.int64)
            # Leaves that hold the row on all units but at most one: the only candidates.
            near_rows, near_leaves = np.nonzero(viol[act] <= 1)
            near_viol = viol[act[near_rows], near_leaves]
            for j, u in enumerate(self.units):
                # relevant: the leaf holds the row, or only this unit excludes it
                keep = near_viol == outs[j][act[near_rows], near_leaves]
                sc = u.sweep(act.size, near_rows[keep], near_leaves[keep], self.columns) + self.base
                m, adv = self._judge(sc, y[act])
                ok = allowed[j][act]
                adv &= ok
                m = np.where(ok, m, np.inf)
                any_adv = adv.any(axis=1)
                pick = np.where(
                    any_adv,
                    np.argmin(np.where(adv, costs[j][act], np.inf), axis=1),
                    np.argmin(m, axis=1),
                )
                r = np.arange(act.size)
                val = np.where(any_adv, costs[j][act][r, pick], m[r, pick])
                better = (any_adv & ~best_adv) | ((any_adv == best_adv) & (val < best_val))
                best_adv = np.where(better, any_adv, best_adv)
                best_val = np.where(better, val, best_val)
                best_unit = np.where(better, j, best_unit)
                best_opt = np.where(better, pick, best_opt)
            tol = 1e-12 * np.maximum(1.0, np.abs(margin[act]))
            move = best_adv | (best_val < margin[act] - tol)
            active[act[~move]] = False
            for j, u in enumerate(self.units):
                sel = move & (best_unit == j)
                if not sel.any():
                    continue
                r = act[sel]
                opt[r, j] = best_opt[sel]
                new = u.out(opt[r, j])
                viol[r] += new.astype(np.int32) - outs[j][r]
                outs[j][r] = new
            moved = act[move]
            broken[moved] = best_adv[move]
            margin[moved] = np.where(best_adv[move], -np.inf, best_val[move])
            active[moved] = ~best_adv[move]
        return opt, broken

    def _random_start(
        self, rows: IntArray, radius: FloatArray, rng: np.random.Generator
    ) -> IntArray:
        opt = np.empty((rows.size, len(self.units)), dtype=np.int64)
        for j, u in enumerate(self.units):
            ok = u.allowed[rows] & (u.cost[rows] <= radius[:, None])
            noise = np.where(ok, rng.random(ok.shape), -1.0)
            opt[:, j] = np.argmax(noise, axis=1)
        return opt

    def bisect(self, n_restarts: int, rng: np.random.Generator) -> tuple[IntArray, BoolArray]:
        """Smallest radius (per row) at which a descent breaks the row; (options, found)."""
        n = len(self.y)
        start = (
            np.stack([u.start for u in self.units], axis=1)
            if self.units
            else np.zeros((n, 0), np.int64)
        )
        if not self.units:
            return start, np.zeros(n, dtype=bool)
        radii = np.sort(
            np.concatenate([np.where(u.allowed, u.cost, np.inf) for u in self.units], axis=1),
            axis=1,
        )
        radii = np.concatenate([np.zeros((n, 1)), radii], axis=1)
        top = np.isfinite(radii).sum(axis=1) - 1
        best = start.copy()
        everyone = np.arange(n)
        opt, found = self._attempt(everyone, radii[everyone, top], start, n_restarts, rng)
        best[found] = opt[found]
        lo = np.full(n, -1)
        hi = top.copy()
        lo[~found] = hi[~found]  # nothing to bisect
        while True:
            act = np.flatnonzero(hi - lo > 1)
            if act.size == 0:
                break
            mid = (lo[act] + hi[act]) // 2
            opt, ok = self._attempt(act, radii[act, mid], start[act], n_restarts, rng)
            best[act[ok]] = opt[ok]
            hi[act[ok]] = mid[ok]
            lo[act[~ok]] = mid[~ok]
        return best, found

    def _attempt(
        self,
        rows: IntArray,
        radius: FloatArray,
        start: IntArray,
        n_restarts: int,
        rng: np.random.Generator,
    ) -> tuple[IntArray, BoolArray]:
        opt, ok = self.descend(rows, radius, start)
        for _ in range(n_restarts - 1):
            left = np.flatnonzero(~ok)
            if left.size == 0:
                break
            init = self._random_start(rows[left], radius[left], rng)
            o2, ok2 = self.descend(rows[left], radius[left], init)
            opt[left[ok2]] = o2[ok2]
            ok[left[ok2]] = True
        return opt, ok

    def point(self, rows: IntArray, opt: IntArray) -> FloatArray:
        """The rows (indices into this batch) the chosen options stand for."""
        x = self.pset.x0[rows].copy()
        for j, u in enumerate(self.units):
            x[:, u.columns] = u.value[rows, opt[:, j]]
        return x
