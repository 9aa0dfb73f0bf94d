"""Replayed alerts become MLW-THF-003/004 findings naming the client and the query."""

from __future__ import annotations

import numpy as np

from mlwarden.theft import KNNProbeDetector, OODRateMonitor, alert_findings, replay


def test_attack_clients_fail_and_honest_traffic_passes():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(2000, 4))
    detectors = [KNNProbeDetector(random_state=0).fit(reference), OODRateMonitor().fit(reference)]
    honest = [(f"h{i % 5}", rng.normal(size=4), None) for i in range(500)]
    quiet = alert_findings(replay(detectors, honest), target="api")
    assert [f.rule_id for f in quiet] == ["MLW-THF-003", "MLW-THF-004"]
    assert all(f.passed for f in quiet)
    assert "500 queries from 5 client(s)" in quiet[0].description

    detectors = [KNNProbeDetector(random_state=0).fit(reference), OODRateMonitor().fit(reference)]
    x = rng.normal(size=4)
    probe = [("prober", x + 0.001 * rng.normal(size=4), None) for _ in range(100)]
    thief = [("thief", rng.uniform(-30, 30, size=4), None) for _ in range(100)]
    loud = alert_findings(replay(detectors, honest[:100] + probe + thief), target="api")
    extraction, probing = loud
    assert not extraction.passed and "thief" in extraction.description
    assert not probing.passed and "prober" in probing.description
    assert probing.evidence["alerts"][0]["client"] == "prober"
    assert probing.evidence["alerts"][0]["query_index"] <= 50
