"""The one decision every pickle global goes through: allowlist first, fail closed.

Threat model
------------
Unpickling imports every global a pickle names (``GLOBAL``, ``STACK_GLOBAL``,
``INST``) and may call it with arguments of the file's choosing. A model file is
untrusted input, so the only defensible policy is an *allowlist*: a global is accepted
only when it is on a reviewed, versioned list of callables known to build plain data
(NumPy, SciPy, scikit-learn, pandas, torch tensors, a few builtins). Denylists alone
are bypassed as soon as an attacker finds a gadget nobody listed, which is how the
public picklescan and modelscan bypasses worked (JFrog's and Sonatype's advisories on
picklescan, the "Weaponizing ML models" write-ups, Trail of Bits' *fickling*
"Never a dill moment" and "Exploiting ML models with pickle file attacks" posts); the
shipped denylist here only names *how bad* a refused global is and explains why.

:func:`decide` is shared by the scanner (:mod:`mlwarden.supplychain.pickle_scan`) and
by the restricted unpickler of :mod:`mlwarden.supplychain.safe_load`, so the two can
never disagree on a name. The order of the checks is:

1. Python 2 names are mapped exactly as :mod:`pickle` maps them (``__builtin__`` →
   ``builtins``, ``copy_reg`` → ``copyreg``); the loader imports the mapped name.
2. The user's ``deny`` list refuses (fail closed even for shipped names).
3. The shipped denylist refuses with its own severity, unless the user both lists
   the exact name in ``allow`` and sets ``force``.
4. A name that is not a plain dotted Python identifier (``os\\r``, ``<locals>``,
   spaces) is obfuscation (MLW-SUP-003).
5. A dotted qualified name (``os.path.os.system`` style attribute walks) is accepted
   only when that exact name is allowed; otherwise it is MLW-SUP-003.
6. Anything on the shipped allowlist or in the user's ``allow`` list is accepted;
   everything else is MLW-SUP-002.

The data files live in ``mlwarden/supplychain/data``: ``allowlist.json`` is generated
by ``scripts/build_allowlist.py`` (whose header states the review rules) and
``denylist.json`` is written by hand.
"""

from __future__ import annotations

import _compat_pickle
import functools
import json
import re
from dataclasses import dataclass
from importlib import resources

from mlwarden.exceptions import InvalidParameterError
from mlwarden.findings.taxonomy import Rule, Severity
from mlwarden.supplychain.policy import Policy
from mlwarden.supplychain.rules import (
    RULE_DANGEROUS_GLOBAL,
    RULE_HIDDEN_IMPORT,
    RULE_UNKNOWN_GLOBAL,
)

__all__ = [
    "GETATTR",
    "AllowList",
    "Decision",
    "DenyEntry",
    "decide",
    "deny_entry",
    "load_allowlist",
    "load_denylist",
    "normalize",
]

GETATTR = "builtins.getattr"
"""``builtins.getattr``: refused as a value, but ``getattr(<allowed global>, "name")``
with constant arguments is resolved statically to the dotted global
``<allowed global>.name`` and that name is decided instead (pickle writes builtin
methods such as ``zoneinfo.ZoneInfo._unpickle`` this way, in every protocol)."""

_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Decision:
    """What :func:`decide` says about one global.

    Parameters
    ----------
    name : str
        The normalised ``module.qualname`` that would be imported.
    allowed : bool
        Whether unpickling may import it.
    rule : Rule or None
        Why not: MLW-SUP-001 (denylisted), 002 (not on the allowlist) or 003
        (obfuscated name). ``None`` when allowed.
    severity : Severity or None
        The severity of the refusal (the denylist may be more specific than the rule).
    reason : str
        One sentence for a person.
    forced : bool
        True when a denylisted name was allowed by ``Policy(force=True)``.
    """

    name: str
    allowed: bool
    rule: Rule | None
    severity: Severity | None
    reason: str
    forced: bool = False


@dataclass(frozen=True)
class DenyEntry:
    """One denylist entry: a pattern, its severity and why it is dangerous.

    ``pattern`` is an exact ``module.qualname``, a module prefix ending in ``.*``
    (``os.*`` matches ``os.system`` and ``os.path.join``) or a glob with ``*``
    (``pandas.read_*``).
    """

    pattern: str
    severity: Severity
    reason: str


@dataclass(frozen=True)
class AllowList:
    """The shipped allowlist: exact names plus optional module prefixes."""

    version: str
    generated_with: dict[str, str]
    names: frozenset[str]
    prefixes: tuple[str, ...]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self.names or any(name.startswith(p) for p in self.prefixes)


def _read_data(filename: str) -> object:
    text = resources.files("mlwarden.supplychain").joinpath(f"data/{filename}")
    try:
        return json.loads(text.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # pragma: no cover - broken installation
        raise InvalidParameterError(
            f"mlwarden/supplychain/data/{filename}: cannot read the shipped list ({exc})"
        ) from None


@functools.cache
def load_allowlist() -> AllowList:
    """The shipped allowlist (``data/allowlist.json``), read once.

    Returns
    -------
    AllowList
        Its version, the library versions it was generated with, and its names.
    """
    raw = _read_data("allowlist.json")
    if not isinstance(raw, dict) or not isinstance(raw.get("globals"), list):
        raise InvalidParameterError("mlwarden/supplychain/data/allowlist.json: bad format")
    prefixes = tuple(str(p) for p in raw.get("modules_prefix", []))
    return AllowList(
        version=str(raw.get("version", "")),
        generated_with={str(k): str(v) for k, v in dict(raw.get("generated_with", {})).items()},
        names=frozenset(str(n) for n in raw["globals"]),
        prefixes=tuple(p if p.endswith(".") else p + "." for p in prefixes),
    )


@functools.cache
def load_denylist() -> tuple[DenyEntry, ...]:
    """The shipped denylist (``data/denylist.json``), read once.

    Returns
    -------
    tuple of DenyEntry
        In file order; the first entry that matches a name wins.
    """
    raw = _read_data("denylist.json")
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        raise InvalidParameterError("mlwarden/supplychain/data/denylist.json: bad format")
    return tuple(
        DenyEntry(
            pattern=str(e["pattern"]),
            severity=Severity.parse(str(e["severity"])),
            reason=str(e["reason"]),
        )
        for e in raw["entries"]
    )


@functools.cache
def _deny_matchers() -> tuple[dict[str, DenyEntry], tuple[DenyEntry, ...]]:
    exact: dict[str, DenyEntry] = {}
    other: list[DenyEntry] = []
    for e in load_denylist():
        if "*" in e.pattern:
            other.append(e)
        else:
            exact.setdefault(e.pattern, e)
    return exact, tuple(other)


def _matches(pattern: str, name: str) -> bool:
    if pattern.endswith(".*") and "*" not in pattern[:-2]:
        return name.startswith(pattern[:-1])
    return re.fullmatch(_glob_regex(pattern), name) is not None


@functools.cache
def _glob_regex(pattern: str) -> str:
    return ".*".join(re.escape(part) for part in pattern.split("*"))


def deny_entry(name: str) -> DenyEntry | None:
    """The first shipped denylist entry that matches ``name`` (``module.qualname``).

    A name also matches when any of its dotted prefixes is listed exactly
    (``builtins.getattr.__self__`` matches ``builtins.getattr``).
    """
    exact, other = _deny_matchers()
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        hit = exact.get(".".join(parts[:i]))
        if hit is not None:
            return hit
    for entry in other:
        if _matches(entry.pattern, name):
            return entry
    return None


def normalize(module: str, name: str) -> tuple[str, str]:
    """Map Python 2 names to Python 3 ones exactly as :class:`pickle.Unpickler` does.

    The restricted unpickler imports the mapped name, so scanner and loader look at
    the same global.
    """
    key = (module, name)
    if key in _compat_pickle.NAME_MAPPING:
        mapped: tuple[str, str] = _compat_pickle.NAME_MAPPING[key]
        return mapped
    if module in _compat_pickle.IMPORT_MAPPING:
        return _compat_pickle.IMPORT_MAPPING[module], name
    return module, name


def _plain(dotted: str) -> bool:
    return bool(dotted) and all(_PART.match(p) for p in dotted.split("."))


def _user_listed(entries: frozenset[str], full: str) -> bool:
    if full in entries:
        return True
    return any(e.endswith(".*") and full.startswith(e[:-1]) for e in entries)


def decide(module: str, name: str, policy: Policy | None = None) -> Decision:
    """Decide whether unpickling may import ``module``'s ``name``.

    Parameters
    ----------
    module : str
        The module as written in the pickle (``GLOBAL``/``STACK_GLOBAL``/``INST``).
    name : str
        The qualified name inside the module; dots mean an attribute walk.
    policy : Policy or None
        The user's additions; entries ending in ``.*`` match whole modules.

    Returns
    -------
    Decision
        ``allowed`` plus, when refused, the rule, severity and a reason.
    """
    return _decide(module, name, policy if policy is not None else _DEFAULT_POLICY)


@functools.lru_cache(maxsize=8192)
def _decide(module: str, name: str, policy: Policy) -> Decision:
    module, name = normalize(module, name)
    full = f"{module}.{name}"
    entry = deny_entry(full)
    if _user_listed(policy.deny, full):
        rule = RULE_DANGEROUS_GLOBAL if entry is not None else RULE_UNKNOWN_GLOBAL
        sev = entry.severity if entry is not None else rule.severity
        return Decision(full, False, rule, sev, f"{full} is refused by the scan policy")
    if entry is not None:
        if policy.force and full in policy.allow:
            return Decision(
                full,
                True,
                None,
                None,
                f"{full} is on the denylist ({entry.reason}) but the policy forces it",
                forced=True,
            )
        return Decision(full, False, RULE_DANGEROUS_GLOBAL, entry.severity, entry.reason)
    user_allowed = full in policy.allow or _user_listed(policy.allow, full)
    if not (_plain(module) and _plain(name)):
        if user_allowed:
            return Decision(full, True, None, None, f"{full} is allowed by the scan policy")
        return Decision(
            full,
            False,
            RULE_HIDDEN_IMPORT,
            RULE_HIDDEN_IMPORT.severity,
            f"the global {full!r} is not a plain Python name; benign pickles never "
            "contain such names",
        )
    shipped = load_allowlist()
    if "." in name and full not in shipped.names and full not in policy.allow:
        return Decision(
            full,
            False,
            RULE_HIDDEN_IMPORT,
            RULE_HIDDEN_IMPORT.severity,
            f"{module!r} / {name!r} walks attributes to reach {full}, which is not on the "
            "allowlist (a known way to smuggle a dangerous callable past scanners)",
        )
    if full in shipped or user_allowed:
        return Decision(full, True, None, None, f"{full} is allowed")
    return Decision(
        full,
        False,
        RULE_UNKNOWN_GLOBAL,
        RULE_UNKNOWN_GLOBAL.severity,
        f"{full} is not on the allowlist of known-safe globals; unpickling would import "
        "it and may call it",
    )
