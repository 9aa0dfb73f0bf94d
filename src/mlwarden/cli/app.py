"""The ``mlwarden`` command line (typer + rich): the only place that prints.

Exit codes, for every command:

* ``0`` — done, nothing failed at or above ``--fail-on``;
* ``1`` — a finding failed at or above ``--fail-on``;
* ``2`` — bad usage or input (missing file, bad column, corrupt or unsafe model,
  model and data that do not fit), or a check could not run: the audit is incomplete.

Heavy libraries are imported inside the commands so that ``mlwarden --help`` and
``mlwarden --version`` stay fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

app = typer.Typer(
    name="mlwarden",
    help="Attack, defend and guard machine-learning systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

out = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from mlwarden import __version__

        out.print(f"mlwarden {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Attack, defend and guard machine-learning systems."""


def _fail(message: str) -> NoReturn:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_ERROR)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Turn mlwarden's errors into one-line messages and exit code 2."""
    from mlwarden.exceptions import MlwardenError

    try:
        yield
    except MlwardenError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress display fed by the library's progress callback."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def callback(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done, total=total)

        yield callback


def _finish(report: Any, out_dir: Path, fail_on: str, quiet: bool) -> NoReturn:
    from mlwarden.findings.render import render_console, write_all

    paths = write_all(report, out_dir)
    if not quiet:
        render_console(report, out)
        out.print()
        for kind, path in paths.items():
            out.print(f"  {kind:<5} {path}", soft_wrap=True, highlight=False)
    if report.errors:
        err.print(
            f"[bold red]audit incomplete:[/] {len(report.errors)} check(s) could not run; "
            "see the report's 'Could not check' section"
        )
        raise typer.Exit(EXIT_ERROR)
    if not report.findings:
        err.print("[bold red]nothing was checked:[/] every selected check was skipped")
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(report.exit_code(fail_on))


@app.command()
def audit(
    model: Annotated[
        list[Path],
        typer.Option("--model", "-m", help="Model file (.skops, TorchScript .pt, .onnx); repeat."),
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data", "-d", help="CSV/Parquet file, or builtin:fraud|breast_cancer|digits."
        ),
    ],
    label: Annotated[
        str | None, typer.Option("--label", "-l", help="Label column of a CSV/Parquet file.")
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option("--schema", help="Feature schema JSON (kinds, bounds, attacker control)."),
    ] = None,
    positive_label: Annotated[
        str | None,
        typer.Option("--positive-label", help="Class the model must catch (e.g. 1 for fraud)."),
    ] = None,
    checks: Annotated[
        str,
        typer.Option("--checks", "-c", help="Comma-separated checks or families (see 'checks')."),
    ] = "evasion",
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Report directory.")] = Path(
        "mlwarden-report"
    ),
    fail_on: Annotated[
        str, typer.Option("--fail-on", help="Exit 1 if a finding fails at this severity or above.")
    ] = "high",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    eps: Annotated[
        float | None, typer.Option("--eps", help="Evasion budget in per-feature scale units.")
    ] = None,
    max_samples: Annotated[
        int | None, typer.Option("--max-samples", help="Rows attacked per model at most.")
    ] = None,
    train_data: Annotated[
        str | None,
        typer.Option(
            "--train-data",
            help="The model's training rows (same columns as --data): enables the "
            "privacy.membership check, for which the --data rows are the non-members.",
        ),
    ] = None,
    sensitive: Annotated[
        str | None,
        typer.Option(
            "--sensitive",
            help="A sensitive column (e.g. a health flag): with --train-data, enables the "
            "privacy.attribute check.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the exit code.")] = False,
    verify_key: Annotated[
        Path | None,
        typer.Option(
            "--verify-key",
            help="Verify each model against its signature with this public key before "
            "loading it; a model that fails is not loaded (MLW-SUP-010).",
        ),
    ] = None,
    signature: Annotated[
        list[Path] | None,
        typer.Option(
            "--signature", help="Signature of each --model, in order (default: MODEL.sig)."
        ),
    ] = None,
    data_key: Annotated[
        Path | None,
        typer.Option(
            "--data-key",
            help="Verify the --data file against its signed manifest (mlwarden data sign) "
            "with this public key: adds the data.manifest check (MLW-DAT-003).",
        ),
    ] = None,
    data_manifest: Annotated[
        Path | None,
        typer.Option("--data-manifest", help="The data's manifest (default: DATA.manifest.json)."),
    ] = None,
) -> None:
    """Audit model files on a data set and write report.json/html/sarif and junit.xml."""
    with _friendly_errors():
        from mlwarden import _registry
        from mlwarden.audit.runner import audit as run_audit
        from mlwarden.audit.runner import expand_checks, resolve_checks
        from mlwarden.data.io import load_dataset
        from mlwarden.findings.taxonomy import Severity
        from mlwarden.models import load_model

        Severity.parse(fail_on)
        from mlwarden.cli import supplychain_sign as signing

        verified = signing.verify_models(model, verify_key, signature)
        rejected = {r.path for r in verified if not r.ok}
        ds = load_dataset(data, label=label, schema=schema, positive_label=positive_label)
        members = (
            load_dataset(train_data, label=label, schema=schema, positive_label=positive_label)
            if train_data is not None
            else None
        )
        if data_key is not None and "data.manifest" not in expand_checks(checks):
            checks = f"{checks},data.manifest"
        params: dict[str, dict[str, Any]] = {}
        for name in expand_checks(checks):
            accepted = _registry.get("check", name)._param_names()  # type: ignore[attr-defined]
            given = {
                "eps": eps,
                "max_samples": max_samples,
                "members": members,
                "attribute": sensitive,
            }
            params[name] = {k: v for k, v in given.items() if v is not None and k in accepted}
        if data_key is not None:
            params["data.manifest"] = {
                "key": str(data_key),
                "manifest": None if data_manifest is None else str(data_manifest),
            }
        selected = resolve_checks(checks, params)
        targets = []
        for path in model:
            if path in rejected:
                continue  # tampered or unsigned: never loaded
            t = load_model(path)
            targets.append(t)
        _dedupe_names(targets)
        with _progress(not quiet and sys.stderr.isatty()) as cb:
            report = (
                run_audit(targets, ds, checks=selected, random_state=seed, progress=cb)
                if targets
                else signing.signature_only_report(ds, seed)
            )
        signing.add_signature_findings(report, verified, targets, selected)
        _finish(report, out_dir, fail_on, quiet)


def _dedupe_names(targets: list[Any]) -> None:
    seen: dict[str, int] = {}
    for t in targets:
        n = seen.get(t.name, 0)
        seen[t.name] = n + 1
        if n:
            t.name = f"{t.name}-{n + 1}"


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Where to write the demo.")] = Path(
        "demo-report"
    ),
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    n_samples: Annotated[
        int, typer.Option("--n-samples", help="Transactions to generate.")
    ] = 20_000,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the report path.")
    ] = False,
) -> None:
    """Train card-fraud models (trees, MLP, hardened and DP MLPs), audit them and their data."""
    with _friendly_errors():
        from mlwarden.demo import run_demo
        from mlwarden.findings.render import render_console, write_all

        with _progress(not quiet and sys.stderr.isatty()) as cb:
            result = run_demo(out_dir, random_state=seed, n_samples=n_samples, progress=cb)
        paths = write_all(result.report, out_dir)
        if not quiet:
            for line in result.notes:
                out.print(line, soft_wrap=True, highlight=False)
            out.print()
            render_console(result.report, out)
            out.print()
        out.print(f"Report: {paths['html']}", soft_wrap=True, highlight=False)
        if result.report.errors:
            raise typer.Exit(EXIT_ERROR)


@app.command("checks")
def list_checks() -> None:
    """List the available checks."""
    with _friendly_errors():
        from rich.table import Table

        from mlwarden import _registry

        table = Table()
        table.add_column("check", no_wrap=True)
        table.add_column("needs")
        table.add_column("rule ids")
        table.add_column("what it does")
        for name in _registry.available("check"):
            cls: Any = _registry.get("check", name)
            table.add_row(
                name,
                cls.needs or ", ".join(cls.requires.names()),
                ", ".join(r.id for r in cls.rules),
                cls.summary,
            )
        out.print(table)


def _register_subcommands() -> None:
    from mlwarden.cli.harden import harden_app

    app.add_typer(harden_app, name="harden")

    from mlwarden.cli.scan import register as register_scan

    register_scan(app)

    from mlwarden.cli.supplychain_sign import register as register_signing

    register_signing(app)

    from mlwarden.cli.theft import register as register_theft

    register_theft(app)

    from mlwarden.cli.data import register as register_data

    register_data(app)


_register_subcommands()


def run() -> None:
    """Run the app (console-script entry point).

    Attacks send many small batches, where OpenMP and torch thread pools cost far more
    than they save (and thrash on busy machines): unless the user set it, the process
    runs them on one thread.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    app()
