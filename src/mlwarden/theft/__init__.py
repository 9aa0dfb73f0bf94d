"""Model theft: extraction attacks, output hardening, stateful query detectors, watermarks.

::

    from mlwarden.theft import extract, harden_outputs
    stolen = extract(target, budget=2000, strategy="knockoff", pool=X_pool, test=test)
    stolen.fidelity, stolen.curve           # agreement with the victim over the budget
    stolen.transferability(X_test)          # evasion examples crafted on the copy
    safer = harden_outputs(target, "label-only")

Names are imported on first use (PEP 562), so ``import mlwarden.theft`` loads neither
scikit-learn nor torch. See docs/theft.md.
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    # extraction
    "CurvePoint": "mlwarden.theft.extraction",
    "ExtractionResult": "mlwarden.theft.extraction",
    "TransferResult": "mlwarden.theft.extraction",
    "extract": "mlwarden.theft.extraction",
    "transferability": "mlwarden.theft.extraction",
    "ActiveStrategy": "mlwarden.theft.strategies",
    "ExtractionStrategy": "mlwarden.theft.strategies",
    "JacobianStrategy": "mlwarden.theft.strategies",
    "KnockoffStrategy": "mlwarden.theft.strategies",
    "UniformStrategy": "mlwarden.theft.strategies",
    "ScoreRegressorClassifier": "mlwarden.theft.distill",
    # output hardening
    "AttackerCost": "mlwarden.theft.harden",
    "GaussianNoise": "mlwarden.theft.harden",
    "HardenedTarget": "mlwarden.theft.harden",
    "HonestCost": "mlwarden.theft.harden",
    "LabelOnly": "mlwarden.theft.harden",
    "OutputDefense": "mlwarden.theft.harden",
    "ReverseSigmoid": "mlwarden.theft.harden",
    "Rounding": "mlwarden.theft.harden",
    "TopK": "mlwarden.theft.harden",
    "attacker_cost": "mlwarden.theft.harden",
    "harden_outputs": "mlwarden.theft.harden",
    "honest_cost": "mlwarden.theft.harden",
    # stateful query detectors, query logs, watermarks
    "PRADA": "mlwarden.theft.detectors",
    "KNNProbeDetector": "mlwarden.theft.detectors",
    "OODRateMonitor": "mlwarden.theft.detectors",
    "Alert": "mlwarden.theft.detectors",
    "Detector": "mlwarden.theft.detectors",
    "ReplayResult": "mlwarden.theft.detectors",
    "replay": "mlwarden.theft.detectors",
    "Query": "mlwarden.theft.querylog",
    "read_query_log": "mlwarden.theft.querylog",
    "write_query_log": "mlwarden.theft.querylog",
    "iter_queries": "mlwarden.theft.querylog",
    "Watermark": "mlwarden.theft.watermark",
    "WatermarkVerification": "mlwarden.theft.watermark",
    "alert_findings": "mlwarden.theft.detectors.findings",
    # audit
    "ExtractionCheck": "mlwarden.theft.checks",
}

__all__ = [
    "PRADA",
    "ActiveStrategy",
    "Alert",
    "AttackerCost",
    "CurvePoint",
    "Detector",
    "ExtractionCheck",
    "ExtractionResult",
    "ExtractionStrategy",
    "GaussianNoise",
    "HardenedTarget",
    "HonestCost",
    "JacobianStrategy",
    "KNNProbeDetector",
    "KnockoffStrategy",
    "LabelOnly",
    "OODRateMonitor",
    "OutputDefense",
    "Query",
    "ReplayResult",
    "ReverseSigmoid",
    "Rounding",
    "ScoreRegressorClassifier",
    "TopK",
    "TransferResult",
    "UniformStrategy",
    "Watermark",
    "WatermarkVerification",
    "alert_findings",
    "attacker_cost",
    "extract",
    "harden_outputs",
    "honest_cost",
    "iter_queries",
    "read_query_log",
    "replay",
    "transferability",
    "write_query_log",
]

if TYPE_CHECKING:
    from mlwarden.theft.checks import ExtractionCheck
    from mlwarden.theft.detectors import (
        PRADA,
        Alert,
        Detector,
        KNNProbeDetector,
        OODRateMonitor,
        ReplayResult,
        replay,
    )
    from mlwarden.theft.detectors.findings import alert_findings
    from mlwarden.theft.distill import ScoreRegressorClassifier
    from mlwarden.theft.extraction import (
        CurvePoint,
        ExtractionResult,
        TransferResult,
        extract,
        transferability,
    )
    from mlwarden.theft.harden import (
        AttackerCost,
        GaussianNoise,
        HardenedTarget,
        HonestCost,
        LabelOnly,
        OutputDefense,
        ReverseSigmoid,
        Rounding,
        TopK,
        attacker_cost,
        harden_outputs,
        honest_cost,
    )
    from mlwarden.theft.querylog import Query, iter_queries, read_query_log, write_query_log
    from mlwarden.theft.strategies import (
        ActiveStrategy,
        ExtractionStrategy,
        JacobianStrategy,
        KnockoffStrategy,
        UniformStrategy,
    )
    from mlwarden.theft.watermark import Watermark, WatermarkVerification


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlwarden.theft' has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
