"""Training-data poisoning: attacks that poison a data set, detectors that find the poison."""

from __future__ import annotations

__all__: list[str] = []
