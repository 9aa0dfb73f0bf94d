"""mlwarden: attack, defend and guard machine-learning systems.

The curated public API::

    import mlwarden
    target = mlwarden.target(model)                 # wrap sklearn / torch / ONNX / callable / file
    report = mlwarden.audit(target, data, checks="evasion")
    report.findings, report.errors, report.skipped  # kept apart, never merged

Heavy frameworks (torch, onnxruntime) are imported only when a model needs them.
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING, Any

# Public name -> module that defines it. Imported on first use (PEP 562) so that
# ``import mlwarden.supplychain`` and ``mlwarden scan`` never pay for NumPy, pandas
# or scikit-learn.
_LAZY: dict[str, str] = {
    "audit": "mlwarden.audit.runner",
    "available_checks": "mlwarden.audit.runner",
    "Dataset": "mlwarden.data.dataset",
    "Feature": "mlwarden.data.schema",
    "FeatureKind": "mlwarden.data.schema",
    "FeatureSchema": "mlwarden.data.schema",
    "Finding": "mlwarden.findings.finding",
    "Report": "mlwarden.findings.report",
    "Severity": "mlwarden.findings.taxonomy",
    "ThreatFamily": "mlwarden.findings.taxonomy",
    "Capability": "mlwarden.models",
    "Target": "mlwarden.models",
    "load_model": "mlwarden.models",
    "target": "mlwarden.models",
}

from mlwarden.exceptions import (  # noqa: E402 - the exceptions are cheap and always loaded
    CapabilityError,
    DataError,
    DataFileError,
    IncompatibleModelError,
    InvalidParameterError,
    MissingDependencyError,
    MlwardenError,
    ModelLoadError,
    UnsafeModelError,
)

if TYPE_CHECKING:
    __version__: str
    from mlwarden.audit.runner import audit, available_checks
    from mlwarden.data.dataset import Dataset
    from mlwarden.data.schema import Feature, FeatureKind, FeatureSchema
    from mlwarden.findings.finding import Finding
    from mlwarden.findings.report import Report
    from mlwarden.findings.taxonomy import Severity, ThreatFamily
    from mlwarden.models import Capability, Target, load_model, target


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib import metadata as _metadata

        try:
            version = _metadata.version("mlwarden")
        except _metadata.PackageNotFoundError:  # pragma: no cover - uninstalled checkout
            version = "0.0.0"
        globals()[name] = version
        return version
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlwarden' has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Capability",
    "CapabilityError",
    "DataError",
    "DataFileError",
    "Dataset",
    "Feature",
    "FeatureKind",
    "FeatureSchema",
    "Finding",
    "IncompatibleModelError",
    "InvalidParameterError",
    "MissingDependencyError",
    "MlwardenError",
    "ModelLoadError",
    "Report",
    "Severity",
    "Target",
    "ThreatFamily",
    "UnsafeModelError",
    "__version__",
    "audit",
    "available_checks",
    "load_model",
    "target",
]
