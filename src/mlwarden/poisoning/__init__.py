"""Training-data poisoning: attacks that poison a data set, detectors that find the poison.

::

    from mlwarden.poisoning import BadNets, LabelFlip, sanitize
    poisoned = BadNets(rate=0.05, target_class=0, random_state=0).poison(data)
    poisoned.data, poisoned.indices          # the poisoned Dataset, the rows changed
    report = sanitize(poisoned.data, random_state=0)
    report.rows[0].reasons, report.clean     # why a row is suspicious; the cleaned data

Names are imported on first use (PEP 562), so ``import mlwarden.poisoning`` loads
neither scikit-learn nor torch. See docs/poisoning.md.
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    # attacks
    "PoisonResult": "mlwarden.poisoning._base",
    "LabelFlip": "mlwarden.poisoning.label_flip",
    "BadNets": "mlwarden.poisoning.backdoor",
    "TabularBackdoor": "mlwarden.poisoning.backdoor",
    "default_tabular_trigger": "mlwarden.poisoning.backdoor",
    "CleanLabelBackdoor": "mlwarden.poisoning.clean_label",
    # detectors
    "DetectionResult": "mlwarden.poisoning.detectors._result",
    "ConfidentLearning": "mlwarden.poisoning.detectors.confident_learning",
    "LabelIssues": "mlwarden.poisoning.detectors.confident_learning",
    "confident_joint": "mlwarden.poisoning.detectors.confident_learning",
    "find_label_issues": "mlwarden.poisoning.detectors.confident_learning",
    "out_of_fold_probabilities": "mlwarden.poisoning.detectors.confident_learning",
    "SpectralSignature": "mlwarden.poisoning.detectors.spectral",
    "spectral_scores": "mlwarden.poisoning.detectors.spectral",
    "ActivationClustering": "mlwarden.poisoning.detectors.activation_clustering",
    "IsolationForestOutliers": "mlwarden.poisoning.detectors.outliers",
    "Duplicates": "mlwarden.poisoning.detectors.duplicates",
    "penultimate_activations": "mlwarden.poisoning.detectors.representations",
    # sanitization
    "SanitizeReport": "mlwarden.poisoning.detectors.sanitize",
    "SuspiciousRow": "mlwarden.poisoning.detectors.sanitize",
    "sanitize": "mlwarden.poisoning.detectors.sanitize",
    "suspicious_rows_finding": "mlwarden.poisoning.detectors.sanitize",
    # audit checks
    "BackdoorCheck": "mlwarden.poisoning.checks",
    "LabelFlipCheck": "mlwarden.poisoning.checks",
    "TrainingDataCheck": "mlwarden.poisoning.checks",
}

__all__ = [
    "ActivationClustering",
    "BackdoorCheck",
    "BadNets",
    "CleanLabelBackdoor",
    "ConfidentLearning",
    "DetectionResult",
    "Duplicates",
    "IsolationForestOutliers",
    "LabelFlip",
    "LabelFlipCheck",
    "LabelIssues",
    "PoisonResult",
    "SanitizeReport",
    "SpectralSignature",
    "SuspiciousRow",
    "TabularBackdoor",
    "TrainingDataCheck",
    "confident_joint",
    "default_tabular_trigger",
    "find_label_issues",
    "out_of_fold_probabilities",
    "penultimate_activations",
    "sanitize",
    "spectral_scores",
    "suspicious_rows_finding",
]

if TYPE_CHECKING:
    from mlwarden.poisoning._base import PoisonResult
    from mlwarden.poisoning.backdoor import BadNets, TabularBackdoor, default_tabular_trigger
    from mlwarden.poisoning.checks import BackdoorCheck, LabelFlipCheck, TrainingDataCheck
    from mlwarden.poisoning.clean_label import CleanLabelBackdoor
    from mlwarden.poisoning.detectors._result import DetectionResult
    from mlwarden.poisoning.detectors.activation_clustering import ActivationClustering
    from mlwarden.poisoning.detectors.confident_learning import (
        ConfidentLearning,
        LabelIssues,
        confident_joint,
        find_label_issues,
        out_of_fold_probabilities,
    )
    from mlwarden.poisoning.detectors.duplicates import Duplicates
    from mlwarden.poisoning.detectors.outliers import IsolationForestOutliers
    from mlwarden.poisoning.detectors.representations import penultimate_activations
    from mlwarden.poisoning.detectors.sanitize import (
        SanitizeReport,
        SuspiciousRow,
        sanitize,
        suspicious_rows_finding,
    )
    from mlwarden.poisoning.detectors.spectral import SpectralSignature, spectral_scores
    from mlwarden.poisoning.label_flip import LabelFlip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlwarden.poisoning' has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
