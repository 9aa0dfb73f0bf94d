"""The :class:`Report`: findings, metrics, errors and skipped checks of one audit, kept apart.

"No findings" must never hide "could not check": a check that raised is an entry in
:attr:`Report.errors`, one that did not apply (say, PGD on a model without
gradients) is an entry in :attr:`Report.skipped`, and neither is a pass.

Metrics are nested ``metrics[target][check]``. Two keys inside a check's metrics
have a meaning the renderers know:

``curves``
    a list of ``{"id", "title", "x_label", "y_label", "x": [...], "y": [...]}``;
    curves with the same ``id`` from different targets are drawn in one plot.
``tables``
    a list of ``{"title", "columns": [...], "rows": [[...], ...]}`` shown as tables.
"""

from __future__ import annotations

import math
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np

from mlwarden.findings.finding import Finding
from mlwarden.findings.taxonomy import Severity

__all__ = ["REPORT_SCHEMA_VERSION", "Report", "collect_versions"]

REPORT_SCHEMA_VERSION = "1.0"
"""Version of the JSON report format (``findings/schema/report.schema.json``)."""

_VERSIONED = ("mlwarden", "numpy", "scipy", "scikit-learn", "pandas", "torch", "onnxruntime")


def collect_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape results (those installed)."""
    out = {"python": platform.python_version()}
    for dist in _VERSIONED:
        if dist in ("torch", "onnxruntime") and dist not in sys.modules:
            # Only report frameworks that were actually used in this process.
            continue
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Report:
    """Everything one audit produced.

    Attributes
    ----------
    findings : list of Finding
        Every verdict, passed or failed.
    metrics : dict
        ``metrics[target][check]`` → JSON-serialisable measurements.
    errors : list of dict
        Checks that raised: ``{"check", "target", "error", "message"}``.
    skipped : list of dict
        Checks that did not apply: ``{"check", "target", "reason"}``.
    targets : list of dict
        Descriptions of the audited models (name, kind, source, SHA-256, ...).
    data : dict or None
        Description of the audit data (name, source, SHA-256, rows, ...).
    seed : int or None
        The seed the audit ran with.
    timings : dict
        ``"<target>/<check>"`` → seconds.
    params : dict
        ``"<check>"`` → the check's parameters.
    versions : dict
        Package versions.
    created_at : str
        ISO-8601 UTC time the report was created.
    duration_s : float
        Wall time of the whole audit.
    title : str
        Report title.
    signatures : list of dict
        Signature verifications done before the models were loaded
        (:meth:`mlwarden.supplychain.sign.VerifyResult.to_dict`); written to the
        provenance when not empty.
    """

    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] | None = None
    seed: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=collect_versions)
    created_at: str = field(default_factory=_utcnow)
    duration_s: float = 0.0
    title: str = "mlwarden audit"
    signatures: list[dict[str, Any]] = field(default_factory=list)

    # ------------------------------------------------------------------ queries
    @property
    def failed(self) -> list[Finding]:
        """Findings that failed, most severe first."""
        return sorted(
            (f for f in self.findings if not f.passed),
            key=lambda f: (-f.severity.rank, f.rule_id, f.target),
        )

    def failures_at(self, severity: Severity | str) -> list[Finding]:
        """Failed findings at or above ``severity``."""
        sev = Severity.parse(severity)
        return [f for f in self.findings if f.fails_at(sev)]

    def exit_code(self, fail_on: Severity | str = Severity.HIGH) -> int:
        """The CLI's exit code: 1 if a finding failed at or above ``fail_on``, else 0.

        Errors are reported by the caller as exit code 2 when nothing could be checked.
        """
        return 1 if self.failures_at(fail_on) else 0

    def summary(self) -> dict[str, Any]:
        """Counts: findings by status and severity, errors, skipped."""
        by_sev = {s.value: 0 for s in Severity}
        for f in self.findings:
            if not f.passed:
                by_sev[f.severity.value] += 1
        return {
            "findings": len(self.findings),
            "passed": sum(f.passed for f in self.findings),
            "failed": sum(not f.passed for f in self.findings),
            "failed_by_severity": by_sev,
            "errors": len(self.errors),
            "skipped": len(self.skipped),
        }

    # -------------------------------------------------------------- mutation
    def add_metrics(self, target: str, check: str, values: dict[str, Any]) -> None:
        """Store a check's metrics for one target."""
        self.metrics.setdefault(target, {})[check] = _jsonable(values)

    # --------------------------------------------------------- serialisation
    def to_dict(self, *, include_timing: bool = True) -> dict[str, Any]:
        """The JSON report (schema ``findings/schema/report.schema.json``).

        With ``include_timing=False`` the wall-clock fields are left out, so that two
        runs with the same seed give equal dictionaries.
        """
        prov: dict[str, Any] = {"seed": self.seed, "versions": dict(self.versions)}
        if self.signatures:
            prov["signatures"] = _jsonable(self.signatures)
        if include_timing:
            prov.update(
                created_at=self.created_at,
                duration_s=round(self.duration_s, 3),
                timings={k: round(v, 3) for k, v in self.timings.items()},
                platform=platform.platform(),
            )
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "tool": {"name": "mlwarden", "version": self.versions.get("mlwarden", "unknown")},
            "title": self.title,
            "summary": self.summary(),
            "targets": _jsonable(self.targets),
            "data": _jsonable(self.data),
            "findings": _jsonable([f.to_dict() for f in self.findings]),
            "metrics": _jsonable(self.metrics),
            "errors": list(self.errors),
            "skipped": list(self.skipped),
            "params": _jsonable(self.params),
            "provenance": prov,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        """Rebuild a report from :meth:`to_dict` output."""
        prov = d.get("provenance", {})
        return cls(
            findings=[Finding.from_dict(f) for f in d.get("findings", [])],
            metrics=d.get("metrics", {}),
            errors=list(d.get("errors", [])),
            skipped=list(d.get("skipped", [])),
            targets=list(d.get("targets", [])),
            data=d.get("data"),
            seed=prov.get("seed"),
            timings=dict(prov.get("timings", {})),
            params=dict(d.get("params", {})),
            versions=dict(prov.get("versions", {})),
            created_at=prov.get("created_at", _utcnow()),
            duration_s=float(prov.get("duration_s", 0.0)),
            title=d.get("title", "mlwarden audit"),
            signatures=list(prov.get("signatures", [])),
        )


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and non-finite floats into plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    # Anything else (a Dataset or a training function given as a check parameter) is
    # recorded by what it is, not serialised.
    name = getattr(obj, "name", None) or getattr(obj, "__qualname__", None)
    rows = f", {len(obj)} rows" if hasattr(obj, "__len__") and hasattr(obj, "X") else ""
    return f"<{type(obj).__name__}{f' {name}' if isinstance(name, str) else ''}{rows}>"
