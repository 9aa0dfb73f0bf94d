"""Bundled data sets: a seeded card-fraud generator and two scikit-learn classics.

Nothing here touches the network: :func:`fraud` is generated on the fly from a seed,
and :func:`breast_cancer` and :func:`digits` read the copies that ship inside
scikit-learn.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._random import as_generator
from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import Feature, FeatureKind, FeatureSchema
from mlwarden.exceptions import InvalidParameterError

__all__ = ["BUILTIN_NAMES", "breast_cancer", "digits", "fraud", "load_builtin"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# ----------------------------------------------------------------------- fraud
MERCHANTS = (
    "grocery",
    "restaurant",
    "fuel",
    "travel",
    "electronics",
    "digital_goods",
    "gambling",
)
_GROCERY, _RESTAURANT, _FUEL, _TRAVEL, _ELECTRONICS, _DIGITAL, _GAMBLING = range(7)

# How customers spend when nobody has stolen their card.
_LEGIT_MERCHANT_MIX = np.array([0.30, 0.22, 0.15, 0.05, 0.06, 0.15, 0.07])
"""Average share of a customer's transactions per merchant category."""
_AMOUNT_FACTOR = np.array([1.0, 0.7, 1.3, 5.0, 3.5, 0.35, 1.2])
"""Typical ticket size per category, relative to the customer's spend level."""
_CARD_PRESENT_RATE = np.array([0.95, 0.88, 0.97, 0.15, 0.55, 0.0, 0.35])
"""Share of card-present payments per category for an average customer."""

# Fraud comes from four schemes, each with its own merchant mix.
_FRAUD_SCHEMES = np.array([0.40, 0.25, 0.20, 0.15])
"""Card-not-present with stolen details, skimmed card, new-account bust-out, card testing."""
_FRAUD_MERCHANT_MIX = np.array(
    [
        # grocery restaurant fuel travel electronics digital gambling
        [0.06, 0.07, 0.02, 0.12, 0.30, 0.28, 0.15],  # stolen card details, online
        [0.20, 0.12, 0.18, 0.03, 0.30, 0.00, 0.17],  # skimmed / counterfeit card, in person
        [0.06, 0.06, 0.05, 0.15, 0.35, 0.16, 0.17],  # new account, bust-out
        [0.12, 0.10, 0.02, 0.00, 0.04, 0.55, 0.17],  # card testing, tiny amounts
    ]
)

_FRAUD_DESCRIPTION = (
    "Synthetic card transactions (seeded generator). Legitimate payments follow each "
    "customer's habits (spend level, hours, merchants, channel, travel); fraud comes from "
    "four schemes (stolen card details used online, skimmed cards used in person, "
    "new-account bust-out, card testing) whose signals - amount far above the customer's "
    "30-day average, night hours, risky merchants, card-not-present, distance from home, "
    "bursts of transactions, young accounts, new devices - each overlap with legitimate "
    "behaviour. The fraudster controls amount, hour, merchant and channel; the rest "
    "describes the card and its history and is immutable."
)


def _feature_table(scales: dict[str, float]) -> tuple[Feature, ...]:
    """The fraud schema, with ``scales`` measured on the generated data."""
    cont, integer, binary, cat = (
        FeatureKind.CONTINUOUS,
        FeatureKind.INTEGER,
        FeatureKind.BINARY,
        FeatureKind.CATEGORICAL,
    )
    feats = [
        Feature(
            "amount",
            cont,
            0.5,
            25_000.0,
            mutable=True,
            scale=scales["amount"],
            description="Transaction amount in EUR.",
        ),
        Feature(
            "hour",
            integer,
            0.0,
            23.0,
            mutable=True,
            scale=scales["hour"],
            description="Local hour of the transaction (0-23).",
        ),
    ]
    for m in MERCHANTS:
        feats.append(
            Feature(
                f"merchant_{m}",
                cat,
                0.0,
                1.0,
                mutable=True,
                group="merchant",
                scale=1.0,
                description=f"Merchant category is {m.replace('_', ' ')} (one-hot).",
            )
        )
    feats += [
        Feature(
            "card_present",
            binary,
            0.0,
            1.0,
            mutable=True,
            scale=1.0,
            description="1 if the card was physically present (chip/contactless), 0 if online "
            "or by phone.",
        ),
        Feature(
            "distance_from_home_km",
            cont,
            0.0,
            20_000.0,
            mutable=False,
            scale=scales["distance_from_home_km"],
            description="Distance in km between the customer's home and the terminal or IP "
            "geolocation.",
        ),
        Feature(
            "foreign",
            binary,
            0.0,
            1.0,
            mutable=False,
            scale=1.0,
            description="1 if the transaction happens outside the card's home country.",
        ),
        Feature(
            "tx_last_24h",
            integer,
            0.0,
            500.0,
            mutable=False,
            scale=scales["tx_last_24h"],
            description="Number of transactions on the card in the previous 24 hours.",
        ),
        Feature(
            "avg_amount_30d",
            cont,
            0.0,
            25_000.0,
            mutable=False,
            scale=scales["avg_amount_30d"],
            description="Average transaction amount on the card over the previous 30 days, in EUR.",
        ),
        Feature(
            "account_age_days",
            integer,
            0.0,
            36_500.0,
            mutable=False,
            scale=scales["account_age_days"],
            description="Age of the card account in days.",
        ),
        Feature(
            "new_device",
            binary,
            0.0,
            1.0,
            mutable=False,
            scale=1.0,
            description="1 if the device or terminal fingerprint was never seen on this card.",
        ),
    ]
    return tuple(feats)


FRAUD_FEATURES: tuple[str, ...] = (
    "amount",
    "hour",
    *(f"merchant_{m}" for m in MERCHANTS),
    "card_present",
    "distance_from_home_km",
    "foreign",
    "tx_last_24h",
    "avg_amount_30d",
    "account_age_days",
    "new_device",
)
"""Column order of :func:`fraud`."""

_SCALE_FLOOR = {
    "amount": 1.0,
    "hour": 1.0,
    "distance_from_home_km": 1.0,
    "tx_last_24h": 1.0,
    "avg_amount_30d": 1.0,
    "account_age_days": 1.0,
}
"""Smallest allowed scale per numeric feature (1 EUR, 1 hour, 1 km, 1 transaction, 1 day)."""


def _sample_rows(rng: np.random.Generator, probs: FloatArray) -> IntArray:
    """One categorical draw per row of ``probs`` (rows sum to one)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    idx: IntArray = np.minimum((cum <= u[:, None]).sum(axis=1), probs.shape[1] - 1).astype(np.int64)
    return idx


def _wrap_hour(h: FloatArray) -> FloatArray:
    return np.mod(np.round(h), 24.0)


def _check_fraud_params(n_samples: Any, fraud_rate: Any) -> tuple[int, float]:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer):
        raise InvalidParameterError(
            f"n_samples must be an integer >= 100, got {type(n_samples).__name__}"
        )
    if n_samples < 100:
        raise InvalidParameterError(f"n_samples must be >= 100, got {n_samples}")
    if n_samples > 10_000_000:
        raise InvalidParameterError(f"n_samples must be <= 10_000_000, got {n_samples}")
    if isinstance(fraud_rate, bool) or not isinstance(fraud_rate, int | float | np.number):
        raise InvalidParameterError(
            f"fraud_rate must be a number in (0, 0.5), got {type(fraud_rate).__name__}"
        )
    rate = float(fraud_rate)
    if not 0.0 < rate < 0.5:
        raise InvalidParameterError(f"fraud_rate must be in (0, 0.5), got {fraud_rate}")
    n = int(n_samples)
    n_fraud = round(n * rate)
    if n_fraud < 1:
        raise InvalidParameterError(
            f"fraud_rate={fraud_rate} gives no fraud among n_samples={n} "
            "(round(n_samples * fraud_rate) is 0); raise fraud_rate or n_samples"
        )
    return n, rate


def fraud(
    n_samples: int = 20_000,
    *,
    fraud_rate: float = 0.05,
    random_state: int | np.random.Generator | None = 0,
) -> Dataset:
    """Synthetic card transactions with fraud labels (mlwarden's flagship demo data).

    Customers are drawn first, each with a spend level, usual hours, favourite
    merchants, a preferred channel, travel habits, a transaction rate and an account
    age. Legitimate transactions follow their customer's habits. Fraud follows four
    schemes (stolen card details used online, skimmed cards used in person, new-account
    bust-out, card testing), so the signals a model must learn - an amount far above
    the 30-day average, night hours, electronics / digital goods / gambling,
    card-not-present, distance from home or abroad, bursts of transactions, young
    accounts, new devices - each overlap with legitimate behaviour and no single
    feature gives fraud away. A gradient-boosted tree model reaches a ROC AUC of
    about 0.97; a logistic regression on the raw features clearly less.

    Columns (in order): ``amount`` (EUR, continuous, mutable), ``hour`` (0-23,
    integer, mutable), the one-hot group ``merchant`` (``merchant_grocery``,
    ``merchant_restaurant``, ``merchant_fuel``, ``merchant_travel``,
    ``merchant_electronics``, ``merchant_digital_goods``, ``merchant_gambling``;
    mutable), ``card_present`` (binary, mutable), ``distance_from_home_km``,
    ``foreign``, ``tx_last_24h``, ``avg_amount_30d``, ``account_age_days`` and
    ``new_device`` (all immutable: the fraudster does not control the card's
    history).

    Parameters
    ----------
    n_samples : int, default=20_000
        Number of transactions, at least 100.
    fraud_rate : float, default=0.05
        Share of fraud, in ``(0, 0.5)``; exactly ``round(n_samples * fraud_rate)``
        rows are fraud, shuffled among the legitimate ones.
    random_state : int, numpy Generator or None, default=0
        Seed; the same seed gives the same data.

    Returns
    -------
    Dataset
        Labels ``y`` are ``int64`` 0/1 with ``positive_label=1`` (fraud); every
        feature has bounds, a kind, a mutability flag, a scale (its standard
        deviation on the generated data, at least one unit) and a description.

    Raises
    ------
    InvalidParameterError
        If ``n_samples`` or ``fraud_rate`` is out of range, or ``random_state`` is
        not a seed.

    Examples
    --------
    >>> from mlwarden.data import fraud
    >>> data = fraud(2_000, random_state=1)
    >>> data.X.shape, int(data.y.sum())
    ((2000, 16), 100)
    """
    n, rate = _check_fraud_params(n_samples, fraud_rate)
    rng = as_generator(random_state)
    n_fraud = round(n * rate)
    n_legit = n - n_fraud

    # ------------------------------------------------------------- customers
    n_cust = int(np.clip(n // 8, 100, 200_000))
    log_spend = rng.normal(np.log(32.0), 0.6, n_cust)
    spread = rng.uniform(0.45, 0.9, n_cust)
    prefs = rng.dirichlet(4.0 * _LEGIT_MERCHANT_MIX, n_cust)
    night_owl = rng.random(n_cust) < 0.08
    peak_hour = np.where(night_owl, rng.normal(23.0, 1.5, n_cust), rng.normal(14.0, 2.5, n_cust))
    cp_affinity = rng.beta(6.0, 2.0, n_cust) / 0.75
    p_foreign = rng.beta(0.4, 12.0, n_cust)
    home_km = np.exp(rng.normal(np.log(6.0), 0.7, n_cust))
    rate_day = rng.gamma(2.0, 1.2, n_cust)
    young = rng.random(n_cust) < 0.06
    age = np.where(
        young,
        rng.uniform(0.0, 120.0, n_cust),
        np.exp(rng.normal(np.log(1400.0), 0.8, n_cust)),
    )
    age = np.clip(np.round(age), 0.0, 36_500.0)
    # The 30-day average: the mean of a short history, noisier for young accounts.
    mean_spend = np.exp(log_spend + spread**2 / 2.0) * float(_LEGIT_MERCHANT_MIX @ _AMOUNT_FACTOR)
    hist_noise = np.where(age < 60, 0.45, 0.15)
    avg30 = mean_spend * np.exp(rng.normal(0.0, 1.0, n_cust) * hist_noise)

    # ------------------------------------------------------ legit transactions
    c = rng.integers(0, n_cust, n_legit)
    merch = _sample_rows(rng, prefs[c])
    amount = np.exp(
        log_spend[c] + np.log(_AMOUNT_FACTOR[merch]) + spread[c] * rng.normal(size=n_legit)
    )
    p_cp = np.clip(_CARD_PRESENT_RATE[merch] * cp_affinity[c], 0.0, 1.0)
    card_present = rng.random(n_legit) < p_cp
    foreign = rng.random(n_legit) < p_foreign[c]
    away = rng.random(n_legit) < 0.07  # domestic trips
    dist = np.exp(rng.normal(np.log(home_km[c]), 1.0))
    dist = np.where(away, np.exp(rng.normal(np.log(250.0), 0.8, n_legit)), dist)
    dist = np.where(foreign, np.exp(rng.normal(np.log(1200.0), 0.7, n_legit)), dist)
    hour = _wrap_hour(peak_hour[c] + rng.normal(0.0, 3.5, n_legit))
    tx24 = rng.poisson(rate_day[c])
    new_dev = rng.random(n_legit) < np.where(card_present, 0.01, 0.08)
    legit = {
        "amount": amount,
        "hour": hour,
        "merchant": merch,
        "card_present": card_present,
        "distance_from_home_km": dist,
        "foreign": foreign,
        "tx_last_24h": tx24,
        "avg_amount_30d": avg30[c] * np.exp(rng.normal(0.0, 0.05, n_legit)),
        "account_age_days": age[c],
        "new_device": new_dev,
    }

    # ------------------------------------------------------ fraud transactions
    m = n_fraud
    scheme = _sample_rows(rng, np.broadcast_to(_FRAUD_SCHEMES, (m, 4)))
    online, skimmed, bustout, testing = (scheme == k for k in range(4))
    v = rng.integers(0, n_cust, m)  # the victim whose card is used
    f_merch = _sample_rows(rng, _FRAUD_MERCHANT_MIX[scheme])
    f_age = age[v].copy()
    f_age[bustout] = np.round(rng.uniform(0.0, 90.0, int(bustout.sum())))
    f_avg = avg30[v] * np.exp(rng.normal(0.0, 0.05, m))
    f_avg[bustout] = np.exp(rng.normal(np.log(60.0), 0.8, int(bustout.sum())))
    ratio = np.exp(rng.normal(np.log(2.5), 0.9, m))
    ratio[bustout] = np.exp(rng.normal(np.log(2.8), 0.8, int(bustout.sum())))
    f_amount = f_avg * ratio * np.sqrt(_AMOUNT_FACTOR[f_merch])
    f_amount[testing] = rng.uniform(0.5, 6.0, int(testing.sum()))
    f_cp = np.where(skimmed, rng.random(m) < 0.97, rng.random(m) < 0.08)
    f_cp[bustout] = rng.random(int(bustout.sum())) < 0.4
    f_cp &= f_merch != _DIGITAL
    f_foreign = rng.random(m) < np.select([skimmed, online, testing], [0.45, 0.25, 0.25], 0.08)
    f_dist = np.exp(rng.normal(np.log(30.0), 1.8, m))
    f_dist = np.where(skimmed, np.exp(rng.normal(np.log(150.0), 1.3, m)), f_dist)
    f_dist = np.where(bustout, np.exp(rng.normal(np.log(12.0), 1.2, m)), f_dist)
    f_dist = np.where(f_foreign, np.exp(rng.normal(np.log(1500.0), 0.8, m)), f_dist)
    night = rng.random(m) < np.select([online, skimmed, bustout], [0.40, 0.25, 0.25], 0.5)
    f_hour = np.where(
        night,
        rng.uniform(-2.5, 5.5, m),
        rng.normal(np.where(online | testing, 17.0, 15.0), 4.5, m),
    )
    burst = rng.poisson(np.select([online, skimmed, bustout], [1.0, 2.0, 2.5], 5.0), m)
    f_tx24 = rng.poisson(rate_day[v]) + burst
    f_newdev = rng.random(m) < np.select([online, skimmed, bustout], [0.4, 0.03, 0.3], 0.35)
    fr = {
        "amount": f_amount,
        "hour": _wrap_hour(f_hour),
        "merchant": f_merch,
        "card_present": f_cp,
        "distance_from_home_km": f_dist,
        "foreign": f_foreign,
        "tx_last_24h": f_tx24,
        "avg_amount_30d": f_avg,
        "account_age_days": f_age,
        "new_device": f_newdev,
    }

    # --------------------------------------------------------------- assemble
    X = np.vstack([_to_matrix(legit), _to_matrix(fr)])
    y = np.concatenate([np.zeros(n_legit, np.int64), np.ones(n_fraud, np.int64)])
    order = rng.permutation(n)
    X, y = X[order], y[order]

    scales: dict[str, float] = {}
    for j, name in enumerate(FRAUD_FEATURES):
        if name in _SCALE_FLOOR:
            scales[name] = max(float(X[:, j].std()), _SCALE_FLOOR[name])
    schema = FeatureSchema(_feature_table(scales))
    return Dataset(
        X=X,
        y=y,
        schema=schema,
        name="fraud",
        positive_label=1,
        description=_FRAUD_DESCRIPTION,
        source=f"builtin:fraud(n_samples={n}, fraud_rate={rate}, random_state="
        f"{random_state if not isinstance(random_state, np.random.Generator) else 'Generator'})",
    )


def _to_matrix(cols: dict[str, Any]) -> FloatArray:
    """Stack generated columns into the schema's order, rounded to realistic units."""
    n = len(cols["amount"])
    onehot = np.zeros((n, len(MERCHANTS)))
    onehot[np.arange(n), cols["merchant"]] = 1.0
    return np.column_stack(
        [
            np.clip(np.round(cols["amount"], 2), 0.5, 25_000.0),
            np.asarray(cols["hour"], dtype=np.float64),
            onehot,
            np.asarray(cols["card_present"], dtype=np.float64),
            np.clip(np.round(cols["distance_from_home_km"], 1), 0.0, 20_000.0),
            np.asarray(cols["foreign"], dtype=np.float64),
            np.clip(np.asarray(cols["tx_last_24h"], dtype=np.float64), 0.0, 500.0),
            np.clip(np.round(cols["avg_amount_30d"], 2), 0.0, 25_000.0),
            np.asarray(cols["account_age_days"], dtype=np.float64),
            np.asarray(cols["new_device"], dtype=np.float64),
        ]
    ).astype(np.float64)


# -------------------------------------------------------------- scikit-learn
def breast_cancer() -> Dataset:
    """The Wisconsin breast cancer data set (569 tumours, 30 features), from scikit-learn.

    Labels are kept as scikit-learn gives them: ``0`` is malignant, ``1`` benign, and
    ``positive_label`` is ``0`` (the class a screening model exists to catch). The
    schema is inferred from the data: every feature mutable, bounds the observed
    range.

    Returns
    -------
    Dataset
        ``X`` of shape ``(569, 30)``, ``y`` ``int64``.
    """
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer()
    names = [str(n) for n in raw.feature_names]
    target_names = [str(t) for t in raw.target_names]
    schema = FeatureSchema.infer(raw.data, names)
    return Dataset(
        X=np.asarray(raw.data, dtype=np.float64),
        y=np.asarray(raw.target, dtype=np.int64),
        schema=schema,
        name="breast_cancer",
        positive_label=target_names.index("malignant"),
        description="Wisconsin diagnostic breast cancer data (healthcare): 30 measurements "
        "of cell nuclei from a fine-needle aspirate; label 0 = malignant, 1 = benign.",
        source="builtin:breast_cancer (scikit-learn)",
    )


def digits() -> Dataset:
    """The 8x8 handwritten digits (1,797 images, 10 classes), from scikit-learn.

    Pixels are scaled from 0-16 to ``[0, 1]``; each is a continuous, mutable feature
    with bounds ``[0, 1]`` and scale 1, so an evasion budget ``eps`` is a fraction of
    the full pixel range.

    Returns
    -------
    Dataset
        ``X`` of shape ``(1797, 64)``, ``y`` ``int64`` in 0-9, ``image_shape=(8, 8)``.
    """
    from sklearn.datasets import load_digits

    raw = load_digits()
    names = [str(n) for n in raw.feature_names]
    schema = FeatureSchema(
        tuple(Feature(n, FeatureKind.CONTINUOUS, 0.0, 1.0, mutable=True, scale=1.0) for n in names)
    )
    return Dataset(
        X=np.asarray(raw.data, dtype=np.float64) / 16.0,
        y=np.asarray(raw.target, dtype=np.int64),
        schema=schema,
        name="digits",
        description="8x8 grey-scale handwritten digits 0-9, pixels scaled to [0, 1].",
        source="builtin:digits (scikit-learn)",
        image_shape=(8, 8),
    )


_BUILTINS: dict[str, Callable[..., Dataset]] = {
    "fraud": fraud,
    "breast_cancer": breast_cancer,
    "digits": digits,
}
BUILTIN_NAMES: tuple[str, ...] = tuple(_BUILTINS)
"""Names :func:`load_builtin` accepts."""


def load_builtin(name: str, **kwargs: Any) -> Dataset:
    """Load a bundled data set by name.

    Parameters
    ----------
    name : {"fraud", "breast_cancer", "digits"}
        Which data set.
    **kwargs
        Passed to the loader (only :func:`fraud` takes parameters).

    Returns
    -------
    Dataset

    Raises
    ------
    InvalidParameterError
        For an unknown name or a parameter the loader does not take.
    """
    loader = _BUILTINS.get(name) if isinstance(name, str) else None
    if loader is None:
        raise InvalidParameterError(
            f"unknown built-in data set {name!r}; available: {', '.join(BUILTIN_NAMES)}"
        )
    params = inspect.signature(loader).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        takes = ", ".join(params) or "no parameters"
        raise InvalidParameterError(
            f"built-in data set {name!r} does not take {', '.join(unknown)} (it takes {takes})"
        )
    return loader(**kwargs)
