"""Data sets, feature schemas and loaders.

A :class:`Dataset` holds a feature matrix, labels and a :class:`FeatureSchema` that
says, per feature, its kind, bounds, scale and whether an attacker may change it.
Data comes from the bundled generators (:func:`fraud`, :func:`breast_cancer`,
:func:`digits`, or :func:`load_builtin` by name) or from files (:func:`read_table`,
:func:`load_dataset`), and goes back to files with :func:`write_table`.
"""

from mlwarden.data.bundled import breast_cancer, digits, fraud, load_builtin
from mlwarden.data.dataset import Dataset
from mlwarden.data.io import load_dataset, read_table, write_table
from mlwarden.data.schema import Feature, FeatureKind, FeatureSchema

__all__ = [
    "Dataset",
    "Feature",
    "FeatureKind",
    "FeatureSchema",
    "breast_cancer",
    "digits",
    "fraud",
    "load_builtin",
    "load_dataset",
    "read_table",
    "write_table",
]
