"""The evasion threat model: which rows an attacker may submit, given a budget ``eps``.

``eps`` is an L∞ budget in units of each feature's :attr:`~mlwarden.data.Feature.scale`
(a standard deviation for tabular data, 1 for pixels in ``[0, 1]``): with ``eps=0.5``
a fraudster may move each continuous or integer feature they control by up to half a
standard deviation. Features they do not control never change. Binary and
categorical features they control are discrete choices (the channel, the merchant):
with ``categorical="free"`` (default) any value may be picked, with ``"fixed"`` they
stay as they were. Every candidate is mapped back onto this set by
:meth:`PerturbationSet.project`, so every adversarial example an attack returns is a
row the attacker could really submit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mlwarden.data.schema import FeatureKind, FeatureSchema
from mlwarden.exceptions import InvalidParameterError
from mlwarden.models.base import Target

__all__ = ["PerturbationSet", "default_schema"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

CATEGORICAL_POLICIES = ("free", "fixed")


def default_schema(target: Target) -> FeatureSchema:
    """A schema for targets used without one: continuous, mutable, declared bounds."""
    from mlwarden.data.schema import Feature

    spec = target.input_spec
    lower = spec.lower if spec.lower is not None else np.full(spec.n_features, -np.inf)
    upper = spec.upper if spec.upper is not None else np.full(spec.n_features, np.inf)
    names = spec.feature_names or tuple(f"x{i}" for i in range(spec.n_features))
    return FeatureSchema(
        tuple(
            Feature(name=n, lower=float(lo), upper=float(hi))
            for n, lo, hi in zip(
                names,
                np.broadcast_to(lower, spec.n_features),
                np.broadcast_to(upper, spec.n_features),
                strict=True,
            )
        )
    )


@dataclass(frozen=True)
class PerturbationSet:
    """The rows an attacker may submit in place of ``x0``.

    Attributes
    ----------
    x0 : ndarray of shape (n, d)
        Original rows.
    lower, upper : ndarray of shape (n, d)
        Per-row box of the relaxed (continuous) search space.
    step_unit : ndarray of shape (d,)
        One "unit" of movement per feature: ``scale`` for continuous and integer
        features, 1 for relaxed binary/categorical ones, 0 for immutable ones.
    schema : FeatureSchema
        The schema whose discrete structure :meth:`project` restores.
    """

    x0: FloatArray
    lower: FloatArray
    upper: FloatArray
    step_unit: FloatArray
    schema: FeatureSchema

    @classmethod
    def build(
        cls,
        x0: npt.ArrayLike,
        eps: float,
        schema: FeatureSchema,
        *,
        categorical: str = "free",
    ) -> PerturbationSet:
        """Build the perturbation set for budget ``eps`` around rows ``x0``."""
        if not (np.isfinite(eps) and eps >= 0):
            raise InvalidParameterError(f"eps must be a finite number >= 0, got {eps}")
        if categorical not in CATEGORICAL_POLICIES:
            raise InvalidParameterError(
                f"categorical must be one of {CATEGORICAL_POLICIES}, got {categorical!r}"
            )
        x = np.asarray(x0, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(schema):
            raise InvalidParameterError(
                f"rows have shape {x.shape}, schema has {len(schema)} features"
            )
        mutable = schema.mutable
        graded = mutable & schema.mask(FeatureKind.CONTINUOUS, FeatureKind.INTEGER)
        discrete = mutable & schema.mask(FeatureKind.BINARY, FeatureKind.CATEGORICAL)
        scale = schema.scale
        lower = np.broadcast_to(schema.lower, x.shape).copy()
        upper = np.broadcast_to(schema.upper, x.shape).copy()
        lower[:, graded] = np.maximum(lower[:, graded], x[:, graded] - eps * scale[graded])
        upper[:, graded] = np.minimum(upper[:, graded], x[:, graded] + eps * scale[graded])
        step_unit = np.zeros(x.shape[1])
        step_unit[graded] = scale[graded]
        if categorical == "free" and eps > 0:
            lower[:, discrete] = 0.0
            upper[:, discrete] = 1.0
            step_unit[discrete] = 1.0
        else:
            lower[:, discrete] = x[:, discrete]
            upper[:, discrete] = x[:, discrete]
        fixed = ~(graded | discrete)
        lower[:, fixed] = x[:, fixed]
        upper[:, fixed] = x[:, fixed]
        # Rows already outside the schema's bounds keep their original values feasible.
        lower = np.minimum(lower, x)
        upper = np.maximum(upper, x)
        return cls(x0=x, lower=lower, upper=upper, step_unit=step_unit, schema=schema)

    def rows(self, index: npt.ArrayLike) -> PerturbationSet:
        """The perturbation set restricted to some rows."""
        idx = np.asarray(index)
        return PerturbationSet(
            x0=self.x0[idx],
            lower=self.lower[idx],
            upper=self.upper[idx],
            step_unit=self.step_unit,
            schema=self.schema,
        )

    @property
    def movable(self) -> BoolArray:
        """Features the attacker can move at all."""
        return np.asarray(self.step_unit > 0, dtype=bool)

    def clip(self, x: FloatArray) -> FloatArray:
        """Clip relaxed rows to the box (no discretisation)."""
        return np.clip(x, self.lower, self.upper)

    def project(self, x: FloatArray) -> FloatArray:
        """Map relaxed rows to feasible rows: box, integers, binaries, one-hot groups."""
        movable = self.movable
        discrete = self.schema.mask(
            FeatureKind.INTEGER, FeatureKind.BINARY, FeatureKind.CATEGORICAL
        )
        if not np.any(movable & discrete):
            # Every movable feature is continuous: the box already holds the bounds and the
            # immutable features (their box is a single point), so clipping is the projection.
            return self.clip(x)
        xs = self.schema.project(self.clip(x), self.x0)
        ints = self.schema.mask(FeatureKind.INTEGER)
        if ints.any():
            xs[:, ints] = np.clip(
                xs[:, ints],
                np.ceil(self.lower[:, ints] - 1e-9),
                np.floor(self.upper[:, ints] + 1e-9),
            )
        return xs

    def contains(self, x: FloatArray, *, atol: float = 1e-7) -> BoolArray:
        """Mask of rows that are feasible: in the box and valid for the schema."""
        x = np.asarray(x, dtype=np.float64)
        inside = np.all((x >= self.lower - atol) & (x <= self.upper + atol), axis=1)
        return np.asarray(inside & ~self.schema.violations(x, self.x0, atol=atol), dtype=bool)
