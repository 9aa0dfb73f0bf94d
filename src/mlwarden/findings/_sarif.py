"""SARIF 2.1.0 and reference-link building blocks shared by every SARIF writer.

The audit report (:mod:`mlwarden.findings.render.sarif`) and the model-file scan
(:mod:`mlwarden.supplychain.render`) both build their logs from these. This module
imports only the taxonomy (no NumPy, no Jinja2) so that ``mlwarden scan`` starts fast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlwarden.findings.taxonomy import (
    ATLAS_URL,
    DOCS_URL,
    OWASP_ML_TOP10,
    OWASP_URL,
    RULES,
    Severity,
    atlas_techniques,
)

__all__ = [
    "INFORMATION_URI",
    "LEVEL",
    "SARIF_SCHEMA_URI",
    "SECURITY_SEVERITY",
    "atlas_link",
    "file_uri",
    "owasp_link",
    "reporting_descriptor",
    "rule_help_uri",
    "rule_name",
]

INFORMATION_URI = "https://github.com/mlwarden/mlwarden"
"""Home page of the tool, as written into SARIF and the HTML footer."""

SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
"""The ``$schema`` written into every log: the OASIS standard schema."""

SECURITY_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
"""GitHub's ``security-severity`` score per severity (critical > 9, high 7-8.9, ...)."""

LEVEL: dict[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
"""SARIF ``level`` of a failed result per severity."""


def rule_help_uri(rule_id: str) -> str:
    """Documentation link of a rule (registered or not)."""
    rule = RULES.get(rule_id)
    return rule.help_uri if rule is not None else f"{DOCS_URL}{rule_id}.md"


def atlas_link(technique_id: str) -> tuple[str, str, str]:
    """``(id, name, url)`` of a MITRE ATLAS technique; name is empty when unknown.

    A sub-technique is named after its parent too: ``"AI Supply Chain Compromise: Model"``.
    """
    table = atlas_techniques()
    tech = table.get(technique_id)
    if tech is None:
        return technique_id, "", ATLAS_URL + technique_id
    parent = table.get(tech.parent) if tech.parent else None
    name = f"{parent.name}: {tech.name}" if parent else tech.name
    return technique_id, name, ATLAS_URL + technique_id


def owasp_link(owasp_id: str) -> tuple[str, str, str]:
    """``(id, name, url)`` of an OWASP ML Top 10 entry."""
    return owasp_id, OWASP_ML_TOP10.get(owasp_id, ""), OWASP_URL


def rule_name(title: str) -> str:
    """``"Model is evaded by PGD"`` → ``"ModelIsEvadedByPGD"``."""
    words = re.findall(r"[A-Za-z0-9]+", title)
    return "".join(w[:1].upper() + w[1:] for w in words) or "Rule"


def file_uri(location: str, base_dir: Path | None) -> str:
    """A file location as a SARIF ``artifactLocation.uri``, relative where possible.

    Parameters
    ----------
    location : str
        A path (absolute or relative to the current directory) or a URI.
    base_dir : pathlib.Path or None
        Folder that absolute paths are made relative to; a path outside it (or any
        absolute path when ``None``) becomes an absolute ``file://`` URI.

    Returns
    -------
    str
        A percent-encoded relative reference (``models/a%20b.pkl``) or an absolute URI.
    """
    from urllib.parse import quote, urlsplit  # here: ``mlwarden scan`` text output skips it

    scheme = urlsplit(location).scheme
    if len(scheme) > 1 and "://" in location:  # already a URI (http://, s3://, file://)
        return location
    path = Path(location)
    if path.is_absolute() and base_dir is not None:
        try:
            rel = os.path.relpath(path, base_dir)
        except ValueError:  # another drive on Windows
            rel = ""
        if rel and not rel.startswith(".."):
            return quote(Path(rel).as_posix(), safe="/")
        return path.as_uri()
    if path.is_absolute():
        return path.as_uri()
    return quote(path.as_posix(), safe="/")


def reporting_descriptor(
    rule_id: str,
    *,
    title: str,
    description: str,
    remediation: str,
    family: str,
    atlas: Iterable[str],
    owasp: Iterable[str],
    severity: Severity,
) -> dict[str, Any]:
    """A SARIF ``reportingDescriptor`` for a rule: help text, links, tags, severity score.

    Parameters
    ----------
    rule_id : str
        The rule id (``MLW-SUP-001``).
    title, description, remediation : str
        Short description, full description and how to fix.
    family : str
        Threat family (a tag).
    atlas, owasp : iterable of str
        MITRE ATLAS technique ids and OWASP ML Top 10 ids (tags and references).
    severity : Severity
        Default severity: the default ``level`` and GitHub's ``security-severity``.

    Returns
    -------
    dict
        The descriptor, JSON-serialisable.
    """
    atlas, owasp = tuple(atlas), tuple(owasp)
    description = description or title
    help_uri = rule_help_uri(rule_id)

    refs_text, refs_md = [], []
    for tid, name, url in (atlas_link(t) for t in atlas):
        refs_text.append(f"MITRE ATLAS {tid} {name}".rstrip())
        refs_md.append(f"- MITRE ATLAS [{tid}]({url}) {name}".rstrip())
    for oid, name, url in (owasp_link(o) for o in owasp):
        refs_text.append(f"OWASP ML Top 10 {oid} {name}".rstrip())
        refs_md.append(f"- OWASP ML Top 10 [{oid}]({url}) {name}".rstrip())

    text = [description]
    md = [f"**{title}**", "", description]
    if remediation:
        text += ["", f"Remediation: {remediation}"]
        md += ["", "**Remediation**", "", remediation]
    if refs_text:
        text += ["", "References: " + "; ".join(refs_text)]
        md += ["", "**References**", "", *refs_md]
    text += ["", f"Documentation: {help_uri}"]
    md += ["", f"[Rule documentation]({help_uri})"]

    return {
        "id": rule_id,
        "name": rule_name(title),
        "shortDescription": {"text": title},
        "fullDescription": {"text": description},
        "help": {"text": "\n".join(text), "markdown": "\n".join(md)},
        "helpUri": help_uri,
        "defaultConfiguration": {"level": LEVEL[severity]},
        "properties": {
            "tags": ["security", family, *atlas, *owasp],
            "security-severity": SECURITY_SEVERITY[severity],
        },
    }
