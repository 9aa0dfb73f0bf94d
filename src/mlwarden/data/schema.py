"""Feature schemas: what each column is and what an attacker may change.

A :class:`FeatureSchema` lists one :class:`Feature` per column: its kind (continuous,
integer, binary, or one column of a one-hot categorical group), its valid bounds, a
scale used to express perturbation budgets in comparable units, and whether an
attacker controls it. Tabular attacks in mlwarden never return a row the schema
forbids: :meth:`FeatureSchema.project` maps any candidate back onto the feasible set
and :meth:`FeatureSchema.violations` re-checks it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from mlwarden.exceptions import DataError, DataFileError, InvalidParameterError

__all__ = ["Feature", "FeatureKind", "FeatureSchema"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_S = TypeVar("_S", bound=np.generic)


class FeatureKind(str, enum.Enum):
    """The kind of value a feature holds."""

    CONTINUOUS = "continuous"
    INTEGER = "integer"
    BINARY = "binary"
    CATEGORICAL = "categorical"
    """One column of a one-hot group; the group name is :attr:`Feature.group`."""


@dataclass(frozen=True)
class Feature:
    """One column of a tabular data set.

    Parameters
    ----------
    name : str
        Column name.
    kind : FeatureKind
        Value kind.
    lower, upper : float
        Valid range (inclusive). Binary and categorical columns use ``[0, 1]``.
    mutable : bool
        Whether an attacker can change this feature (e.g. a fraudster picks the
        amount, but not the age of the account).
    group : str or None
        For categorical one-hot columns, the name of the group they belong to.
    scale : float
        Unit in which perturbation budgets are expressed for this feature
        (a standard deviation by default): ``eps=0.5`` lets it move by half a scale.
    description : str
        Free text for reports.
    """

    name: str
    kind: FeatureKind = FeatureKind.CONTINUOUS
    lower: float = -np.inf
    upper: float = np.inf
    mutable: bool = True
    group: str | None = None
    scale: float = 1.0
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidParameterError("a feature needs a non-empty name")
        try:
            kind = FeatureKind(self.kind)
        except ValueError:
            kinds = ", ".join(k.value for k in FeatureKind)
            raise InvalidParameterError(
                f"feature {self.name!r}: unknown kind {self.kind!r} (expected one of {kinds})"
            ) from None
        object.__setattr__(self, "kind", kind)
        if np.isnan(self.lower) or np.isnan(self.upper):
            raise InvalidParameterError(f"feature {self.name!r}: bounds must not be NaN")
        if kind in (FeatureKind.BINARY, FeatureKind.CATEGORICAL):
            # 0/1 columns: the documented bounds are [0, 1] (or a tighter range).
            object.__setattr__(self, "lower", max(float(self.lower), 0.0))
            object.__setattr__(self, "upper", min(float(self.upper), 1.0))
        if self.lower > self.upper:
            raise InvalidParameterError(
                f"feature {self.name!r}: lower bound {self.lower} is above upper bound {self.upper}"
            )
        if not (self.scale > 0 and np.isfinite(self.scale)):
            raise InvalidParameterError(
                f"feature {self.name!r}: scale must be positive, got {self.scale}"
            )
        if self.kind is FeatureKind.CATEGORICAL and not self.group:
            raise InvalidParameterError(f"categorical feature {self.name!r} needs a group name")


@dataclass(frozen=True)
class FeatureSchema:
    """An ordered list of features plus the helpers attacks need.

    Parameters
    ----------
    features : tuple of Feature
        One entry per column, in column order.
    """

    features: tuple[Feature, ...]
    _cache: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidParameterError(f"duplicate feature names: {', '.join(dupes)}")
        for gname, idx in self.groups.items():
            mut = {self.features[i].mutable for i in idx}
            if len(mut) > 1:
                raise InvalidParameterError(
                    f"categorical group {gname!r} mixes mutable and immutable columns"
                )

    # ---------------------------------------------------------------- properties
    def __len__(self) -> int:
        return len(self.features)

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [f.name for f in self.features]

    def _frozen(self, key: str, build: Callable[[], npt.NDArray[_S]]) -> npt.NDArray[_S]:
        """A cached read-only array (schemas are immutable; attacks read these every step)."""
        cached = self._cache.get(key)
        if cached is None:
            cached = build()
            cached.setflags(write=False)
            self._cache[key] = cached
        return cast("npt.NDArray[_S]", cached)

    @property
    def lower(self) -> FloatArray:
        """Lower bounds, shape ``(n_features,)`` (read-only)."""
        return self._frozen(
            "lower", lambda: np.array([f.lower for f in self.features], dtype=np.float64)
        )

    @property
    def upper(self) -> FloatArray:
        """Upper bounds, shape ``(n_features,)`` (read-only)."""
        return self._frozen(
            "upper", lambda: np.array([f.upper for f in self.features], dtype=np.float64)
        )

    @property
    def scale(self) -> FloatArray:
        """Per-feature budget units, shape ``(n_features,)`` (read-only)."""
        return self._frozen(
            "scale", lambda: np.array([f.scale for f in self.features], dtype=np.float64)
        )

    @property
    def mutable(self) -> BoolArray:
        """Mask of features an attacker controls (read-only)."""
        return self._frozen(
            "mutable", lambda: np.array([f.mutable for f in self.features], dtype=bool)
        )

    def mask(self, *kinds: FeatureKind) -> BoolArray:
        """Mask of features of the given kinds (read-only)."""
        key = "mask:" + ",".join(sorted(k.value for k in kinds))
        return self._frozen(
            key, lambda: np.array([f.kind in kinds for f in self.features], dtype=bool)
        )

    @property
    def groups(self) -> dict[str, list[int]]:
        """Categorical one-hot groups: group name → column indices."""
        cached = self._cache.get("groups")
        if cached is None:
            cached = {}
            for i, f in enumerate(self.features):
                if f.kind is FeatureKind.CATEGORICAL and f.group:
                    cached.setdefault(f.group, []).append(i)
            self._cache["groups"] = cached
        return {g: list(idx) for g, idx in cached.items()}

    def index(self, name: str) -> int:
        """Column index of feature ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise InvalidParameterError(f"no feature named {name!r} in the schema") from None

    # ------------------------------------------------------------------- editing
    def with_mutable(self, names: Iterable[str], mutable: bool = True) -> FeatureSchema:
        """Return a copy where the named features (or groups) have ``mutable`` set."""
        wanted = set(names)
        known = set(self.names) | set(self.groups)
        unknown = wanted - known
        if unknown:
            raise InvalidParameterError(f"unknown features: {', '.join(sorted(unknown))}")
        feats = tuple(
            replace(f, mutable=mutable) if (f.name in wanted or f.group in wanted) else f
            for f in self.features
        )
        return FeatureSchema(feats)

    # ---------------------------------------------------------------- feasibility
    def project(self, x: npt.ArrayLike, x_orig: npt.ArrayLike) -> FloatArray:
        """Map candidate rows onto the set of rows the threat model allows.

        Immutable features are reset to ``x_orig``; values are clipped to bounds;
        integer features are rounded; binary features are rounded to 0/1; every
        categorical group becomes one-hot at its largest entry.

        Parameters
        ----------
        x : array-like of shape (n, n_features)
            Candidate rows.
        x_orig : array-like of shape (n, n_features)
            The rows the attack started from.
        """
        xs = np.array(x, dtype=np.float64, copy=True)
        x0 = np.asarray(x_orig, dtype=np.float64)
        xs = np.clip(xs, self.lower, self.upper)
        # NaN, and infinities a bound did not stop, fall back to the original value.
        xs = np.where(np.isfinite(xs), xs, np.broadcast_to(x0, xs.shape))
        ints = self.mask(FeatureKind.INTEGER)
        xs[:, ints] = np.clip(
            np.round(xs[:, ints]), np.ceil(self.lower[ints]), np.floor(self.upper[ints])
        )
        bins = self.mask(FeatureKind.BINARY)
        xs[:, bins] = (xs[:, bins] >= 0.5).astype(np.float64)
        for idx in self.groups.values():
            block = xs[:, idx]
            hot = np.argmax(block, axis=1)
            onehot = np.zeros_like(block)
            onehot[np.arange(len(block)), hot] = 1.0
            xs[:, idx] = onehot
        # Immutable features last, so that they stay exactly as they were.
        immutable = ~self.mutable
        xs[:, immutable] = x0[:, immutable]
        return xs

    def violations(
        self, x: npt.ArrayLike, x_orig: npt.ArrayLike | None = None, *, atol: float = 1e-9
    ) -> BoolArray:
        """Boolean mask of rows that break the schema.

        A row breaks the schema when a value is NaN, infinite or out of bounds, an
        integer or binary feature is fractional, a categorical group is not exactly
        one-hot, or (when ``x_orig`` is given) an immutable feature differs from the
        original row.
        """
        xs = np.asarray(x, dtype=np.float64)
        bad = np.any(xs < self.lower - atol, axis=1) | np.any(xs > self.upper + atol, axis=1)
        bad |= ~np.all(np.isfinite(xs), axis=1)
        ints = self.mask(FeatureKind.INTEGER, FeatureKind.BINARY, FeatureKind.CATEGORICAL)
        bad |= np.any(np.abs(xs[:, ints] - np.round(xs[:, ints])) > atol, axis=1)
        for idx in self.groups.values():
            bad |= np.abs(xs[:, idx].sum(axis=1) - 1.0) > atol
        if x_orig is not None:
            x0 = np.asarray(x_orig, dtype=np.float64)
            immutable = ~self.mutable
            bad |= np.any(np.abs(xs[:, immutable] - x0[:, immutable]) > atol, axis=1)
        return np.asarray(bad, dtype=bool)

    # ------------------------------------------------------------------- building
    @classmethod
    def infer(
        cls,
        x: npt.ArrayLike,
        names: Sequence[str] | None = None,
        *,
        immutable: Iterable[str] = (),
    ) -> FeatureSchema:
        """Infer a schema from data: kinds from values, bounds from the observed range.

        Columns holding only 0 and 1 become binary, columns of whole numbers become
        integer, others continuous. Every feature is mutable unless named in
        ``immutable`` (the worst case: an attacker who controls everything).
        """
        xs = np.asarray(x, dtype=np.float64)
        if xs.ndim != 2:
            raise DataError(f"expected a 2-D feature matrix, got shape {xs.shape}")
        if names is None:
            names = [f"x{i}" for i in range(xs.shape[1])]
        if len(names) != xs.shape[1]:
            raise DataError(f"{len(names)} feature names for {xs.shape[1]} columns")
        fixed = set(immutable)
        feats = []
        for j, name in enumerate(names):
            col = xs[:, j]
            col = col[np.isfinite(col)]
            lo, hi = (float(col.min()), float(col.max())) if col.size else (0.0, 0.0)
            # Standard deviation computed on rescaled values, so that huge ones
            # (1e200) do not overflow to an infinite scale.
            peak = max(abs(lo), abs(hi))
            std = float((col / peak).std()) * peak if peak > 0 else 0.0
            uniq = np.unique(col) if col.size <= 1_000_000 else np.unique(col[:1_000_000])
            if uniq.size <= 2 and np.all(np.isin(uniq, (0.0, 1.0))):
                kind, lo, hi, scale = FeatureKind.BINARY, 0.0, 1.0, 1.0
            elif col.size and np.all(col == np.round(col)):
                kind, scale = FeatureKind.INTEGER, max(std, 1.0)
            else:
                kind, scale = FeatureKind.CONTINUOUS, std if std > 0 else 1.0
            feats.append(
                Feature(
                    name=str(name),
                    kind=kind,
                    lower=lo,
                    upper=hi,
                    mutable=name not in fixed,
                    scale=scale,
                )
            )
        return cls(tuple(feats))

    # ------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable representation (infinite bounds become ``null``)."""
        out = []
        for f in self.features:
            d = asdict(f)
            d["kind"] = f.kind.value
            for key in ("lower", "upper"):
                if not np.isfinite(d[key]):
                    d[key] = None
            out.append(d)
        return {"features": out}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "schema") -> FeatureSchema:
        """Build a schema from :meth:`to_dict` output; errors name ``source``."""
        try:
            raw = data["features"]
            feats = []
            for i, d in enumerate(raw):
                if not isinstance(d, dict) or "name" not in d:
                    raise DataError(f"{source}: features[{i}] needs a 'name'")
                kind = FeatureKind(d.get("kind", "continuous"))
                lower = d.get("lower")
                upper = d.get("upper")
                feats.append(
                    Feature(
                        name=str(d["name"]),
                        kind=kind,
                        lower=-np.inf if lower is None else float(lower),
                        upper=np.inf if upper is None else float(upper),
                        mutable=bool(d.get("mutable", True)),
                        group=d.get("group"),
                        scale=float(d.get("scale", 1.0)),
                        description=str(d.get("description", "")),
                    )
                )
        except (KeyError, TypeError) as exc:
            raise DataError(f"{source}: not a feature schema ({exc})") from None
        except ValueError as exc:
            raise DataError(f"{source}: {exc}") from None
        try:
            return cls(tuple(feats))
        except InvalidParameterError as exc:
            raise DataError(f"{source}: {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write the schema as JSON; a file that cannot be written raises DataFileError."""
        p = Path(path)
        try:
            p.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        except OSError as exc:
            raise DataFileError(f"{p}: cannot write schema: {exc.strerror or exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> FeatureSchema:
        """Read a schema written by :meth:`save`."""
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise DataFileError(f"{p}: schema file not found") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataFileError(f"{p}: cannot read schema: {exc}") from None
        if not isinstance(data, dict):
            raise DataFileError(f"{p}: a schema file holds a JSON object with 'features'")
        return cls.from_dict(data, source=str(p))
