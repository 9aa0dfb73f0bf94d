"""Exact minimal-L∞ evasion of tree ensembles by mixed-integer linear programming.

Kantchelian, Tygar and Joseph, "Evasion and Hardening of Tree Ensemble Classifiers",
ICML 2016 (the MILP of section 3, with the L∞ objective of section 3.3).

Threat model: white-box (the attacker reads every split and leaf), untargeted. The
attacker may submit any row of the :class:`~mlwarden.evasion.threat_model.PerturbationSet`:
continuous and integer features it controls move by at most ``eps`` feature-scale
units and stay within their bounds, integer features stay whole, immutable features
never change, binary features stay 0/1 and one-hot groups stay one-hot (with
``categorical="free"`` these discrete features may take any value at no cost; with
``"fixed"`` they keep theirs). Among all such rows the attack finds one the model
misclassifies at the *smallest* L∞ distance (in scale units over the graded features),
and proves it minimal, or proves that no such row exists within the budget.

The program has, per feature, one binary variable per distinct threshold
(``p[f, k] = 1`` iff ``x[f] <= t[f, k]``), ordered (``p[f, k] <= p[f, k + 1]``); per
tree, one leaf variable per reachable leaf, exactly one of them on; per split node,
"a leaf in the left subtree needs the predicate, a leaf in the right subtree its
negation"; one score constraint "class ``j`` beats the true class" (solved for each
``j``, tightening the bound as solutions are found); and the L∞ distance ``t`` as the
objective, with ``t >= cost(next cell) * (1 - p[f, k])`` on the right of the original
value and ``t >= cost(cell) * p[f, k]`` on its left. Schema constraints are encoded
exactly: thresholds of integer (and binary, one-hot) features are snapped to whole
numbers so that every cell holds a value the feature may take, immutable features and
cells outside the box are fixed by the variables' bounds, and each movable one-hot group
gets ``sum of its columns' "== 0" predicates = size - 1``. Thresholds of continuous
features are snapped to the precision the model compares in (``float32`` for
scikit-learn's trees), so every solution maps to a concrete row: the point of each
chosen cell closest to the original row. That row is checked on the extracted trees
and then on the real model before it counts; if it fails (a score tie broken the other
way by float rounding), the row is solved again with a strict score margin.

By default the greedy search of :class:`~mlwarden.evasion.trees.TreeGreedyAttack`
runs first and its distance is an upper bound on ``t``: the solver only looks for closer
rows, which prunes most of the search on larger ensembles, and when it proves there is
none the greedy row is returned as proven minimal. The solver is SciPy's interface to
HiGHS (:func:`scipy.optimize.milp`). Exactness holds
up to the solver's tolerances: a class must win by at least ``1e-6`` of the largest
leaf-score difference (ties that :func:`numpy.argmax` resolves in its favour are
accepted). Rows whose solve hits ``time_limit`` keep the best row found and are
reported as not proven, with the solver's dual bound as ``lower_bound``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from mlwarden._validation import check_number
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.evasion.trees.ensemble import (
    FeatureCells,
    SplitGrid,
    TreeAttack,
    _flatten,
    _Outcome,
    _start,
    distance_of,
)
from mlwarden.evasion.trees.heuristic import _Search
from mlwarden.exceptions import InvalidParameterError
from mlwarden.models.base import Target

__all__ = ["TreeMILPAttack"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_MARGIN = 1e-6
"""Score margin (relative to the largest leaf difference) a winning class needs."""
_STRICT = 1e-4
"""Margin of the last solve, after solutions failed the check on the trees."""
_WARM_STEPS = 100
_WARM_RESTARTS = 3
_GAP = 1e-9
"""HiGHS's relative MIP gap at which a solution counts as optimal."""


class TreeMILPAttack(TreeAttack):
    """Exact minimal-L∞ adversarial examples for tree ensembles (Kantchelian et al. 2016).

    Parameters
    ----------
    eps : float
        L∞ budget in feature-scale units; the attack returns the closest adversarial row
        within it (use :meth:`minimal_distance` for no budget).
    time_limit : float
        Solver time per row, in seconds (each of the at most two solve passes of a row
        gets this much). Rows that run out are reported as not proven, with the best
        row found.
    warm_start : bool
        First run the greedy search of :class:`~mlwarden.evasion.trees.TreeGreedyAttack`
        and give its distances to the solver as upper bounds: the solver then only
        searches for closer rows (much faster on larger ensembles), and a row it cannot
        improve keeps the greedy one, now proven minimal.
    categorical : {"free", "fixed"}
        Whether mutable binary and categorical features may change.

    Notes
    -----
    Meant for small and medium ensembles: the program has one binary variable per
    distinct threshold and one variable per leaf. For large ones use
    :class:`~mlwarden.evasion.trees.TreeGreedyAttack`, whose distances are upper bounds.
    :meth:`generate` returns a :class:`~mlwarden.evasion.trees.TreeAttackResult`;
    ``distance`` holds the minimal distances, ``proven`` says where they are proven.
    """

    name: ClassVar[str] = "TreeMILP"

    def __init__(
        self,
        *,
        eps: float = 0.3,
        time_limit: float = 10.0,
        warm_start: bool = True,
        categorical: str = "free",
    ) -> None:
        self.eps = eps
        self.time_limit = time_limit
        self.warm_start = warm_start
        self.categorical = categorical

    def _validate_params(self) -> None:
        super()._validate_params()
        check_number(self.name, "time_limit", self.time_limit, low=0, low_open=True)
        if not isinstance(self.warm_start, bool):
            raise InvalidParameterError(
                f"{self.name}: warm_start must be True or False, got {self.warm_start!r}"
            )

    def _search(
        self,
        target: Target,
        grid: SplitGrid,
        pset: PerturbationSet,
        y: IntArray,
        wrong: BoolArray,
        rng: np.random.Generator,
    ) -> _Outcome:
        n = len(y)
        initial = _start(pset, wrong)
        x_adv, queries, distance = initial.x_adv, initial.queries, initial.distance
        lower, proven = initial.lower_bound, initial.proven
        todo = np.flatnonzero(~wrong)
        if todo.size == 0:
            return initial
        program = _Program(grid)
        cells = grid.cells(pset)
        scores0 = grid.ensemble.scores(pset.x0)
        first_lower = np.zeros(n)
        incumbent = pset.x0.copy()
        bound = np.full(n, np.inf)
        if self.warm_start:
            # The greedy search's rows bound the program from above: the solver only looks
            # for closer ones, and a row it cannot improve keeps the greedy one, proven.
            search = _Search(grid, pset.rows(todo), y[todo], _WARM_STEPS, strict=False)
            opt, broke = search.bisect(_WARM_RESTARTS, rng)
            warm = todo[broke]
            incumbent[warm] = search.point(np.flatnonzero(broke), opt[broke])
            bound[warm] = distance_of(pset.rows(warm), incumbent[warm])
        for strict in (False, True):
            found = []
            for i in todo:
                start = None if strict or not np.isfinite(bound[i]) else incumbent[i]
                sol = program.solve_row(
                    int(i),
                    int(y[i]),
                    scores0[i],
                    cells,
                    pset,
                    float(self.time_limit),
                    strict,
                    start,
                )
                if not strict:
                    first_lower[i] = sol.lower
                lower[i] = first_lower[i] if strict else sol.lower
                proven[i] = sol.proven and not strict and not sol.retried
                if sol.x is None:
                    distance[i] = np.inf
                    if not sol.proven:
                        proven[i] = False
                    continue
                x_adv[i] = sol.x
                distance[i] = sol.distance
                found.append(i)
            rows = np.asarray(found, dtype=np.int64)
            if rows.size == 0:
                break
            # The real model is the judge: a solution that does not fool it is solved
            # again with a strict margin (float rounding broke a score tie differently).
            fooled = target.predict(x_adv[rows]) != y[rows]
            queries[rows] += 1
            todo = rows[~fooled]
            x_adv[todo] = pset.x0[todo]
            distance[todo] = np.inf
            proven[todo] = False
            if todo.size == 0:
                break
        lower = np.where(proven, distance, np.minimum(lower, distance))
        return _Outcome(x_adv, queries, distance, lower, proven)


@dataclass(frozen=True)
class _RowSolution:
    x: FloatArray | None
    distance: float
    lower: float
    proven: bool
    retried: bool


class _Program:
    """The row-independent part of the MILP (tree structure), and the per-row solve."""

    def __init__(self, grid: SplitGrid) -> None:
        self.grid = grid
        sizes = np.array([len(t) for t in grid.thresholds], dtype=np.int64)
        self.pred_offset = 1 + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.n_pred = int(sizes.sum())
        self.leaf_offset = 1 + self.n_pred
        self.n_vars = self.leaf_offset + grid.n_leaves
        rows: list[IntArray] = []
        cols: list[IntArray] = []
        vals: list[FloatArray] = []
        lo: list[FloatArray] = []
        hi: list[FloatArray] = []
        r = 0
        # (a) ordered predicates: p[f, k] <= p[f, k + 1]
        for f, m in enumerate(sizes):
            if m < 2:
                continue
            k = np.arange(m - 1)
            base = self.pred_offset[f]
            rr = r + k
            rows += [rr, rr]
            cols += [base + k, base + k + 1]
            vals += [np.ones(m - 1), -np.ones(m - 1)]
            lo.append(np.full(m - 1, -np.inf))
            hi.append(np.zeros(m - 1))
            r += int(m - 1)
        # (b) one leaf per tree
        n_trees = len(grid.ensemble.trees)
        rows.append(r + grid.leaf_tree)
        cols.append(self.leaf_offset + np.arange(grid.n_leaves))
        vals.append(np.ones(grid.n_leaves))
        lo.append(np.ones(n_trees))
        hi.append(np.ones(n_trees))
        r += n_trees
        # (c) leaves below a split agree with its predicate
        node, leaf, is_left = _ancestry(grid)
        feature = np.concatenate([t.feature for t in grid.ensemble.trees])
        split = grid.node_split
        regular = np.zeros(len(feature), dtype=bool)
        inner = feature >= 0
        regular[inner] = (split[inner] >= 0) & (split[inner] < sizes[feature[inner]])
        split_nodes = np.flatnonzero(regular)
        position = np.full(len(feature), -1, dtype=np.int64)
        position[split_nodes] = np.arange(split_nodes.size)
        keep = regular[node]
        node, leaf, is_left = node[keep], leaf[keep], is_left[keep]
        row_of = r + 2 * position[node] + np.where(is_left, 0, 1)
        rows.append(row_of)
        cols.append(self.leaf_offset + leaf)
        vals.append(np.ones(node.size))
        pred_col = self.pred_offset[feature[split_nodes]] + split[split_nodes]
        s = split_nodes.size
        rows += [r + 2 * np.arange(s), r + 2 * np.arange(s) + 1]
        cols += [pred_col, pred_col]
        vals += [-np.ones(s), np.ones(s)]
        lo.append(np.full(2 * s, -np.inf))
        hi.append(np.tile([0.0, 1.0], s))
        r += 2 * s
        self.static = sparse.csr_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(r, self.n_vars),
        )
        self.static_lo = np.concatenate(lo)
        self.static_hi = np.concatenate(hi)
        self.integrality = np.zeros(self.n_vars, dtype=np.int64)
        self.integrality[1 : self.leaf_offset] = 1
        self.c = np.zeros(self.n_vars)
        self.c[0] = 1.0
        schema = grid.schema
        self.groups = []
        for idx in schema.groups.values():
            zero = [int(np.searchsorted(grid.thresholds[c], 0.0)) for c in idx]
            self.groups.append((np.asarray(idx), self.pred_offset[idx] + np.asarray(zero)))

    # ------------------------------------------------------------------ per row
    def solve_row(
        self,
        i: int,
        y: int,
        scores0: FloatArray,
        cells: tuple[FeatureCells, ...],
        pset: PerturbationSet,
        time_limit: float,
        strict: bool,
        incumbent: FloatArray | None = None,
    ) -> _RowSolution:
        grid = self.grid
        deadline = time.perf_counter() + time_limit
        lb = np.zeros(self.n_vars)
        ub = np.ones(self.n_vars)
        ub[0] = np.inf
        low = np.array([c.low[i] for c in cells])
        high = np.array([c.high[i] for c in cells])
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        rlo: list[float] = []
        r = 0
        for f, fc in enumerate(cells):
            m = len(grid.thresholds[f])
            if m == 0:
                continue
            k = np.arange(m)
            off = self.pred_offset[f]
            lb[off + k[k >= high[f]]] = 1.0
            ub[off + k[k < low[f]]] = 0.0
            start = int(fc.start[i])
            cost = fc.cost[i]
            for kk in range(int(low[f]), int(high[f])):
                if kk >= start:  # flipping to x > t[kk] costs the next cell's move
                    c = float(cost[kk + 1])
                    if c > 0:
                        rows += [r, r]
                        cols += [0, int(off + kk)]
                        vals += [1.0, c]
                        rlo.append(c)
                        r += 1
                else:  # keeping x <= t[kk] costs this cell's move
                    c = float(cost[kk])
                    if c > 0:
                        rows += [r, r]
                        cols += [0, int(off + kk)]
                        vals += [1.0, -c]
                        rlo.append(0.0)
                        r += 1
        rhi = [np.inf] * r
        for idx, pcols in self.groups:
            if np.all(low[idx] == high[idx]):
                continue  # a fixed group keeps its original columns
            for pc in pcols:
                rows.append(r)
                cols.append(int(pc))
                vals.append(1.0)
            rlo.append(len(idx) - 1.0)
            rhi.append(len(idx) - 1.0)
            r += 1
        reach = np.all((grid.leaf_lo <= high) & (grid.leaf_hi > low), axis=1)
        ub[self.leaf_offset :][~reach] = 0.0
        dynamic = sparse.csr_array(
            (np.asarray(vals, dtype=np.float64), (np.asarray(rows, dtype=np.int64), cols)),
            shape=(r, self.n_vars),
        )
        order = [int(j) for j in np.argsort(-scores0, kind="stable") if j != y]
        best_x = incumbent
        best = (
            np.inf
            if incumbent is None
            else float(distance_of(pset.rows([i]), incumbent[None, :])[0])
        )
        lower = np.inf
        proven = True
        retried = False
        for j in order:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                proven = False
                lower = 0.0
                break
            # A class listed before y wins ties (numpy's arg-max); after the real model
            # broke a tie the other way (strict pass), every class must win outright.
            first = _MARGIN if (strict or j > y) else 0.0
            margins = (first, _MARGIN, _STRICT) if first == 0.0 else (first, _STRICT)
            for attempt, margin in enumerate(margins):
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    proven = False
                    lower = 0.0
                    break
                ub[0] = best
                res = self._solve(dynamic, rlo, rhi, lb, ub, j, y, margin, remaining)
                status = int(res.status)
                if attempt == 0:
                    if status == 0:
                        lower = min(lower, float(res.fun))
                    elif status == 2:
                        lower = min(lower, best)
                    else:
                        proven = False
                        bound = getattr(res, "mip_dual_bound", None)
                        lower = min(lower, max(float(bound), 0.0) if bound is not None else 0.0)
                if status != 0:
                    proven = proven and status == 2
                if res.x is None:
                    break
                x = self._point(np.asarray(res.x), cells, i, pset)
                if grid.ensemble.predict(x[None, :])[0] == y:
                    retried = True  # solver tolerance accepted a losing score: stricter
                    continue
                d = float(distance_of(pset.rows([i]), x[None, :])[0])
                if d < best or best_x is None:
                    best, best_x = d, x
                break
        return _RowSolution(best_x, best, lower, proven, retried)

    def _solve(
        self,
        dynamic: Any,
        rlo: list[float],
        rhi: list[float],
        lb: FloatArray,
        ub: FloatArray,
        j: int,
        y: int,
        margin: float,
        time_limit: float,
    ) -> Any:
        grid = self.grid
        diff = grid.leaf_value[:, j] - grid.leaf_value[:, y]
        scale = float(np.abs(diff).max()) if diff.size else 0.0
        scale = scale if scale > 0 else 1.0
        const = float(grid.ensemble.base[j] - grid.ensemble.base[y])
        score = sparse.csr_array(
            (
                diff / scale,
                (np.zeros(grid.n_leaves, np.int64), self.leaf_offset + np.arange(grid.n_leaves)),
            ),
            shape=(1, self.n_vars),
        )
        a = sparse.vstack([self.static, dynamic, score], format="csr")
        lo = np.concatenate([self.static_lo, rlo, [margin - const / scale]])
        hi = np.concatenate([self.static_hi, rhi, [np.inf]])
        return milp(
            self.c,
            integrality=self.integrality,
            bounds=Bounds(lb, ub),
            constraints=LinearConstraint(a, lo, hi),
            options={"time_limit": time_limit, "mip_rel_gap": _GAP, "presolve": True},
        )

    def _point(
        self, solution: FloatArray, cells: tuple[FeatureCells, ...], i: int, pset: PerturbationSet
    ) -> FloatArray:
        """The row the solution stands for: in each chosen cell, the point closest to x0."""
        x = pset.x0[i].copy()
        for f, fc in enumerate(cells):
            m = len(self.grid.thresholds[f])
            if m == 0:
                continue
            off = self.pred_offset[f]
            p = solution[off : off + m] > 0.5
            cell = int(np.clip(np.count_nonzero(~p), fc.low[i], fc.high[i]))
            x[f] = fc.value[i, cell]
        return np.asarray(x, dtype=np.float64)


def _ancestry(grid: SplitGrid) -> tuple[IntArray, IntArray, BoolArray]:
    """(ancestor node, leaf, leaf is in the ancestor's left subtree) for every pair."""
    _, _, left, right, _, _ = _flatten(grid.ensemble.trees)
    n = len(left)
    parent = np.full(n, -1, dtype=np.int64)
    went_left = np.zeros(n, dtype=bool)
    has_l = left >= 0
    parent[left[has_l]] = np.flatnonzero(has_l)
    went_left[left[has_l]] = True
    has_r = right >= 0
    parent[right[has_r]] = np.flatnonzero(has_r)
    nodes: list[IntArray] = []
    leaves: list[IntArray] = []
    sides: list[BoolArray] = []
    cur = grid.leaf_node.copy()
    leaf = np.arange(grid.n_leaves, dtype=np.int64)
    while cur.size:
        up = parent[cur]
        ok = up >= 0
        nodes.append(up[ok])
        leaves.append(leaf[ok])
        sides.append(went_left[cur[ok]])
        cur, leaf = up[ok], leaf[ok]
    if not nodes:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    return np.concatenate(nodes), np.concatenate(leaves), np.concatenate(sides)
