"""Randomized smoothing: a certified L2 radius per row, for any classifier.

Cohen, Rosenfeld and Kolter, "Certified Adversarial Robustness via Randomized
Smoothing", ICML 2019.

The smoothed classifier ``g(x) = argmax_c P(f(x + δ) = c)``, ``δ ~ N(0, σ² I)``,
predicts class ``c_A`` with probability ``p_A`` under noise; if ``p_A`` is at least
``p̲_A > 1/2``, ``g`` is constant on the L2 ball of radius ``σ Φ⁻¹(p̲_A)`` around
``x`` (Theorem 1, with ``p̄_B = 1 - p̲_A``). :func:`certify` is the paper's CERTIFY:
``n0`` noisy samples pick ``c_A``, ``n`` fresh ones give the one-sided
Clopper–Pearson lower bound ``p̲_A`` at level ``1 - alpha``; it abstains when
``p̲_A <= 1/2``. :func:`predict_smoothed` is PREDICT: it returns the top class when
a two-sided binomial test of the top two counts rejects a tie at level ``alpha``,
and abstains otherwise. Both hold with probability at least ``1 - alpha`` per row.

Threat model and units: the base classifier ``f`` is any target that returns labels
(no gradients or scores needed). Noise and radius are expressed in per-feature scale
units, like the evasion budgets: feature ``j`` gets noise ``σ · scale_j`` and the
certificate covers every perturbation ``δ`` with ``Σ_j (δ_j / scale_j)² < R²``. Only
features the attacker controls are noised (the schema's ``mutable`` flags): the
others cannot change, and smoothing over a subset of coordinates certifies
perturbations of that subset. Discrete features are treated as continuous (a flipped
binary feature is at distance 1). An L∞ budget ``eps`` on ``k`` mutable features
lies inside the L2 ball of radius ``eps · √k``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import stats

from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_int, check_number
from mlwarden.data.schema import FeatureSchema
from mlwarden.evasion.threat_model import default_schema
from mlwarden.exceptions import DataError, IncompatibleModelError, InvalidParameterError
from mlwarden.models.base import Capability, InputSpec, Target

__all__ = [
    "ABSTAIN",
    "Certificate",
    "SmoothedTarget",
    "certify",
    "clopper_pearson_lower",
    "predict_smoothed",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ABSTAIN = -1
"""The class index returned where the smoothed classifier abstains."""


@dataclass(frozen=True)
class Certificate:
    """What :func:`certify` returns, one entry per row.

    Attributes
    ----------
    prediction : ndarray of shape (n,)
        Class index (into the target's ``classes``) of the smoothed classifier, or
        :data:`ABSTAIN` (-1).
    radius : ndarray of shape (n,)
        Certified L2 radius in per-feature scale units; 0 where it abstains.
    p_lower : ndarray of shape (n,)
        One-sided ``1 - alpha`` Clopper–Pearson lower bound on the probability of the
        predicted class under noise.
    counts : ndarray of shape (n, n_classes)
        Votes of the ``n`` estimation samples per class.
    sigma : float
        Noise level in per-feature scale units.
    alpha : float
        Failure probability per row.
    """

    prediction: IntArray
    radius: FloatArray
    p_lower: FloatArray
    counts: IntArray
    sigma: float
    alpha: float

    @property
    def abstained(self) -> npt.NDArray[np.bool_]:
        """Rows where the smoothed classifier abstains."""
        return np.asarray(self.prediction == ABSTAIN, dtype=bool)

    def certified_accuracy(self, y: npt.ArrayLike, radius: float = 0.0) -> float:
        """Fraction of rows predicted as ``y`` (class indices) with a radius of at least ``radius``.

        At ``radius=0`` it is the accuracy of the smoothed classifier, counting
        abstentions as errors.
        """
        ys = np.asarray(y, dtype=np.int64).reshape(-1)
        if len(ys) != len(self.prediction):
            raise DataError(f"{len(self.prediction)} certified rows but {len(ys)} labels")
        if not len(ys):
            return float("nan")
        ok = (self.prediction == ys) & (self.radius >= radius) & ~self.abstained
        return float(ok.mean())


def clopper_pearson_lower(
    k: npt.ArrayLike, n: npt.ArrayLike, alpha: float
) -> npt.NDArray[np.float64]:
    """One-sided ``1 - alpha`` Clopper–Pearson lower confidence bound of a binomial proportion.

    The bound ``p`` solves ``P(Binomial(n, p) >= k) = alpha``, i.e. it is the
    ``alpha`` quantile of ``Beta(k, n - k + 1)``; it is 0 when ``k = 0``.

    Parameters
    ----------
    k : array-like of int
        Successes.
    n : array-like of int
        Trials (``n >= k``).
    alpha : float
        Probability that the true proportion lies below the bound.
    """
    ks = np.asarray(k, dtype=np.float64)
    ns = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        low = np.asarray(stats.beta.ppf(alpha, ks, ns - ks + 1), dtype=np.float64)
    return np.where(ks > 0, low, 0.0)


def certify(
    model: Any,
    x: npt.ArrayLike,
    *,
    sigma: float,
    n0: int = 100,
    n: int = 10_000,
    alpha: float = 0.001,
    schema: FeatureSchema | None = None,
    batch_size: int = 10_000,
    random_state: RandomState = None,
) -> Certificate:
    """Certify rows with randomized smoothing (Cohen et al. 2019, CERTIFY).

    Parameters
    ----------
    model : Target or object
        The base classifier: a target that returns labels, or anything
        :func:`mlwarden.target` wraps (a torch module, a scikit-learn classifier...).
    x : array-like of shape (m, d)
        Rows to certify.
    sigma : float
        Noise standard deviation in per-feature scale units.
    n0 : int
        Samples used to pick the top class.
    n : int
        Samples used to bound its probability (Cohen et al. use 100 000; the radius
        grows with ``n`` up to ``σ Φ⁻¹(alpha^(1/n))``).
    alpha : float
        Failure probability per row, in ``(0, 1)``.
    schema : FeatureSchema, optional
        Which features are noised (the mutable ones) and their scales; without one,
        every feature is noised with scale 1.
    batch_size : int
        Noisy rows per call to the base classifier.
    random_state : int, Generator or None
        Seed for the noise.

    Returns
    -------
    Certificate
        Prediction (or :data:`ABSTAIN`) and certified L2 radius per row.
    """
    _check_common("certify", sigma=sigma, n_name="n", n=n, batch_size=batch_size, alpha=alpha)
    check_int("certify", "n0", n0)
    target = _as_target(model)
    xs = target._check_x(x)
    noise_for = _fresh(as_generator(random_state), _noise_scale(target, schema, sigma))
    select = _votes(target, xs, n0, noise_for, batch_size)
    top = np.asarray(np.argmax(select, axis=1), dtype=np.int64)
    counts = _votes(target, xs, n, noise_for, batch_size)
    n_top = counts[np.arange(len(xs)), top]
    p_lower = clopper_pearson_lower(n_top, n, alpha)
    certified = p_lower > 0.5
    radius = np.where(certified, sigma * stats.norm.ppf(np.where(certified, p_lower, 0.75)), 0.0)
    return Certificate(
        prediction=np.where(certified, top, ABSTAIN).astype(np.int64),
        radius=np.asarray(radius, dtype=np.float64),
        p_lower=p_lower,
        counts=counts,
        sigma=float(sigma),
        alpha=float(alpha),
    )


def predict_smoothed(
    model: Any,
    x: npt.ArrayLike,
    *,
    sigma: float,
    n: int = 1000,
    alpha: float = 0.001,
    schema: FeatureSchema | None = None,
    batch_size: int = 10_000,
    random_state: RandomState = None,
) -> IntArray:
    """Predict with the smoothed classifier, abstaining when unsure (Cohen et al., PREDICT).

    The top two classes' counts among ``n`` noisy samples, ``n_A`` and ``n_B``, go
    through a two-sided binomial test of ``p = 1/2``; the top class is returned when
    the test rejects at level ``alpha``, :data:`ABSTAIN` otherwise. The returned class
    differs from the smoothed classifier's with probability at most ``alpha``.

    Parameters
    ----------
    model, x, sigma, schema, batch_size, random_state
        As :func:`certify`.
    n : int
        Noisy samples per row.
    alpha : float
        Level of the test.

    Returns
    -------
    ndarray of shape (m,)
        Class indices, or :data:`ABSTAIN` (-1).
    """
    _check_common(
        "predict_smoothed", sigma=sigma, n_name="n", n=n, batch_size=batch_size, alpha=alpha
    )
    target = _as_target(model)
    xs = target._check_x(x)
    noise_for = _fresh(as_generator(random_state), _noise_scale(target, schema, sigma))
    counts = _votes(target, xs, n, noise_for, batch_size)
    order = np.argsort(-counts, axis=1, kind="stable")
    rows = np.arange(len(xs))
    n_a, n_b = counts[rows, order[:, 0]], counts[rows, order[:, 1]]
    return np.where(binomial_test_half(n_a, n_b) <= alpha, order[:, 0], ABSTAIN).astype(np.int64)


def binomial_test_half(n_a: npt.ArrayLike, n_b: npt.ArrayLike) -> FloatArray:
    """Two-sided p-value of ``n_a`` successes in ``n_a + n_b`` trials against ``p = 1/2``.

    Vectorised equivalent of ``scipy.stats.binomtest(n_a, n_a + n_b, 0.5).pvalue``:
    for the symmetric null it is ``min(1, 2 · P(Binomial(n, 1/2) <= min(n_a, n_b)))``.
    """
    a = np.asarray(n_a, dtype=np.int64)
    b = np.asarray(n_b, dtype=np.int64)
    p = 2.0 * stats.binom.cdf(np.minimum(a, b), a + b, 0.5)
    return np.asarray(np.minimum(1.0, np.where(a + b > 0, p, 1.0)), dtype=np.float64)


class SmoothedTarget(Target):
    """The smoothed classifier of a base target, as a label-only :class:`Target`.

    It predicts by majority vote of the base classifier over ``n_samples`` noisy
    copies of each row, so that it can be audited like any model. The noise
    directions are drawn once, from ``random_state``, and reused for every row
    (common random numbers): the target is a deterministic function of its input,
    so repeated queries agree and audits are reproducible. It never abstains; use
    :func:`certify` for certified radii and :func:`predict_smoothed` for predictions
    that abstain.

    Parameters
    ----------
    base : Target or object
        The base classifier (anything :func:`mlwarden.target` wraps); it must return
        labels.
    sigma : float
        Noise standard deviation in per-feature scale units.
    n_samples : int
        Noisy copies per row (each query of this target costs ``n_samples`` queries
        of the base target).
    schema : FeatureSchema, optional
        Which features are noised and their scales (see :func:`certify`).
    batch_size : int
        Noisy rows per call to the base classifier.
    random_state : int or None
        Seed of the noise.
    name : str or None
        Name in reports; ``"<base name>-smoothed"`` by default.

    Notes
    -----
    Capabilities: ``LABELS`` only. Gradient- and score-based audit checks are
    skipped, and attacks see exactly what a client of a smoothed model sees. Its
    :attr:`source` is the base target's, so the report fingerprints the same file.
    """

    kind_name: ClassVar[str] = "smoothed"

    def __init__(
        self,
        base: Any,
        *,
        sigma: float,
        n_samples: int = 1000,
        schema: FeatureSchema | None = None,
        batch_size: int = 10_000,
        random_state: int | None = 0,
        name: str | None = None,
    ) -> None:
        _check_common(
            "SmoothedTarget", sigma=sigma, n_name="n_samples", n=n_samples, batch_size=batch_size
        )
        target = _as_target(base)
        super().__init__(name=name or f"{target.name}-smoothed", source=target.source)
        self.base = target
        self.sigma = float(sigma)
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.random_state = random_state
        scale = _noise_scale(target, schema, self.sigma)
        self._noise = as_generator(random_state).standard_normal((n_samples, len(scale))) * scale

    @property
    def capabilities(self) -> Capability:
        """``LABELS`` only."""
        return Capability.LABELS

    @property
    def input_spec(self) -> InputSpec:
        """The base target's."""
        return self.base.input_spec

    @property
    def kind(self) -> str:
        """``smoothed``."""
        return self.kind_name

    def describe(self) -> dict[str, Any]:
        """The base target's description plus the smoothing parameters."""
        out = super().describe()
        out["smoothing"] = {
            "base": self.base.name,
            "base_kind": self.base.kind,
            "sigma": self.sigma,
            "n_samples": self.n_samples,
        }
        return out

    def _predict_labels(self, x: FloatArray) -> IntArray:
        counts = _votes(self.base, x, self.n_samples, self._noise.__getitem__, self.batch_size)
        return np.asarray(np.argmax(counts, axis=1), dtype=np.int64)


# ---------------------------------------------------------------------- helpers
def _as_target(model: Any) -> Target:
    from mlwarden.models import target

    tgt = target(model)
    tgt.require(Capability.LABELS, by="randomized smoothing")
    return tgt


def _check_common(
    owner: str, *, sigma: Any, n_name: str, n: Any, batch_size: Any, alpha: Any = None
) -> None:
    check_number(owner, "sigma", sigma, low=0, low_open=True)
    check_int(owner, n_name, n)
    check_int(owner, "batch_size", batch_size)
    if alpha is not None:
        check_number(owner, "alpha", alpha, low=0, low_open=True, high=1)
        if alpha == 1:
            raise InvalidParameterError(f"{owner}: alpha must be a number in (0, 1), got 1")


def _noise_scale(target: Target, schema: FeatureSchema | None, sigma: float) -> FloatArray:
    """Noise standard deviation per feature: ``sigma * scale`` if mutable, else 0."""
    d = target.input_spec.n_features
    if schema is None:
        schema = default_schema(target)
    if len(schema) != d:
        raise IncompatibleModelError(
            f"the schema has {len(schema)} features but {target.name!r} takes {d}"
        )
    return np.asarray(np.where(schema.mutable, sigma * schema.scale, 0.0), dtype=np.float64)


def _votes(
    target: Target,
    x: FloatArray,
    n: int,
    noise_for: Callable[[IntArray], FloatArray],
    batch_size: int,
) -> IntArray:
    """Class votes per row over ``n`` noisy copies, batched across rows and samples.

    ``noise_for(samples)`` returns the noise added for the given sample indices.
    """
    k = target.n_classes
    m = len(x)
    counts = np.zeros(m * k, dtype=np.int64)
    total = m * n
    for start in range(0, total, batch_size):
        rows, samples = np.divmod(np.arange(start, min(start + batch_size, total)), n)
        pred = target.predict(x[rows] + noise_for(samples))
        counts += np.bincount(rows * k + pred, minlength=m * k)
    return counts.reshape(m, k)


def _fresh(rng: np.random.Generator, scale: FloatArray) -> Callable[[IntArray], FloatArray]:
    def noise_for(samples: IntArray) -> FloatArray:
        return rng.standard_normal((len(samples), len(scale))) * scale

    return noise_for
