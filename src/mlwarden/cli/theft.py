"""``mlwarden theft …``: replay a query log through the stateful extraction detectors."""

from __future__ import annotations

from typing import Any

__all__ = ["register"]


def register(app: Any) -> None:
    """Add the ``theft`` command group to ``app``."""
