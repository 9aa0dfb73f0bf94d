"""Tiny models and data shared by the unit tests (numpy only: no torch, no sklearn)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mlwarden.data import Dataset, Feature, FeatureKind, FeatureSchema
from mlwarden.models.base import Capability, InputSpec, Target, loss_from_logits


@dataclass
class SoftmaxTarget(Target):
    """Multinomial logistic regression with analytic input gradients."""

    W: npt.NDArray[np.float64] = field(default_factory=lambda: np.eye(2))
    b: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))
    caps: Capability = (
        Capability.LABELS | Capability.SCORES | Capability.LOGITS | Capability.GRADIENTS
    )

    @property
    def capabilities(self) -> Capability:
        return self.caps

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(n_features=self.W.shape[0], classes=np.arange(self.W.shape[1]))

    def _logits(self, x):
        return x @ self.W + self.b

    def _predict_proba(self, x):
        z = self._logits(x)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def _loss_gradient(self, x, y, loss, target_class=None):
        # Every loss is a function of the logits z = x W + b: dL/dx = dL/dz W^T.
        value, dz = loss_from_logits(self._logits(x), y, loss, target_class)
        return value, dz @ self.W.T


def linear_problem(n: int = 400, seed: int = 0) -> tuple[SoftmaxTarget, Dataset]:
    """A 2-class problem on 2 continuous + 1 integer + 1 binary + 1 immutable feature."""
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.normal(size=n),
            rng.normal(size=n),
            rng.integers(0, 10, size=n).astype(float),
            rng.integers(0, 2, size=n).astype(float),
            rng.normal(size=n),
        ]
    )
    w = np.array([2.0, -1.0, 0.3, 1.0, 1.5])
    logit = X @ w - 1.35
    y = (logit > 0).astype(int)
    W = np.column_stack([-w / 2, w / 2])
    b = np.array([0.675, -0.675])
    schema = FeatureSchema(
        (
            Feature("a", lower=-5, upper=5, scale=1.0),
            Feature("b", lower=-5, upper=5, scale=1.0),
            Feature("count", FeatureKind.INTEGER, lower=0, upper=9, scale=3.0),
            Feature("flag", FeatureKind.BINARY, lower=0, upper=1),
            Feature("history", lower=-5, upper=5, mutable=False),
        )
    )
    X = np.clip(X, -5, 5)
    data = Dataset(X=X, y=y, schema=schema, name="linear", positive_label=1)
    return SoftmaxTarget(W=W, b=b, name="softmax"), data
