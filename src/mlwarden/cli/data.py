"""``mlwarden data …``: sign and verify dataset manifests, check a data set for poison and PII."""

from __future__ import annotations

from typing import Any

__all__ = ["register"]


def register(app: Any) -> None:
    """Add the ``data`` command group to ``app``."""
