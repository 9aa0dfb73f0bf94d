"""The poisoning and training-data rules (MLW-POI-*)."""

from __future__ import annotations

__all__: list[str] = []
