"""Progress reporting: the library never prints; it calls an optional callback."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressCallback", "report_progress"]

ProgressCallback = Callable[[str, int, int], None]
"""``callback(task, done, total)``: ``task`` names the work, ``done`` of ``total`` units."""


def report_progress(callback: ProgressCallback | None, task: str, done: int, total: int) -> None:
    """Call ``callback`` if one was given."""
    if callback is not None:
        callback(task, done, total)
