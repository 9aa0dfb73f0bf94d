"""mlwarden: attack, defend and guard machine-learning systems.

The curated public API::

    import mlwarden
    target = mlwarden.target(model)                 # wrap sklearn / torch / ONNX / callable / file
    report = mlwarden.audit(target, data, checks="evasion")
    report.findings, report.errors, report.skipped  # kept apart, never merged

Heavy frameworks (torch, onnxruntime) are imported only when a model needs them.
"""

from importlib import metadata as _metadata

from mlwarden.audit.runner import audit, available_checks
from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import Feature, FeatureKind, FeatureSchema
from mlwarden.exceptions import (
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
from mlwarden.findings.finding import Finding
from mlwarden.findings.report import Report
from mlwarden.findings.taxonomy import Severity, ThreatFamily
from mlwarden.models import Capability, Target, load_model, target

try:
    __version__ = _metadata.version("mlwarden")
except _metadata.PackageNotFoundError:  # pragma: no cover - source checkout without install
    __version__ = "0.0.0"

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
