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
    # audit
    "ExtractionCheck": "mlwarden.theft.checks",
}

__all__ = [
    "ActiveStrategy",
    "AttackerCost",
    "CurvePoint",
    "ExtractionCheck",
    "ExtractionResult",
    "ExtractionStrategy",
    "GaussianNoise",
    "HardenedTarget",
    "HonestCost",
    "JacobianStrategy",
    "KnockoffStrategy",
    "LabelOnly",
    "OutputDefense",
    "ReverseSigmoid",
    "Rounding",
    "ScoreRegressorClassifier",
    "TopK",
    "TransferResult",
    "UniformStrategy",
    "attacker_cost",
    "extract",
    "harden_outputs",
    "honest_cost",
    "transferability",
]

if TYPE_CHECKING:
    from mlwarden.theft.checks import ExtractionCheck
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
    from mlwarden.theft.strategies import (
        ActiveStrategy,
        ExtractionStrategy,
        JacobianStrategy,
        KnockoffStrategy,
        UniformStrategy,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlwarden.theft' has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
