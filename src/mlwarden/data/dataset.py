"""The :class:`Dataset`: a feature matrix, labels and the schema that describes them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._random import as_generator
from mlwarden.data.schema import FeatureSchema
from mlwarden.exceptions import DataError, InvalidParameterError

__all__ = ["Dataset"]


@dataclass(frozen=True)
class Dataset:
    """Arrays plus what they mean.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite ``float64`` features.
    y : ndarray of shape (n_samples,) or None
        Labels, in any dtype a model's ``classes_`` would hold.
    schema : FeatureSchema
        One feature per column of ``X``.
    name : str
        Short name used in reports.
    positive_label : object or None
        For binary detection tasks (fraud, disease), the label of the class the
        model exists to catch; audits then report robustness on that class.
    description : str
        Free text for reports.
    source : str or None
        The file the data came from, if any.
    image_shape : tuple of int or None
        For images stored as flattened rows, the shape of one image.
    """

    X: npt.NDArray[np.float64]
    y: npt.NDArray[Any] | None
    schema: FeatureSchema
    name: str = "data"
    positive_label: Any = None
    description: str = ""
    source: str | None = None
    image_shape: tuple[int, ...] | None = None
    _cache: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        X = np.asarray(self.X)
        if X.dtype == np.bool_:
            X = X.astype(np.float64)
        if X.ndim != 2:
            raise DataError(f"{self.name}: features must be a 2-D matrix, got shape {X.shape}")
        if not np.issubdtype(X.dtype, np.number):
            raise DataError(f"{self.name}: features must be numeric, got dtype {X.dtype}")
        X = X.astype(np.float64, copy=False)
        finite = np.isfinite(X)
        if not finite.all():
            rows, cols = np.nonzero(~finite)
            col = self.schema.names[cols[0]] if len(self.schema) == X.shape[1] else str(cols[0])
            raise DataError(
                f"{self.name}: {int((~finite).sum())} NaN or infinite feature values "
                f"(first at row {int(rows[0])}, column {col!r})"
            )
        if len(self.schema) != X.shape[1]:
            raise DataError(
                f"{self.name}: schema has {len(self.schema)} features but data has {X.shape[1]}"
            )
        object.__setattr__(self, "X", X)
        if self.y is not None:
            y = np.asarray(self.y)
            if y.ndim != 1 or len(y) != len(X):
                raise DataError(
                    f"{self.name}: labels must be 1-D with one per row "
                    f"({len(X)} rows, labels shape {y.shape})"
                )
            if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
                raise DataError(f"{self.name}: labels contain NaN or infinite values")
            if y.dtype.kind == "O" and any(
                v is None or (isinstance(v, float) and np.isnan(v)) for v in y
            ):
                raise DataError(f"{self.name}: labels contain missing values (None or NaN)")
            object.__setattr__(self, "y", y)
        if self.image_shape is not None and int(np.prod(self.image_shape)) != X.shape[1]:
            raise DataError(
                f"{self.name}: image_shape {self.image_shape} does not hold "
                f"{X.shape[1]} features per row"
            )

    # ----------------------------------------------------------------- properties
    @property
    def feature_names(self) -> list[str]:
        """Column names."""
        return self.schema.names

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of columns."""
        return int(self.X.shape[1])

    def __len__(self) -> int:
        return self.n_samples

    @property
    def labels(self) -> npt.NDArray[Any]:
        """The labels; raises :class:`DataError` when the data set has none."""
        if self.y is None:
            raise DataError(f"{self.name}: this operation needs labels, and the data has none")
        return self.y

    def fingerprint(self) -> str:
        """SHA-256 over feature names, features and labels (stable across runs)."""
        cached = self._cache.get("sha256")
        if cached is None:
            h = hashlib.sha256()
            h.update("\x1f".join(self.feature_names).encode())
            h.update(np.ascontiguousarray(self.X, dtype="<f8").tobytes())
            if self.y is not None:
                # Labels as text at their narrowest width, so that the hash does not
                # depend on the integer width (int32 or int64) or the string padding.
                text = np.asarray(self.y).astype(str)
                width = int(np.char.str_len(text).max()) if text.size else 1
                h.update(text.astype(f"<U{max(width, 1)}").tobytes())
            cached = h.hexdigest()
            self._cache["sha256"] = cached
        return str(cached)

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable description for reports."""
        out: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "sha256": self.fingerprint(),
            "n_samples": self.n_samples,
            "n_features": self.n_features,
            "feature_names": self.feature_names,
        }
        if self.y is not None:
            labels, counts = np.unique(self.y, return_counts=True)
            out["label_counts"] = {str(k): int(v) for k, v in zip(labels, counts, strict=True)}
        if self.positive_label is not None:
            out["positive_label"] = _jsonable(self.positive_label)
        return out

    # ------------------------------------------------------------------ slicing
    def subset(self, index: npt.ArrayLike, *, name: str | None = None) -> Dataset:
        """Rows selected by an index array or boolean mask."""
        idx = np.asarray(index)
        return Dataset(
            X=self.X[idx],
            y=None if self.y is None else self.y[idx],
            schema=self.schema,
            name=name or self.name,
            positive_label=self.positive_label,
            description=self.description,
            source=self.source,
            image_shape=self.image_shape,
        )

    def split(
        self, *, test_size: float = 0.25, random_state: int | np.random.Generator | None = None
    ) -> tuple[Dataset, Dataset]:
        """Stratified (when labelled) train/test split."""
        if not 0.0 < test_size < 1.0:
            raise InvalidParameterError(f"test_size must be in (0, 1), got {test_size}")
        rng = as_generator(random_state)
        n = self.n_samples
        test_mask = np.zeros(n, dtype=bool)
        if self.y is None:
            groups = [np.arange(n)]
        else:
            groups = [np.flatnonzero(self.y == c) for c in np.unique(self.y)]
        for g in groups:
            k = round(len(g) * test_size)
            test_mask[rng.choice(g, size=k, replace=False)] = True
        return (
            self.subset(np.flatnonzero(~test_mask), name=f"{self.name}-train"),
            self.subset(np.flatnonzero(test_mask), name=f"{self.name}-test"),
        )


def _jsonable(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
