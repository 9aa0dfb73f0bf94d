"""One registry for every pluggable class (checks now; attacks and detectors later).

Adding a check is one new file plus one ``@register("check", "family.name")`` line:
the CLI's choices, the audit plan, the report's rule ids and the contract tests all
read from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mlwarden.exceptions import InvalidParameterError

__all__ = ["available", "create", "get", "register"]

T = TypeVar("T", bound=type)

_REGISTRY: dict[str, dict[str, type]] = {}


def register(kind: str, name: str) -> Callable[[T], T]:
    """Class decorator: register ``cls`` under ``kind`` (e.g. ``"check"``) as ``name``."""

    def deco(cls: T) -> T:
        table = _REGISTRY.setdefault(kind, {})
        if name in table and table[name] is not cls:
            raise InvalidParameterError(f"{kind} {name!r} is already registered")
        table[name] = cls
        cls.registered_name = name  # type: ignore[attr-defined]
        return cls

    return deco


def _load_builtins() -> None:
    # Importing the family packages runs their @register lines.
    import mlwarden.data.checks
    import mlwarden.data.rules
    import mlwarden.evasion.checks
    import mlwarden.poisoning.checks
    import mlwarden.poisoning.rules
    import mlwarden.privacy.checks
    import mlwarden.privacy.rules
    import mlwarden.supplychain.checks
    import mlwarden.supplychain.rules
    import mlwarden.theft.checks
    import mlwarden.theft.rules  # noqa: F401 - rule ids of checks and detectors


def get(kind: str, name: str) -> type:
    """The class registered as ``name``."""
    _load_builtins()
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        valid = ", ".join(available(kind)) or "none"
        raise InvalidParameterError(f"unknown {kind} {name!r}; available: {valid}") from None


def create(kind: str, name: str, **params: Any) -> Any:
    """Instantiate the class registered as ``name`` with keyword ``params``."""
    cls = get(kind, name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise InvalidParameterError(f"{kind} {name!r}: {exc}") from None


def available(kind: str, *, family: str | None = None) -> list[str]:
    """Sorted names registered under ``kind``, optionally of one threat ``family``."""
    _load_builtins()
    names = []
    for name, cls in _REGISTRY.get(kind, {}).items():
        fam = getattr(cls, "family", None)
        fam_value = getattr(fam, "value", fam)
        if family is None or fam_value == family:
            names.append(name)
    return sorted(names)
