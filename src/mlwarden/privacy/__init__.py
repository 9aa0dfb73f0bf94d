"""Privacy: membership inference, attribute inference, model inversion, and differential
privacy through Opacus.

::

    from mlwarden.privacy import LiRA, ReferenceModels, MLPTrainer
    ref = ReferenceModels(n_models="quick", trainer=MLPTrainer()).fit(X, y)
    result = LiRA().infer(target, X, y, members=m, nonmembers=n, reference=ref)
    result.metrics.tpr(0.01)            # TPR at 1 % FPR, with a confidence interval

    from mlwarden.privacy import train_private
    dp = train_private(model, data, epsilon=8, epochs=5, batch_size=64, lr=1e-3,
                       max_grad_norm=1.0)
    dp.epsilon_prv, dp.epsilon_rdp     # the numbers Opacus's accountants give

Names are imported on first use (PEP 562), so ``import mlwarden.privacy`` loads neither
torch nor Opacus. See docs/privacy.md.
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    # membership inference
    "LabelOnly": "mlwarden.privacy.membership",
    "LiRA": "mlwarden.privacy.membership",
    "LossThreshold": "mlwarden.privacy.membership",
    "MembershipResult": "mlwarden.privacy.membership",
    "RMIA": "mlwarden.privacy.membership",
    "MLPTrainer": "mlwarden.privacy.reference",
    "ReferenceModels": "mlwarden.privacy.reference",
    "SklearnTrainer": "mlwarden.privacy.reference",
    "TorchModuleTrainer": "mlwarden.privacy.reference",
    "MembershipMetrics": "mlwarden.privacy.metrics",
    "membership_metrics": "mlwarden.privacy.metrics",
    # attribute inference and model inversion
    "AttributeInference": "mlwarden.privacy.attribute",
    "AttributeInferenceResult": "mlwarden.privacy.attribute",
    "InversionResult": "mlwarden.privacy.inversion",
    "ModelInversion": "mlwarden.privacy.inversion",
    "inversion_figure": "mlwarden.privacy.inversion",
    # differential privacy
    "DPResult": "mlwarden.privacy.dp",
    "EpsilonReport": "mlwarden.privacy.dp",
    "PrivateTraining": "mlwarden.privacy.dp",
    "epsilon": "mlwarden.privacy.dp",
    "make_private": "mlwarden.privacy.dp",
    "train_private": "mlwarden.privacy.dp",
    "DPAuditResult": "mlwarden.privacy.dp_audit",
    "audit_one_run": "mlwarden.privacy.dp_audit",
    "eps_lower_bound": "mlwarden.privacy.dp_audit",
}

__all__ = [
    "RMIA",
    "AttributeInference",
    "AttributeInferenceResult",
    "DPAuditResult",
    "DPResult",
    "EpsilonReport",
    "InversionResult",
    "LabelOnly",
    "LiRA",
    "LossThreshold",
    "MLPTrainer",
    "MembershipMetrics",
    "MembershipResult",
    "ModelInversion",
    "PrivateTraining",
    "ReferenceModels",
    "SklearnTrainer",
    "TorchModuleTrainer",
    "audit_one_run",
    "eps_lower_bound",
    "epsilon",
    "inversion_figure",
    "make_private",
    "membership_metrics",
    "train_private",
]

if TYPE_CHECKING:
    from mlwarden.privacy.attribute import AttributeInference, AttributeInferenceResult
    from mlwarden.privacy.dp import (
        DPResult,
        EpsilonReport,
        PrivateTraining,
        epsilon,
        make_private,
        train_private,
    )
    from mlwarden.privacy.dp_audit import DPAuditResult, audit_one_run, eps_lower_bound
    from mlwarden.privacy.inversion import InversionResult, ModelInversion, inversion_figure
    from mlwarden.privacy.membership import (
        RMIA,
        LabelOnly,
        LiRA,
        LossThreshold,
        MembershipResult,
    )
    from mlwarden.privacy.metrics import MembershipMetrics, membership_metrics
    from mlwarden.privacy.reference import (
        MLPTrainer,
        ReferenceModels,
        SklearnTrainer,
        TorchModuleTrainer,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlwarden.privacy' has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
