"""``mlwarden theft …``: replay a query log through the stateful extraction detectors.

``mlwarden theft detect --log queries.jsonl`` reads a JSON Lines query log (format in
:mod:`mlwarden.theft.querylog`), feeds each query, in order, to the per-client
detectors (PRADA, the k-NN probing detector, the out-of-distribution rate monitor)
and reports which clients were flagged, by which detector and after how many of
their queries. The detectors learn the feature scale and their thresholds from
reference rows: ``--data`` (a CSV/Parquet file of ordinary traffic or training data,
or ``builtin:fraud``); without it, from the log's own queries, which assumes most of
the logged traffic is benign (a warning says so). Exit codes:

* ``0`` — no client was flagged;
* ``1`` — at least one client was flagged;
* ``2`` — bad usage or input: a missing or unreadable log, a line that is not a JSON
  object, a missing ``client`` or ``x`` field, a query with the wrong number of
  features (the message names the file and line), bad reference data.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from mlwarden.theft.detectors import Detector, ReplayResult

__all__ = ["register", "run_detect"]

DETECTOR_NAMES = ("prada", "knn_probe", "ood_rate")
_MAX_SELF_REFERENCE = 20_000


class DetectFormat(str, enum.Enum):
    """What ``mlwarden theft detect`` prints."""

    TEXT = "text"
    JSON = "json"


def _parse_detectors(spec: str) -> list[str]:
    from mlwarden.exceptions import InvalidParameterError

    aliases = {"knn": "knn_probe", "ood": "ood_rate"}
    names = [aliases.get(s.strip(), s.strip()) for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in DETECTOR_NAMES]
    if unknown or not names:
        raise InvalidParameterError(
            f"--detectors: unknown detector(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(DETECTOR_NAMES)}"
        )
    return list(dict.fromkeys(names))


def _self_reference(log: Path, seed: int) -> Any:
    """A uniform sample of the log's own queries (reservoir, bounded memory)."""
    import numpy as np

    from mlwarden.exceptions import DataFileError
    from mlwarden.theft.querylog import read_query_log

    rng = np.random.default_rng(seed)
    rows: list[Any] = []
    for seen, q in enumerate(read_query_log(log), start=1):
        if len(rows) < _MAX_SELF_REFERENCE:
            rows.append(q.x)
        else:
            j = int(rng.integers(0, seen))
            if j < _MAX_SELF_REFERENCE:
                rows[j] = q.x
    if len(rows) < 30:
        raise DataFileError(
            f"{log}: {len(rows)} queries are too few to calibrate the detectors on the log "
            "itself; give reference data with --data"
        )
    return np.vstack(rows)


def run_detect(
    log: Path,
    *,
    data: str | None = None,
    label: str | None = None,
    schema: Path | None = None,
    detectors: str = ",".join(DETECTOR_NAMES),
    seed: int = 0,
    max_clients: int = 100_000,
) -> tuple[ReplayResult, list[Detector], list[str]]:
    """Fit the detectors and replay ``log``; returns the result, detectors and warnings."""
    from mlwarden.theft.detectors import PRADA, KNNProbeDetector, OODRateMonitor, replay
    from mlwarden.theft.querylog import read_query_log

    names = _parse_detectors(detectors)
    warnings: list[str] = []
    if not log.is_file():
        from mlwarden.exceptions import DataFileError

        raise DataFileError(f"{log}: no such file" if not log.exists() else f"{log}: not a file")
    scale = None
    if data is not None:
        from mlwarden.data.io import load_dataset

        dataset = load_dataset(data, label=label, schema=schema)
        reference = dataset.X
        source = data
    else:
        reference = _self_reference(log, seed)
        source = "the log itself"
        warnings.append(
            "no --data: thresholds were calibrated on the log's own queries, which assumes "
            "most of its traffic is benign"
        )
        if schema is not None:
            from mlwarden.data.schema import FeatureSchema

            loaded = FeatureSchema.load(schema)
            if len(loaded) != reference.shape[1]:
                from mlwarden.exceptions import DataError

                raise DataError(
                    f"{schema}: the schema has {len(loaded)} features but the log's queries "
                    f"have {reference.shape[1]}"
                )
            scale = loaded.scale
    built: dict[str, Detector] = {
        "prada": PRADA(scale=scale, random_state=seed, max_clients=max_clients),
        "knn_probe": KNNProbeDetector(scale=scale, random_state=seed, max_clients=max_clients),
        "ood_rate": OODRateMonitor(max_clients=max_clients),
    }
    chosen = [built[n] for n in names]
    for det in chosen:
        det.fit(reference)
    stream = ((q.client, q.x, q.label) for q in read_query_log(log, n_features=reference.shape[1]))
    result = replay(chosen, stream)
    if result.n_queries == 0:
        warnings.append(f"{log}: the log holds no queries")
    warnings.insert(0, f"reference: {source} ({reference.shape[0]} rows)")
    return result, chosen, warnings


def _threshold(det: Any) -> float:
    for attr in ("delta_", "threshold_", "max_rate"):
        if hasattr(det, attr):
            return float(getattr(det, attr))
    return float("nan")  # pragma: no cover


def detect_command(
    log: Annotated[
        Path,
        typer.Option("--log", help="Query log (JSON Lines: client, x, optional label, ts)."),
    ],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            help="Reference rows of ordinary traffic: CSV/Parquet file or builtin:fraud "
            "(default: the log's own queries).",
            show_default=False,
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", "-l", help="Label column of --data (left out of the features)."),
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema", help="Feature schema JSON (for --data; alone, gives the feature scale)."
        ),
    ] = None,
    detectors: Annotated[
        str,
        typer.Option("--detectors", help="Comma-separated: prada, knn_probe, ood_rate."),
    ] = ",".join(DETECTOR_NAMES),
    fmt: Annotated[
        DetectFormat,
        typer.Option("--format", "-f", help="Output format.", case_sensitive=False),
    ] = DetectFormat.TEXT,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the calibration.")] = 0,
) -> None:
    """Replay a query log through the theft detectors: exit 1 if a client is flagged."""
    from mlwarden.cli.app import EXIT_FINDINGS, EXIT_OK, _friendly_errors, err, out

    with _friendly_errors():
        result, chosen, notes = run_detect(
            log, data=data, label=label, schema=schema, detectors=detectors, seed=seed
        )
    flagged = result.flagged_clients
    if fmt is DetectFormat.JSON:
        doc = {
            "log": str(log),
            "queries": result.n_queries,
            "clients": len(result.queries_per_client),
            "detectors": {d.name: {"threshold": _threshold(d)} for d in chosen},
            "flagged": [
                {
                    "client": client,
                    "queries": result.queries_per_client[client],
                    "alerts": [a.to_dict() for a in alerts],
                }
                for client, alerts in flagged.items()
            ],
            "notes": notes,
        }
        out.print_json(json.dumps(doc))
    else:
        for note in notes:
            err.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
        out.print(
            f"replayed {result.n_queries} queries from {len(result.queries_per_client)} "
            f"clients through {', '.join(d.name for d in chosen)}",
            highlight=False,
            soft_wrap=True,
        )
        if not flagged:
            out.print("no client flagged", highlight=False)
        else:
            out.print(f"{len(flagged)} client(s) flagged:", highlight=False)
            for client, alerts in flagged.items():
                total = result.queries_per_client[client]
                for a in alerts:
                    out.print(
                        f"  {client}: {a.detector} ({a.threat}) after {a.query_index} of "
                        f"{total} queries, score {a.score:.4g} {a.direction} threshold "
                        f"{a.threshold:.4g} [{', '.join(a.atlas + a.owasp)}]",
                        highlight=False,
                        soft_wrap=True,
                        markup=False,
                    )
    raise typer.Exit(EXIT_FINDINGS if flagged else EXIT_OK)


def register(app: Any) -> None:
    """Add the ``theft`` command group to ``app``."""
    theft_app = typer.Typer(
        name="theft",
        help="Model theft: replay query logs through the extraction detectors.",
        no_args_is_help=True,
    )
    theft_app.command("detect", no_args_is_help=True)(detect_command)
    app.add_typer(theft_app, name="theft")
