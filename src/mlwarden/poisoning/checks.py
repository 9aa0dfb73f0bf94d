"""The poisoning audit checks (registered with ``@register("check", "poisoning....")``)."""

from __future__ import annotations

__all__: list[str] = []
