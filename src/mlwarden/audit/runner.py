"""Run checks on targets and collect a :class:`~mlwarden.findings.Report`.

The runner plans first and runs second: every (target, check) pair is either
skipped with a reason (the target lacks a capability) or validated, so a bad
parameter, unlabelled data or a model that does not fit the data fails before any
attack spends time. A check that raises while running becomes an entry in
``report.errors`` — never a silent pass.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mlwarden import _registry
from mlwarden._progress import ProgressCallback
from mlwarden.audit.check import Check
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import IncompatibleModelError, InvalidParameterError
from mlwarden.findings.report import Report, collect_versions
from mlwarden.findings.taxonomy import ThreatFamily
from mlwarden.models.base import Target

__all__ = ["audit", "available_checks", "expand_checks", "resolve_checks"]


def available_checks(family: str | None = None) -> list[str]:
    """Registered check names, optionally of one threat family."""
    return _registry.available("check", family=family)


def expand_checks(checks: Iterable[str] | str | None) -> list[str]:
    """Expand check names, family names (``"evasion"``) and name prefixes (``"data"`` for
    ``data.pii`` and ``data.manifest``) into registered check names.

    ``None`` selects every registered check; a string may be comma-separated.
    """
    if checks is None:
        return available_checks()
    items = [c.strip() for c in checks.split(",")] if isinstance(checks, str) else list(checks)
    families = {f.value for f in ThreatFamily}
    out: list[str] = []
    for item in filter(None, items):
        if item in families:
            expanded = available_checks(item)
            if not expanded:
                raise InvalidParameterError(
                    f"no checks are available yet for the {item!r} family; "
                    f"available: {', '.join(available_checks())}"
                )
        elif any(n.startswith(f"{item}.") for n in available_checks()):
            expanded = [n for n in available_checks() if n.startswith(f"{item}.")]
        else:
            _registry.get("check", item)  # raises with the list of valid names
            expanded = [item]
        out.extend(n for n in expanded if n not in out)
    if not out:
        raise InvalidParameterError("no checks selected")
    return out


def resolve_checks(
    checks: Iterable[str | Check] | str | None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Check]:
    """Turn names, family names (``"evasion"``) or instances into check instances.

    Parameters
    ----------
    checks : iterable of str or Check, comma-separated str, or None
        ``None`` selects every registered check.
    params : mapping, optional
        ``{"evasion.pgd": {"eps": 0.25}}``: keyword parameters per check name.
    """
    params = dict(params or {})
    items = [checks] if isinstance(checks, str) or checks is None else list(checks)
    out: list[Check] = []
    for item in items:
        if isinstance(item, Check):
            out.append(item)
            continue
        for name in expand_checks(item):
            if any(c.id == name for c in out):
                continue
            out.append(_registry.create("check", name, **dict(params.pop(name, {}))))
    if params:
        raise InvalidParameterError(
            f"parameters given for checks that were not selected: {', '.join(sorted(params))}"
        )
    if not out:
        raise InvalidParameterError("no checks selected")
    return out


def _as_targets(targets: Target | Sequence[Target] | Mapping[str, Target]) -> list[Target]:
    if isinstance(targets, Target):
        out = [targets]
    elif isinstance(targets, Mapping):
        out = []
        for name, t in targets.items():
            t.name = name
            out.append(t)
    else:
        out = list(targets)
    if not out:
        raise InvalidParameterError("audit needs at least one target")
    names = [t.name for t in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidParameterError(f"target names must be unique; repeated: {', '.join(dupes)}")
    return out


def _seed_for(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends on the seed and the (target, check) names, not on order."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


def _check_fit(target: Target, data: Dataset) -> None:
    if target.input_spec.n_features != data.n_features:
        raise IncompatibleModelError(
            f"model {target.name!r} expects {target.input_spec.n_features} features, "
            f"the data {data.name!r} has {data.n_features}"
        )
    if data.y is not None:
        present = np.unique(target.encode_labels(data.y))
        if len(present) != target.n_classes:
            classes = ", ".join(repr(c) for c in target.classes.tolist())
            labels = ", ".join(repr(target.classes[i].item()) for i in present)
            raise IncompatibleModelError(
                f"model {target.name!r} has {target.n_classes} classes ({classes}) but the "
                f"data {data.name!r} has {len(present)} distinct labels ({labels}): "
                "the class count does not match"
            )


def audit(
    targets: Target | Sequence[Target] | Mapping[str, Target],
    data: Dataset,
    *,
    checks: Iterable[str | Check] | str | None = None,
    check_params: Mapping[str, Mapping[str, Any]] | None = None,
    random_state: int = 0,
    progress: ProgressCallback | None = None,
    title: str = "mlwarden audit",
) -> Report:
    """Audit one or more targets on a data set.

    Parameters
    ----------
    targets : Target, list of Target, or mapping name → Target
        The models under audit.
    data : Dataset
        Labelled evaluation data with its feature schema.
    checks : names, family names, Check instances, or None for all
        What to run, e.g. ``["evasion"]`` or ``"evasion.pgd,evasion.square"``.
    check_params : mapping, optional
        Per-check keyword parameters, e.g. ``{"evasion.pgd": {"eps": 0.25}}``.
    random_state : int
        Master seed; each (target, check) pair derives its own generator from it,
        so the same seed gives the same report whatever the order.
    progress : callable, optional
        ``progress(task, done, total)``.
    title : str
        Report title.

    Returns
    -------
    Report
    """
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise InvalidParameterError(f"random_state must be an int, got {random_state!r}")
    started = time.perf_counter()
    target_list = _as_targets(targets)
    check_list = resolve_checks(checks, check_params)
    report = Report(seed=int(random_state), title=title, data=data.describe())
    plan: list[tuple[Target, Check]] = []
    data_checks: set[str] = set()
    for target in target_list:
        _check_fit(target, data)
        report.targets.append(target.describe())
        for check in check_list:
            report.params[check.id] = check.get_params()
            if check.per_data:
                if check.id in data_checks:
                    continue  # a check of the data alone runs (or skips) once, not per model
                data_checks.add(check.id)
            reason = check.skip_reason(target, data)
            if reason is not None:
                report.skipped.append({"check": check.id, "target": target.name, "reason": reason})
                continue
            check.validate(target, data)
            plan.append((target, check))
    for target, check in plan:
        t0 = time.perf_counter()
        q0 = target.n_queries
        try:
            result = check.run(
                target,
                data,
                random_state=_seed_for(int(random_state), target.name, check.id),
                progress=progress,
            )
        except Exception as exc:
            report.errors.append(
                {
                    "check": check.id,
                    "target": target.name,
                    "error": type(exc).__name__,
                    "message": str(exc) or repr(exc),
                }
            )
        else:
            report.findings.extend(result.findings)
            metrics = dict(result.metrics)
            metrics.setdefault("model_queries", target.n_queries - q0)
            report.add_metrics(target.name, check.id, metrics)
        finally:
            report.timings[f"{target.name}/{check.id}"] = time.perf_counter() - t0
    report.duration_s = time.perf_counter() - started
    # Frameworks a check imported while it ran (torch, onnxruntime) are versions too.
    report.versions = collect_versions()
    return report
