"""Auditing differential privacy with one training run (Steinke, Nasr and Jagielski 2023).

Steinke, Nasr and Jagielski, "Privacy Auditing with One (1) Training Run", NeurIPS
2023 (arXiv:2305.08846). ``m`` canaries are each included in the training set by an
independent fair coin flip ``S_i in {-1, +1}``; the model is trained *once*; the
auditor scores every canary, guesses ``T_i = +1`` (IN) for the ``k+`` highest scores,
``T_i = -1`` (OUT) for the ``k-`` lowest, and abstains on the rest. With
``r = k+ + k-`` guesses, ``W`` of them correct:

* Theorem 3.1 (pure DP): if training is ``epsilon``-DP then ``W`` is stochastically
  dominated by ``Binomial(r, p)`` with ``p = e^epsilon / (1 + e^epsilon)``, so
  ``P[W >= v] <= f(v) := P[Binomial(r, p) >= v]``.
* Theorem 5.2 / Proposition 5.7 (approximate DP, the bound used here): if training is
  ``(epsilon, delta)``-DP then for every ``v``

  ``P[W >= v] <= f(v) + 2 m delta * max_{i = 1..v} (f(v - i) - f(v)) / i``

  (the paper's Algorithm 2, ``p_value_DP_audit``, computes exactly this).

The audit's lower bound at confidence ``1 - beta`` is the largest ``epsilon`` whose
p-value for the observed ``v`` is below ``beta`` (:func:`eps_lower_bound`, the
paper's ``get_eps_audit``, by bisection): the training algorithm is *not*
``(epsilon, delta)``-DP for any smaller epsilon, except with probability ``beta``.
Even with every guess right, ``r`` guesses cannot certify more than the *ceiling*
:func:`eps_ceiling` (``log(q / (1 - q))`` with ``q = beta^(1/r)`` when
``delta = 0``); it is computed up front so that a small lower bound is read against
what the audit could have shown at all.

Threat model: the auditor controls ``m`` training records (input-space canaries:
real rows with a flipped label, which a model only fits by memorising them), knows
which were flipped, and sees the final model's scores (here the log-probability of
the canary's label); it does not see intermediate models. The bound is valid
whatever the canaries and scores (it only needs the coin flips to be fair and
independent); the canaries and scores only decide how tight it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_int, check_number
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.findings.finding import Finding
from mlwarden.privacy.rules import RULE_DP_AUDIT

__all__ = [
    "DPAuditResult",
    "audit_one_run",
    "dp_audit_finding",
    "eps_ceiling",
    "eps_lower_bound",
    "p_value",
]

_OWNER = "audit_one_run"
_CHECK = "dp-audit"
_BISECTION_STEPS = 100


def _check_counts(owner: str, r: int, v: int, m: int) -> None:
    for name, val in (("n_guesses", r), ("n_correct", v), ("m", m)):
        check_int(owner, name, val, minimum=0)
    if not 0 <= v <= r <= m:
        raise InvalidParameterError(
            f"{owner}: need 0 <= n_correct <= n_guesses <= m, got "
            f"n_correct={v}, n_guesses={r}, m={m}"
        )


def p_value(n_guesses: int, n_correct: int, m: int, epsilon: float, delta: float) -> float:
    """Probability of ``>= n_correct`` right guesses if training were ``(epsilon, delta)``-DP.

    Steinke et al. 2023, Theorem 5.2 (Algorithm 2, ``p_value_DP_audit``):
    ``f(v) + 2 m delta max_{1 <= i <= v} (f(v - i) - f(v)) / i``, with
    ``f(v) = P[Binomial(r, e^eps / (1 + e^eps)) >= v]``, capped at 1.

    Parameters
    ----------
    n_guesses : int
        ``r``, guesses made (abstentions excluded).
    n_correct : int
        ``v``, correct guesses.
    m : int
        Canaries (each included with probability 1/2).
    epsilon, delta : float
        The null hypothesis.
    """
    r, v = n_guesses, n_correct
    _check_counts("p_value", r, v, m)
    check_number("p_value", "epsilon", epsilon, low=0)
    check_number("p_value", "delta", delta, low=0, high=1)
    q = 1.0 / (1.0 + math.exp(-epsilon))
    tail = float(stats.binom.sf(v - 1, r, q))  # f(v) = P[Binomial(r, q) >= v]
    alpha = 0.0
    between = 0.0  # P[v - i <= Binomial(r, q) < v] = f(v - i) - f(v)
    if delta > 0:
        pmf = stats.binom.pmf(np.arange(v - 1, -1, -1), r, q)  # v-1, v-2, ..., 0
        for i in range(1, v + 1):
            between += float(pmf[i - 1])
            alpha = max(alpha, between / i)
    return min(tail + alpha * delta * 2 * m, 1.0)


def eps_lower_bound(
    n_guesses: int, n_correct: int, m: int, delta: float, beta: float = 0.05
) -> float:
    """Empirical lower bound on epsilon at confidence ``1 - beta`` (Steinke et al. 2023).

    The largest ``epsilon`` (within ``1e-9`` relative, by bisection) with
    ``p_value(r, v, m, epsilon, delta) < beta``, the paper's ``get_eps_audit``; ``0``
    when even ``epsilon = 0`` cannot be rejected.

    Parameters
    ----------
    n_guesses, n_correct, m : int
        ``r``, ``v`` and the number of canaries, ``0 <= v <= r <= m``.
    delta : float
        The delta of the claimed guarantee, in ``[0, 1]``.
    beta : float
        One minus the confidence, in ``(0, 1)``.

    Returns
    -------
    float
        A value ``eps`` such that, unless an event of probability ``beta`` happened,
        training is not ``(eps', delta)``-DP for any ``eps' < eps``.
    """
    _check_counts("eps_lower_bound", n_guesses, n_correct, m)
    check_number("eps_lower_bound", "delta", delta, low=0, high=1)
    check_number("eps_lower_bound", "beta", beta, low=0, low_open=True, high=1)
    if beta >= 1:
        raise InvalidParameterError("eps_lower_bound: beta must be < 1")

    def rejects(eps: float) -> bool:
        return p_value(n_guesses, n_correct, m, eps, delta) < beta

    if not rejects(0.0):
        return 0.0
    lo, hi = 0.0, 1.0
    while rejects(hi):
        lo, hi = hi, 2.0 * hi
        if hi > 1e4:  # p-values this small are below floating point: no finite bound
            return math.inf
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if rejects(mid):
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-9 * max(hi, 1.0):
            break
    return lo


def eps_ceiling(n_guesses: int, m: int, delta: float, beta: float = 0.05) -> float:
    """The largest lower bound ``n_guesses`` guesses can certify: all of them correct."""
    return eps_lower_bound(n_guesses, n_guesses, m, delta, beta)


@dataclass
class DPAuditResult:
    """The outcome of :func:`audit_one_run`.

    Attributes
    ----------
    eps_lower : float
        Lower bound on epsilon at confidence ``1 - beta``.
    eps_ceiling : float
        The largest bound these ``guesses`` could have certified (all correct).
    correct, guesses, n_canaries, k_plus, k_minus : int
    beta, delta : float
    claimed_epsilon : float or None
        The accountant's epsilon the audit is compared with.
    canaries : ndarray of int
        Row indices (in the given data set) used as canaries.
    included : ndarray of bool
        The coin flips: which canaries were trained on.
    scores : ndarray of float
        Each canary's score (log-probability of its flipped label).
    """

    eps_lower: float
    eps_ceiling: float
    correct: int
    guesses: int
    n_canaries: int
    k_plus: int
    k_minus: int
    beta: float
    delta: float
    claimed_epsilon: float | None = None
    canaries: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    included: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))
    scores: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    @property
    def accuracy(self) -> float:
        """Fraction of guesses that were correct (NaN without guesses)."""
        return self.correct / self.guesses if self.guesses else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (without the per-canary arrays)."""
        return {
            "eps_lower": self.eps_lower,
            "eps_ceiling": self.eps_ceiling,
            "correct": self.correct,
            "guesses": self.guesses,
            "n_canaries": self.n_canaries,
            "k_plus": self.k_plus,
            "k_minus": self.k_minus,
            "beta": self.beta,
            "delta": self.delta,
            "claimed_epsilon": self.claimed_epsilon,
        }


def _as_scorer(model: Any) -> Any:
    from mlwarden.models import target
    from mlwarden.models.base import Target

    if isinstance(model, Target):
        return model
    return target(model)


def audit_one_run(
    train_fn: Callable[[Dataset], Any],
    dataset: Dataset,
    *,
    n_canaries: int,
    k_plus: int,
    k_minus: int,
    beta: float = 0.05,
    delta: float,
    claimed_epsilon: float | None = None,
    random_state: RandomState = 0,
    progress: ProgressCallback | None = None,
) -> DPAuditResult:
    """Run the one-run audit: canaries in by coin flip, train once, guess, bound epsilon.

    ``n_canaries`` rows of ``dataset`` become canaries: their label is replaced by a
    different class (chosen at random), and each is kept in the training set with
    probability 1/2; the other rows are always kept. ``train_fn`` trains once on that
    set; every canary is then scored by the log-probability the model gives its
    flipped label, and the ``k_plus`` highest are guessed IN, the ``k_minus`` lowest
    OUT.

    Parameters
    ----------
    train_fn : callable
        ``train_fn(train_set) -> model``: the training pipeline under audit (e.g. a
        closure over :func:`~mlwarden.privacy.dp.train_private`). The model may be a
        mlwarden Target or anything :func:`mlwarden.models.target` wraps.
    dataset : Dataset
        Labelled rows with at least two classes and more than ``n_canaries`` rows.
    n_canaries : int
        ``m``.
    k_plus, k_minus : int
        IN and OUT guesses, ``k_plus + k_minus <= m``.
    beta : float
        One minus the confidence of the bound.
    delta : float
        The delta of the guarantee under audit.
    claimed_epsilon : float or None
        The accountant's epsilon, stored for :func:`dp_audit_finding`.
    random_state : int, Generator or None
        Canary choice, label flips and coin flips.
    progress : callable, optional
        ``progress(task, done, total)``.

    Returns
    -------
    DPAuditResult
        With the ceiling for these ``k_plus + k_minus`` guesses.
    """
    check_int(_OWNER, "n_canaries", n_canaries)
    check_int(_OWNER, "k_plus", k_plus, minimum=0)
    check_int(_OWNER, "k_minus", k_minus, minimum=0)
    if k_plus + k_minus > n_canaries or k_plus + k_minus == 0:
        raise InvalidParameterError(
            f"{_OWNER}: k_plus + k_minus must be in [1, n_canaries={n_canaries}], "
            f"got {k_plus} + {k_minus}"
        )
    check_number(_OWNER, "beta", beta, low=0, low_open=True, high=1)
    check_number(_OWNER, "delta", delta, low=0, high=1)
    if claimed_epsilon is not None:
        check_number(_OWNER, "claimed_epsilon", claimed_epsilon, low=0)
    if not callable(train_fn):
        raise InvalidParameterError(f"{_OWNER}: train_fn must be callable")
    labels = dataset.labels
    classes = np.unique(labels)
    if len(classes) < 2:
        raise DataError(f"{_OWNER}: {dataset.name!r} needs at least two classes for canaries")
    if n_canaries >= dataset.n_samples:
        raise InvalidParameterError(
            f"{_OWNER}: n_canaries ({n_canaries}) must be below the number of rows "
            f"({dataset.n_samples})"
        )
    r = k_plus + k_minus
    ceiling = eps_ceiling(r, n_canaries, delta, beta)
    rng = as_generator(random_state)
    canaries = np.sort(rng.choice(dataset.n_samples, size=n_canaries, replace=False))
    cls_idx = np.searchsorted(classes, labels[canaries])
    shift = rng.integers(1, len(classes), size=n_canaries)
    flipped = classes[(cls_idx + shift) % len(classes)]
    included = rng.random(n_canaries) < 0.5
    y = labels.copy()
    y[canaries] = flipped
    keep = np.ones(dataset.n_samples, dtype=bool)
    keep[canaries[~included]] = False
    train_set = Dataset(
        X=dataset.X[keep],
        y=y[keep],
        schema=dataset.schema,
        name=f"{dataset.name}-canaries",
        positive_label=dataset.positive_label,
    )
    task = f"one-run DP audit ({n_canaries} canaries)"
    report_progress(progress, task, 0, 1)
    model = _as_scorer(train_fn(train_set))
    report_progress(progress, task, 1, 1)
    proba = model.predict_proba(dataset.X[canaries])
    col = model.encode_labels(flipped)
    scores = np.log(np.clip(proba[np.arange(n_canaries), col], 1e-300, None))
    order = np.argsort(-scores, kind="stable")
    guess_in, guess_out = order[:k_plus], order[n_canaries - k_minus :]
    correct = int(included[guess_in].sum() + (~included[guess_out]).sum())
    return DPAuditResult(
        eps_lower=eps_lower_bound(r, correct, n_canaries, delta, beta),
        eps_ceiling=ceiling,
        correct=correct,
        guesses=r,
        n_canaries=n_canaries,
        k_plus=k_plus,
        k_minus=k_minus,
        beta=float(beta),
        delta=float(delta),
        claimed_epsilon=None if claimed_epsilon is None else float(claimed_epsilon),
        canaries=canaries.astype(np.int64),
        included=included,
        scores=scores.astype(np.float64),
    )


def dp_audit_finding(
    result: DPAuditResult, *, claimed_epsilon: float | None = None, target: str = "model"
) -> Finding:
    """``MLW-PRI-005``: fails when the audit's lower bound exceeds the claimed epsilon."""
    claimed = result.claimed_epsilon if claimed_epsilon is None else claimed_epsilon
    if claimed is None:
        raise InvalidParameterError(
            "dp_audit_finding: claimed_epsilon is required (none stored in the result)"
        )
    check_number("dp_audit_finding", "claimed_epsilon", claimed, low=0)
    broken = result.eps_lower > claimed
    text = (
        f"With {result.n_canaries} canaries and {result.guesses} guesses, "
        f"{result.correct} were correct: epsilon >= {result.eps_lower:.3g} at "
        f"{1 - result.beta:.0%} confidence (delta={result.delta:.3g}), against a claimed "
        f"epsilon of {claimed:.3g}."
    )
    if broken:
        text += " The DP implementation or its configuration does not deliver its claim."
    elif result.eps_ceiling < claimed:
        text += (
            f" These guesses cannot certify more than {result.eps_ceiling:.3g}, so the "
            f"audit cannot contradict claims above that; use more canaries to test it."
        )
    return Finding.from_rule(
        RULE_DP_AUDIT,
        target=target,
        check=_CHECK,
        metric="epsilon_lower_bound",
        value=result.eps_lower,
        threshold=float(claimed),
        higher_is_better=False,
        confidence=1.0 - result.beta,
        description=text,
        evidence=result.to_dict() | {"claimed_epsilon": float(claimed)},
    )
