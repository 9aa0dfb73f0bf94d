"""Projected Gradient Descent (L∞ and L2), with random restarts and feasible-set projection.

Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning Models Resistant
to Adversarial Attacks", ICLR 2018.

Threat model: white-box (input gradients), untargeted. The budget ``eps`` is in units
of each feature's scale, either as an L∞ box (``norm="linf"``: each graded feature
moves at most ``eps`` scale units) or as an L2 ball (``norm="l2"``: the Euclidean norm
of ``(x - x0) / scale`` over the movable continuous and integer features is at most
``eps``). Relaxed binary and categorical features the attacker controls are discrete
choices outside the ball: with ``categorical="free"`` they may take any value, under
either norm. Tabular constraints are handled by searching in the relaxed space and
checking the *projected* (integer, one-hot, immutable-respecting) candidate on the
real model at every step: a row counts as broken only when a feasible row fools the
model. Rows stop being attacked once broken, so the cost falls as the attack succeeds.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.data.schema import FeatureKind
from mlwarden.evasion.base import EvasionAttack
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.models.base import Capability, Target

__all__ = ["PGD", "l2_distance"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Step = float | FloatArray

NORMS = ("linf", "l2")
_GRADED = (FeatureKind.CONTINUOUS, FeatureKind.INTEGER)
_L2_RTOL = 1e-7


# ----------------------------------------------------- geometry shared with APGD
def _graded(pset: PerturbationSet) -> BoolArray:
    """Movable continuous and integer features: the coordinates of the budget."""
    return np.asarray(pset.schema.mask(*_GRADED) & pset.movable, dtype=bool)


def l2_distance(pset: PerturbationSet, x: FloatArray) -> FloatArray:
    """L2 norm of ``(x - x0) / scale`` over the movable graded features, per row.

    Parameters
    ----------
    pset : PerturbationSet
        The perturbation set (its ``x0`` and per-feature scales).
    x : ndarray of shape (n, d)
        Rows to measure.
    """
    g = _graded(pset)
    u = (np.asarray(x, dtype=np.float64)[:, g] - pset.x0[:, g]) / pset.step_unit[g]
    return np.asarray(np.sqrt((u * u).sum(axis=1)), dtype=np.float64)


def _in_l2_ball(pset: PerturbationSet, x: FloatArray, eps: float) -> BoolArray:
    return np.asarray(l2_distance(pset, x) <= eps * (1 + _L2_RTOL), dtype=bool)


def _step(
    pset: PerturbationSet, x: FloatArray, grad: FloatArray, norm: str, step: Step, discrete: Step
) -> FloatArray:
    """One ascent step: ``step`` scale units for graded features, ``discrete`` for the rest.

    Under L∞ graded features follow the gradient's sign; under L2 the gradient in the
    scaled space ``(x - x0) / scale``, normalised to unit length. Relaxed binary and
    categorical features always follow the sign (they are not part of the ball).
    """
    g = _graded(pset)
    d = pset.movable & ~g
    step_g = np.reshape(step, (-1, 1))
    if norm == "linf" and g.all():
        # Every feature is graded (images, all-continuous tables): no masks to index.
        return x + (step_g * pset.step_unit) * np.sign(grad)
    out = x.copy()
    if norm == "linf":
        out[:, g] += step_g * pset.step_unit[g] * np.sign(grad[:, g])
    else:
        gs = grad[:, g] * pset.step_unit[g]
        length = np.sqrt((gs * gs).sum(axis=1, keepdims=True))
        unit = gs / np.where(length > 0, length, 1.0)
        out[:, g] += step_g * unit * pset.step_unit[g]
    out[:, d] += np.reshape(discrete, (-1, 1)) * np.sign(grad[:, d])
    return out


def _relaxed_projection(pset: PerturbationSet, x: FloatArray, eps: float, norm: str) -> FloatArray:
    """Map relaxed rows into the relaxed feasible set (box, and the L2 ball for ``"l2"``).

    The L∞ box of ``pset`` contains the L2 ball of the same ``eps``, and it contains
    ``x0``; clipping to it and then shrinking the graded part towards ``x0`` keeps
    both, so the result lies in their intersection.
    """
    out = pset.clip(x)
    if norm == "l2":
        g = _graded(pset)
        length = l2_distance(pset, out)
        over = length > eps
        if over.any():
            shrink = eps / length[over]
            x0 = pset.x0[np.ix_(over, g)]
            out[np.ix_(over, g)] = x0 + (out[np.ix_(over, g)] - x0) * shrink[:, None]
    return out


def _candidate(pset: PerturbationSet, x: FloatArray, eps: float, norm: str) -> FloatArray:
    """The feasible row submitted for relaxed row ``x`` (inside the relaxed set).

    Rounding integer features to the nearest value can leave the L2 ball; in the rows
    where it does, integer features are rounded towards ``x0`` instead, which can only
    shrink the distance.
    """
    cand = pset.project(x)
    if norm == "l2":
        out = ~_in_l2_ball(pset, cand, eps)
        ints = _graded(pset) & pset.schema.mask(FeatureKind.INTEGER)
        if out.any() and ints.any():
            idx = np.ix_(out, ints)
            x0 = pset.x0[idx]
            cand[idx] = x0 + np.trunc(np.round(x[idx] - x0, 9))
    return cand


def _random_start(
    pset: PerturbationSet, eps: float, norm: str, rng: np.random.Generator
) -> FloatArray:
    """A uniform point of the relaxed box (L∞) or of the L2 ball within the box."""
    x = rng.uniform(pset.lower, pset.upper)
    if norm == "l2":
        g = _graded(pset)
        k = int(g.sum())
        if k:
            direction = rng.standard_normal((len(x), k))
            direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-300)
            radius = eps * rng.uniform(size=(len(x), 1)) ** (1.0 / k)
            x[:, g] = pset.x0[:, g] + radius * direction * pset.step_unit[g]
        x = _relaxed_projection(pset, x, eps, norm)
    return np.asarray(x, dtype=np.float64)


def _feasible(pset: PerturbationSet, x: FloatArray, eps: float, norm: str) -> BoolArray:
    """Rows of ``x`` inside the threat model: the box and schema, and the L2 ball."""
    ok = pset.contains(x)
    if norm == "l2":
        ok &= _in_l2_ball(pset, x, eps)
    return ok


# ------------------------------------------------------------------------ PGD
class PGD(EvasionAttack):
    """Projected gradient descent under an L∞ or L2 budget.

    Parameters
    ----------
    eps : float
        Budget in feature-scale units: the L∞ radius, or the L2 radius of
        ``(x - x0) / scale`` over the movable continuous and integer features.
    steps : int
        Gradient steps per restart.
    step_size : float or None
        Step in feature-scale units (its L∞ size, or its L2 length); default
        ``2.5 * eps / steps`` (Madry et al.). Relaxed binary/categorical features move
        ``2.5 / steps`` of their ``[0, 1]`` range per step, under either norm.
    random_start : bool
        Start each restart from a uniform point of the box or ball (else from ``x``).
    restarts : int
        Independent restarts; rows broken by one restart are not attacked again.
    loss : {"ce", "margin"}
        Cross-entropy or logit margin.
    norm : {"linf", "l2"}
        Shape of the budget.
    categorical : {"free", "fixed"}
        Whether mutable binary/categorical features may change.

    Notes
    -----
    With ``steps=1``, ``step_size=eps`` and ``random_start=False`` it is exactly FGSM
    (L∞) or one normalised-gradient step of length ``eps`` (L2).
    """

    requires: ClassVar[Capability] = Capability.LABELS | Capability.GRADIENTS
    name: ClassVar[str] = "PGD"

    def __init__(
        self,
        *,
        eps: float = 0.3,
        steps: int = 50,
        step_size: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        loss: str = "ce",
        norm: str = "linf",
        categorical: str = "free",
    ) -> None:
        self.eps = eps
        self.steps = steps
        self.step_size = step_size
        self.random_start = random_start
        self.restarts = restarts
        self.loss = loss
        self.norm = norm
        self.categorical = categorical

    def _validate_params(self) -> None:
        super()._validate_params()
        check_int(self.name, "steps", self.steps)
        check_int(self.name, "restarts", self.restarts)
        if self.step_size is not None:
            check_number(self.name, "step_size", self.step_size, low=0, low_open=True)
        check_choice(self.name, "loss", self.loss, ("ce", "margin"))
        check_choice(self.name, "norm", self.norm, NORMS)

    def _feasible(self, pset: PerturbationSet, x_adv: FloatArray) -> BoolArray:
        """Rows inside the threat model (box, schema and, for L2, the ball)."""
        return _feasible(pset, x_adv, float(self.eps), self.norm)

    def _run(
        self,
        target: Target,
        pset: PerturbationSet,
        y: npt.NDArray[np.int64],
        rng: np.random.Generator,
    ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        n = len(y)
        eps = float(self.eps)
        norm = self.norm
        step = self.step_size if self.step_size is not None else 2.5 * eps / self.steps
        discrete_step = min(1.0, 2.5 / self.steps)
        x_adv = pset.x0.copy()
        broken = np.zeros(n, dtype=bool)
        queries = np.zeros(n, dtype=np.int64)
        fused = target.gradient_gives_labels and _candidate_is_identity(pset)
        for _ in range(self.restarts):
            rows = np.flatnonzero(~broken)
            if rows.size == 0:
                break
            sub = pset.rows(rows)
            x = _random_start(sub, eps, norm, rng) if self.random_start else sub.x0.copy()
            ys = y[rows]
            if fused:
                self._fused_restart(target, sub, x, ys, rows, x_adv, broken, queries, step)
                continue
            for _ in range(self.steps):
                _, grad = target.loss_gradient(x, ys, loss=self.loss)
                x = _relaxed_projection(
                    sub, _step(sub, x, grad, norm, step, discrete_step), eps, norm
                )
                cand = _candidate(sub, x, eps, norm)
                hit = target.predict(cand) != ys
                queries[rows] += 2
                x_adv[rows] = cand
                if hit.any():
                    broken[rows[hit]] = True
                    keep = ~hit
                    rows, x, ys = rows[keep], x[keep], ys[keep]
                    sub = sub.rows(np.flatnonzero(keep))
                    if rows.size == 0:
                        break
        return x_adv, queries

    def _fused_restart(
        self,
        target: Target,
        sub: PerturbationSet,
        x: FloatArray,
        ys: npt.NDArray[np.int64],
        rows: npt.NDArray[np.intp],
        x_adv: FloatArray,
        broken: BoolArray,
        queries: npt.NDArray[np.int64],
        step: Step,
    ) -> None:
        """One restart when every iterate is itself the feasible candidate.

        With only continuous movable features the projection onto the threat model is
        the clip already applied to each iterate, so the prediction that tells whether
        iterate ``t`` fools the model comes from the forward pass of step ``t + 1``'s
        gradient: one query per step instead of two, and the same iterates.
        """
        eps = float(self.eps)
        for it in range(self.steps + 1):
            if it < self.steps:
                _, grad, pred = target.loss_gradient_labels(x, ys, loss=self.loss)
            else:
                pred = target.predict(x)
            queries[rows] += 1
            hit = pred != ys
            if hit.any():
                broken[rows[hit]] = True
                x_adv[rows[hit]] = x[hit]
                keep = ~hit
                rows, x, ys, grad = rows[keep], x[keep], ys[keep], grad[keep]
                sub = sub.rows(np.flatnonzero(keep))
                if rows.size == 0:
                    return
            if it == self.steps:
                x_adv[rows] = x
            else:
                x = _relaxed_projection(
                    sub, _step(sub, x, grad, self.norm, step, 0.0), eps, self.norm
                )


def _candidate_is_identity(pset: PerturbationSet) -> bool:
    """True when every movable feature is continuous: relaxed iterates are feasible rows."""
    discrete = pset.schema.mask(FeatureKind.INTEGER, FeatureKind.BINARY, FeatureKind.CATEGORICAL)
    return not bool(np.any(pset.movable & discrete))
