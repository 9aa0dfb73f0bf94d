"""HopSkipJump: a query-efficient decision-based (labels-only) attack, batched across rows.

Chen, Jordan and Wainwright, "HopSkipJumpAttack: A Query-Efficient Decision-Based
Attack", IEEE Symposium on Security and Privacy (S&P) 2020.

Threat model: black-box, the attacker sees only the predicted label; untargeted; the
returned row lies in the L∞ box of size ``eps`` (in units of each feature's scale)
around ``x`` and respects the :class:`~mlwarden.data.FeatureSchema` (immutable
features, bounds, integers, binaries, one-hot groups); at most ``max_queries`` model
queries per row, every one counted (initialisation, binary searches, gradient probes,
step-size search). Within that box the attack *minimises* the perturbation, measured
in the L∞ or L2 norm (``norm``) of ``(x_adv - x) / scale`` over the movable
continuous and integer features (binary and categorical choices are free under the
threat model and cost nothing).

The search runs in that scaled space on relaxed (continuous) points; the model only
ever sees each point's projection onto the feasible set
(:meth:`~mlwarden.evasion.threat_model.PerturbationSet.project`), so a row counts as
broken only when a feasible row fools the model. Each row starts from a misclassified
feasible point drawn uniformly from a box that widens from the ``eps`` box to the
search box (``search_factor`` times wider, within the schema's bounds: a start outside
lets the attack walk in and break rows whose misclassified region inside the ``eps``
box is too small to hit by chance). It then alternates the paper's three steps: a
binary search towards ``x`` to the decision boundary, a Monte-Carlo estimate of the
boundary's normal from the signs of random probes, and a geometric step-size search
along it (a sign step for L∞). Tabular additions: a step that re-chooses one binary
feature or categorical group and keeps it when it lets the row get closer, and a step
that is undone when it ends farther from ``x`` than it began. All active rows advance
together, each model call evaluates one (rows × probes) batch, and the smallest
misclassified feasible point inside the ``eps`` box seen at any query is returned.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.data.schema import FeatureKind
from mlwarden.evasion.base import EvasionAttack
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.exceptions import InvalidParameterError
from mlwarden.models.base import Capability, Target

__all__ = ["HopSkipJump"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

NORMS = ("linf", "l2")
_CHUNK_ELEMENTS = 2_000_000  # floats per probe chunk (rows × probes × features)
_MAX_HALVINGS = 10  # geometric step-size search
_HOP_SHRINK = 0.9  # a new discrete choice must fool the model at 90 % of the distance


class HopSkipJump(EvasionAttack):
    """Decision-based minimal-perturbation attack (HopSkipJumpAttack), L∞ or L2.

    Parameters
    ----------
    eps : float
        L∞ budget in feature-scale units: returned rows lie in this box.
    norm : {"linf", "l2"}
        Norm of the scaled perturbation that the attack minimises (and the paper's
        variant: sign steps and box-clipping binary search for ``"linf"``, gradient
        steps and linear-blend binary search for ``"l2"``).
    max_queries : int
        Query budget per row, everything included; never exceeded.
    max_iter : int
        Maximum number of gradient-estimation iterations.
    init_queries : int
        Part of the budget a row may spend looking for a misclassified starting
        point; a row without one is not attacked further.
    n_probes : int
        Probes of the first gradient estimate; iteration ``t`` uses
        ``n_probes * sqrt(t + 1)`` of them, at most ``max_probes``.
    max_probes : int
        Cap on probes per gradient estimate.
    search_factor : float
        Half-width of the box the search explores (starting points and iterates) as a
        multiple of ``eps``, within the schema's bounds; ``>= 1``. With 1 the search
        stays inside the threat model's box, and rows whose misclassified region there
        is too small to be hit by random samples are never attacked; a wider box lets
        the attack start outside and walk in. Only points inside the ``eps`` box are
        returned.
    early_stop : bool
        Stop attacking a row as soon as it has a misclassified feasible point (as PGD
        and Square do) instead of spending the rest of its budget making the
        perturbation smaller.
    categorical : {"free", "fixed"}
        Whether mutable binary/categorical features may change.

    Notes
    -----
    Binary-search precision is the paper's ``theta`` (``d**-1.5`` for L2, ``d**-2``
    for L∞, with ``d`` movable continuous and integer features) relative to the
    current distance, and never coarser than 1 %; probes are drawn at radius ``dist / d`` (the
    paper's ``delta``) and the step size starts at ``dist / sqrt(t + 1)``. Each model
    call evaluates one batch of (active rows × probes); large batches are split into
    chunks of about two million numbers. ``AttackResult.queries`` counts every
    query; the base class's final re-check is not counted.
    """

    requires: ClassVar[Capability] = Capability.LABELS
    name: ClassVar[str] = "HopSkipJump"

    def __init__(
        self,
        *,
        eps: float = 0.3,
        norm: str = "linf",
        max_queries: int = 1000,
        max_iter: int = 50,
        init_queries: int = 100,
        n_probes: int = 100,
        max_probes: int = 1000,
        search_factor: float = 2.0,
        early_stop: bool = False,
        categorical: str = "free",
    ) -> None:
        self.eps = eps
        self.norm = norm
        self.max_queries = max_queries
        self.max_iter = max_iter
        self.init_queries = init_queries
        self.n_probes = n_probes
        self.max_probes = max_probes
        self.search_factor = search_factor
        self.early_stop = early_stop
        self.categorical = categorical

    def _validate_params(self) -> None:
        super()._validate_params()
        check_choice(self.name, "norm", self.norm, NORMS)
        check_int(self.name, "max_queries", self.max_queries)
        check_int(self.name, "max_iter", self.max_iter)
        check_int(self.name, "init_queries", self.init_queries)
        check_int(self.name, "n_probes", self.n_probes)
        check_int(self.name, "max_probes", self.max_probes)
        check_number(self.name, "search_factor", self.search_factor, low=1)
        if not isinstance(self.early_stop, bool | np.bool_):
            raise InvalidParameterError(
                f"{self.name}: early_stop must be True or False, got {self.early_stop!r}"
            )

    def _run(
        self,
        target: Target,
        pset: PerturbationSet,
        y: IntArray,
        rng: np.random.Generator,
    ) -> tuple[FloatArray, IntArray]:
        return _Search(self, target, pset, y, rng).run()


class _Search:
    """State of one HopSkipJump run; every array is indexed by row.

    The search vector ``u`` holds the graded (continuous and integer) movable features
    in scaled units, ``(x - x0) / scale``. Binary and categorical choices are free under
    the threat model: each row's starting point fixes them (in :attr:`base`) and the
    search minimises the graded perturbation.
    """

    def __init__(
        self,
        attack: HopSkipJump,
        target: Target,
        pset: PerturbationSet,
        y: IntArray,
        rng: np.random.Generator,
    ) -> None:
        self.attack = attack
        self.target = target
        self.pset = pset
        self.y = y
        self.rng = rng
        self.l2 = attack.norm == "l2"
        self.budget = attack.max_queries
        n = len(y)
        self.queries = np.zeros(n, dtype=np.int64)
        if attack.search_factor == 1:
            self.wide = pset
        else:
            self.wide = PerturbationSet.build(
                pset.x0,
                float(attack.eps) * float(attack.search_factor),
                pset.schema,
                categorical=attack.categorical,
            )
        graded = pset.schema.mask(FeatureKind.CONTINUOUS, FeatureKind.INTEGER)
        self.cols = np.flatnonzero(pset.movable & graded)
        self.movable_discrete = pset.movable & ~graded
        # Discrete units an attacker may re-choose: one binary feature or one whole group.
        schema = pset.schema
        binaries = np.flatnonzero(pset.movable & schema.mask(FeatureKind.BINARY))
        self.units: list[IntArray] = [np.array([j]) for j in binaries]
        self.units += [
            np.asarray(idx, dtype=np.int64)
            for idx in schema.groups.values()
            if pset.movable[idx].all()
        ]
        self.d = self.cols.size
        self.unit = pset.step_unit[self.cols]
        self.x0g = pset.x0[:, self.cols]
        # The relaxed search box in scaled coordinates (contains 0, the original row).
        self.lo = (self.wide.lower[:, self.cols] - self.x0g) / self.unit
        self.hi = (self.wide.upper[:, self.cols] - self.x0g) / self.unit
        self.base = pset.x0.copy()
        self.best_x = pset.x0.copy()
        self.best_norm = np.full(n, np.inf)
        d = max(self.d, 1)
        theta = d ** (-1.5) if self.l2 else d ** (-2.0)
        self.theta = min(theta, 0.01)
        self.bs_steps = max(1, math.ceil(math.log2(1.0 / self.theta)))

    # ------------------------------------------------------------------ helpers
    def norm(self, u: FloatArray) -> FloatArray:
        """Norm along the last axis (0 for an empty one)."""
        if u.shape[-1] == 0:
            return np.zeros(u.shape[:-1])
        if self.l2:
            return np.asarray(np.sqrt(np.sum(u * u, axis=-1)), dtype=np.float64)
        return np.asarray(np.max(np.abs(u), axis=-1), dtype=np.float64)

    def remaining(self, rows: IntArray) -> IntArray:
        return np.asarray(self.budget - self.queries[rows], dtype=np.int64)

    def rows_of(self, rows: IntArray, u: FloatArray) -> FloatArray:
        """Relaxed rows for scaled graded vectors ``u`` (one per entry of ``rows``)."""
        x = self.base[rows].copy()
        x[:, self.cols] = self.x0g[rows] + u * self.unit
        return x

    def ask(self, rows: IntArray, x: FloatArray) -> tuple[BoolArray, FloatArray]:
        """Query the feasible projections of relaxed rows ``x`` (one per entry of ``rows``,
        rows may repeat) in one model call; record the best adversarial ones."""
        pset = self.pset
        inner = np.all((x >= pset.lower[rows]) & (x <= pset.upper[rows]), axis=1)
        cand = np.empty_like(x)
        # Points inside the eps box are projected within it, the others within the wide box.
        if inner.any():
            cand[inner] = pset.rows(rows[inner]).project(x[inner])
        if not inner.all():
            cand[~inner] = self.wide.rows(rows[~inner]).project(x[~inner])
        adv = np.asarray(self.target.predict(cand) != self.y[rows], dtype=bool)
        self.queries += np.bincount(rows, minlength=len(self.queries))
        ok = adv & pset.rows(rows).contains(cand) if adv.any() else adv
        if ok.any():
            r, c = rows[ok], cand[ok]
            size = self.norm((c[:, self.cols] - self.x0g[r]) / self.unit)
            order = np.lexsort((size, r))  # by row, smallest first
            r, c, size = r[order], c[order], size[order]
            first = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
            r, c, size = r[first], c[first], size[first]
            better = size < self.best_norm[r]
            self.best_norm[r[better]] = size[better]
            self.best_x[r[better]] = c[better]
        return adv, cand

    def along(self, u: FloatArray, alpha: FloatArray) -> FloatArray:
        """Points on the path from 0 (alpha = 0) to ``u`` (alpha = 1)."""
        if self.l2:
            return np.asarray(alpha[:, None] * u, dtype=np.float64)
        t = alpha * self.norm(u)
        return np.asarray(np.clip(u, -t[:, None], t[:, None]), dtype=np.float64)

    # ------------------------------------------------------------------ the steps
    def initialise(self) -> tuple[FloatArray, BoolArray]:
        """Uniform feasible samples until each row has a misclassified one.

        Rounds of 2, 4, 8, ... samples per row; the graded features are drawn from a
        box that starts as the ``eps`` box and widens by ``sqrt(2)`` per round up to the
        search box, so that rows start as close to ``x`` as chance allows.
        """
        wide = self.wide
        n, dim = wide.x0.shape
        start = np.zeros((n, self.d))
        found = np.zeros(n, dtype=bool)
        limit = min(self.attack.init_queries, self.budget)
        eps = float(self.attack.eps)
        spent, k, rnd = 0, 2, 0
        while spent < limit:
            act = np.flatnonzero(~found)
            if act.size == 0:
                break
            k = min(k, limit - spent, max(1, _CHUNK_ELEMENTS // (act.size * dim)))
            x = self.rng.uniform(
                wide.lower[act, None, :], wide.upper[act, None, :], (act.size, k, dim)
            )
            radius = eps * 2 ** (rnd / 2)
            lo = np.maximum(self.lo[act, None, :], -radius)
            hi = np.minimum(self.hi[act, None, :], radius)
            u = self.rng.uniform(lo, hi, (act.size, k, self.d))
            x[:, :, self.cols] = self.x0g[act, None, :] + u * self.unit
            adv, cand = self.ask(np.repeat(act, k), x.reshape(-1, dim))
            adv = adv.reshape(act.size, k)
            cand = cand.reshape(act.size, k, dim)
            j = np.argmin(np.where(adv, self.norm(u), np.inf), axis=1)
            hit = np.flatnonzero(adv.any(axis=1))
            start[act[hit]] = u[hit, j[hit]]
            # The starting point's discrete choices (already projected) are kept.
            self.base[act[hit]] = np.where(
                self.movable_discrete, cand[hit, j[hit]], self.base[act[hit]]
            )
            found[act[hit]] = True
            spent += k
            k *= 2
            rnd += 1
        return start, found

    def binary_search(self, rows: IntArray, u: FloatArray) -> FloatArray:
        """Move each misclassified ``u`` towards 0 until it sits at the boundary."""
        low = np.zeros(len(rows))
        high = np.ones(len(rows))
        for _ in range(self.bs_steps):
            ok = np.flatnonzero(self.remaining(rows) > 0)
            if ok.size == 0:
                break
            mid = (low[ok] + high[ok]) / 2
            adv, _ = self.ask(rows[ok], self.rows_of(rows[ok], self.along(u[ok], mid)))
            high[ok[adv]] = mid[adv]
            low[ok[~adv]] = mid[~adv]
        return self.along(u, high)

    def hop(self, rows: IntArray, u: FloatArray) -> None:
        """Re-choose one discrete unit per row; keep the choice where it lets the row stay
        misclassified with a smaller graded perturbation (then search the boundary again).

        Not in the paper: binary and categorical features have no gradient to follow, and
        the starting point's choice may force a large graded perturbation.
        """
        new = self.base[rows].copy()
        pick = self.rng.integers(len(self.units), size=len(rows))
        for j, idx in enumerate(self.units):
            sel = np.flatnonzero(pick == j)
            if sel.size == 0:
                continue
            if idx.size == 1:
                new[sel, idx[0]] = 1.0 - new[sel, idx[0]]
            else:
                block = np.zeros((sel.size, idx.size))
                block[np.arange(sel.size), self.rng.integers(idx.size, size=sel.size)] = 1.0
                new[np.ix_(sel, idx)] = block
        shrunk = self.along(u, np.full(len(rows), _HOP_SHRINK))
        x = new.copy()
        x[:, self.cols] = self.x0g[rows] + shrunk * self.unit
        adv, _ = self.ask(rows, x)
        take = np.flatnonzero(adv)
        if take.size:
            self.base[rows[take]] = new[take]
            u[take] = self.binary_search(rows[take], shrunk[take])

    def gradient(
        self, rows: IntArray, u: FloatArray, delta: FloatArray, probes: IntArray
    ) -> FloatArray:
        """Monte-Carlo estimate of the boundary normal at ``u`` (pointing to adversarial)."""
        r, d = len(rows), self.d
        total = int(probes.max())
        chunk = max(1, min(total, _CHUNK_ELEMENTS // (r * self.pset.x0.shape[1])))
        sum_fz = np.zeros((r, d))
        sum_z = np.zeros((r, d))
        sum_f = np.zeros(r)
        count = np.zeros(r)
        lo, hi = self.lo[rows, None, :], self.hi[rows, None, :]
        for begin in range(0, total, chunk):
            k = min(chunk, total - begin)
            if self.l2:
                z = self.rng.standard_normal((r, k, d))
            else:
                z = self.rng.uniform(-1.0, 1.0, (r, k, d))
            z /= np.maximum(np.sqrt(np.sum(z * z, axis=2, keepdims=True)), 1e-12)
            p = np.clip(u[:, None, :] + delta[:, None, None] * z, lo, hi)
            z = (p - u[:, None, :]) / delta[:, None, None]
            valid = (begin + np.arange(k))[None, :] < probes[:, None]
            ri, ki = np.nonzero(valid)
            adv, _ = self.ask(rows[ri], self.rows_of(rows[ri], p[ri, ki]))
            f = np.zeros((r, k))
            f[ri, ki] = np.where(adv, 1.0, -1.0)
            v = valid.astype(np.float64)
            sum_fz += np.einsum("rk,rkd->rd", f, z)
            sum_z += np.einsum("rk,rkd->rd", v, z)
            sum_f += f.sum(axis=1)
            count += v.sum(axis=1)
        mean_f = sum_f / np.maximum(count, 1)
        # Baseline (mean sign) subtracted unless every probe agreed (paper, eq. 16).
        mixed = np.abs(mean_f) < 1
        grad = np.where(mixed[:, None], sum_fz - mean_f[:, None] * sum_z, sum_fz)
        size = np.sqrt(np.sum(grad * grad, axis=1, keepdims=True))
        return np.asarray(grad / np.maximum(size, 1e-12), dtype=np.float64)

    def step(self, rows: IntArray, u: FloatArray, v: FloatArray, xi: FloatArray) -> BoolArray:
        """Geometric step-size search; updates ``u`` in place, True where a step was taken."""
        moved = np.zeros(len(rows), dtype=bool)
        xi = xi.copy()
        for _ in range(_MAX_HALVINGS):
            todo = np.flatnonzero(~moved & (self.remaining(rows) > 0))
            if todo.size == 0:
                break
            cand = np.clip(
                u[todo] + xi[todo, None] * v[todo], self.lo[rows[todo]], self.hi[rows[todo]]
            )
            adv, _ = self.ask(rows[todo], self.rows_of(rows[todo], cand))
            u[todo[adv]] = cand[adv]
            moved[todo[adv]] = True
            xi[todo[~adv]] /= 2
        return moved

    def run(self) -> tuple[FloatArray, IntArray]:
        attack = self.attack
        n = len(self.y)
        if n == 0 or not self.pset.movable.any():
            return self.pset.x0.copy(), self.queries
        u, alive = self.initialise()
        if self.d == 0:
            return self.best_x, self.queries
        first = alive & ~np.isfinite(self.best_norm) if attack.early_stop else alive
        rows = np.flatnonzero(first)
        u[rows] = self.binary_search(rows, u[rows])
        # A row needs, after its probes, room for a step and a binary search.
        reserve = self.bs_steps + 2
        for it in range(attack.max_iter):
            keep = alive & (self.remaining(np.arange(n)) > reserve)
            if attack.early_stop:
                keep &= ~np.isfinite(self.best_norm)
            rows = np.flatnonzero(keep)
            if rows.size and self.units:
                cur = u[rows]
                self.hop(rows, cur)
                u[rows] = cur
                rows = rows[self.remaining(rows) > reserve]
            if rows.size == 0:
                break
            cur = u[rows]
            dist = self.norm(cur)
            want = min(int(attack.n_probes * math.sqrt(it + 1)), attack.max_probes)
            probes = np.minimum(want, self.remaining(rows) - reserve)
            delta = np.maximum(dist / self.d, 1e-12)
            grad = self.gradient(rows, cur, delta, probes)
            direction = grad if self.l2 else np.sign(grad)
            prev = cur.copy()
            moved = self.step(rows, cur, direction, dist / math.sqrt(it + 1))
            went = np.flatnonzero(moved)
            cur[went] = self.binary_search(rows[went], cur[went])
            # Keep the closer boundary point (a poor gradient estimate can walk away).
            worse = self.norm(cur) > dist
            cur[worse] = prev[worse]
            u[rows] = cur
        return self.best_x, self.queries
