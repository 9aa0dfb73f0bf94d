"""k-NN probing detector (Chen, Carlini & Wagner 2019) on crafted streams."""

from __future__ import annotations

import numpy as np
import pytest

from mlwarden.exceptions import InvalidParameterError
from mlwarden.theft.detectors import KNNProbeDetector


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2000, 6))


def test_calibrated_threshold_sits_at_the_benign_quantile(reference):
    det = KNNProbeDetector(k=10, fpr=0.01, random_state=0).fit(reference)
    scores = det.calibration_scores_
    assert 0 < det.threshold_ < np.median(scores)
    assert np.mean(scores < det.threshold_) == pytest.approx(0.01, abs=0.006)
    again = KNNProbeDetector(k=10, fpr=0.01, random_state=0).fit(reference)
    assert again.threshold_ == det.threshold_


def test_fires_on_a_search_around_one_point(reference):
    rng = np.random.default_rng(1)
    det = KNNProbeDetector(k=10, random_state=0).fit(reference)
    x0 = reference[0]
    alerts = [det.update("hsj", x0 + 0.01 * rng.normal(size=6)) for _ in range(50)]
    fired = [a for a in alerts if a is not None]
    assert len(fired) == 1
    # buffer needs k queries, then min_hits hits
    assert fired[0].query_index == 10 + 5
    assert fired[0].threat == "evasion probing"


def test_quiet_on_benign_traffic(reference):
    rng = np.random.default_rng(2)
    det = KNNProbeDetector(k=10, random_state=0).fit(reference)
    for client in range(3):
        for row in rng.normal(size=(1000, 6)):
            assert det.update(client, row) is None


def test_can_fail_a_spread_out_search_is_not_flagged(reference):
    # an attacker whose steps are as large as natural spacing is not caught
    rng = np.random.default_rng(3)
    det = KNNProbeDetector(k=10, random_state=0).fit(reference)
    x0 = reference[0]
    assert all(det.update("wide", x0 + 1.5 * rng.normal(size=6)) is None for _ in range(200))


def test_fixed_threshold_and_parameter_errors(reference):
    det = KNNProbeDetector(threshold=0.5, k=3, min_hits=1, hit_window=1).fit(reference)
    assert det.threshold_ == 0.5
    for _ in range(3):
        det.update("c", np.zeros(6))
    assert det.score("c", np.zeros(6)) == 0.0
    assert det.update("c", np.zeros(6)) is not None
    with pytest.raises(InvalidParameterError, match="buffer_size"):
        KNNProbeDetector(k=10, buffer_size=5).fit(reference)
    with pytest.raises(InvalidParameterError, match="fpr"):
        KNNProbeDetector(fpr=0.0).fit(reference)
    with pytest.raises(InvalidParameterError, match="hit_window"):
        KNNProbeDetector(min_hits=5, hit_window=2).fit(reference)
