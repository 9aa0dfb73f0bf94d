"""Data sets, feature schemas and loaders.

A :class:`Dataset` holds a feature matrix, labels and a :class:`FeatureSchema` that
says, per feature, its kind, bounds, scale and whether an attacker may change it.
Data comes from the bundled generators (:func:`fraud`, :func:`breast_cancer`,
:func:`digits`, or :func:`load_builtin` by name) or from files (:func:`read_table`,
:func:`load_dataset`), and goes back to files with :func:`write_table`.

Training-data security: :func:`sign_dataset` writes a signed, tamper-evident manifest
of a table (Ed25519 key from :func:`generate_data_key`), :func:`verify_dataset` names
the rows and columns that changed since, and :func:`scan_pii` looks for personal data.
"""

from mlwarden.data.bundled import breast_cancer, digits, fraud, load_builtin
from mlwarden.data.dataset import Dataset
from mlwarden.data.io import load_dataset, read_table, write_table
from mlwarden.data.manifest import (
    DataVerifyResult,
    SignResult,
    generate_data_key,
    sign_dataset,
    verify_dataset,
)
from mlwarden.data.pii import PiiReport, scan_pii
from mlwarden.data.schema import Feature, FeatureKind, FeatureSchema

__all__ = [
    "DataVerifyResult",
    "Dataset",
    "Feature",
    "FeatureKind",
    "FeatureSchema",
    "PiiReport",
    "SignResult",
    "breast_cancer",
    "digits",
    "fraud",
    "generate_data_key",
    "load_builtin",
    "load_dataset",
    "read_table",
    "scan_pii",
    "sign_dataset",
    "verify_dataset",
    "write_table",
]
