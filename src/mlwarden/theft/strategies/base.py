"""What every extraction strategy shares: the attacker's state and the proposal interface.

A strategy decides *which rows* the attacker sends to the victim; :func:`~mlwarden.theft.
extract` sends them (counting every query against the budget), trains the surrogate and
measures it. Strategies only propose rows that obey the :class:`~mlwarden.data.FeatureSchema`
(bounds, integer, binary and one-hot features): every proposal goes through
:meth:`FeatureSchema.project`, the same projection the evasion threat model uses, with
every feature treated as attacker-controlled (the attacker builds whole rows).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from mlwarden.data.schema import FeatureKind, FeatureSchema
from mlwarden.exceptions import DataError

__all__ = ["ExtractionState", "ExtractionStrategy", "free_schema", "project_rows"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ProbaFn = Callable[[FloatArray], FloatArray]


def free_schema(schema: FeatureSchema) -> FeatureSchema:
    """``schema`` with every feature attacker-controlled: an extraction attacker writes
    whole rows, so only bounds and feature kinds constrain them."""
    return FeatureSchema(tuple(replace(f, mutable=True) for f in schema.features))


def project_rows(schema: FeatureSchema, x: FloatArray) -> FloatArray:
    """Map candidate rows onto valid rows of ``schema`` (all features free)."""
    xs = np.asarray(x, dtype=np.float64)
    # NaN falls back to the lower bound (or 0 when unbounded) before projecting.
    fallback = np.where(np.isfinite(schema.lower), schema.lower, 0.0)
    xs = np.where(np.isnan(xs), fallback, xs)
    return schema.project(xs, np.broadcast_to(fallback, xs.shape))


@dataclass
class ExtractionState:
    """The attacker's knowledge, updated by :func:`~mlwarden.theft.extraction` as it goes.

    Attributes
    ----------
    schema : FeatureSchema
        Valid rows (every feature free, see :func:`free_schema`).
    n_classes : int
        Number of victim classes.
    rng : numpy.random.Generator
        The run's generator.
    pool : ndarray or None
        Unlabelled rows the attacker holds (natural data or seed points).
    X, y, proba : ndarrays
        Rows queried so far, the victim's answers (class indices) and, when the victim
        returns scores, its probabilities.
    surrogate_proba : callable or None
        Probabilities of the current surrogate (``(n, d) -> (n, n_classes)``), refitted
        after each round of an adaptive strategy; ``None`` before the first fit.
    used : ndarray of bool or None
        Which pool rows were already sent.
    """

    schema: FeatureSchema
    n_classes: int
    rng: np.random.Generator
    pool: FloatArray | None = None
    X: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    y: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    proba: FloatArray | None = None
    surrogate_proba: ProbaFn | None = None
    used: npt.NDArray[np.bool_] | None = None

    @property
    def n_features(self) -> int:
        """Number of features."""
        return len(self.schema)

    def unused_pool(self) -> IntArray:
        """Indices of pool rows not queried yet (all of them when there is no pool)."""
        if self.pool is None:
            return np.zeros(0, dtype=np.int64)
        if self.used is None:
            self.used = np.zeros(len(self.pool), dtype=bool)
        return np.flatnonzero(~self.used).astype(np.int64)

    def take_pool(self, index: IntArray) -> FloatArray:
        """Pool rows ``index``, marked as used."""
        assert self.pool is not None
        self.unused_pool()
        assert self.used is not None
        self.used[index] = True
        return np.asarray(self.pool[index], dtype=np.float64)

    def uniform(self, n: int) -> FloatArray:
        """``n`` rows drawn uniformly within the schema's bounds, projected onto it.

        Unbounded features are drawn within the pool's range when the attacker holds a
        pool; otherwise they cannot be sampled (:class:`DataError`).
        """
        lo = np.array(self.schema.lower, dtype=np.float64)
        hi = np.array(self.schema.upper, dtype=np.float64)
        open_ = ~(np.isfinite(lo) & np.isfinite(hi))
        if open_.any():
            if self.pool is None or len(self.pool) == 0:
                names = [self.schema.names[i] for i in np.flatnonzero(open_)[:3]]
                raise DataError(
                    "uniform sampling needs finite bounds for every feature (unbounded: "
                    f"{', '.join(names)}); give a schema with bounds or a pool of rows"
                )
            lo[open_] = self.pool[:, open_].min(axis=0)
            hi[open_] = self.pool[:, open_].max(axis=0)
        # Integer features: draw within [lo - 0.5, hi + 0.5] so that the end values are
        # as likely as the others once rounded.
        ints = self.schema.mask(FeatureKind.INTEGER)
        lo[ints] -= 0.5
        hi[ints] += 0.5
        x = self.rng.uniform(lo, hi, size=(n, len(lo)))
        return project_rows(self.schema, x)

    def perturb(self, x: FloatArray, scale: float) -> FloatArray:
        """Rows of ``x`` with Gaussian noise of ``scale`` feature-scale units, projected."""
        noise = self.rng.normal(0.0, scale, size=x.shape) * self.schema.scale
        return project_rows(self.schema, x + noise)


class ExtractionStrategy(ABC):
    """Base class of the query strategies: keyword-only ``__init__``, work in :meth:`propose`.

    Class attributes
    ----------------
    name : str
        Registered name (``"uniform"``, ``"jacobian"``, ``"knockoff"``, ``"active"``).
    needs_pool : bool
        Whether the strategy cannot work without rows from the attacker (``pool``).
    adaptive : bool
        Whether proposals depend on the current surrogate (then :func:`extract` refits the
        surrogate after every :meth:`round_size` queries).
    """

    name: ClassVar[str] = ""
    needs_pool: ClassVar[bool] = False
    adaptive: ClassVar[bool] = False

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters given to ``__init__``."""
        sig = inspect.signature(type(self).__init__)
        return {
            p.name: getattr(self, p.name)
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    def validate(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~mlwarden.exceptions.InvalidParameterError` for bad parameters."""

    def round_size(self, budget: int) -> int:
        """Queries between two surrogate refits (adaptive strategies)."""
        return budget

    def initial_size(self, budget: int) -> int:
        """Queries of the first, non-adaptive round (adaptive strategies)."""
        return self.round_size(budget)

    @abstractmethod
    def propose(self, n: int, state: ExtractionState) -> FloatArray:
        """Return exactly ``n`` valid rows to query next."""
