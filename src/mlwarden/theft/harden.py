"""Output hardening: answer with less than the model knows (:func:`harden_outputs`).

References: F. Tramèr et al., "Stealing Machine Learning Models via Prediction APIs",
USENIX Security 2016 (rounding and label-only outputs as countermeasures); T. Lee,
B. Edwards, I. Molloy and D. Su, "Defending Against NN Model Stealing Attacks Using
Deceptive Perturbations", IEEE S&P Workshops 2019 (reverse sigmoid); T. Orekondy et al.,
"Prediction Poisoning: Towards Defenses Against DNN Model Stealing Attacks", ICLR 2020
(the cost/utility trade-off of perturbing outputs).

Threat model: the attacker queries the deployed model (see :mod:`mlwarden.theft.extract`)
and trains a copy on its answers; full-precision probabilities carry more information
per query than a label, so hiding or blurring them makes each query worth less. A
:class:`HardenedTarget` wraps any target and post-processes its answers; it keeps the
victim's classes and (except for ``noise`` without ``preserve_argmax``) its predicted
labels, so honest users relying on the decision lose nothing, and those relying on the
scores lose what :func:`honest_cost` measures. :func:`attacker_cost` measures what the
attacker loses: the queries needed to reach the same fidelity. Hardening does not stop a
labels-only attacker with enough queries; pair it with quotas and a stateful detector.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_int, check_number
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.models.base import Capability, InputSpec, Target

__all__ = [
    "DEFENSES",
    "AttackerCost",
    "GaussianNoise",
    "HardenedTarget",
    "HonestCost",
    "LabelOnly",
    "OutputDefense",
    "ReverseSigmoid",
    "Rounding",
    "TopK",
    "attacker_cost",
    "harden_outputs",
    "honest_cost",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class OutputDefense(ABC):
    """A post-processing of probabilities; keyword-only ``__init__`` that only stores."""

    name: ClassVar[str] = ""
    removes_scores: ClassVar[bool] = False

    def validate(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`InvalidParameterError` for bad parameters."""

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters given to ``__init__``."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    @abstractmethod
    def apply(self, proba: FloatArray, rng: np.random.Generator) -> FloatArray:
        """The defended probabilities for ``proba`` (rows sum to 1)."""


class LabelOnly(OutputDefense):
    """Return the predicted label only (the target loses SCORES)."""

    name: ClassVar[str] = "label-only"
    removes_scores: ClassVar[bool] = True

    def __init__(self) -> None:
        pass

    def apply(self, proba: FloatArray, rng: np.random.Generator) -> FloatArray:
        out = np.zeros_like(proba)
        out[np.arange(len(proba)), np.argmax(proba, axis=1)] = 1.0
        return out


class TopK(OutputDefense):
    """Keep the ``k`` largest probabilities, zero the others and renormalise.

    Parameters
    ----------
    k : int, default=1
    """

    name: ClassVar[str] = "top-k"

    def __init__(self, *, k: int = 1) -> None:
        self.k = k

    def validate(self) -> None:
        check_int("top-k", "k", self.k)

    def apply(self, proba: FloatArray, rng: np.random.Generator) -> FloatArray:
        k = min(int(self.k), proba.shape[1])
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        out = np.zeros_like(proba)
        rows = np.arange(len(proba))[:, None]
        out[rows, order] = proba[rows, order]
        return _normalise(out)


class Rounding(OutputDefense):
    """Round probabilities to ``decimals`` decimals (the argmax is kept).

    Parameters
    ----------
    decimals : int, default=1
    """

    name: ClassVar[str] = "rounding"

    def __init__(self, *, decimals: int = 1) -> None:
        self.decimals = decimals

    def validate(self) -> None:
        check_int("rounding", "decimals", self.decimals, minimum=0)

    def apply(self, proba: FloatArray, rng: np.random.Generator) -> FloatArray:
        out = np.round(proba, int(self.decimals))
        return _keep_argmax(proba, out)


class GaussianNoise(OutputDefense):
    """Add Gaussian noise of standard deviation ``scale``, clip to [0, 1], renormalise.

    Parameters
    ----------
    scale : float, default=0.1
    preserve_argmax : bool, default=True
        Swap entries back so that the predicted label never changes.
    """

    name: ClassVar[str] = "noise"

    def __init__(self, *, scale: float = 0.1, preserve_argmax: bool = True) -> None:
        self.scale = scale
        self.preserve_argmax = preserve_argmax

    def validate(self) -> None:
        check_number("noise", "scale", self.scale, low=0)

    def apply(self, proba: FloatArray, rng: np.random.Generator) -> FloatArray:
        noisy = np.clip(proba + rng.normal(0.0, float(self.scale), size=proba.shape), 0, 1)
        noisy = np.where(noisy.sum(axis=1, keepdims=True) > 0, noisy, proba)
        out = _normalise(noisy)
        return _keep_argmax(proba, out) if self.preserve_argmax else out


class ReverseSigmoid(OutputDefense):
    """Reverse sigmoid perturbation (Lee et al. 2019).

    ``r = beta * (sigmoid(gamma * logit(p)) - 1/2)``; the answer is ``p - r`` clipped
    to [0, 1] and renormalised. It keeps the ranking direction near the top but pushes
    probabilities toward misleading values, so a surrogate trained on them by
    cross-entropy learns wrong logits. The argmax is kept (entries are swapped back in
    the rare rows where the perturbation would change it).

    Parameters
    ----------
    beta : float, default=1.0
        Perturbation magnitude.
    gamma : float, default=0.1
        Dataset/model-specific convergence parameter.
    """

    name: ClassVar[str] = "reverse-sigmoid"

    def __init__(self, *, beta: float = 1.0, gamma: float = 0.1) -> None:
        self.beta = beta
        self.gamma = gamma

    def validate(self) -> None:
        check_number("reverse-sigmoid", "beta", self.beta, low=0, low_open=True)
        check_number("reverse-sigmoid", "gamma", self.gamma, low=0, low_open=True)

    def apply(self, proba: FloatArray, rng: np.random.Generator) -> FloatArray:
        p = np.clip(proba, 1e-9, 1 - 1e-9)
        logit = np.log(p / (1 - p))
        r = float(self.beta) * (1.0 / (1.0 + np.exp(-float(self.gamma) * logit)) - 0.5)
        out = np.clip(proba - r, 0.0, 1.0)
        out = np.where(out.sum(axis=1, keepdims=True) > 0, out, proba)
        return _keep_argmax(proba, _normalise(out))


DEFENSES: dict[str, type[OutputDefense]] = {
    "label-only": LabelOnly,
    "top-k": TopK,
    "rounding": Rounding,
    "noise": GaussianNoise,
    "reverse-sigmoid": ReverseSigmoid,
}
"""Defense names for :func:`harden_outputs`."""


@dataclass(eq=False)
class HardenedTarget(Target):
    """A target whose answers go through an :class:`OutputDefense`.

    Queries are counted here and, as they pass through, by the wrapped target.
    Gradients and logits are never offered (they would bypass the defense).

    Parameters
    ----------
    inner : Target
        The model being protected.
    defense : OutputDefense
        The post-processing.
    random_state : int, Generator or None
        Seed of randomised defenses (noise).
    """

    inner: Target
    defense: OutputDefense
    random_state: RandomState = None
    _rng: np.random.Generator | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.name == "model":
            self.name = f"{self.inner.name}[{self.defense.name}]"
        self.source = self.inner.source
        self.training = self.inner.training

    @property
    def capabilities(self) -> Capability:
        """The inner target's labels, and scores unless the defense removes them."""
        caps = Capability.LABELS & self.inner.capabilities
        if Capability.SCORES in self.inner.capabilities and not self.defense.removes_scores:
            caps |= Capability.SCORES
        return caps

    @property
    def input_spec(self) -> InputSpec:
        """The inner target's input spec (same classes)."""
        return self.inner.input_spec

    @property
    def kind(self) -> str:
        """``hardened-<inner kind>``."""
        return f"hardened-{self.inner.kind}"

    def fingerprint(self) -> str | None:
        """The inner target's fingerprint."""
        return self.inner.fingerprint()

    def describe(self) -> dict[str, Any]:
        """The inner description plus the defense and its parameters."""
        out = super().describe()
        out["defense"] = {"name": self.defense.name, **self.defense.get_params()}
        return out

    def _generator(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = as_generator(self.random_state)
        return self._rng

    def _predict_proba(self, x: FloatArray) -> FloatArray:
        return self.defense.apply(self.inner.predict_proba(x), self._generator())

    def _predict_labels(self, x: FloatArray) -> IntArray:
        if Capability.SCORES not in self.inner.capabilities:
            return self.inner.predict(x)
        return np.asarray(np.argmax(self._predict_proba(x), axis=1), dtype=np.int64)


def harden_outputs(
    target: Target,
    defense: str | OutputDefense = "label-only",
    *,
    random_state: RandomState = None,
    **params: Any,
) -> HardenedTarget:
    """Wrap ``target`` so that its answers go through an output defense.

    Parameters
    ----------
    target : Target
        The model to protect.
    defense : {"label-only", "top-k", "rounding", "noise", "reverse-sigmoid"} or OutputDefense
        The defense, by name (with ``params``) or as an instance.
    random_state : int, Generator or None
        Seed of randomised defenses.
    **params
        The defense's parameters: ``k`` (top-k), ``decimals`` (rounding), ``scale`` and
        ``preserve_argmax`` (noise), ``beta`` and ``gamma`` (reverse-sigmoid).

    Returns
    -------
    HardenedTarget

    Raises
    ------
    InvalidParameterError
        For an unknown defense or a bad parameter.
    CapabilityError
        For a score-based defense on a target without scores.
    """
    if isinstance(defense, OutputDefense):
        if params:
            raise InvalidParameterError(
                f"harden_outputs: parameters ({', '.join(sorted(params))}) go with a defense "
                "name, not with an OutputDefense instance"
            )
        d = defense
    else:
        cls = DEFENSES.get(defense) if isinstance(defense, str) else None
        if cls is None:
            raise InvalidParameterError(
                f"harden_outputs: defense must be one of {', '.join(map(repr, DEFENSES))}, "
                f"got {defense!r}"
            )
        try:
            d = cls(**params)
        except TypeError as exc:
            raise InvalidParameterError(f"harden_outputs: {defense!r}: {exc}") from None
    d.validate()
    target.require(Capability.LABELS, by="harden_outputs")
    if not d.removes_scores:
        target.require(Capability.SCORES, by=f"harden_outputs({d.name!r})")
    return HardenedTarget(target, d, random_state=random_state)


# ---------------------------------------------------------------------------- costs
@dataclass(frozen=True)
class HonestCost:
    """What a defense costs honest users, on labelled held-out rows.

    ``auc_*`` is the ROC AUC of the scores users get (binary: the positive class's
    probability; multi-class: macro one-vs-rest); a labels-only answer is a 0/1 score.
    """

    accuracy_before: float
    accuracy_after: float
    auc_before: float
    auc_after: float
    label_agreement: float

    @property
    def auc_loss(self) -> float:
        """AUC points lost (``auc_before - auc_after``)."""
        return self.auc_before - self.auc_after

    @property
    def accuracy_loss(self) -> float:
        """Accuracy lost."""
        return self.accuracy_before - self.accuracy_after

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {**self.__dict__, "auc_loss": self.auc_loss, "accuracy_loss": self.accuracy_loss}


def honest_cost(
    original: Target, hardened: Target, X: npt.ArrayLike | Dataset, y: npt.ArrayLike | None = None
) -> HonestCost:
    """Accuracy and AUC of ``original`` and ``hardened`` on labelled rows.

    Parameters
    ----------
    original, hardened : Target
        The model before and after hardening.
    X : array-like or Dataset
        Held-out rows (a labelled Dataset, or rows with ``y``).
    y : array-like, optional
        True labels when ``X`` is an array.
    """
    if isinstance(X, Dataset):
        xs, ys = X.X, X.labels
    else:
        xs = np.asarray(X, dtype=np.float64)
        if y is None:
            raise DataError("honest_cost: y (the true labels) is required with an array X")
        ys = np.asarray(y).reshape(-1)
    yi = original.encode_labels(ys)
    p0 = _scores(original, xs)
    p1 = _scores(hardened, xs)
    l0, l1 = np.argmax(p0, axis=1), np.argmax(p1, axis=1)
    return HonestCost(
        accuracy_before=float(np.mean(l0 == yi)),
        accuracy_after=float(np.mean(l1 == yi)),
        auc_before=_auc(yi, p0),
        auc_after=_auc(yi, p1),
        label_agreement=float(np.mean(l0 == l1)),
    )


@dataclass(frozen=True)
class AttackerCost:
    """Queries an extraction needs to reach a fidelity level, with and without a defense.

    ``queries_*`` is ``None`` when the level was not reached within the largest budget;
    then :attr:`multiplier` is a lower bound (``max budget / undefended queries``) and
    :attr:`reached` is False.
    """

    fidelity: float
    balanced: bool
    queries_undefended: int | None
    queries_defended: int | None
    max_budget: int
    curve_undefended: list[dict[str, Any]]
    curve_defended: list[dict[str, Any]]

    @property
    def reached(self) -> bool:
        """Whether the defended attack reached the level within the budget."""
        return self.queries_defended is not None

    @property
    def multiplier(self) -> float:
        """Defended / undefended queries (a lower bound when not reached)."""
        if self.queries_undefended is None:
            return float("nan")
        defended = self.queries_defended if self.queries_defended is not None else self.max_budget
        return defended / self.queries_undefended

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {**self.__dict__, "multiplier": self.multiplier, "reached": self.reached}


def attacker_cost(
    original: Target,
    hardened: Target,
    *,
    pool: Any,
    test: Any,
    fidelity: float | None = None,
    budgets: Sequence[int] = (100, 200, 400, 800, 1600, 3200),
    balanced: bool = False,
    strategy: Any = "knockoff",
    surrogate: Any = None,
    random_state: RandomState = None,
) -> AttackerCost:
    """Run the same extraction against ``original`` and ``hardened`` and compare.

    Parameters
    ----------
    original, hardened : Target
        The model before and after hardening.
    pool, test : Dataset or arrays
        The attacker's rows and the held-out rows (see :func:`~mlwarden.theft.extract`).
    fidelity : float, optional
        The level to reach; default: what the undefended attack reaches at the
        second-largest budget (so that the defended run has room to need more).
    budgets : sequence of int
        Checkpoints; the largest is the budget.
    balanced : bool, default=False
        Compare balanced fidelity instead of plain fidelity.
    strategy, surrogate
        Passed to :func:`~mlwarden.theft.extract`.
    random_state : int, Generator or None
        Seed; both runs use the same.
    """
    from mlwarden.theft.extraction import extract

    if not budgets:
        raise InvalidParameterError("attacker_cost: budgets must not be empty")
    budget = max(budgets)
    seed = int(as_generator(random_state).integers(0, 2**31 - 1))
    runs = []
    for t in (original, hardened):
        runs.append(
            extract(
                t, budget=budget, budgets=list(budgets), strategy=strategy,
                surrogate=surrogate, pool=pool, test=test, random_state=seed,
            )
        )  # fmt: skip
    plain, defended = runs
    if fidelity is None:
        points = plain.curve[-2] if len(plain.curve) > 1 else plain.curve[-1]
        fidelity = points.balanced_fidelity if balanced else points.fidelity
    check_number("attacker_cost", "fidelity", fidelity, low=0, high=1)
    return AttackerCost(
        fidelity=float(fidelity),
        balanced=balanced,
        queries_undefended=plain.queries_to(fidelity, balanced=balanced),
        queries_defended=defended.queries_to(fidelity, balanced=balanced),
        max_budget=budget,
        curve_undefended=[p.to_dict() for p in plain.curve],
        curve_defended=[p.to_dict() for p in defended.curve],
    )


# ------------------------------------------------------------------------- helpers
def _normalise(p: FloatArray) -> FloatArray:
    s = p.sum(axis=1, keepdims=True)
    return np.asarray(np.where(s > 0, p / np.where(s > 0, s, 1.0), p), dtype=np.float64)


def _keep_argmax(orig: FloatArray, out: FloatArray) -> FloatArray:
    """Swap entries so that each row's argmax is the original one (ties broken to it)."""
    want = np.argmax(orig, axis=1)
    got = np.argmax(out, axis=1)
    rows = np.arange(len(out))
    res = out.copy()
    top = res[rows, got]
    res[rows, got] = res[rows, want]
    res[rows, want] = top
    # Ties (rounding 0.5 / 0.5): nudge nothing, argmax takes the first; make the wanted
    # class the first maximum by moving a tiny mass only where needed.
    tie = np.argmax(res, axis=1) != want
    if tie.any():
        res[rows[tie], want[tie]] += 1e-9
    return res


def _scores(t: Target, x: FloatArray) -> FloatArray:
    if Capability.SCORES in t.capabilities:
        return t.predict_proba(x)
    out = np.zeros((len(x), t.n_classes))
    out[np.arange(len(x)), t.predict(x)] = 1.0
    return out


def _auc(y: IntArray, p: FloatArray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    if p.shape[1] == 2:
        return float(roc_auc_score(y, p[:, 1]))
    q = _normalise(p)
    return float(roc_auc_score(y, q, multi_class="ovr", labels=np.arange(p.shape[1])))
