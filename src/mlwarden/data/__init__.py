"""Data sets, feature schemas and loaders."""

from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import Feature, FeatureKind, FeatureSchema

__all__ = ["Dataset", "Feature", "FeatureKind", "FeatureSchema"]
