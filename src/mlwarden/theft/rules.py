"""The theft rules (MLW-THF-*): what the extraction checks find."""

from __future__ import annotations

__all__: list[str] = []
