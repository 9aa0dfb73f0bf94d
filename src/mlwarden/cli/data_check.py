"""``mlwarden data check``: suspicious rows (poison, label issues, duplicates, PII)."""

from __future__ import annotations

from typing import Any

__all__ = ["register"]


def register(data_app: Any) -> None:
    """Add ``check`` to the ``data`` command group."""
