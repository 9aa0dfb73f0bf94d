"""Shared detector machinery: ring buffers, LRU client table, replay, input checks."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.theft.detectors import (
    PRADA,
    Alert,
    ClientStates,
    KNNProbeDetector,
    OODRateMonitor,
    RingBuffer,
    replay,
)


def test_ring_buffer_keeps_the_last_rows_in_order():
    buf = RingBuffer(3, 2)
    for i in range(5):
        buf.append(np.array([i, i], dtype=float))
    assert len(buf) == 3
    np.testing.assert_array_equal(buf.ordered()[:, 0], [2, 3, 4])
    scalars = RingBuffer(2)
    scalars.append(1.0)
    assert scalars.oldest() == 1.0
    scalars.append(2.0)
    scalars.append(3.0)
    assert scalars.oldest() == 2.0
    scalars.clear()
    assert len(scalars) == 0


def test_client_states_evict_the_least_recently_seen():
    states: ClientStates[list[int]] = ClientStates(2, list)
    states.get("a").append(1)
    states.get("b")
    states.get("a")  # a is now the most recent
    states.get("c")  # evicts b
    assert set(states) == {"a", "c"}
    assert states.evicted == 1
    assert states.get("a") == [1]


@pytest.mark.parametrize("cls", [PRADA, KNNProbeDetector, OODRateMonitor])
def test_inert_init_and_unfitted_error(cls):
    det = cls(max_clients=-3)  # stored as given, checked at fit
    assert det.max_clients == -3
    with pytest.raises(InvalidParameterError, match="max_clients"):
        det.fit(np.zeros((50, 2)))
    with pytest.raises(InvalidParameterError, match="not fitted"):
        cls().update("c", [0.0, 1.0])


@pytest.mark.parametrize("cls", [PRADA, KNNProbeDetector, OODRateMonitor])
def test_bad_queries_get_clear_errors(cls):
    rng = np.random.default_rng(0)
    det = cls(random_state=0) if cls is not OODRateMonitor else cls()
    det.fit(rng.normal(size=(300, 3)))
    with pytest.raises(DataError, match="3 features"):
        det.update("c", [1.0, 2.0])
    with pytest.raises(DataError, match="NaN"):
        det.update("c", [1.0, np.nan, 0.0])
    with pytest.raises(DataError, match="numbers"):
        det.update("c", ["a", "b", "c"])
    with pytest.raises(InvalidParameterError, match="client"):
        det.update(1.5, [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="2-D"):
        cls().fit(np.zeros(5))


def test_replay_collects_one_alert_per_detector_and_client_and_pickles():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(600, 4))
    knn = KNNProbeDetector(k=5, random_state=0).fit(ref)
    ood = OODRateMonitor().fit(ref)
    benign = [("good", row, 0) for row in rng.normal(size=(300, 4))]
    point = rng.normal(size=4)
    probe = [("bad", point + 1e-3 * rng.normal(size=4), 0) for _ in range(60)]
    result = replay([knn, ood], benign[:150] + probe + benign[150:])
    assert result.n_queries == 360
    assert result.queries_per_client == {"good": 300, "bad": 60}
    assert list(result.flagged_clients) == ["bad"]
    (alert,) = result.alerts
    assert isinstance(alert, Alert)
    assert alert.detector == "knn_probe" and alert.client == "bad"
    assert alert.query_index == 5 + 5
    assert alert.score < alert.threshold and alert.direction == "below"
    assert "AML.T0043.001" in alert.atlas
    assert alert.to_dict()["owasp"] == ["ML01"]
    assert knn.flagged("bad") == alert.query_index
    assert knn.flagged("good") is None
    clone = pickle.loads(pickle.dumps(knn))
    assert clone.flagged("bad") == alert.query_index
    knn.reset("bad")
    assert knn.flagged("bad") is None
    knn.reset()
    assert knn.n_clients == 0
