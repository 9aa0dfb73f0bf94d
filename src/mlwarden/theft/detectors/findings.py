"""Alerts from a replayed query stream as report findings (MLW-THF-003, MLW-THF-004).

One finding per threat: failed, listing every flagged client with the detector and the
query at which it fired, or passed, saying how many clients and queries were replayed
without an alert. ``mlwarden theft detect`` prints the same alerts; the demo adds these
findings to its report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlwarden.theft.detectors.base import Alert, ReplayResult

if TYPE_CHECKING:
    from mlwarden.findings.finding import Finding

__all__ = ["alert_findings"]

_CHECK = "theft.detect"
_LISTED = 20


def alert_findings(result: ReplayResult, *, target: str) -> list[Finding]:
    """MLW-THF-003 (extraction) and MLW-THF-004 (evasion probing) for one replay.

    Parameters
    ----------
    result : ReplayResult
        What :func:`~mlwarden.theft.detectors.replay` found.
    target : str
        What the queries were sent to (the model or the log's name).

    Returns
    -------
    list of Finding
        Two findings; the metric is the number of clients flagged (threshold 0).
    """
    from mlwarden.findings.finding import Finding
    from mlwarden.theft.rules import RULE_CLIENT_EXTRACTION, RULE_CLIENT_PROBING

    n_clients = len(result.queries_per_client)
    out = []
    for rule, threat in ((RULE_CLIENT_EXTRACTION, "extraction"),
                         (RULE_CLIENT_PROBING, "evasion probing")):  # fmt: skip
        first: dict[str, Alert] = {}
        for alert in result.alerts:
            if alert.threat == threat and alert.client not in first:
                first[alert.client] = alert
        flagged = list(first.values())
        if flagged:
            listed = "; ".join(
                f"{a.client} by {a.detector} after {a.query_index} queries"
                for a in flagged[:_LISTED]
            )
            description = f"{len(flagged)} of {n_clients} client(s) flagged: {listed}."
        else:
            description = (
                f"No {threat} alert in {result.n_queries} queries from {n_clients} client(s)."
            )
        out.append(
            Finding.from_rule(
                rule,
                target=target,
                check=_CHECK,
                metric="clients_flagged",
                value=float(len(flagged)),
                threshold=0.0,
                higher_is_better=False,
                description=description,
                evidence={
                    "clients": n_clients,
                    "queries": result.n_queries,
                    "alerts": [a.to_dict() for a in flagged[:_LISTED]],
                },
            )
        )
    return out
