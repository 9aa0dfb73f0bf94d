"""Run the detectors together: a suspicious-row report with reasons and a cleaned data set.

Which rows are dropped from the cleaned data set (``SanitizeReport.clean``):

- rows carrying a backdoor trigger (:class:`ActivationClustering`, needs torch),
- rows whose label is probably wrong (:class:`ConfidentLearning`),
- every copy in a group of identical rows with different labels, and every repeated
  copy but the first (:class:`Duplicates`).

Outliers (:class:`IsolationForestOutliers`) and spectral-signature ranks are reported
for review but not dropped (``drop_outliers=True`` drops outliers too): they flag
rare-but-real rows too often to delete them unseen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden._random import RandomState, as_generator
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import DataError
from mlwarden.poisoning.detectors._result import DetectionResult

if TYPE_CHECKING:
    from mlwarden.findings.finding import Finding

__all__ = ["SanitizeReport", "SuspiciousRow", "sanitize", "suspicious_rows_finding"]

_DROPPED = ("activation-clustering", "confident-learning", "duplicates")


@dataclass(frozen=True)
class SuspiciousRow:
    """One flagged row: its index, the detectors that flagged it and why."""

    index: int
    label: Any
    detectors: tuple[str, ...]
    reasons: tuple[str, ...]
    dropped: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        label = self.label.item() if isinstance(self.label, np.generic) else self.label
        return {
            "row": self.index,
            "label": label,
            "detectors": list(self.detectors),
            "reasons": list(self.reasons),
            "dropped": self.dropped,
        }


@dataclass(frozen=True)
class SanitizeReport:
    """What :func:`sanitize` found.

    Attributes
    ----------
    data : Dataset
        The checked data set.
    rows : list of SuspiciousRow
        Every flagged row, in row order.
    clean : Dataset
        ``data`` without the dropped rows.
    dropped : ndarray of int
        Rows removed from ``clean``.
    results : dict of str to DetectionResult
        Each detector's full result.
    skipped : dict of str to str
        Detectors that did not run, with the reason.
    extra_findings : list of dict
        Findings from other scanners joined to the report (e.g. PII, wired by the CLI).
    """

    data: Dataset
    rows: list[SuspiciousRow]
    clean: Dataset
    dropped: npt.NDArray[np.int64]
    results: dict[str, DetectionResult]
    skipped: dict[str, str] = field(default_factory=dict)
    extra_findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_suspicious(self) -> int:
        """Number of flagged rows."""
        return len(self.rows)

    def summary(self) -> dict[str, Any]:
        """Counts per detector, JSON-serialisable."""
        return {
            "rows": self.data.n_samples,
            "suspicious": self.n_suspicious,
            "dropped": len(self.dropped),
            "by_detector": {k: int(r.flagged.sum()) for k, r in self.results.items()},
            "skipped": dict(self.skipped),
        }

    def to_dict(self, *, max_rows: int | None = None) -> dict[str, Any]:
        """JSON-serialisable report (at most ``max_rows`` rows listed)."""
        rows = self.rows if max_rows is None else self.rows[:max_rows]
        return {
            "data": self.data.describe(),
            "summary": self.summary(),
            "details": {k: r.details for k, r in self.results.items()},
            "rows": [r.to_dict() for r in rows],
            "extra_findings": list(self.extra_findings),
        }


def sanitize(
    data: Dataset,
    *,
    label_issues: bool = True,
    backdoor: bool = True,
    outliers: bool = True,
    duplicates: bool = True,
    drop_outliers: bool = False,
    estimator: Any = None,
    representations: npt.ArrayLike | None = None,
    random_state: RandomState = None,
    progress: ProgressCallback | None = None,
) -> SanitizeReport:
    """Run the detectors on ``data`` and build the report and the cleaned data set.

    Parameters
    ----------
    data : Dataset
        Labelled training data.
    label_issues, backdoor, outliers, duplicates : bool
        Which detectors run.
    drop_outliers : bool, default=False
        Drop outliers from the cleaned data too.
    estimator : scikit-learn classifier or None
        Model for confident learning's out-of-fold probabilities (cloned).
    representations : array-like, optional
        Penultimate-layer activations for the backdoor detectors; default a small MLP's.
    random_state : int, Generator or None
        Seed of every detector.
    progress : callable, optional
        ``progress(task, done, total)``.
    """
    from mlwarden.poisoning.detectors.activation_clustering import ActivationClustering
    from mlwarden.poisoning.detectors.confident_learning import ConfidentLearning
    from mlwarden.poisoning.detectors.duplicates import Duplicates
    from mlwarden.poisoning.detectors.outliers import IsolationForestOutliers

    y = data.labels
    if len(np.unique(y)) < 2:
        raise DataError(f"{data.name}: the label column holds a single class; nothing to check")
    rng = as_generator(random_state)
    seeds = rng.integers(2**31, size=4)
    results: dict[str, DetectionResult] = {}
    skipped: dict[str, str] = {}
    wanted = {"duplicates": duplicates, "outliers": outliers}
    wanted |= {"label issues": label_issues, "backdoor": backdoor}
    steps = [s for s, on in wanted.items() if on]
    for done, step in enumerate(steps):
        report_progress(progress, "data check", done, len(steps))
        if step == "duplicates":
            results["duplicates"] = Duplicates().detect(data)
        elif step == "outliers":
            results["isolation-forest"] = IsolationForestOutliers(
                random_state=int(seeds[0])
            ).detect(data)
        elif step == "label issues":
            counts = np.unique(y, return_counts=True)[1]
            if counts.min() < 2:
                skipped["confident-learning"] = "a class has fewer than 2 rows"
                continue
            results["confident-learning"] = ConfidentLearning(
                estimator=estimator, random_state=int(seeds[1])
            ).detect(data)
        else:
            reps = representations
            if reps is None:
                try:
                    import torch  # noqa: F401
                except ImportError:
                    skipped["activation-clustering"] = "needs torch (mlwarden[torch])"
                    continue
                from mlwarden.poisoning.detectors._common import class_codes
                from mlwarden.poisoning.detectors.representations import (
                    penultimate_activations,
                )

                _, codes = class_codes(data)
                epochs = int(min(40, max(5, round(80_000 / max(data.n_samples, 1)))))
                reps = penultimate_activations(data.X, codes, epochs=epochs, seed=int(seeds[2]))
            results["activation-clustering"] = ActivationClustering(
                random_state=int(seeds[3])
            ).detect(data, representations=reps)
    report_progress(progress, "data check", len(steps), len(steps))

    drop = np.zeros(data.n_samples, dtype=bool)
    for name, res in results.items():
        if name in _DROPPED or (drop_outliers and name == "isolation-forest"):
            drop |= res.flagged
    rows: list[SuspiciousRow] = []
    flagged_any = np.zeros(data.n_samples, dtype=bool)
    for res in results.values():
        flagged_any |= res.flagged
    for i in np.flatnonzero(flagged_any):
        hits = [(n, r) for n, r in results.items() if r.flagged[i]]
        rows.append(
            SuspiciousRow(
                index=int(i),
                label=y[i],
                detectors=tuple(n for n, _ in hits),
                reasons=tuple(r.reasons.get(int(i), n) for n, r in hits),
                dropped=bool(drop[i]),
            )
        )
    dropped = np.flatnonzero(drop).astype(np.int64)
    clean = data.subset(np.flatnonzero(~drop), name=f"{data.name}-clean")
    return SanitizeReport(
        data=data, rows=rows, clean=clean, dropped=dropped, results=results, skipped=skipped
    )


def suspicious_rows_finding(
    report: SanitizeReport,
    *,
    target: str,
    check: str = "data.check",
    max_share: float = 0.05,
    max_listed: int = 20,
) -> Finding:
    """``MLW-POI-003``: the share of rows the cleaned data set drops, against ``max_share``.

    The evidence lists the counts per detector and the first ``max_listed`` dropped rows
    with their reasons.
    """
    from mlwarden.findings.finding import Finding
    from mlwarden.poisoning.rules import RULE_SUSPICIOUS_ROWS

    n = max(report.data.n_samples, 1)
    share = len(report.dropped) / n
    s = report.summary()
    by = ", ".join(f"{k} {v}" for k, v in s["by_detector"].items() if v) or "none"
    return Finding.from_rule(
        RULE_SUSPICIOUS_ROWS,
        target=target,
        check=check,
        metric="share_dropped",
        value=share,
        threshold=float(max_share),
        higher_is_better=False,
        description=(
            f"{len(report.dropped)} of {report.data.n_samples} rows ({share:.1%}) would be "
            f"dropped from the cleaned data set; rows flagged per detector: {by}."
        ),
        evidence={
            "summary": s,
            "dropped": [r.to_dict() for r in report.rows if r.dropped][:max_listed],
        },
    )
