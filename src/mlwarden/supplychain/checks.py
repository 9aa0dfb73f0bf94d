"""The supply-chain audit check: the model's own file, scanned allowlist-first.

Threat model: the model file came from a registry, a colleague or a vendor and may have
been replaced or crafted so that loading it runs code (ATLAS AML.T0010.003 supply chain
compromise of a model, AML.T0011.000 unsafe AI artifacts; OWASP ML06). The check scans
the file a target was loaded from with :func:`~mlwarden.supplychain.scan_file` — the same
scanner ``mlwarden scan`` runs — and turns every issue into a failed finding. A file the
scanner cannot read completely is an error of the audit, never a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlwarden._progress import ProgressCallback
from mlwarden._registry import register
from mlwarden._validation import check_number
from mlwarden.audit.check import Check, CheckResult
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import ModelLoadError
from mlwarden.findings.finding import Finding
from mlwarden.findings.taxonomy import Rule, Severity, ThreatFamily, get_rule
from mlwarden.models.base import Capability, Target
from mlwarden.supplychain.policy import Policy
from mlwarden.supplychain.result import FileResult, ScanIssue, Verdict
from mlwarden.supplychain.rules import (
    RULE_DANGEROUS_GLOBAL,
    RULE_EMBEDDED_PICKLE,
    RULE_GGUF_TEMPLATE,
    RULE_HIDDEN_IMPORT,
    RULE_KERAS_CODE,
    RULE_MALFORMED,
    RULE_ONNX,
    RULE_SKOPS_UNTRUSTED,
    RULE_UNKNOWN_GLOBAL,
)

__all__ = ["ModelFileCheck", "file_findings"]

_MAX_EVIDENCE = 20


@register("check", "supplychain.model-file")
class ModelFileCheck(Check):
    """Scan the file the model was loaded from for code that runs when it is loaded.

    Parameters
    ----------
    allow : sequence of str
        Extra globals (``module.qualname``) to accept, e.g. the user's own model class.
    policy : str or None
        A policy file (TOML; see :class:`~mlwarden.supplychain.Policy`).
    max_file_gb : float
        Files larger than this are not scanned, and the audit reports an error (a cap
        on the work a hostile file can cause; the policy file's limit, if lower, wins).
    """

    family: ClassVar[ThreatFamily] = ThreatFamily.SUPPLY_CHAIN
    rules: ClassVar[tuple[Rule, ...]] = (
        RULE_DANGEROUS_GLOBAL, RULE_UNKNOWN_GLOBAL, RULE_HIDDEN_IMPORT, RULE_EMBEDDED_PICKLE,
        RULE_KERAS_CODE, RULE_ONNX, RULE_GGUF_TEMPLATE, RULE_MALFORMED, RULE_SKOPS_UNTRUSTED,
    )  # fmt: skip
    requires: ClassVar[Capability] = Capability.NONE
    summary: ClassVar[str] = "model file: allowlist-first scan for code that runs when it loads"
    needs: ClassVar[str] = "a model loaded from a file"

    def __init__(
        self, *, allow: Sequence[str] = (), policy: str | None = None, max_file_gb: float = 1024.0
    ) -> None:
        self.allow = allow
        self.policy = policy
        self.max_file_gb = max_file_gb

    def skip_reason(self, target: Target, data: Dataset) -> str | None:
        if target.source is None:
            return f"{target.name!r} was not loaded from a file: there is no model file to scan"
        return None

    def validate(self, target: Target, data: Dataset) -> None:
        self.require_applicable(target, data)  # model files are scanned without labels
        check_number(self.id, "max_file_gb", self.max_file_gb, low=0, low_open=True)
        self._policy()

    def _policy(self) -> Policy:
        base = Policy.load(self.policy) if self.policy is not None else Policy()
        cap = int(self.max_file_gb * 1024**3)
        if base.max_file_bytes is None or base.max_file_bytes > cap:
            base = replace(base, max_file_bytes=cap)
        return base.with_allowed(tuple(self.allow))

    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        from mlwarden.supplychain.scanner import scan_file

        assert target.source is not None  # validate() ran
        path = str(target.source)
        result = scan_file(Path(path), policy=self._policy())
        if result.verdict is Verdict.ERROR:
            raise ModelLoadError(
                f"{path}: the model file could not be scanned completely: "
                + "; ".join(result.errors)
            )
        metrics: dict[str, Any] = {
            "format": result.format,
            "verdict": result.verdict.value,
            "issues": len(result.issues),
            "globals": len(result.globals),
            "bytes_scanned": result.bytes_scanned,
        }
        findings = file_findings(result, target=target.name, check=self.id)
        return CheckResult(findings=findings, metrics=metrics)


def file_findings(result: FileResult, *, target: str, check: str) -> list[Finding]:
    """The findings for one scanned file: a failed finding per rule with issues, or a
    passed one when the file was scanned completely and nothing was found.

    Parameters
    ----------
    result : FileResult
        What :func:`~mlwarden.supplychain.scan_file` returned.
    target : str
        Name the findings are about (the model's name, or the file's).
    check : str
        Id of the check that produced them.
    """
    by_rule: dict[str, list[ScanIssue]] = {}
    for issue in result.issues:
        by_rule.setdefault(issue.rule_id, []).append(issue)
    findings = [
        _failed(get_rule(rule_id), issues, target, check, result.path, result.format)
        for rule_id, issues in sorted(by_rule.items())
    ]
    if not findings and result.verdict is Verdict.SAFE:
        findings.append(
            Finding.from_rule(
                RULE_UNKNOWN_GLOBAL,
                target=target,
                check=check,
                metric="unsafe_constructs",
                value=0.0,
                threshold=0.0,
                higher_is_better=False,
                description=(
                    f"The {result.format} file was scanned completely "
                    f"({result.bytes_scanned} bytes parsed) and everything it imports or "
                    "calls is on the allowlist: loading it runs no code of its own."
                ),
                evidence={
                    "format": result.format,
                    "globals": result.globals[:50],
                    "notes": result.notes,
                },
                location=result.path,
            )
        )
    return findings


def _failed(
    rule: Rule, issues: list[ScanIssue], target: str, check: str, path: str, fmt: str
) -> Finding:
    worst = max((i.severity for i in issues), key=lambda s: s.rank, default=rule.severity)
    constructs = sorted({i.construct for i in issues})
    return Finding.from_rule(
        rule,
        target=target,
        check=check,
        metric="unsafe_constructs",
        value=float(len(issues)),
        threshold=0.0,
        higher_is_better=False,
        severity=Severity.parse(worst),
        description=(
            f"{len(issues)} construct(s) in the {fmt} file: "
            + ", ".join(constructs[:8])
            + (" ..." if len(constructs) > 8 else "")
            + f". {rule.description}"
        ),
        evidence={
            "format": fmt,
            "issues": [
                {"location": i.location, "construct": i.construct, "message": i.message}
                for i in issues[:_MAX_EVIDENCE]
            ],
            "more": max(0, len(issues) - _MAX_EVIDENCE),
        },
        location=path,
    )
