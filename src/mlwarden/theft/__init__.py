"""Model theft: extraction attacks, output hardening, stateful query detectors, watermarks."""

from __future__ import annotations

__all__: list[str] = []
