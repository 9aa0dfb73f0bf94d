"""Per-client out-of-distribution rate monitor on crafted streams."""

from __future__ import annotations

import numpy as np
import pytest

from mlwarden.exceptions import InvalidParameterError
from mlwarden.theft.detectors import OODRateMonitor


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    rng = np.random.default_rng(0)
    cont = rng.normal(size=(3000, 4)) * [1, 10, 100, 0.1]
    onehot = np.eye(3)[rng.integers(0, 3, size=3000)]  # a singular one-hot group
    return np.hstack([cont, onehot])


def test_reference_rate_matches_the_quantile(reference):
    det = OODRateMonitor(quantile=0.95).fit(reference)
    assert np.mean(det.distances(reference) > det.cutoff_) == pytest.approx(0.05, abs=0.005)


def test_fires_on_uniform_random_queries(reference):
    rng = np.random.default_rng(1)
    det = OODRateMonitor().fit(reference)
    lo, hi = reference.min(axis=0), reference.max(axis=0)
    alerts = [det.update("rand", rng.uniform(lo, hi)) for _ in range(100)]
    fired = [a for a in alerts if a is not None]
    assert len(fired) == 1
    assert fired[0].query_index == 20  # min_queries
    assert fired[0].score > 0.3 and "AML.T0024.002" in fired[0].atlas


def test_quiet_on_benign_traffic_and_on_a_few_outliers(reference):
    rng = np.random.default_rng(2)
    det = OODRateMonitor().fit(reference)
    fresh = np.hstack(
        [
            rng.normal(size=(4000, 4)) * [1, 10, 100, 0.1],
            np.eye(3)[rng.integers(0, 3, size=4000)],
        ]
    )
    fresh[::100, 0] = 50.0  # 1 % wild rows
    for i, row in enumerate(fresh):
        assert det.update(i % 4, row) is None


def test_can_fail_natural_looking_extraction_is_not_flagged(reference):
    det = OODRateMonitor().fit(reference)
    assert all(det.update("thief", row) is None for row in reference[:500])


def test_parameter_errors(reference):
    with pytest.raises(InvalidParameterError, match="quantile"):
        OODRateMonitor(quantile=0.2).fit(reference)
    with pytest.raises(InvalidParameterError, match="max_rate"):
        OODRateMonitor(max_rate=2).fit(reference)
