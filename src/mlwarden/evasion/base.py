"""Shared pieces of the evasion attacks: the result type and the base class."""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_choice, check_number
from mlwarden.data.schema import FeatureKind, FeatureSchema
from mlwarden.evasion.threat_model import PerturbationSet, default_schema
from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.models.base import Capability, Target

__all__ = ["AttackResult", "EvasionAttack"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AttackResult:
    """What an evasion attack returns.

    Attributes
    ----------
    x_adv : ndarray of shape (n, d)
        Adversarial rows; each is feasible under the threat model. For rows the
        attack could not flip it is the attack's last (or best) iterate.
    success : ndarray of shape (n,)
        True where the target misclassifies ``x_adv`` (re-checked on the real model).
    queries : ndarray of shape (n,)
        Model queries spent per row (predictions and gradients).
    infeasible : int
        Candidates that broke the threat model and were therefore not counted.
    seconds : float
        Wall time.
    """

    x_adv: FloatArray
    success: npt.NDArray[np.bool_]
    queries: npt.NDArray[np.int64]
    infeasible: int
    seconds: float

    @property
    def success_rate(self) -> float:
        """Fraction of rows misclassified after the attack."""
        return float(self.success.mean()) if self.success.size else 0.0


class EvasionAttack(ABC):
    """Base class: keyword-only hyper-parameters in ``__init__``, work in :meth:`generate`."""

    requires: ClassVar[Capability] = Capability.LABELS
    name: ClassVar[str] = ""
    white_box: ClassVar[bool] = False
    """True for attacks that read the model itself (gradients, trees), not only its outputs."""

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters given to ``__init__``."""
        sig = inspect.signature(type(self).__init__)
        return {
            p.name: getattr(self, p.name)
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    def _validate_params(self) -> None:
        """Raise :class:`InvalidParameterError` for unusable hyper-parameters."""
        check_number(self.name, "eps", getattr(self, "eps", None), low=0, low_open=True)
        check_choice(
            self.name, "categorical", getattr(self, "categorical", "free"), ("free", "fixed")
        )

    def generate(
        self,
        target: Target,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        schema: FeatureSchema | None = None,
        random_state: RandomState = None,
    ) -> AttackResult:
        """Craft adversarial rows for ``x`` with true class indices ``y``.

        Parameters
        ----------
        target : Target
            The model under attack.
        x : array-like of shape (n, d)
            Rows to perturb.
        y : array-like of shape (n,)
            True class indices (use ``target.encode_labels`` on raw labels).
        schema : FeatureSchema, optional
            The threat model's feature constraints; without one every feature is a
            mutable continuous feature within the target's declared input range.
        random_state : int, Generator or None
            Seed.
        """
        self._validate_params()
        target.require(self.requires, by=self.name)
        xs = np.asarray(x, dtype=np.float64)
        ys = np.asarray(y, dtype=np.int64).reshape(-1)
        if xs.ndim != 2 or len(xs) != len(ys):
            raise DataError(f"{self.name}: x must be (n, d) with one label per row")
        if schema is None:
            schema = default_schema(target)
        rng = as_generator(random_state)
        eps = float(getattr(self, "eps", 0.0))
        _check_eps_in_range(self.name, eps, schema)
        pset = PerturbationSet.build(
            xs, eps, schema, categorical=getattr(self, "categorical", "free")
        )
        start = time.perf_counter()
        x_adv, queries = self._run(target, pset, ys, rng)
        # Never trust the search loop: re-check feasibility and success on the real model.
        feasible = self._feasible(pset, x_adv)
        infeasible = int((~feasible).sum())
        x_adv = np.where(feasible[:, None], x_adv, xs)
        # (The re-check is the auditor's query, not the attacker's: not counted in `queries`.)
        success = target.predict(x_adv) != ys if len(xs) else np.zeros(0, dtype=bool)
        return AttackResult(
            x_adv=x_adv,
            success=np.asarray(success, dtype=bool),
            queries=queries.astype(np.int64),
            infeasible=infeasible,
            seconds=time.perf_counter() - start,
        )

    def _feasible(self, pset: PerturbationSet, x_adv: FloatArray) -> npt.NDArray[np.bool_]:
        """Rows of ``x_adv`` inside the threat model; attacks with a tighter budget (an L2
        ball inside the L∞ box) narrow it."""
        return pset.contains(x_adv)

    @abstractmethod
    def _run(
        self,
        target: Target,
        pset: PerturbationSet,
        y: npt.NDArray[np.int64],
        rng: np.random.Generator,
    ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """Return feasible adversarial rows and queries spent per row."""


def _check_eps_in_range(owner: str, eps: float, schema: FeatureSchema) -> None:
    """Refuse a budget that covers the whole valid range of every bounded feature.

    Such a budget is almost always a unit mistake (``eps=8`` meant as 8/255 on pixels in
    [0, 1]); it lets the attacker set every feature to anything and measures nothing.
    """
    graded = schema.mutable & schema.mask(FeatureKind.CONTINUOUS, FeatureKind.INTEGER)
    width = schema.upper - schema.lower
    bounded = graded & np.isfinite(width) & (width > 0)
    if bounded.any() and np.all(eps * schema.scale[bounded] >= width[bounded]):
        raise InvalidParameterError(
            f"{owner}: eps={eps:g} (in per-feature scale units) covers the whole input range "
            f"of every bounded feature (e.g. {schema.names[int(np.flatnonzero(bounded)[0])]!r}: "
            f"[{schema.lower[bounded][0]:g}, {schema.upper[bounded][0]:g}], scale "
            f"{schema.scale[bounded][0]:g}); use a budget smaller than the range"
        )
