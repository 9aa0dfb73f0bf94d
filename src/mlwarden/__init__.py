"""mlwarden: attack, defend and guard machine-learning systems."""

from importlib import metadata as _metadata

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

try:
    __version__ = _metadata.version("mlwarden")
except _metadata.PackageNotFoundError:  # pragma: no cover - source checkout without install
    __version__ = "0.0.0"

__all__ = [
    "CapabilityError",
    "DataError",
    "DataFileError",
    "IncompatibleModelError",
    "InvalidParameterError",
    "MissingDependencyError",
    "MlwardenError",
    "ModelLoadError",
    "UnsafeModelError",
    "__version__",
]
