"""PRADA (Juuti et al. 2019) on crafted streams, calibration, and bounded state."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from mlwarden.exceptions import InvalidParameterError
from mlwarden.theft.detectors import PRADA, KNNProbeDetector, OODRateMonitor


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(1500, 5))


def test_statistic_edge_cases():
    assert PRADA.statistic(np.ones(10)) == 0.0
    assert PRADA.statistic([1.0, 2.0]) == 1.0
    rng = np.random.default_rng(0)
    assert PRADA.statistic(rng.normal(size=200)) > 0.97
    assert PRADA.statistic(rng.exponential(size=200) ** 3) < 0.8


@pytest.fixture(scope="module")
def calibrated(reference) -> PRADA:
    # calibrated on streams grouped by the answers, as the live ones are
    labels = np.random.default_rng(5).integers(0, 2, size=len(reference))
    return PRADA(random_state=0).fit(reference, labels)


def test_fires_on_regularly_spaced_synthetic_queries(reference):
    det = PRADA(delta=0.9).fit(reference)
    rng = np.random.default_rng(1)
    seed = reference[0]
    # Papernot-like: each query is one fixed-size step from the previous one
    direction = np.sign(rng.normal(size=(200, 5)))
    walk = seed + 0.1 * np.cumsum(direction, axis=0)
    alerts = [det.update("thief", x, 0) for x in walk]
    fired = [a for a in alerts if a is not None]
    assert len(fired) == 1
    assert fired[0].query_index <= 60
    assert fired[0].score < 0.9 and fired[0].direction == "below"
    assert fired[0].owasp == ("ML05",)


def test_quiet_on_natural_queries(calibrated):
    det = calibrated
    rng = np.random.default_rng(2)
    for client in ("n1", "n2"):
        labels = rng.integers(0, 2, size=1500)
        for x, y in zip(rng.normal(size=(1500, 5)), labels, strict=True):
            assert det.update(client, x, y) is None


def test_the_papers_fixed_delta_is_too_strict_for_natural_data(reference):
    # why delta is calibrated by default: with a 200-distance window, natural Gaussian
    # queries dip below the paper's W = 0.9
    det = PRADA(delta=0.9, window=200).fit(reference)
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, size=1500)
    alerts = [
        det.update("n", x, y) for x, y in zip(rng.normal(size=(1500, 5)), labels, strict=True)
    ]
    assert any(a is not None for a in alerts)


def test_calibration_sets_delta_below_benign_w(reference):
    det = PRADA(random_state=0, n_calibration_streams=2, calibration_length=400).fit(reference)
    assert det.calibration_w_.size > 0
    assert det.delta_ == pytest.approx(1 - (1 - det.calibration_w_.min()) * 3)
    assert 0.75 < det.delta_ < det.calibration_w_.min()
    again = PRADA(random_state=0, n_calibration_streams=2, calibration_length=400).fit(reference)
    assert again.delta_ == det.delta_


def test_parameter_errors(reference):
    with pytest.raises(InvalidParameterError, match="delta"):
        PRADA(delta=1.5).fit(reference)
    with pytest.raises(InvalidParameterError, match="window"):
        PRADA(min_queries=100, window=50).fit(reference)
    with pytest.raises(InvalidParameterError, match="scale"):
        PRADA(delta=0.9, scale=[1.0, 2.0]).fit(reference)


def test_labels_beyond_max_classes_share_a_group(reference):
    det = PRADA(delta=0.9, max_classes=2).fit(reference)
    for i, x in enumerate(reference[:20]):
        det.update("c", x, i)
    assert len(det.states_.get("c").groups) == 3  # two classes + the shared group


@pytest.mark.slow
def test_state_stays_bounded_after_a_million_queries():
    """A million queries in all (a third through each detector), 80 clients, room for 50."""
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(500, 3))
    dets = [
        PRADA(delta=0.5, max_points=32, window=64, min_queries=32, test_every=64, max_clients=50),
        KNNProbeDetector(k=4, buffer_size=32, max_clients=50, random_state=0),
        OODRateMonitor(window=32, max_clients=50),
    ]
    for det in dets:
        det.fit(ref)
    n_total = 1_000_000
    per_det = n_total // len(dets) + 1
    block = rng.normal(size=(10_000, 3))
    sizes = {}
    t0 = time.perf_counter()
    for det in dets:
        update = det.update
        for i in range(per_det):
            update((i // 500) % 80, block[i % 10_000], i % 3)
            if i == 100_000:
                sizes[det.name] = len(pickle.dumps(det))
        assert det.n_clients == 50
        assert det.states_.evicted > 0
        # the pickled state does not grow after the first 100,000 queries
        assert len(pickle.dumps(det)) <= sizes[det.name] * 1.05
    assert time.perf_counter() - t0 < 120  # ~25 s on a loaded 2-core machine
