"""The data audit checks: personal data in the audit's data file, and its signed manifest.

Both look at the data, not at a model, so the audit runs each once per data set (not
once per model), and their findings name the data file:

* ``data.pii`` scans the raw table the audit data came from (``mlwarden audit --data
  D.csv``) for columns that look like personal data (MLW-DAT-001 by value,
  MLW-DAT-002 by column name). Data built in memory, with no file, is skipped.
* ``data.manifest`` verifies the data file against its signed manifest (``mlwarden data
  sign``) when the signer's public key is given (``mlwarden audit --data-key PUB``):
  MLW-DAT-003 fails and names the changed, added, removed or moved rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from mlwarden._progress import ProgressCallback
from mlwarden._registry import register
from mlwarden._validation import check_int, check_number
from mlwarden.audit.check import Check, CheckResult
from mlwarden.data.dataset import Dataset
from mlwarden.data.rules import RULE_MANIFEST, RULE_PII_COLUMN_NAME, RULE_PII_VALUES
from mlwarden.exceptions import InvalidParameterError
from mlwarden.findings.taxonomy import Rule, ThreatFamily
from mlwarden.models.base import Capability, Target

__all__ = ["DataManifestCheck", "PiiCheck"]


def _source(data: Dataset) -> Path | None:
    """The file the data was read from, when it still exists."""
    if data.source is None:
        return None
    p = Path(data.source)
    return p if p.is_file() else None


@register("check", "data.pii")
class PiiCheck(Check):
    """Personal data (emails, card numbers, IBANs, national ids, …) in the data file.

    Parameters
    ----------
    sample_rows : int
        Rows looked at, at most (a seeded sample of larger files).
    min_fraction : float
        A column is flagged when at least this share of its sampled values match.
    """

    family: ClassVar[ThreatFamily] = ThreatFamily.PRIVACY
    rules: ClassVar[tuple[Rule, ...]] = (RULE_PII_VALUES, RULE_PII_COLUMN_NAME)
    requires: ClassVar[Capability] = Capability.NONE
    per_data: ClassVar[bool] = True
    summary: ClassVar[str] = "personal data in the data file (values and column names)"
    needs: ClassVar[str] = "data read from a CSV or Parquet file"

    def __init__(self, *, sample_rows: int = 20_000, min_fraction: float = 0.1) -> None:
        self.sample_rows = sample_rows
        self.min_fraction = min_fraction

    def skip_reason(self, target: Target, data: Dataset) -> str | None:
        if _source(data) is None:
            return f"the data {data.name!r} was not read from a file that still exists"
        return None

    def validate(self, target: Target, data: Dataset) -> None:
        check_int(self.id, "sample_rows", self.sample_rows, minimum=1)
        check_number(self.id, "min_fraction", self.min_fraction, low=0, low_open=True, high=1)
        self.require_applicable(target, data)

    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        from mlwarden.data.pii import pii_findings, scan_pii

        path = _source(data)
        assert path is not None  # validate() ran
        report = scan_pii(
            path,
            sample_rows=self.sample_rows,
            min_fraction=self.min_fraction,
            random_state=int(random_state.integers(0, 2**31 - 1)),
        )
        return CheckResult(
            findings=pii_findings(report, target=path.name),
            metrics={
                "rows": report.rows,
                "sampled_rows": report.sampled_rows,
                "pii_columns": sorted({c.column for c in report.found}),
            },
        )


@register("check", "data.manifest")
class DataManifestCheck(Check):
    """The data file against its signed manifest (``mlwarden data sign``).

    Parameters
    ----------
    key : str or None
        The signer's Ed25519 public key (PEM). Without it the check is skipped.
    manifest : str or None
        The manifest; default ``<data file>.manifest.json``.
    """

    family: ClassVar[ThreatFamily] = ThreatFamily.SUPPLY_CHAIN
    rules: ClassVar[tuple[Rule, ...]] = (RULE_MANIFEST,)
    requires: ClassVar[Capability] = Capability.NONE
    per_data: ClassVar[bool] = True
    summary: ClassVar[str] = "data file verified against its signed manifest (rows named)"
    needs: ClassVar[str] = "a data file and the signer's public key (--data-key)"

    def __init__(self, *, key: str | None = None, manifest: str | None = None) -> None:
        self.key = key
        self.manifest = manifest

    def skip_reason(self, target: Target, data: Dataset) -> str | None:
        if self.key is None:
            return "no data signing key given (mlwarden audit --data-key PUB)"
        if _source(data) is None:
            return f"the data {data.name!r} was not read from a file that still exists"
        return None

    def validate(self, target: Target, data: Dataset) -> None:
        self.require_applicable(target, data)
        for what, value in (("key", self.key), ("manifest", self.manifest)):
            if value is not None and not Path(value).is_file():
                raise InvalidParameterError(f"check {self.id!r}: {what} {value}: no such file")

    def run(
        self,
        target: Target,
        data: Dataset,
        *,
        random_state: np.random.Generator,
        progress: ProgressCallback | None = None,
    ) -> CheckResult:
        from mlwarden.data.manifest import manifest_finding, verify_dataset

        path = _source(data)
        assert path is not None and self.key is not None  # validate() ran
        result = verify_dataset(path, manifest=self.manifest, key=self.key)
        return CheckResult(
            findings=[manifest_finding(result, target=path.name)],
            metrics={"verified": bool(result.ok)},
        )
