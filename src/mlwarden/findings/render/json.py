"""The JSON report: :meth:`Report.to_dict` as a file, and the JSON Schema describing it.

The schema (JSON Schema draft 2020-12) ships with the package at
``mlwarden/findings/schema/report.schema.json``; ``docs/report-format.md`` explains
each field. Its ``schema_version`` is :data:`~mlwarden.findings.report.REPORT_SCHEMA_VERSION`.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

from mlwarden.findings.render._common import PathLike, write_text
from mlwarden.findings.report import Report

__all__ = ["load_report_schema", "render_json", "write_json"]

SCHEMA_RESOURCE = "schema/report.schema.json"


def render_json(report: Report, *, include_timing: bool = True, indent: int = 2) -> str:
    """The report as a JSON document.

    Parameters
    ----------
    report : Report
        The audit report.
    include_timing : bool, default=True
        Keep the wall-clock fields (``created_at``, ``duration_s``, ``timings``,
        ``platform``); without them two runs with the same seed give the same text.
    indent : int, default=2
        Indentation of the JSON text.

    Returns
    -------
    str
        UTF-8 JSON text ending with a newline; non-finite numbers are ``null``.
    """
    doc = report.to_dict(include_timing=include_timing)
    return json.dumps(doc, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(report: Report, path: PathLike, *, include_timing: bool = True) -> Path:
    """Write :func:`render_json` output to ``path`` (parent folders are created).

    Parameters
    ----------
    report : Report
        The audit report.
    path : str or os.PathLike
        Destination file, conventionally ``report.json``.
    include_timing : bool, default=True
        See :func:`render_json`.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    return write_text(path, render_json(report, include_timing=include_timing))


@functools.cache
def _schema_text() -> str:
    return (
        resources.files("mlwarden.findings").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    )


def load_report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the JSON report.

    Returns
    -------
    dict
        A fresh copy of ``mlwarden/findings/schema/report.schema.json``; validate a
        report with, e.g., ``jsonschema.Draft202012Validator(load_report_schema())``.
    """
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema
