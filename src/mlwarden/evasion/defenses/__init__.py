"""Evasion defenses: adversarial training (PGD, TRADES) and randomized smoothing.

* :func:`adversarial_training` — fine-tune a copy of a torch classifier on adversarial
  examples from the evasion threat model (Madry et al., ICLR 2018), or with the
  TRADES objective (Zhang et al., ICML 2019; :func:`trades_training`).
* :func:`certify`, :func:`predict_smoothed`, :class:`SmoothedTarget` — randomized
  smoothing (Cohen, Rosenfeld and Kolter, ICML 2019): a certified L2 radius per row,
  for any target that returns labels.

The torch-based names are loaded on first use, so importing this package does not
import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlwarden.evasion.defenses.smoothing import (
    ABSTAIN,
    Certificate,
    SmoothedTarget,
    certify,
    clopper_pearson_lower,
    predict_smoothed,
)

if TYPE_CHECKING:
    from mlwarden.evasion.defenses.adversarial_training import (
        adversarial_training as adversarial_training,
    )
    from mlwarden.evasion.defenses.trades import trades_training as trades_training

__all__ = [
    "ABSTAIN",
    "Certificate",
    "SmoothedTarget",
    "certify",
    "clopper_pearson_lower",
    "predict_smoothed",
]
# Also public, loaded lazily (kept out of __all__ so that a star import does not import
# torch): adversarial_training, trades_training.
_LAZY = {
    "adversarial_training": "mlwarden.evasion.defenses.adversarial_training",
    "trades_training": "mlwarden.evasion.defenses.trades",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, *_LAZY])
