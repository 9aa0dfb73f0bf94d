"""Threat taxonomies: MITRE ATLAS techniques, the OWASP ML Top 10, and mlwarden's rules.

Every finding carries a stable rule id (``MLW-EVA-001``). A :class:`Rule` holds
what does not change between runs: title, threat family, ATLAS and OWASP ids,
default severity and remediation. The ATLAS technique table ships with the package
(``findings/data/atlas_techniques_v5.6.0.tsv``) so no lookup ever needs the network.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from importlib import resources

from mlwarden.exceptions import InvalidParameterError

__all__ = [
    "ATLAS_VERSION",
    "OWASP_ML_TOP10",
    "RULES",
    "AtlasTechnique",
    "Rule",
    "Severity",
    "ThreatFamily",
    "atlas_techniques",
    "get_rule",
    "register_rule",
]

ATLAS_VERSION = "5.6.0"

OWASP_ML_TOP10: dict[str, str] = {
    "ML01": "Input Manipulation Attack",
    "ML02": "Data Poisoning Attack",
    "ML03": "Model Inversion Attack",
    "ML04": "Membership Inference Attack",
    "ML05": "Model Theft",
    "ML06": "AI Supply Chain Attacks",
    "ML07": "Transfer Learning Attack",
    "ML08": "Model Skewing",
    "ML09": "Output Integrity Attack",
    "ML10": "Model Poisoning",
}
"""OWASP Machine Learning Security Top 10 (2023), id → name."""

OWASP_URL = "https://owasp.org/www-project-machine-learning-security-top-10/"
ATLAS_URL = "https://atlas.mitre.org/techniques/"
DOCS_URL = "https://github.com/mlwarden/mlwarden/blob/main/docs/findings/"


class Severity(str, enum.Enum):
    """How bad a failed finding is, from ``info`` to ``critical``."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info up to 4 for critical."""
        return list(Severity).index(self)

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        """Parse a severity name, with an error that lists the valid ones."""
        if isinstance(value, Severity):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            valid = ", ".join(s.value for s in cls)
            raise InvalidParameterError(f"unknown severity {value!r}; use one of {valid}") from None


class ThreatFamily(str, enum.Enum):
    """The threat families mlwarden covers."""

    EVASION = "evasion"
    POISONING = "poisoning"
    THEFT = "theft"
    PRIVACY = "privacy"
    SUPPLY_CHAIN = "supply_chain"
    DEPLOYMENT = "deployment"


@dataclass(frozen=True)
class AtlasTechnique:
    """One MITRE ATLAS technique or sub-technique."""

    id: str
    name: str
    tactic: str
    parent: str

    @property
    def url(self) -> str:
        """Link to the technique's page."""
        return ATLAS_URL + self.id


@functools.cache
def atlas_techniques() -> dict[str, AtlasTechnique]:
    """The bundled ATLAS technique table, id → technique."""
    text = (
        resources.files("mlwarden.findings")
        .joinpath(f"data/atlas_techniques_v{ATLAS_VERSION}.tsv")
        .read_text(encoding="utf-8")
    )
    out: dict[str, AtlasTechnique] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [*line.split("\t"), "", "", ""][:4]
        out[parts[0]] = AtlasTechnique(*(p.strip() for p in parts))
    return out


@dataclass(frozen=True)
class Rule:
    """What a finding rule id stands for.

    Parameters
    ----------
    id : str
        Stable id, ``MLW-<FAMILY>-<NNN>``.
    title : str
        One line, phrased as the problem when the check fails.
    family : ThreatFamily
        Threat family.
    severity : Severity
        Severity of a failure unless the check raises or lowers it.
    atlas : tuple of str
        MITRE ATLAS technique ids.
    owasp : tuple of str
        OWASP ML Top 10 ids.
    description : str
        What the rule measures.
    remediation : str
        How to fix a failure.
    """

    id: str
    title: str
    family: ThreatFamily
    severity: Severity
    atlas: tuple[str, ...]
    owasp: tuple[str, ...]
    description: str
    remediation: str

    def __post_init__(self) -> None:
        techniques = atlas_techniques()
        for t in self.atlas:
            if t not in techniques:
                raise InvalidParameterError(f"rule {self.id}: unknown ATLAS technique {t}")
        for o in self.owasp:
            if o not in OWASP_ML_TOP10:
                raise InvalidParameterError(f"rule {self.id}: unknown OWASP ML Top 10 id {o}")

    @property
    def help_uri(self) -> str:
        """Link to the rule's documentation page."""
        return f"{DOCS_URL}{self.id}.md"


RULES: dict[str, Rule] = {}
"""Every known rule, id → rule. Checks register theirs with :func:`register_rule`."""


def register_rule(rule: Rule) -> Rule:
    """Add ``rule`` to :data:`RULES` (idempotent for an identical rule)."""
    existing = RULES.get(rule.id)
    if existing is not None and existing != rule:
        raise InvalidParameterError(f"rule id {rule.id} is already registered differently")
    RULES[rule.id] = rule
    return rule


def get_rule(rule_id: str) -> Rule:
    """Look a rule up by id."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise InvalidParameterError(f"unknown rule id {rule_id!r}") from None
