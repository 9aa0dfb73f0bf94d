"""A scan policy: the user's additions to the shipped allowlist and denylist."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlwarden.exceptions import InvalidParameterError

__all__ = ["Policy"]


@dataclass(frozen=True)
class Policy:
    """What a scan (and :func:`~mlwarden.supplychain.safe_load`) accepts beyond the defaults.

    Parameters
    ----------
    allow : frozenset of str
        Extra globals (``module.qualname``) to accept, e.g. the user's own model class.
        A name on the shipped denylist can not be allowed this way unless it is listed
        in ``allow`` *and* ``force`` is true.
    deny : frozenset of str
        Globals to refuse even though the shipped allowlist accepts them.
    force : bool
        Let ``allow`` override the shipped denylist (for experts; logged in the result).
    max_file_bytes : int or None
        Refuse (verdict ``error``) files larger than this; ``None`` for no limit.
    exclude : tuple of str
        Glob patterns of paths that :func:`~mlwarden.supplychain.scan` does not read
        and lists as skipped (the same rule as its ``exclude`` argument and
        ``--exclude``; see :mod:`mlwarden.supplychain.skips`). Not used by
        :func:`~mlwarden.supplychain.scan_file`, which scans the file it is given.
    """

    allow: frozenset[str] = field(default_factory=frozenset)
    deny: frozenset[str] = field(default_factory=frozenset)
    force: bool = False
    max_file_bytes: int | None = None
    exclude: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Read a policy from a TOML file::

            allow = ["mypackage.model.MyNet"]
            deny = ["collections.OrderedDict"]
            force = false
            max_file_bytes = 10_000_000_000
            exclude = ["examples", "*.bak"]

        Raises
        ------
        InvalidParameterError
            If the file is missing, not TOML, or has an unknown key or a wrong type;
            the message names the file and the key.
        """
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidParameterError(f"{p}: policy file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidParameterError(f"{p}: cannot read the policy file ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidParameterError(f"{p}: the policy file is not valid TOML ({exc})") from None
        known = {"allow", "deny", "force", "max_file_bytes", "exclude"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidParameterError(
                f"{p}: unknown policy key(s) {', '.join(unknown)}; use {', '.join(sorted(known))}"
            )
        lists: dict[str, frozenset[str]] = {}
        for key in ("allow", "deny"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidParameterError(f"{p}: {key!r} must be a list of strings")
            lists[key] = frozenset(value)
        force = data.get("force", False)
        if not isinstance(force, bool):
            raise InvalidParameterError(f"{p}: 'force' must be true or false")
        max_bytes = data.get("max_file_bytes")
        if max_bytes is not None and (
            not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes <= 0
        ):
            raise InvalidParameterError(f"{p}: 'max_file_bytes' must be a positive integer")
        exclude = data.get("exclude", [])
        if not isinstance(exclude, list) or not all(isinstance(v, str) and v for v in exclude):
            raise InvalidParameterError(
                f"{p}: 'exclude' must be a list of non-empty strings (glob patterns)"
            )
        return cls(
            allow=lists["allow"],
            deny=lists["deny"],
            force=force,
            max_file_bytes=max_bytes,
            exclude=tuple(exclude),
        )

    def with_allowed(self, names: list[str] | tuple[str, ...]) -> Policy:
        """A copy that also allows ``names`` (``--allow`` on the command line)."""
        return replace(self, allow=self.allow | frozenset(names))
