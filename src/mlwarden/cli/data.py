"""``mlwarden data …``: sign and verify dataset manifests, check a data set for poison and PII.

Commands: ``data keygen`` (Ed25519 key pair), ``data sign DATA --key KEY`` (write a
signed manifest), ``data verify DATA --manifest M --key PUB`` (name the columns and
rows that changed since signing) and ``data pii DATA`` (personal data by value and
column name); ``data check`` comes from :mod:`mlwarden.cli.data_check`. Exit codes:

* ``0`` — key pair written, data signed, data verified, or no personal data found;
* ``1`` — verification failed (rows or schema changed, manifest signed with another
  key or altered), or personal data found;
* ``2`` — bad usage or input: a missing or empty data file, a missing manifest or key,
  a key of the wrong kind, a key file that already exists, a file that cannot be parsed.

``cryptography``, ``pyarrow`` and ``pandas`` are imported inside the commands, so
``mlwarden --help`` stays fast.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer

from mlwarden.cli.supplychain_sign import _PASSWORD_ENV, _password

__all__ = ["data_app", "register"]

data_app = typer.Typer(
    name="data",
    help="Training-data security: signed manifests, verification, sensitive-data scan.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

_SHOWN = 20


class OutputFormat(str, enum.Enum):
    """What ``data verify`` and ``data pii`` print."""

    TEXT = "text"
    JSON = "json"


_DATA = typer.Argument(
    help="CSV, TSV (optionally .gz) or Parquet file.", show_default=False, metavar="DATA"
)
_FORMAT = typer.Option("--format", "-f", help="Output format.", case_sensitive=False)


def keygen_command(
    private: Annotated[
        Path,
        typer.Option("--private", help="Private key file to create (mode 0600; keep it secret)."),
    ],
    public: Annotated[
        Path, typer.Option("--public", help="Public key file to create (give it to verifiers).")
    ],
    password_env: Annotated[str | None, _PASSWORD_ENV] = None,
) -> None:
    """Create an Ed25519 key pair for dataset manifests (never overwrites a file)."""
    from mlwarden.cli.app import _friendly_errors, out

    with _friendly_errors():
        from mlwarden.data.manifest import generate_data_key

        fingerprint = generate_data_key(private, public, password=_password(password_env))
        out.print(f"private key: {private} (keep it secret)", soft_wrap=True, highlight=False)
        out.print(f"public key:  {public}", soft_wrap=True, highlight=False)
        out.print(f"fingerprint: {fingerprint}", soft_wrap=True, highlight=False)


def sign_command(
    data: Annotated[Path, _DATA],
    key: Annotated[Path, typer.Option("--key", "-k", help="Private key (PEM, Ed25519).")],
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Manifest to write (default: DATA.manifest.json).",
            show_default=False,
        ),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", help="Rows per Merkle leaf.", min=1)
    ] = 1024,
    password_env: Annotated[str | None, _PASSWORD_ENV] = None,
) -> None:
    """Write a signed manifest of a table: schema, row count, Merkle tree of the rows."""
    from mlwarden.cli.app import _friendly_errors, err, out

    with _friendly_errors():
        from mlwarden.data.manifest import sign_dataset

        res = sign_dataset(
            data,
            key=key,
            out=manifest,
            password=_password(password_env),
            chunk_rows=chunk_rows,
        )
    from rich.markup import escape

    for w in res.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True, highlight=False)
    out.print(
        f"signed {escape(str(data))}: {res.rows} row(s), {len(res.columns)} column(s) -> "
        f"{escape(str(res.manifest))}",
        soft_wrap=True,
        highlight=False,
    )
    out.print(f"merkle root: {res.merkle_root}", soft_wrap=True, highlight=False)
    out.print(f"signed by:   {res.key_fingerprint}", soft_wrap=True, highlight=False)


def _rows(values: list[Any]) -> str:
    shown = ", ".join(str(v) for v in values[:_SHOWN])
    return shown + (f", ... ({len(values) - _SHOWN} more)" if len(values) > _SHOWN else "")


def verify_command(
    data: Annotated[Path, _DATA],
    key: Annotated[Path, typer.Option("--key", "-k", help="The signer's public key (PEM).")],
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            "-m",
            help="Manifest (default: DATA.manifest.json).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[OutputFormat, _FORMAT] = OutputFormat.TEXT,
) -> None:
    """Verify a table against its signed manifest: exit 0 verified, 1 not, 2 bad input."""
    from mlwarden.cli.app import _friendly_errors, err, out

    with _friendly_errors():
        from mlwarden.data.manifest import verify_dataset

        res = verify_dataset(data, manifest=manifest, key=key)
    if fmt is OutputFormat.JSON:
        import json

        typer.echo(json.dumps(res.to_dict(), indent=2))
        raise typer.Exit(res.exit_code)
    from rich.markup import escape

    for w in res.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True, highlight=False)
    tag = "[bold green]verified[/]" if res.ok else "[bold red]NOT VERIFIED[/]"
    out.print(f"{tag} {escape(res.message)}", soft_wrap=True, highlight=False)
    for change in res.schema_changes:
        out.print(f"  schema   {escape(change)}", soft_wrap=True, highlight=False)
    d = res.diff
    lines = (
        ("changed", [f"row {j}" + (f" (signed row {i})" if i != j else "") for i, j in d.changed]),
        ("inserted", [f"row {j}" for j in d.inserted]),
        ("removed", [f"signed row {i}" for i in d.removed]),
        ("moved", [f"signed row {i} -> row {j}" for i, j in d.moved]),
    )
    for kind, items in lines:
        for item in items[:_SHOWN]:
            out.print(f"  {kind:<8} {item}", soft_wrap=True, highlight=False)
        if len(items) > _SHOWN:
            out.print(f"  {kind:<8} ... {len(items) - _SHOWN} more", highlight=False)
    raise typer.Exit(res.exit_code)


def pii_command(
    data: Annotated[Path, _DATA],
    fmt: Annotated[OutputFormat, _FORMAT] = OutputFormat.TEXT,
    sample_rows: Annotated[
        int, typer.Option("--sample-rows", help="Rows looked at, at most (random sample).", min=1)
    ] = 20_000,
    min_fraction: Annotated[
        float,
        typer.Option(
            "--min-fraction",
            help="Flag a column when at least this share of its values match.",
            min=0.0,
            max=1.0,
        ),
    ] = 0.1,
) -> None:
    """Scan a table for personal data by value and column name: exit 1 when found.

    Values: emails, phone numbers, payment cards (Luhn), IBANs (mod 97), US SSNs, Dutch
    BSNs, IP addresses. Column names: person names, dates of birth, addresses.
    """
    from mlwarden.cli.app import _friendly_errors, out

    with _friendly_errors():
        from mlwarden.data.pii import scan_pii

        report = scan_pii(data, sample_rows=sample_rows, min_fraction=min_fraction)
    if fmt is OutputFormat.JSON:
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2))
        raise typer.Exit(report.exit_code)
    from rich.markup import escape

    sampled = (
        f"{report.sampled_rows} of {report.rows} rows sampled"
        if report.sampled_rows < report.rows
        else f"{report.rows} rows"
    )
    if not report.found:
        out.print(
            f"[bold green]no personal data found[/] in {escape(report.path)} "
            f"({sampled}, {len(report.columns)} columns)",
            soft_wrap=True,
            highlight=False,
        )
        raise typer.Exit(0)
    out.print(
        f"[bold red]personal data[/] in {escape(report.path)} ({sampled}): "
        f"{len(report.found)} column finding(s)",
        soft_wrap=True,
        highlight=False,
    )
    for c in report.found:
        how = "by value" if c.by == "value" else "by column name"
        out.print(
            f"  {escape(c.column)!s:<20} {c.detector:<14} {how:<15} "
            f"{c.matches}/{c.checked} ({c.fraction:.0%})  e.g. "
            + ", ".join(escape(e) for e in c.examples),
            soft_wrap=True,
            highlight=False,
        )
    out.print(
        "  rule ids: MLW-DAT-001 (values), MLW-DAT-002 (column names); see docs/data-security.md",
        soft_wrap=True,
        highlight=False,
    )
    raise typer.Exit(report.exit_code)


def register(app: Any) -> None:
    """Add the ``data`` command group to ``app``."""
    data_app.command("keygen")(keygen_command)
    data_app.command("sign", no_args_is_help=True)(sign_command)
    data_app.command("verify", no_args_is_help=True)(verify_command)
    data_app.command("pii", no_args_is_help=True)(pii_command)
    from mlwarden.cli.data_check import register as register_check

    register_check(data_app)
    app.add_typer(data_app, name="data")
