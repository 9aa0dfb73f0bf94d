"""The theft audit checks (registered with ``@register("check", "theft....")``)."""

from __future__ import annotations

__all__: list[str] = []
