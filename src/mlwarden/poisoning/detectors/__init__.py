"""Detectors that score every training row for poison, label issues and duplicates."""

from __future__ import annotations

__all__: list[str] = []
