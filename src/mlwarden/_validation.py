"""Parameter checks shared by attacks and checks; each error names the owner and parameter."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from mlwarden.exceptions import InvalidParameterError

__all__ = ["check_choice", "check_int", "check_number"]


def check_int(owner: str, name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum`` (bools refused)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidParameterError(
            f"{owner}: {name} must be an integer >= {minimum}, got {value!r}"
        )
    return value


def check_number(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """``value`` as a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        span = (
            f"{'(' if low_open or low is None else '['}{lo}, {hi}{']' if high is not None else ')'}"
        )
        raise InvalidParameterError(f"{owner}: {name} must be a number in {span}, got {value!r}")
    return float(value)


def check_choice(owner: str, name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` as one of ``choices``."""
    options = tuple(choices)
    if value not in options:
        raise InvalidParameterError(
            f"{owner}: {name} must be one of {', '.join(map(repr, options))}, got {value!r}"
        )
    return str(value)
