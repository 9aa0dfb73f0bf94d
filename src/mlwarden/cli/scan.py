"""``mlwarden scan``: vet model files before anything loads them (a CI gate).

The command reads files, never imports or runs anything from them, and fails closed:

* ``0`` — every file was scanned completely and is safe;
* ``1`` — at least one file is unsafe;
* ``2`` — no file is unsafe but something could not be scanned (unknown or damaged
  format, a path that does not exist, an empty folder, a folder whose files were all
  skipped: nothing scanned is never "safe"), or bad usage (a missing or invalid
  ``--policy`` file, a bad option).

Skipped paths (``.git`` folders, repository text files, ``--exclude`` matches; see
:mod:`mlwarden.supplychain.skips`) are listed apart and never change the exit code.

Start-up time matters in CI, where the scan runs on every push. typer builds a
pydantic validator for every parameter it parses, which costs more than the scan of a
typical file, so :func:`mlwarden.cli.main` hands a well-formed ``mlwarden scan ...``
command line to :func:`fast_main` first: a plain :mod:`argparse` parser of the same
options that calls the same :func:`run_scan` as the typer command. Anything it does
not accept as-is (``--help``, an unknown option, a bad ``--format``) goes to the typer
app, which stays the single source of help texts and usage errors. The scan path
imports neither typer, NumPy nor the audit's report writers, and not even ``rich``
when the output is not a terminal (a CI log): the text is then plain.
"""

import argparse
import enum
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

if TYPE_CHECKING:
    from rich.console import Console

    from mlwarden.supplychain.policy import Policy
    from mlwarden.supplychain.result import ScanResult

__all__ = ["HELP", "OutputFormat", "fast_main", "register", "run_scan"]

EXIT_ERROR = 2
_ALLOW_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_*][\w*]*)+$")

HELP = (
    "Scan model files for code that would run when they are loaded (never loads them).\n\n"
    "Formats are detected from the content: pickle, joblib, PyTorch (zip, legacy, tar), "
    "NumPy .npy/.npz, safetensors, ONNX, Keras (.keras, .h5), GGUF, skops. Folders are "
    "scanned recursively and every file in them is listed.\n\n"
    "Skipped and listed apart (never counted as scanned): .git/.hg/.svn folders, and "
    "repository text files (README*, LICENSE*, *.md, *.txt, .gitattributes, ...) whose "
    "content is text in no model format and not a pickle (--no-default-skips scans "
    "them), and whatever an --exclude GLOB matches.\n\n"
    "[bold]Exit codes[/bold] (fail closed):\n\n"
    "* [bold]0[/bold] every file was scanned completely and is safe\n"
    "* [bold]1[/bold] at least one file is unsafe\n"
    "* [bold]2[/bold] something could not be scanned (unknown or damaged file, missing "
    "path, empty folder, nothing scanned, everything skipped) or bad usage (e.g. a "
    "missing --policy file)\n\n"
    "See docs/scanning.md."
)
"""The command's help text (rich markup), with the exit codes."""


class OutputFormat(str, enum.Enum):
    """What ``mlwarden scan`` writes."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"


# --------------------------------------------------------------------------- the work


def _policy(policy_file: Path | None, allow: list[str]) -> "Policy | None":
    from mlwarden.exceptions import InvalidParameterError
    from mlwarden.supplychain.policy import Policy

    for name in allow:
        if not _ALLOW_NAME.match(name):
            raise InvalidParameterError(
                f"--allow {name!r}: give the global as MODULE.NAME (e.g. mypackage.model.MyNet)"
            )
    if policy_file is None and not allow:
        return None
    policy = Policy.load(policy_file) if policy_file is not None else Policy()
    return policy.with_allowed(allow) if allow else policy


def _machine_text(result: "ScanResult", fmt: OutputFormat, policy: "Policy | None") -> str:
    from mlwarden.supplychain.render import render_json, render_sarif

    if fmt is OutputFormat.JSON:
        return render_json(result, policy=policy)
    return render_sarif(result, policy=policy)


def _write(path: Path, fmt: OutputFormat, result: "ScanResult", policy: "Policy | None") -> None:
    from mlwarden.exceptions import InvalidParameterError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            if fmt is OutputFormat.TEXT:
                from mlwarden.supplychain.render import text_report

                fh.write(text_report(result))
            else:
                fh.write(_machine_text(result, fmt, policy))
    except OSError as exc:
        raise InvalidParameterError(
            f"{path}: cannot write the --output file ({exc.strerror or exc})"
        ) from None


def _run(
    paths: list[str],
    policy: "Policy | None",
    progress: bool,
    exclude: list[str],
    default_skips: bool,
) -> "ScanResult":
    from mlwarden.supplychain.scanner import scan

    if not progress:
        return scan(paths, policy=policy, exclude=exclude, default_skips=default_skips)
    from mlwarden.cli.app import _progress  # interactive only: a rich progress bar

    with _progress(True) as callback:
        assert callback is not None

        def one_bar(task: str, done: int, total: int) -> None:
            callback("scanning", done, total)  # one bar, not one per file

        return scan(
            paths,
            policy=policy,
            progress=one_bar,
            exclude=exclude,
            default_skips=default_skips,
        )


def run_scan(
    paths: list[str],
    *,
    fmt: OutputFormat,
    output: Path | None,
    allow: list[str],
    policy_file: Path | None,
    out: "Console | None",
    err: "Console | None",
    exclude: list[str] | None = None,
    default_skips: bool = True,
) -> int:
    """Scan ``paths`` and print or write the result; return the exit code.

    Parameters
    ----------
    paths : list of str
        Files and folders.
    fmt : OutputFormat
        ``text`` (to ``out``), ``json`` or ``sarif``.
    output : pathlib.Path or None
        Write the output there instead; the summary line then goes to ``err``.
    allow : list of str
        ``--allow`` globals.
    policy_file : pathlib.Path or None
        ``--policy`` TOML file.
    out, err : rich.console.Console or None
        Standard output and standard error; ``None`` writes plain text to
        ``sys.stdout`` / ``sys.stderr`` without importing ``rich`` (no colours, no
        progress bar), which is what a CI log gets anyway.
    exclude : list of str or None
        ``--exclude`` glob patterns (added to the policy file's ``exclude``).
    default_skips : bool, default=True
        False for ``--no-default-skips``.

    Returns
    -------
    int
        0 all safe, 1 any unsafe, 2 anything could not be scanned or nothing was.

    Raises
    ------
    MlwardenError
        Bad usage (an invalid ``--allow`` name or ``--exclude`` pattern, a missing or
        invalid policy file, an output file that cannot be written), or a scan that
        could not complete.
    """
    from mlwarden.exceptions import InvalidParameterError, MlwardenError, ModelLoadError

    policy = _policy(policy_file, allow)
    patterns = list(exclude or [])
    for pattern in patterns:
        if not pattern.strip("/"):
            raise InvalidParameterError(f"--exclude {pattern!r}: give a glob pattern")
    try:
        result = _run(
            paths,
            policy,
            progress=err is not None and err.is_terminal,
            exclude=patterns,
            default_skips=default_skips,
        )
    except (MlwardenError, KeyboardInterrupt):
        raise
    except Exception as exc:  # fail closed: a scanner bug must never read as "safe"
        raise ModelLoadError(
            f"the scan could not complete ({type(exc).__name__}: {exc}); "
            "nothing is known to be safe"
        ) from exc

    if output is not None:
        from mlwarden.supplychain.render import summary_line

        _write(output, fmt, result, policy)
        message = f"{summary_line(result)} Wrote {output}."
        if err is None:
            sys.stderr.write(message + "\n")
        else:
            err.print(message, highlight=False, soft_wrap=True, markup=False)
    elif fmt is OutputFormat.TEXT:
        from mlwarden.supplychain.render import render_text, text_report

        if out is None:
            sys.stdout.write(text_report(result))
        else:
            render_text(result, out)
    else:
        stream = sys.stdout if out is None else out.file
        stream.write(_machine_text(result, fmt, policy))
        stream.flush()
    code = result.exit_code
    return code if code in (0, 1) else EXIT_ERROR


# --------------------------------------------------------------------------- typer


def register(app: Any) -> None:
    """Add ``scan`` to the ``mlwarden`` typer app."""
    import typer

    def scan(
        paths: Annotated[
            list[Path],
            typer.Argument(
                help="Model files or folders to scan.", show_default=False, metavar="PATH"
            ),
        ],
        fmt: Annotated[
            OutputFormat,
            typer.Option("--format", "-f", help="Output format.", case_sensitive=False),
        ] = OutputFormat.TEXT,
        output: Annotated[
            Path | None,
            typer.Option(
                "--output",
                "-o",
                help="Write the output to this file instead of stdout (the summary line "
                "goes to stderr).",
                show_default=False,
            ),
        ] = None,
        allow: Annotated[
            list[str] | None,
            typer.Option(
                "--allow",
                help="Also accept this global (a class you trust, e.g. "
                "mypackage.model.MyNet); repeat for more.",
                metavar="MODULE.NAME",
                show_default=False,
            ),
        ] = None,
        policy_file: Annotated[
            Path | None,
            typer.Option(
                "--policy",
                help="TOML policy file: allow, deny, force, max_file_bytes, exclude "
                "(see docs/scanning.md).",
                show_default=False,
            ),
        ] = None,
        exclude: Annotated[
            list[str] | None,
            typer.Option(
                "--exclude",
                help="Do not read files or folders matching this glob (matched against "
                "the path relative to the scanned folder and against the name; * also "
                "matches /); they are listed as skipped. Repeat for more.",
                metavar="GLOB",
                show_default=False,
            ),
        ] = None,
        no_default_skips: Annotated[
            bool,
            typer.Option(
                "--no-default-skips",
                help="Also scan .git/.hg/.svn folders and repository text files "
                "(README*, LICENSE*, *.md, *.txt, ...), which are skipped by default.",
            ),
        ] = False,
    ) -> None:
        from mlwarden.cli.app import _friendly_errors, err, out

        with _friendly_errors():
            code = run_scan(
                [str(p) for p in paths],
                fmt=fmt,
                output=output,
                allow=allow or [],
                policy_file=policy_file,
                out=out,
                err=err,
                exclude=exclude or [],
                default_skips=not no_default_skips,
            )
        raise typer.Exit(code)

    app.command("scan", help=HELP, no_args_is_help=True)(scan)


# --------------------------------------------------------------------------- fast path


class _NotForUsError(Exception):
    """The command line is not a plain, valid scan: let typer handle it."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _NotForUsError(message)


def _parser() -> argparse.ArgumentParser:
    """The typer command's options, for :func:`fast_main` (a test keeps them in step)."""
    p = _Parser(prog="mlwarden scan", add_help=False, allow_abbrev=False)
    p.add_argument("paths", nargs="+")
    p.add_argument("--format", "-f", dest="fmt", type=str.lower, default="text",
                   choices=[f.value for f in OutputFormat])  # fmt: skip
    p.add_argument("--output", "-o", type=Path, default=None)
    p.add_argument("--allow", action="append", default=[])
    p.add_argument("--policy", dest="policy_file", type=Path, default=None)
    p.add_argument("--exclude", action="append", default=[])
    p.add_argument("--no-default-skips", action="store_true")
    return p


def fast_main(argv: list[str]) -> int | None:
    """Run ``mlwarden scan ARGV`` without typer; ``None`` when typer must handle it.

    Parameters
    ----------
    argv : list of str
        The arguments after ``scan``.

    Returns
    -------
    int or None
        The exit code, or ``None`` for a command line this parser does not take as-is
        (help, an unknown option, a bad value): the caller then runs the typer app,
        which prints the help or the usage error.
    """
    if not argv or any(a in ("--help", "-h") for a in argv):
        return None
    try:
        ns = _parser().parse_intermixed_args(argv)
    except _NotForUsError:
        return None

    from mlwarden.exceptions import MlwardenError

    out, err = _console(sys.stdout, stderr=False), _console(sys.stderr, stderr=True)
    try:
        return run_scan(
            [str(Path(p)) for p in ns.paths],
            fmt=OutputFormat(ns.fmt),
            output=ns.output,
            allow=list(ns.allow),
            policy_file=ns.policy_file,
            out=out,
            err=err,
            exclude=list(ns.exclude),
            default_skips=not ns.no_default_skips,
        )
    except MlwardenError as exc:  # the same one-line message as the typer app
        _error(err, str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _error(err, "interrupted", prefix=False)
        return 130


def _console(stream: Any, *, stderr: bool) -> "Console | None":
    """A rich console for a terminal (or ``FORCE_COLOR``); ``None`` for plain text."""
    isatty = getattr(stream, "isatty", None)
    if not (callable(isatty) and isatty()) and not os.environ.get("FORCE_COLOR"):
        return None
    from rich.console import Console

    return Console(stderr=stderr)


def _error(err: "Console | None", message: str, *, prefix: bool = True) -> None:
    if err is None:
        sys.stderr.write(("error: " if prefix else "") + message + "\n")
        return
    from rich.markup import escape

    head = "[bold red]error:[/] " if prefix else ""
    err.print(f"{head}{escape(message)}", highlight=False, soft_wrap=True)
