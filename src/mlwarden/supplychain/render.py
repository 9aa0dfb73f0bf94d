"""A scan result as text, JSON and SARIF 2.1.0.

* :func:`render_text` prints the result to a ``rich`` console the caller owns: every
  file with its verdict, then each issue (file, location, construct, message), then
  what could not be scanned, then what was skipped (and why), then one summary line.
* :func:`to_json` is the machine-readable document described by
  ``mlwarden/supplychain/schema/scan.schema.json`` (:func:`load_scan_schema`).
* :func:`to_sarif` is a SARIF 2.1.0 log for GitHub code scanning and other viewers:
  one ``result`` per issue, the supply-chain rules with their MITRE ATLAS and OWASP
  tags, every file as an ``artifact``, and every file or path that could not be
  scanned as an ``error`` notification of an invocation whose ``executionSuccessful``
  is then false — "could not scan" never looks like success. Every skipped path is a
  ``note`` notification, and listed in the invocation's ``skipped`` property.

This module imports neither NumPy nor the audit report writers, so ``mlwarden scan``
starts fast.
"""

from __future__ import annotations

import functools
import re
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlwarden.supplychain.rules  # noqa: F401 - registers the MLW-SUP-* rules
from mlwarden.findings._sarif import (
    INFORMATION_URI,
    LEVEL,
    SARIF_SCHEMA_URI,
    file_uri,
    reporting_descriptor,
    rule_help_uri,
)
from mlwarden.findings.taxonomy import RULES, Rule, Severity, ThreatFamily
from mlwarden.supplychain.result import FileResult, ScanIssue, ScanResult, SkippedPath, Verdict

if TYPE_CHECKING:
    from rich.console import Console

    from mlwarden.supplychain.policy import Policy

__all__ = [
    "SCAN_SCHEMA_VERSION",
    "load_scan_schema",
    "render_json",
    "render_sarif",
    "render_text",
    "summary",
    "summary_line",
    "text_report",
    "to_json",
    "to_sarif",
]

SCAN_SCHEMA_VERSION = "1.1"
"""Version of the JSON scan document (:func:`to_json`). 1.1 added ``skipped`` (and its
count in ``summary``) and the policy's ``exclude``; minor versions only add fields."""

_SCHEMA_RESOURCE = "schema/scan.schema.json"
_DEFAULT_ATLAS = ("AML.T0010.003", "AML.T0011.000")
_DEFAULT_OWASP = ("ML06",)
_SEVERITIES_DESC: tuple[Severity, ...] = tuple(sorted(Severity, key=lambda s: -s.rank))
_FINGERPRINT_KEY = "mlwardenScan/v1"
_LOCATION = re.compile(r"^(?P<member>.*?)(?:@(?P<offset>\d+))?$", re.S)
_VERDICT_LABEL = {Verdict.SAFE: "SAFE", Verdict.UNSAFE: "UNSAFE", Verdict.ERROR: "ERROR"}
_VERDICT_STYLE = {Verdict.SAFE: "green", Verdict.UNSAFE: "bold red", Verdict.ERROR: "yellow"}
_SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


# --------------------------------------------------------------------------- helpers


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover - unreachable


def _rule(rule_id: str) -> Rule | None:
    return RULES.get(rule_id)


def _refs(rule_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """ATLAS and OWASP ids of a rule (the supply-chain ones for an unregistered id)."""
    rule = _rule(rule_id)
    if rule is not None:
        return rule.atlas, rule.owasp
    return _DEFAULT_ATLAS, _DEFAULT_OWASP


def _split_location(location: str) -> tuple[str, int | None]:
    """``"archive/data.pkl@1234"`` → ``("archive/data.pkl", 1234)``; ``"@12"`` → ``("", 12)``."""
    match = _LOCATION.match(location)
    if match is None:  # pragma: no cover - the pattern matches every string
        return location, None
    offset = match.group("offset")
    return match.group("member"), int(offset) if offset is not None else None


def _sorted_issues(result: ScanResult) -> list[tuple[int, FileResult, ScanIssue]]:
    """Every issue with its file's index: in file order, most severe first within a file."""
    rows = [(i, f, issue) for i, f in enumerate(result.files) for issue in f.issues]
    rows.sort(key=lambda r: (r[0], -r[2].severity.rank, r[2].rule_id))
    return rows


def _tool_version() -> str:
    from mlwarden import __version__

    return __version__


def _allowlist_version() -> str | None:
    """Version of the shipped allowlist of safe globals, or ``None`` when unknown."""
    try:
        module = import_module("mlwarden.supplychain.allowlist")
        version = getattr(module, "ALLOWLIST_VERSION", None)
        if version is None and hasattr(module, "load_allowlist"):
            version = getattr(module.load_allowlist(), "version", None)
    except Exception:  # the version is informative: never fail a report over it
        return None
    return str(version) if version else None


def _error_text(path: str, error: str) -> str:
    """``error``, prefixed with the file's path unless it already names it."""
    return error if path in error else f"{path}: {error}"


def summary(result: ScanResult) -> dict[str, Any]:
    """Counts of a scan.

    Parameters
    ----------
    result : ScanResult
        The scan.

    Returns
    -------
    dict
        ``files``, ``safe``, ``unsafe``, ``error`` (files that could not be scanned),
        ``path_errors`` (paths that do not exist, empty folders), ``skipped`` (files
        and folders deliberately not read), ``issues`` and ``severities`` (issues per
        severity, ``critical`` to ``info``).
    """
    verdicts = [f.verdict for f in result.files]
    issues = result.issues
    return {
        "files": len(result.files),
        "safe": verdicts.count(Verdict.SAFE),
        "unsafe": verdicts.count(Verdict.UNSAFE),
        "error": verdicts.count(Verdict.ERROR),
        "path_errors": len(result.errors),
        "skipped": len(result.skipped),
        "issues": len(issues),
        "severities": {s.value: sum(i.severity is s for i in issues) for s in _SEVERITIES_DESC},
    }


def _overall(result: ScanResult) -> str:
    return {0: "safe", 1: "unsafe"}.get(result.exit_code, "error")


def summary_line(result: ScanResult) -> str:
    """One line for a person, e.g. ``"UNSAFE: 1 of 3 files unsafe, 1 safe, 1 could not
    be scanned, 2 skipped; 2 issues (1 critical, 1 high). Exit code 1."``"""
    s = summary(result)
    code = result.exit_code
    n = s["files"]
    skipped = f", {s['skipped']} skipped" if s["skipped"] else ""
    if n == 0:
        head = "ERROR: nothing was scanned"
        if s["path_errors"]:
            head += f" ({_plural(s['path_errors'], 'path')} could not be scanned)"
        return f"{head}{skipped}. Exit code {code}."
    parts: list[str] = []
    if s["unsafe"]:
        parts.append(f"{s['unsafe']} of {_plural(n, 'file')} unsafe")
    if s["error"]:
        parts.append(f"{s['error']} could not be scanned")
    if s["path_errors"]:
        parts.append(f"{_plural(s['path_errors'], 'path')} could not be scanned")
    if s["safe"]:
        parts.append(f"{s['safe']} safe" if parts else f"{_plural(n, 'file')} scanned, all safe")
    text = f"{_overall(result).upper()}: {', '.join(parts)}{skipped}"
    if s["issues"]:
        counts = ", ".join(f"{v} {k}" for k, v in s["severities"].items() if v)
        text += f"; {_plural(s['issues'], 'issue')} ({counts})"
    return f"{text}. Exit code {code}."


# --------------------------------------------------------------------------- text


_Line = list[tuple[str, str | None]]
"""One line of the text output: ``(text, rich style or None)`` segments."""


def _text_lines(result: ScanResult, notes: bool) -> list[_Line]:
    lines: list[_Line] = []
    width = max((len(f.path) for f in result.files), default=0)
    for f in result.files:
        verdict = f.verdict
        facts = [f.format]
        if f.issues:
            facts.append(_plural(len(f.issues), "issue"))
        if f.errors:
            facts.append("could not scan" if not f.issues else "partly scanned")
        if f.globals:
            facts.append(_plural(len(f.globals), "global"))
        facts.append(_size(f.bytes_scanned))
        lines.append(
            [
                (f"{_VERDICT_LABEL[verdict]:<6}", _VERDICT_STYLE[verdict]),
                (f"  {f.path.ljust(width)}  ", None),
                (" · ".join(facts), "dim"),
            ]
        )
        if notes:
            lines += [[(f"        note: {note}", "dim")] for note in f.notes]

    rows = _sorted_issues(result)
    if rows:
        lines += [[], [(f"Issues ({len(rows)})", "bold")]]
        for _, f, issue in rows:
            where = f"{f.path}:{issue.location}" if issue.location else f.path
            sev = issue.severity
            lines.append(
                [
                    ("  ", None),
                    (f"{sev.value.upper():<8}", _SEVERITY_STYLE[sev]),
                    (f" {issue.rule_id}  {where}  ", None),
                    (issue.construct, "bold"),
                ]
            )
            lines.append([(f"           {issue.message}", None)])
        for rule_id in sorted({issue.rule_id for _, _, issue in rows}):
            lines.append([(f"  {rule_id} — how to fix: {rule_help_uri(rule_id)}", "dim")])

    failed = [_error_text(f.path, e) for f in result.files for e in f.errors]
    failed += result.errors
    if failed:
        lines += [[], [(f"Could not scan ({len(failed)})", "bold yellow")]]
        lines += [[(f"  {error}", None)] for error in failed]

    if result.skipped:
        lines += [[], [(f"Skipped ({len(result.skipped)})", "bold")]]
        shown = [_skipped_path(s) for s in result.skipped]
        pad = max(len(path) for path in shown)
        lines += [
            [(f"  {path.ljust(pad)}", None), (f"  {s.reason}", "dim")]
            for path, s in zip(shown, result.skipped, strict=True)
        ]

    style = _VERDICT_STYLE[Verdict(_overall(result))]
    lines += [[], [(summary_line(result), style)]]
    return lines


def _skipped_path(s: SkippedPath) -> str:
    """The path, with a trailing ``/`` for a folder."""
    return s.path + "/" if s.folder and not s.path.endswith("/") else s.path


def render_text(result: ScanResult, console: Console, *, notes: bool = True) -> None:
    """Print the scan to ``console``: files and verdicts, issues, errors, skipped paths,
    a summary line.

    Parameters
    ----------
    result : ScanResult
        The scan.
    console : rich.console.Console
        Where to print (the caller owns it; the library itself never prints). Names
        from the file are printed literally, never read as markup.
    notes : bool, default=True
        Also print each file's notes (e.g. skipped tensor storage) under it.
    """
    from rich.text import Text

    for line in _text_lines(result, notes):
        text = Text()
        for part, style in line:
            text.append(part, style=style)
        console.print(text, highlight=False, soft_wrap=True)


def text_report(result: ScanResult, *, notes: bool = True) -> str:
    """:func:`render_text`'s lines as plain text (no colours, no ``rich``).

    Parameters
    ----------
    result : ScanResult
        The scan.
    notes : bool, default=True
        Also list each file's notes under it.

    Returns
    -------
    str
        One line per line of :func:`render_text`, ending with a newline.
    """
    return "".join("".join(text for text, _ in line) + "\n" for line in _text_lines(result, notes))


# --------------------------------------------------------------------------- JSON


def _issue_json(issue: ScanIssue) -> dict[str, Any]:
    rule = _rule(issue.rule_id)
    atlas, owasp = _refs(issue.rule_id)
    return {
        "rule_id": issue.rule_id,
        "title": rule.title if rule is not None else issue.rule_id,
        "severity": issue.severity.value,
        "location": issue.location,
        "construct": issue.construct,
        "message": issue.message,
        "atlas": list(atlas),
        "owasp": list(owasp),
        "help_uri": rule_help_uri(issue.rule_id),
    }


def _file_json(f: FileResult) -> dict[str, Any]:
    return {
        "path": f.path,
        "format": f.format,
        "verdict": f.verdict.value,
        "issues": [_issue_json(i) for i in f.issues],
        "errors": list(f.errors),
        "notes": list(f.notes),
        "globals": list(f.globals),
        "bytes_scanned": int(f.bytes_scanned),
        "seconds": round(float(f.seconds), 6),
    }


def _policy_json(policy: Policy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {
        "allow": sorted(policy.allow),
        "deny": sorted(policy.deny),
        "force": policy.force,
        "max_file_bytes": policy.max_file_bytes,
        "exclude": list(policy.exclude),
    }


def to_json(result: ScanResult, *, policy: Policy | None = None) -> dict[str, Any]:
    """The scan as a JSON document (see :func:`load_scan_schema`).

    Parameters
    ----------
    result : ScanResult
        The scan.
    policy : Policy, optional
        The policy the scan ran with, recorded in the document (``null`` when omitted).

    Returns
    -------
    dict
        JSON-serialisable: ``schema_version``, ``tool``, ``allowlist_version``,
        ``verdict``, ``exit_code``, ``summary``, ``policy``, ``files`` (path, format,
        verdict, issues with rule id, severity, location, construct, message, ATLAS
        and OWASP ids; errors, notes, globals, bytes scanned, seconds), ``errors``
        (paths that could not be scanned) and ``skipped`` (path, reason, and whether a
        whole folder was skipped).
    """
    return {
        "schema_version": SCAN_SCHEMA_VERSION,
        "tool": {"name": "mlwarden", "version": _tool_version()},
        "allowlist_version": _allowlist_version(),
        "verdict": _overall(result),
        "exit_code": result.exit_code,
        "summary": summary(result),
        "policy": _policy_json(policy),
        "files": [_file_json(f) for f in result.files],
        "errors": list(result.errors),
        "skipped": [
            {"path": s.path, "reason": s.reason, "folder": s.folder} for s in result.skipped
        ],
    }


def render_json(result: ScanResult, *, policy: Policy | None = None, indent: int = 2) -> str:
    """:func:`to_json` as UTF-8 JSON text ending with a newline."""
    import json

    doc = to_json(result, policy=policy)
    return json.dumps(doc, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"


@functools.cache
def _schema_text() -> str:
    from importlib import resources

    return (
        resources.files("mlwarden.supplychain")
        .joinpath(_SCHEMA_RESOURCE)
        .read_text(encoding="utf-8")
    )


def load_scan_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :func:`to_json`'s document.

    Returns
    -------
    dict
        A fresh copy of ``mlwarden/supplychain/schema/scan.schema.json``.
    """
    import json

    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


# --------------------------------------------------------------------------- SARIF


def _descriptor(rule_id: str, issues: list[ScanIssue]) -> dict[str, Any]:
    rule = _rule(rule_id)
    if rule is not None:
        return reporting_descriptor(
            rule_id,
            title=rule.title,
            description=rule.description,
            remediation=rule.remediation,
            family=rule.family.value,
            atlas=rule.atlas,
            owasp=rule.owasp,
            severity=rule.severity,
        )
    return reporting_descriptor(
        rule_id,
        title=rule_id,
        description=issues[0].message if issues else rule_id,
        remediation="",
        family=ThreatFamily.SUPPLY_CHAIN.value,
        atlas=_DEFAULT_ATLAS,
        owasp=_DEFAULT_OWASP,
        severity=max((i.severity for i in issues), key=lambda s: s.rank, default=Severity.HIGH),
    )


def _fingerprint(issue: ScanIssue, uri: str) -> str:
    import hashlib

    key = "\x1f".join((issue.rule_id, uri, issue.location, issue.construct)).encode()
    return hashlib.sha256(key).hexdigest()[:32]


def _sarif_result(
    issue: ScanIssue, uri: str, artifact: int, rule_index: int, path: str
) -> dict[str, Any]:
    member, offset = _split_location(issue.location)
    text = issue.message
    if issue.construct and issue.construct not in text:
        text = f"{issue.construct}: {text}"
    where = [f"member {member}"] if member else []
    if offset is not None:
        where.append(f"byte offset {offset}")
    if where:
        text += f" ({', '.join(where)})"
    location: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": {"uri": uri, "index": artifact},
            "region": {"startLine": 1},
        }
    }
    if issue.location:
        location["logicalLocations"] = [
            {
                "name": member or Path(path).name,
                "fullyQualifiedName": f"{path}:{issue.location}",
                "kind": "resource",
            }
        ]
    fp = _fingerprint(issue, uri)
    properties: dict[str, Any] = {
        "severity": issue.severity.value,
        "construct": issue.construct,
        "location": issue.location,
    }
    if member:
        properties["member"] = member
    if offset is not None:
        properties["byteOffset"] = offset
    return {
        "ruleId": issue.rule_id,
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": LEVEL[issue.severity],
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {_FINGERPRINT_KEY: fp, "primaryLocationLineHash": f"{fp}:1"},
        "properties": properties,
    }


def _notification(
    text: str, uri: str | None = None, index: int | None = None, *, level: str = "error"
) -> dict[str, Any]:
    note: dict[str, Any] = {"level": level, "message": {"text": text}}
    if uri is not None:
        artifact: dict[str, Any] = {"uri": uri}
        if index is not None:
            artifact["index"] = index
        note["locations"] = [{"physicalLocation": {"artifactLocation": artifact}}]
    return note


def to_sarif(
    result: ScanResult,
    *,
    base_dir: str | Path | None = None,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """The scan as a SARIF 2.1.0 log with one run.

    Parameters
    ----------
    result : ScanResult
        The scan.
    base_dir : str or pathlib.Path, optional
        Folder that file URIs are made relative to (the repository root for GitHub
        code scanning); defaults to the current directory. Files outside it get an
        absolute ``file://`` URI.
    policy : Policy, optional
        The policy the scan ran with, recorded in the run's properties.

    Returns
    -------
    dict
        A JSON-serialisable SARIF log. Every issue is a ``result`` (``level`` from its
        severity: ``error`` for critical and high, ``warning`` for medium, ``note``
        for low); every file is an ``artifact`` with its verdict and format; every
        file or path that could not be scanned is an ``error`` notification, and the
        invocation's ``executionSuccessful`` is then false, as it is when nothing was
        scanned. Every skipped path is a ``note`` notification (which does not make
        the run unsuccessful) and an entry of the invocation's ``skipped`` property
        (path, reason, folder). ``invocations[0].exitCode`` is the scan's exit code.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    cwd = Path.cwd()

    def uri_of(path: str) -> str:
        p = Path(path)
        if not p.is_absolute() and base != cwd:
            p = cwd / p
        return file_uri(str(p), base)

    by_rule: dict[str, list[ScanIssue]] = {
        rid: [] for rid in sorted(RULES) if rid.startswith("MLW-SUP-")
    }
    for issue in result.issues:
        by_rule.setdefault(issue.rule_id, []).append(issue)
    rule_ids = sorted(by_rule)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    uris = [uri_of(f.path) for f in result.files]

    artifacts = [
        {
            "location": {"uri": uri},
            "roles": ["analysisTarget"],
            "properties": {
                "verdict": f.verdict.value,
                "format": f.format,
                "bytesScanned": int(f.bytes_scanned),
                "seconds": round(float(f.seconds), 6),
                "globals": list(f.globals),
                "notes": list(f.notes),
            },
        }
        for f, uri in zip(result.files, uris, strict=True)
    ]
    results = [
        _sarif_result(issue, uris[i], i, index[issue.rule_id], f.path)
        for i, f, issue in _sorted_issues(result)
    ]
    notifications = [
        _notification(f"Could not scan {_error_text(f.path, error)}", uris[i], i)
        for i, f in enumerate(result.files)
        for error in f.errors
    ]
    notifications += [_notification(f"Could not scan: {error}") for error in result.errors]
    if not result.files:
        what = "every file found was skipped" if result.skipped else "no file was found"
        notifications.append(_notification(f"Nothing was scanned: {what}."))

    complete = bool(result.files) and not notifications
    notifications += [
        _notification(f"Skipped {_skipped_path(s)}: {s.reason}", uri_of(s.path), level="note")
        for s in result.skipped
    ]
    invocation: dict[str, Any] = {
        "executionSuccessful": complete,
        "exitCode": result.exit_code,
    }
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    if result.skipped:
        invocation["properties"] = {
            "skipped": [
                {"path": s.path, "uri": uri_of(s.path), "reason": s.reason, "folder": s.folder}
                for s in result.skipped
            ]
        }

    properties: dict[str, Any] = {
        "verdict": _overall(result),
        "exitCode": result.exit_code,
        "summary": summary(result),
        "allowlistVersion": _allowlist_version(),
        "incomplete": not complete,
    }
    policy_doc = _policy_json(policy)
    if policy_doc is not None:
        properties["policy"] = policy_doc
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "mlwarden",
                "version": _tool_version(),
                "informationUri": INFORMATION_URI,
                "rules": [_descriptor(rid, by_rule[rid]) for rid in rule_ids],
            }
        },
        "invocations": [invocation],
        "artifacts": artifacts,
        "results": results,
        "properties": properties,
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render_sarif(
    result: ScanResult, *, base_dir: str | Path | None = None, policy: Policy | None = None
) -> str:
    """:func:`to_sarif` as JSON text ending with a newline."""
    import json

    log = to_sarif(result, base_dir=base_dir, policy=policy)
    return json.dumps(log, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
