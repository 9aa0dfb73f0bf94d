"""Stateful per-client query detectors: model extraction and evasion probing.

Each detector is fitted on benign reference rows, then fed one query at a time with
``update(client, x, label)``; it returns an :class:`Alert` the first time a client
looks like an attacker. Memory is bounded per client and in the number of clients.

* :class:`PRADA` — Shapiro-Wilk test on nearest-neighbour query distances
  (Juuti et al. 2019): synthetic extraction.
* :class:`KNNProbeDetector` — mean distance to the k nearest recent queries
  (Chen, Carlini & Wagner 2019): evasion probing (HopSkipJump-like searches).
* :class:`OODRateMonitor` — share of out-of-distribution queries: random or
  synthetic extraction.
"""

from __future__ import annotations

from mlwarden.theft.detectors.base import (
    Alert,
    ClientStates,
    Detector,
    ReplayResult,
    RingBuffer,
    replay,
)
from mlwarden.theft.detectors.knn_probe import KNNProbeDetector
from mlwarden.theft.detectors.ood_rate import OODRateMonitor
from mlwarden.theft.detectors.prada import PRADA

__all__ = [
    "PRADA",
    "Alert",
    "ClientStates",
    "Detector",
    "KNNProbeDetector",
    "OODRateMonitor",
    "ReplayResult",
    "RingBuffer",
    "replay",
]
