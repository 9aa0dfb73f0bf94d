"""The exceptions mlwarden raises.

Every error the library raises on purpose derives from :class:`MlwardenError`; each
subclass also inherits the builtin exception a caller would naturally catch, so
``except ValueError`` keeps working::

    MlwardenError
    ├── InvalidParameterError (ValueError)      a hyper-parameter or option is out of range
    ├── CapabilityError (TypeError)             the target lacks what an attack needs
    ├── MissingDependencyError (ImportError)    an optional extra is not installed
    ├── DataError (ValueError)                  a data set is unusable (missing column, NaN, ...)
    │   └── DataFileError (DataError)           a data file cannot be found or parsed
    ├── ModelLoadError (ValueError)             a model file is missing, corrupt or unsupported
    │   └── UnsafeModelError (ModelLoadError)   a model file format that can run code was refused
    ├── IncompatibleModelError (ValueError)     model and data disagree (classes, feature count)
    └── RemoteTargetError (OSError)             a prediction URL failed (HTTP, timeout, reply)

The CLI turns each of these into a one-line message and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "CapabilityError",
    "DataError",
    "DataFileError",
    "IncompatibleModelError",
    "InvalidParameterError",
    "MissingDependencyError",
    "MlwardenError",
    "ModelLoadError",
    "RemoteTargetError",
    "UnsafeModelError",
]


class MlwardenError(Exception):
    """Root of every error mlwarden raises on purpose."""


class InvalidParameterError(MlwardenError, ValueError):
    """A parameter has a value the operation cannot use; the message names it."""


class CapabilityError(MlwardenError, TypeError):
    """The target does not offer a capability (gradients, scores, ...) the operation needs."""


class MissingDependencyError(MlwardenError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class DataError(MlwardenError, ValueError):
    """A data set cannot be used as given (missing label, NaN or inf, wrong shape, ...)."""


class DataFileError(DataError):
    """A data file cannot be found, read or parsed; the message names the file."""


class ModelLoadError(MlwardenError, ValueError):
    """A model file is missing, corrupt or in a format mlwarden cannot load."""


class UnsafeModelError(ModelLoadError):
    """A model file in a format that can execute code on load was refused."""


class IncompatibleModelError(MlwardenError, ValueError):
    """A model and a data set do not fit together (class labels, number of features)."""


class RemoteTargetError(MlwardenError, OSError):
    """A prediction endpoint failed: HTTP error, timeout, or a reply of the wrong shape."""
