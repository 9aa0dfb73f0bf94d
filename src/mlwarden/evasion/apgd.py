"""Auto-PGD (APGD): step-size-free projected gradient ascent with momentum.

Croce and Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020 (the white-box half of AutoAttack).

Threat model: white-box (input gradients), untargeted (``loss="ce"``, ``"dlr"``,
``"margin"``) or targeted in turn at each of the ``n_target_classes`` most likely
other classes (``"dlr-targeted"``, ``"margin-targeted"``, ``"ce-targeted"``). The
budget ``eps`` is in units of each feature's scale, as an L∞ box (``norm="linf"``)
or an L2 ball of ``(x - x0) / scale`` over the movable continuous and integer
features (``norm="l2"``); relaxed binary and categorical features the attacker
controls are discrete choices outside the ball (see
:mod:`mlwarden.evasion.threat_model`).

The step size starts at ``2 * eps`` and is halved, per row, at checkpoints
``w_j = ceil(p_j * steps)`` (``p_0 = 0``, ``p_1 = 0.22``,
``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``) when (1) the loss increased in
fewer than ``rho`` of the steps since the last checkpoint, or (2) the step size was
not halved at the last checkpoint and the best loss has not improved since; the
iterate then restarts from the best point found. Each step mixes the projected
gradient step with the previous move (momentum ``0.75``).

DLR is undefined for two classes (it divides by the gap to the third logit): there
the margin loss is used instead, and ``loss="auto"`` picks DLR for three or more
classes and the margin for two (``"auto-targeted"``: targeted DLR from four classes,
else the targeted margin). As in :class:`~mlwarden.evasion.pgd.PGD`, the search runs
in the relaxed space, every iterate is mapped to a feasible row with
:meth:`~mlwarden.evasion.threat_model.PerturbationSet.project`, a row counts as
broken only when that feasible row fools the real model, and broken rows leave the
batch at once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.evasion.base import EvasionAttack
from mlwarden.evasion.pgd import (
    NORMS,
    _candidate,
    _candidate_is_identity,
    _feasible,
    _random_start,
    _relaxed_projection,
    _step,
)
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.exceptions import InvalidParameterError
from mlwarden.models.base import TARGETED_LOSSES, Capability, Target

__all__ = ["APGD"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

LOSSES = (
    "auto",
    "ce",
    "dlr",
    "margin",
    "auto-targeted",
    "dlr-targeted",
    "margin-targeted",
    "ce-targeted",
)
_MOMENTUM = 0.75


def resolve_loss(loss: str, n_classes: int) -> str:
    """The loss APGD optimises for ``loss`` on a model with ``n_classes`` classes.

    Raises
    ------
    InvalidParameterError
        For a DLR loss on too few classes (DLR needs 3, targeted DLR 4).
    """
    if loss == "auto":
        return "dlr" if n_classes >= 3 else "margin"
    if loss == "auto-targeted":
        return "dlr-targeted" if n_classes >= 4 else "margin-targeted"
    need = {"dlr": 3, "dlr-targeted": 4}.get(loss, 2)
    if n_classes < need:
        instead = "margin-targeted" if loss.endswith("targeted") else "margin"
        raise InvalidParameterError(
            f"APGD: loss {loss!r} needs at least {need} classes and the model has "
            f"{n_classes}: use {instead!r} (or loss='auto')"
        )
    return loss


@dataclass
class _State:
    """Per-row state of the rows still under attack (all arrays share the first axis)."""

    rows: IntArray  # positions in the run's batch
    y: IntArray
    t: IntArray  # target classes (unused when untargeted)
    x: FloatArray  # current relaxed iterate
    x_prev: FloatArray
    grad: FloatArray
    f: FloatArray  # loss at x
    x_best: FloatArray
    g_best: FloatArray
    f_best: FloatArray
    eta: FloatArray  # step size in scale units
    n_up: IntArray  # loss increases since the last checkpoint
    f_best_last: FloatArray  # best loss at the last checkpoint
    reduced_last: BoolArray  # step halved at the last checkpoint

    def keep(self, mask: BoolArray) -> _State:
        return _State(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})


class APGD(EvasionAttack):
    """Auto-PGD with cross-entropy, DLR or margin losses, untargeted or targeted.

    Parameters
    ----------
    eps : float
        Budget in feature-scale units (L∞ radius, or L2 radius of ``(x - x0) / scale``).
    steps : int
        Iterations per run (AutoAttack uses 100).
    restarts : int
        Runs from random starting points (per target class when targeted); rows broken
        by one run are not attacked again.
    loss : {"ce", "auto", "dlr", "margin", "auto-targeted", "dlr-targeted", \
"margin-targeted", "ce-targeted"}
        Loss ascended. ``"auto"`` is DLR for three or more classes and the margin for
        two; ``"auto-targeted"`` is targeted DLR from four classes, else the targeted
        margin. The targeted losses need a target that returns scores (to rank the
        candidate target classes).
    n_target_classes : int
        Targeted losses only: the most likely other classes (by the clean scores)
        attacked in turn; capped at ``n_classes - 1``.
    target_patience : int or None
        Targeted losses only: stop going down the ranking once this many consecutive
        target classes fooled the model on no row (``None``: always try all
        ``n_target_classes``, as AutoAttack does). Less likely classes are harder
        targets: when two in a row yield nothing, the rest rarely do.
    norm : {"linf", "l2"}
        Shape of the budget.
    rho : float
        Step-size halving threshold: the fraction of steps since the last checkpoint
        that must have increased the loss.
    categorical : {"free", "fixed"}
        Whether mutable binary/categorical features may change.

    Notes
    -----
    Each iteration costs one gradient and one prediction query per row still
    standing, plus one prediction per row before the attack (and one score query
    when targeted). For two classes ``"margin"`` and ``"margin-targeted"`` are the
    same loss.
    """

    requires: ClassVar[Capability] = Capability.LABELS | Capability.GRADIENTS
    name: ClassVar[str] = "APGD"

    def __init__(
        self,
        *,
        eps: float = 0.3,
        steps: int = 100,
        restarts: int = 1,
        loss: str = "ce",
        n_target_classes: int = 9,
        target_patience: int | None = None,
        norm: str = "linf",
        rho: float = 0.75,
        categorical: str = "free",
    ) -> None:
        self.eps = eps
        self.steps = steps
        self.restarts = restarts
        self.loss = loss
        self.n_target_classes = n_target_classes
        self.target_patience = target_patience
        self.norm = norm
        self.rho = rho
        self.categorical = categorical

    def _validate_params(self) -> None:
        super()._validate_params()
        check_int(self.name, "steps", self.steps)
        check_int(self.name, "restarts", self.restarts)
        check_int(self.name, "n_target_classes", self.n_target_classes)
        if self.target_patience is not None:
            check_int(self.name, "target_patience", self.target_patience)
        check_number(self.name, "rho", self.rho, low=0, high=1, low_open=True)
        check_choice(self.name, "loss", self.loss, LOSSES)
        check_choice(self.name, "norm", self.norm, NORMS)

    def _feasible(self, pset: PerturbationSet, x_adv: FloatArray) -> BoolArray:
        """Rows inside the threat model (box, schema and, for L2, the ball)."""
        return _feasible(pset, x_adv, float(self.eps), self.norm)

    def _run(
        self,
        target: Target,
        pset: PerturbationSet,
        y: IntArray,
        rng: np.random.Generator,
    ) -> tuple[FloatArray, IntArray]:
        # Everything that can be refused is refused before the first query.
        loss = resolve_loss(self.loss, target.n_classes)
        targeted = loss in TARGETED_LOSSES
        if targeted:
            target.require(Capability.SCORES, by=f"{self.name} with loss {self.loss!r}")
        n = len(y)
        x_adv = pset.x0.copy()
        queries = np.zeros(n, dtype=np.int64)
        if n == 0:
            return x_adv, queries
        broken = target.predict(pset.x0) != y
        queries += 1
        targets: list[IntArray | None] = [None]
        if targeted:
            scores = target.predict_proba(pset.x0)
            queries += 1
            scores[np.arange(n), y] = -np.inf
            ranked = np.argsort(-scores, axis=1, kind="stable")
            k = min(self.n_target_classes, target.n_classes - 1)
            targets = [np.asarray(ranked[:, j], dtype=np.int64) for j in range(k)]
        fruitless = 0  # consecutive target classes that fooled the model on no row
        for tcls in targets:
            found = False
            for _ in range(self.restarts):
                rows = np.flatnonzero(~broken)
                if rows.size == 0:
                    return x_adv, queries
                t = y[rows] if tcls is None else tcls[rows]
                cand, hit, q = self._single_run(target, pset.rows(rows), y[rows], t, loss, rng)
                x_adv[rows] = cand
                broken[rows[hit]] = True
                queries[rows] += q
                found = found or bool(hit.any())
            fruitless = 0 if found else fruitless + 1
            if self.target_patience is not None and fruitless >= self.target_patience:
                break
        return x_adv, queries

    def _single_run(
        self,
        target: Target,
        sub: PerturbationSet,
        y: IntArray,
        t: IntArray,
        loss: str,
        rng: np.random.Generator,
    ) -> tuple[FloatArray, BoolArray, IntArray]:
        """One APGD run on every row of ``sub``: candidates, success, queries per row."""
        eps, norm, n_iter = float(self.eps), self.norm, self.steps
        n = len(y)
        out = sub.x0.copy()
        hit_all = np.zeros(n, dtype=bool)
        queries = np.zeros(n, dtype=np.int64)

        # With only continuous movable features every iterate is its own feasible
        # candidate, and the gradient's forward pass also says whether it fools the model.
        fused = target.gradient_gives_labels and _candidate_is_identity(sub)

        def gradient(x: FloatArray, y: IntArray, t: IntArray) -> tuple[npt.NDArray[Any], ...]:
            if fused:
                return target.loss_gradient_labels(x, y, loss=loss, target_class=_tc(loss, t))
            return target.loss_gradient(x, y, loss=loss, target_class=_tc(loss, t))

        x = _random_start(sub, eps, norm, rng)
        f, grad, *pred = gradient(x, y, t)
        s = _State(
            rows=np.arange(n), y=y, t=t, x=x, x_prev=x.copy(), grad=grad, f=f,
            x_best=x.copy(), g_best=grad.copy(), f_best=f.copy(),
            eta=np.full(n, 2.0 * eps), n_up=np.zeros(n, dtype=np.int64),
            f_best_last=f.copy(), reduced_last=np.ones(n, dtype=bool),
        )  # fmt: skip
        act = sub

        def check(
            s: _State, act: PerturbationSet, pred: list[npt.NDArray[Any]]
        ) -> tuple[_State, PerturbationSet]:
            """Submit the feasible rows of the current iterates; drop the rows that fool."""
            cand = _candidate(act, s.x, eps, norm)
            if pred:  # the gradient query's own prediction
                hit = pred[0] != s.y
                queries[s.rows] += 1
            else:
                hit = target.predict(cand) != s.y
                queries[s.rows] += 2  # this gradient and this prediction
            if not hit.any():
                return s, act
            out[s.rows[hit]] = cand[hit]
            hit_all[s.rows[hit]] = True
            keep = ~hit
            return s.keep(keep), act.rows(np.flatnonzero(keep))

        s, act = check(s, act, pred)
        # Checkpoint schedule of the reference implementation (lengths in iterations).
        period = max(int(0.22 * n_iter), 1)
        period_min = max(int(0.06 * n_iter), 1)
        period_decr = max(int(0.03 * n_iter), 1)
        since = 0
        for i in range(n_iter):
            if s.rows.size == 0:
                break
            a = _MOMENTUM if i > 0 else 1.0
            # Relaxed binary/categorical features: the step starts at their whole range.
            z = _relaxed_projection(
                act, _step(act, s.x, s.grad, norm, s.eta, s.eta / (2.0 * eps)), eps, norm
            )
            x_new = _relaxed_projection(
                act, s.x + a * (z - s.x) + (1.0 - a) * (s.x - s.x_prev), eps, norm
            )
            s.x_prev, s.x = s.x, x_new
            f, s.grad, *pred = gradient(s.x, s.y, s.t)
            s.n_up += f > s.f
            s.f = f
            better = f > s.f_best
            s.x_best[better] = s.x[better]
            s.g_best[better] = s.grad[better]
            s.f_best[better] = f[better]
            s, act = check(s, act, pred)

            since += 1
            if since == period:
                # (1) too few steps increased the loss, or (2) no halving last time and
                # no progress since: halve the step and go back to the best point.
                halve = (s.n_up < self.rho * period) | (
                    ~s.reduced_last & (s.f_best_last >= s.f_best)
                )
                s.reduced_last = halve
                s.f_best_last = s.f_best.copy()
                s.eta[halve] /= 2.0
                s.x[halve] = s.x_best[halve]
                s.x_prev[halve] = s.x_best[halve]
                s.grad[halve] = s.g_best[halve]
                s.f[halve] = s.f_best[halve]
                s.n_up[:] = 0
                since = 0
                period = max(period - period_decr, period_min)
        if s.rows.size:
            out[s.rows] = _candidate(act, s.x_best, eps, norm)
        return out, hit_all, queries


def _tc(loss: str, t: IntArray) -> IntArray | None:
    """The target classes to pass to ``loss_gradient`` (``None`` for untargeted losses)."""
    return t if loss in TARGETED_LOSSES else None
