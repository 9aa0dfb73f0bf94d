"""``mlwarden data check``: suspicious rows (poison, label issues, duplicates, PII).

::

    mlwarden data check train.csv --label is_fraud [--model model.skops]
        [--write-clean clean.csv] [--format text|json] [--out report.json]

Runs the detectors of :func:`mlwarden.poisoning.sanitize` - backdoor triggers
(activation clustering on a small network's penultimate layer), label issues
(confident learning on out-of-fold probabilities), exact duplicates and label
conflicts, isolation-forest outliers - and lists each suspicious row with its reasons.
``--model`` names a model file (loaded only through
:func:`mlwarden.models.loading.load_model`, which scans it first) whose scikit-learn
estimator is cloned for confident learning's out-of-fold probabilities.
``--write-clean`` writes the data set without the dropped rows (same format as the
extension says).

Exit codes:

* ``0`` - nothing suspicious (outliers may still be listed for review: rare is not
  poisoned, and an isolation forest always finds its share of rare rows),
* ``1`` - suspicious rows found: backdoor triggers, label issues, label conflicts or
  repeated rows (the rows the cleaned data set drops), or columns that look like
  personal data (MLW-DAT-001 by value, MLW-DAT-002 by column name; card numbers,
  IBANs, emails, ...),
* ``2`` - bad input: the file is missing, empty or unreadable, the label column is
  missing (the message lists the columns), a column mixes text and numbers, a bad
  option, or an unsafe or unreadable model file.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

EXIT_CLEAN, EXIT_SUSPICIOUS, EXIT_ERROR = 0, 1, 2
_SHOWN = 50


class Format(str, enum.Enum):
    """Output format."""

    text = "text"
    json = "json"


def register(data_app: Any) -> None:
    """Add ``check`` to the ``data`` command group."""
    data_app.command("check")(check)


def check(
    data: Annotated[Path, typer.Argument(help="CSV, TSV or Parquet file to check.")],
    label: Annotated[str, typer.Option("--label", help="Name of the label column.")],
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="A scikit-learn model file (scanned before loading) whose estimator is "
            "cloned for the out-of-fold label check.",
        ),
    ] = None,
    write_clean: Annotated[
        Path | None,
        typer.Option("--write-clean", help="Write the data set without the dropped rows."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.text,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the JSON report to this file.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    no_backdoor: Annotated[
        bool, typer.Option("--no-backdoor", help="Skip the backdoor detector (needs torch).")
    ] = False,
) -> None:
    """Find suspicious training rows (backdoor triggers, label issues, duplicates, outliers).

    Exit codes: 0 nothing suspicious (outliers are listed for review only), 1 suspicious
    rows found (backdoor triggers, label issues, label conflicts, repeated rows) or
    personal data (MLW-DAT-001/002), 2 bad
    input (missing file or label column, mixed types in a column, empty file, unsafe
    model file).
    """
    from rich.console import Console

    from mlwarden.exceptions import DataFileError, MlwardenError

    err = Console(stderr=True)
    try:
        report = _run(data, label, model, seed, not no_backdoor)
        if write_clean is not None:
            from mlwarden.data.io import write_table

            write_table(report.clean, write_clean, label=label)
        payload = report.to_dict()
        if out is not None:
            try:
                out.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
            except OSError as exc:
                raise DataFileError(f"{out}: cannot write: {exc.strerror or exc}") from None
    except MlwardenError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(EXIT_ERROR) from None
    if fmt is Format.json:
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        _print_text(report, write_clean)
    found = len(report.dropped) or report.extra_findings
    raise typer.Exit(EXIT_SUSPICIOUS if found else EXIT_CLEAN)


def _run(data: Path, label: str, model: Path | None, seed: int, backdoor: bool) -> Any:
    from mlwarden.data.io import read_table
    from mlwarden.poisoning.detectors.sanitize import sanitize

    ds = read_table(data, label=label, drop_text=True)
    estimator = None
    if model is not None:
        from mlwarden.exceptions import InvalidParameterError
        from mlwarden.models.loading import load_model

        target = load_model(model)
        estimator = getattr(target, "estimator", None)
        if estimator is None:
            raise InvalidParameterError(
                f"--model {model}: a {target.kind} model cannot be retrained for the label "
                "check; give a scikit-learn model file or leave --model out"
            )
    report = sanitize(ds, backdoor=backdoor, estimator=estimator, random_state=seed)
    # Personal data in the raw table (read as text, so identifiers keep their form).
    from mlwarden.data.pii import pii_findings, scan_pii

    pii = scan_pii(data, random_state=seed)
    report.extra_findings.extend(
        f.to_dict() for f in pii_findings(pii, target=data.name) if not f.passed
    )
    return report


def _print_text(report: Any, write_clean: Path | None) -> None:
    from rich.console import Console

    out = Console()
    s = report.summary()
    out.print(
        f"{report.data.name}: {s['rows']} rows, {s['suspicious']} suspicious, "
        f"{s['dropped']} dropped from the cleaned set",
        highlight=False,
    )
    for name, n in s["by_detector"].items():
        out.print(f"  {name}: {n} row(s) flagged", highlight=False)
    for name, why in s["skipped"].items():
        out.print(f"  {name}: skipped ({why})", highlight=False)
    if report.data.description:
        out.print(f"  {report.data.description} (still scanned for personal data)",
                  highlight=False)  # fmt: skip
    for row in report.rows[:_SHOWN]:
        mark = "dropped" if row.dropped else "review"
        out.print(f"row {row.index} [{mark}]: " + "; ".join(row.reasons), highlight=False,
                  markup=False)  # fmt: skip
    if len(report.rows) > _SHOWN:
        out.print(f"... {len(report.rows) - _SHOWN} more (use --format json or --out)")
    for finding in report.extra_findings:
        out.print(f"{finding['rule_id']}: {finding['description']}", highlight=False,
                  markup=False)  # fmt: skip
    if write_clean is not None:
        out.print(f"cleaned data ({report.clean.n_samples} rows) written to {write_clean}",
                  highlight=False)  # fmt: skip
