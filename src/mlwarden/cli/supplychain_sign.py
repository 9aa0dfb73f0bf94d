"""``mlwarden keygen``, ``mlwarden sign`` and ``mlwarden verify``: model signatures.

Signatures are OpenSSF model-signing bundles made with a local ECDSA key (see
:mod:`mlwarden.supplychain.sign`); nothing here uses the network. Exit codes:

* ``0`` — key pair written, model signed, or model verified;
* ``1`` — verification failed: a file was changed, added or removed, the signature was
  made with another key, or it is missing, truncated or altered (the message names
  the files);
* ``2`` — bad usage or input: a missing model path, a missing or unreadable key, a key
  of the wrong kind, a key file that already exists.

The module also holds the glue ``mlwarden audit --verify-key`` uses to verify the
model files before loading them. ``model_signing`` and ``cryptography`` are imported
inside the commands, so ``mlwarden --help`` stays fast.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from mlwarden.findings.report import Report
    from mlwarden.supplychain.sign import VerifyResult

__all__ = ["add_signature_findings", "register", "verify_models"]


class VerifyFormat(str, enum.Enum):
    """What ``mlwarden verify`` prints."""

    TEXT = "text"
    JSON = "json"


def _password(env_name: str | None) -> str | None:
    """The password held by the environment variable ``env_name`` (never on the command line)."""
    if env_name is None:
        return None
    from mlwarden.exceptions import InvalidParameterError

    value = os.environ.get(env_name)
    if not value:
        raise InvalidParameterError(f"--password-env: the environment variable {env_name} is unset")
    return value


_PASSWORD_ENV = typer.Option(
    "--password-env",
    help="Name of an environment variable that holds the private key's password.",
    metavar="VAR",
    show_default=False,
)


def keygen_command(
    private: Annotated[
        Path,
        typer.Option("--private", help="Private key file to create (mode 0600; keep it secret)."),
    ],
    public: Annotated[
        Path, typer.Option("--public", help="Public key file to create (publish it).")
    ],
    password_env: Annotated[str | None, _PASSWORD_ENV] = None,
) -> None:
    """Create an ECDSA P-256 key pair for signing models (never overwrites a file)."""
    from mlwarden.cli.app import _friendly_errors, out

    with _friendly_errors():
        from mlwarden.supplychain.sign import generate_key

        fingerprint = generate_key(private, public, password=_password(password_env))
        out.print(f"private key: {private} (keep it secret)", soft_wrap=True, highlight=False)
        out.print(f"public key:  {public}", soft_wrap=True, highlight=False)
        out.print(f"fingerprint: {fingerprint}", soft_wrap=True, highlight=False)


def sign_command(
    path: Annotated[
        Path,
        typer.Argument(help="Model file or folder to sign.", show_default=False, metavar="PATH"),
    ],
    key: Annotated[Path, typer.Option("--key", "-k", help="Private key (PEM, ECDSA).")],
    signature: Annotated[
        Path | None,
        typer.Option(
            "--signature",
            "-s",
            help="Signature file to write (default: FOLDER/model.sig, or FILE.sig).",
            show_default=False,
        ),
    ] = None,
    password_env: Annotated[str | None, _PASSWORD_ENV] = None,
    shard_size: Annotated[
        int | None,
        typer.Option(
            "--shard-size",
            help="Hash files in shards of this many bytes, in parallel (for multi-GB files).",
            show_default=False,
        ),
    ] = None,
    allow_symlinks: Annotated[
        bool,
        typer.Option("--allow-symlinks", help="Follow symbolic links inside the folder."),
    ] = False,
) -> None:
    """Sign a model file or folder (OpenSSF model signing, local key, offline)."""
    from mlwarden.cli.app import _friendly_errors, out

    with _friendly_errors():
        from mlwarden.supplychain.sign import sign

        sig = sign(
            path,
            key=key,
            signature=signature,
            password=_password(password_env),
            shard_size=shard_size,
            allow_symlinks=allow_symlinks,
        )
        out.print(f"signed {path}: {sig}", soft_wrap=True, highlight=False)


def verify_command(
    path: Annotated[
        Path,
        typer.Argument(help="Model file or folder to verify.", show_default=False, metavar="PATH"),
    ],
    key: Annotated[Path, typer.Option("--key", "-k", help="The signer's public key (PEM).")],
    signature: Annotated[
        Path | None,
        typer.Option(
            "--signature",
            "-s",
            help="Signature file (default: FOLDER/model.sig, or FILE.sig).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        VerifyFormat,
        typer.Option("--format", "-f", help="Output format.", case_sensitive=False),
    ] = VerifyFormat.TEXT,
) -> None:
    """Verify a model file or folder against its signature: exit 0 verified, 1 not, 2 bad input."""
    from mlwarden.cli.app import _friendly_errors, out

    with _friendly_errors():
        from mlwarden.supplychain.sign import verify

        result = verify(path, key=key, signature=signature)
    if fmt is VerifyFormat.JSON:
        import json

        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        from rich.markup import escape

        tag = "[bold green]verified[/]" if result.ok else "[bold red]NOT VERIFIED[/]"
        out.print(f"{tag} {escape(result.message)}", soft_wrap=True, highlight=False)
        for kind in ("changed", "added", "removed"):
            for name in getattr(result, kind):
                out.print(f"  {kind:<8} {escape(name)}", soft_wrap=True, highlight=False)
    raise typer.Exit(result.exit_code)


def register(app: Any) -> None:
    """Add ``keygen``, ``sign`` and ``verify`` to the ``mlwarden`` typer app."""
    app.command("keygen")(keygen_command)
    app.command("sign", no_args_is_help=True)(sign_command)
    app.command("verify", no_args_is_help=True)(verify_command)


# ------------------------------------------------------------------ audit glue
def verify_models(
    models: list[Path], key: Path | None, signatures: list[Path] | None
) -> list[VerifyResult]:
    """Verify each ``--model`` before it is loaded (``mlwarden audit --verify-key``).

    Parameters
    ----------
    models : list of Path
        The ``--model`` files, in order.
    key : Path or None
        The signer's public key; ``None`` verifies nothing (and returns ``[]``).
    signatures : list of Path or None
        One ``--signature`` per model, in the same order; by default each model's
        ``<file>.sig``.

    Raises
    ------
    InvalidParameterError
        If ``--signature`` is given without ``--verify-key``, or their counts differ;
        if the key cannot be used. A missing model file raises ModelLoadError.
    """
    from mlwarden.exceptions import InvalidParameterError

    if key is None:
        if signatures:
            raise InvalidParameterError(
                "--signature needs --verify-key (the signer's public key) to verify with"
            )
        return []
    sigs: list[Path | None] = list(signatures) if signatures else [None] * len(models)
    if len(sigs) != len(models):
        raise InvalidParameterError(
            f"--signature was given {len(sigs)} time(s) for {len(models)} --model file(s); "
            "give one per model, in the same order, or none to use each model's <file>.sig"
        )
    from mlwarden.supplychain.sign import verify

    return [verify(m, key=key, signature=s) for m, s in zip(models, sigs, strict=True)]


def add_signature_findings(
    report: Report, results: list[VerifyResult], targets: list[Any], checks: list[Any]
) -> None:
    """Record the verifications in an audit report.

    Each verification becomes an MLW-SUP-010 finding (passed or failed), listed first,
    and an entry in the report's provenance. A model that failed was not loaded: it is
    listed among the targets as not loaded, and every selected check is reported as
    skipped for it, so "not checked" is never read as "passed".
    """
    from mlwarden.supplychain.sign import signature_finding

    if not results:
        return
    by_source = {str(t.source): t for t in targets if getattr(t, "source", None)}
    described = {d.get("name"): d for d in report.targets if isinstance(d, dict)}
    findings = []
    for res in results:
        target = by_source.get(str(res.path))
        name = target.name if target is not None else (res.path.stem or res.path.name)
        findings.append(signature_finding(res, target=name))
        if res.ok:
            desc = described.get(name)
            if desc is not None:
                desc["signature"] = (
                    f"verified: {res.files_checked} file(s), key {res.key_fingerprint}"
                )
            continue
        report.targets.append(
            {"name": name, "source": str(res.path), "loaded": False, "signature": res.message}
        )
        reason = f"not loaded: {res.path} failed signature verification (MLW-SUP-010)"
        for check in checks:
            report.skipped.append({"check": check.id, "target": name, "reason": reason})
    report.findings[:0] = findings
    report.signatures.extend(r.to_dict() for r in results)


def signature_only_report(data: Any, seed: int) -> Report:
    """The report of an audit in which no model passed signature verification."""
    from mlwarden.findings.report import Report

    return Report(seed=seed, data=data.describe())
