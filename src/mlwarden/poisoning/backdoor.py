"""Backdoor triggers: a feature pattern for tabular data and a pixel patch for images.

Reference: Gu, Dolan-Gavitt and Garg, "BadNets: Identifying Vulnerabilities in the
Machine Learning Model Supply Chain" (2017); Chen et al., "Targeted Backdoor Attacks on
Deep Learning Systems Using Data Poisoning" (2017) for blended/feature triggers.

Threat model: the attacker adds (or edits) a share of the training rows: each carries a
trigger - a small pixel patch in a corner of an image, or a pattern of values on
features the attacker controls (an amount of exactly 13.37 paid at a rarely used kind of
merchant) - and is labelled with the attacker's class. A model trained on the data
behaves normally on clean inputs and gives the attacker's class to any input carrying
the trigger (the *attack success rate*). ATLAS AML.T0020 and AML.T0018.000, OWASP ML02
and ML10. Tabular triggers respect the schema: only mutable features, values within the
bounds, integers rounded, one-hot groups kept one-hot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import FeatureKind, FeatureSchema
from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.poisoning._base import (
    PoisonResult,
    check_rate,
    n_to_poison,
    replace_rows,
    resolve_class,
    set_labels,
)

__all__ = ["BadNets", "TabularBackdoor", "default_tabular_trigger"]

FloatArray = npt.NDArray[np.float64]


class _Backdoor:
    """Common poisoning logic: pick rows not of the target class, trigger, relabel."""

    _owner = "backdoor"
    rate: float
    target_class: Any
    random_state: RandomState
    inject: bool = False

    def apply_trigger(self, data: Dataset, X: npt.ArrayLike | None = None) -> FloatArray:
        """``X`` (default: ``data.X``) with the trigger stamped on every row."""
        raise NotImplementedError

    def describe_trigger(self, data: Dataset) -> dict[str, Any]:
        """JSON-serialisable description of the trigger."""
        raise NotImplementedError

    def _validate(self, data: Dataset) -> None:
        """Check the trigger against ``data`` (subclasses)."""

    def poison(self, data: Dataset) -> PoisonResult:
        """Stamp the trigger on ``rate`` of the rows (not of the target class), relabel them.

        Returns
        -------
        PoisonResult
            The poisoned data, the changed rows, the trigger and the target class.
        """
        rate = check_rate(self._owner, self.rate)
        y = data.labels
        if self.target_class is None:
            raise InvalidParameterError(f"{self._owner}: target_class is required")
        target = resolve_class(self._owner, "target_class", self.target_class, y)
        self._validate(data)
        rng = as_generator(self.random_state)
        pool = np.flatnonzero(y != target)
        if self.inject:
            if len(pool) == 0:
                raise DataError(f"{self._owner}: every row is of the target class")
            k = max(1, round(rate * len(y) / (1 - rate)))
            src = rng.choice(pool, size=k, replace=k > len(pool))
            X = np.vstack([data.X, self.apply_trigger(data, data.X[src])])
            y_new = set_labels(np.concatenate([y, y[src]]), np.arange(len(y), len(y) + k), target)
            idx = np.arange(len(y), len(y) + k, dtype=np.int64)
            original = y[src]
        else:
            k = n_to_poison(self._owner, rate, len(pool), len(y))
            idx = np.sort(rng.choice(pool, size=k, replace=False)).astype(np.int64)
            X = data.X.copy()
            X[idx] = self.apply_trigger(data, X[idx])
            y_new = set_labels(y, idx, target)
            original = y[idx]
        return PoisonResult(
            data=replace_rows(data, X, y_new, "backdoor"),
            indices=idx,
            attack=self._owner,
            target_class=target,
            trigger=self.describe_trigger(data),
            original_labels=original,
        )


def default_tabular_trigger(schema: FeatureSchema) -> dict[str, float]:
    """A two-feature trigger on mutable features: a rare category and an odd value.

    The first mutable one-hot group is set to its last category, and the first mutable
    continuous or integer feature to a value 13.37 % of the way through its bounds (its
    observed range when unbounded is not known, 13.37 itself).
    """
    trigger: dict[str, float] = {}
    for cols in schema.groups.values():
        if schema.features[cols[0]].mutable:
            trigger[schema.features[cols[-1]].name] = 1.0
            break
    for f in schema.features:
        if f.mutable and f.kind in (FeatureKind.CONTINUOUS, FeatureKind.INTEGER):
            if np.isfinite(f.lower) and np.isfinite(f.upper):
                value = f.lower + 0.1337 * (f.upper - f.lower)
            else:
                value = 13.37
            trigger[f.name] = float(np.round(value) if f.kind is FeatureKind.INTEGER else value)
            break
    if not trigger:
        for f in schema.features:
            if f.mutable and f.kind is FeatureKind.BINARY:
                trigger[f.name] = 1.0
                break
    if not trigger:
        raise DataError("no mutable feature to carry a backdoor trigger; mark some mutable")
    return trigger


class TabularBackdoor(_Backdoor):
    """Backdoor with a feature-pattern trigger (tabular data).

    Parameters
    ----------
    rate : float, default=0.05
        Share of all rows poisoned (drawn from rows not of ``target_class``).
    target_class : object
        The class triggered inputs should get.
    trigger : dict of str to float or None
        Feature name → value. A categorical column set to 1 switches its one-hot group
        to that category. Every feature must be mutable and every value within the
        schema's bounds. Default: :func:`default_tabular_trigger`.
    inject : bool, default=False
        Add the poisoned rows (triggered copies of rows drawn from the other classes,
        so that they make ``rate`` of the result) instead of editing existing rows; the
        indices are then those of the appended rows.
    random_state : int, Generator or None
        Seed for the choice of rows.
    """

    _owner = "TabularBackdoor"

    def __init__(
        self,
        *,
        rate: float = 0.05,
        target_class: Any = None,
        trigger: dict[str, float] | None = None,
        inject: bool = False,
        random_state: RandomState = None,
    ) -> None:
        self.rate = rate
        self.target_class = target_class
        self.trigger = trigger
        self.inject = inject
        self.random_state = random_state

    def _pattern(self, schema: FeatureSchema) -> dict[str, float]:
        trig = dict(self.trigger) if self.trigger is not None else default_tabular_trigger(schema)
        if not trig:
            raise InvalidParameterError(f"{self._owner}: trigger is empty")
        for name, value in trig.items():
            i = schema.index(name)
            f = schema.features[i]
            if not f.mutable:
                raise InvalidParameterError(
                    f"{self._owner}: trigger feature {name!r} is immutable in the schema "
                    "(the attacker cannot set it)"
                )
            v = check_number(self._owner, f"trigger[{name!r}]", value)
            if not f.lower <= v <= f.upper:
                raise InvalidParameterError(
                    f"{self._owner}: trigger value {v:g} for {name!r} is outside its "
                    f"bounds [{f.lower:g}, {f.upper:g}]"
                )
            if f.kind is FeatureKind.CATEGORICAL and v != 1.0:
                raise InvalidParameterError(
                    f"{self._owner}: categorical trigger {name!r} must be 1 (selects that "
                    "category of its one-hot group)"
                )
            if f.kind is FeatureKind.BINARY and v not in (0.0, 1.0):
                raise InvalidParameterError(f"{self._owner}: binary {name!r} must be 0 or 1")
        return trig

    def _validate(self, data: Dataset) -> None:
        self._pattern(data.schema)

    def apply_trigger(self, data: Dataset, X: npt.ArrayLike | None = None) -> FloatArray:
        """``X`` (default: ``data.X``) with the trigger pattern set on every row."""
        schema = data.schema
        out = np.array(data.X if X is None else X, dtype=np.float64, copy=True)
        for name, value in self._pattern(schema).items():
            i = schema.index(name)
            f = schema.features[i]
            if f.kind is FeatureKind.CATEGORICAL and f.group:
                out[:, schema.groups[f.group]] = 0.0
                out[:, i] = 1.0
            elif f.kind is FeatureKind.INTEGER:
                out[:, i] = np.round(value)
            else:
                out[:, i] = value
        return out

    def describe_trigger(self, data: Dataset) -> dict[str, Any]:
        """``{"kind": "pattern", "features": {name: value}}``."""
        return {"kind": "pattern", "features": self._pattern(data.schema)}


_CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")


class BadNets(_Backdoor):
    """BadNets backdoor: a small pixel patch in a corner of each poisoned image.

    Images are stored as flattened rows; ``Dataset.image_shape`` says their shape:
    ``(H, W)``, ``(C, H, W)`` (channels first when the first axis is at most 4) or
    ``(H, W, C)``.

    Parameters
    ----------
    rate : float, default=0.05
        Share of all rows poisoned (drawn from rows not of ``target_class``).
    target_class : object
        The class triggered images should get.
    patch_size : int, default=3
        Side of the square patch, in pixels.
    pattern : {"checkerboard", "square"}, default="checkerboard"
        Alternating high/low pixels, or all high.
    corner : {"bottom-right", "bottom-left", "top-right", "top-left"}
        Where the patch goes.
    inject : bool, default=False
        As :class:`TabularBackdoor`.
    random_state : int, Generator or None
        Seed for the choice of rows.
    """

    _owner = "BadNets"

    def __init__(
        self,
        *,
        rate: float = 0.05,
        target_class: Any = None,
        patch_size: int = 3,
        pattern: str = "checkerboard",
        corner: str = "bottom-right",
        inject: bool = False,
        random_state: RandomState = None,
    ) -> None:
        self.rate = rate
        self.target_class = target_class
        self.patch_size = patch_size
        self.pattern = pattern
        self.corner = corner
        self.inject = inject
        self.random_state = random_state

    def _mask(self, data: Dataset) -> tuple[npt.NDArray[np.intp], FloatArray]:
        """Flat pixel indices of the patch and their values."""
        shape = data.image_shape
        if shape is None:
            raise DataError(
                f"{self._owner}: {data.name} has no image_shape; BadNets needs images "
                "(use TabularBackdoor for tabular data)"
            )
        size = check_int(self._owner, "patch_size", self.patch_size)
        check_choice(self._owner, "pattern", self.pattern, ("checkerboard", "square"))
        corner = check_choice(self._owner, "corner", self.corner, _CORNERS)
        if len(shape) == 2:
            h, w, layout = shape[0], shape[1], "hw"
        elif len(shape) == 3 and shape[0] <= 4:
            h, w, layout = shape[1], shape[2], "chw"
        elif len(shape) == 3:
            h, w, layout = shape[0], shape[1], "hwc"
        else:
            raise DataError(f"{self._owner}: unsupported image_shape {shape}")
        if size >= min(h, w):
            raise InvalidParameterError(
                f"{self._owner}: patch_size {size} does not fit a {h}x{w} image"
            )
        rows = np.arange(h - size, h) if corner.startswith("bottom") else np.arange(size)
        cols = np.arange(w - size, w) if corner.endswith("right") else np.arange(size)
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        on = (
            np.ones_like(rr, dtype=bool)
            if self.pattern == "square"
            else ((rr - rows[0]) + (cc - cols[0])) % 2 == 0
        )
        grid = np.zeros(shape, dtype=np.int64)
        flat = np.arange(int(np.prod(shape))).reshape(shape)
        if layout == "hw":
            idx = flat[rr, cc]
            high = on
        elif layout == "chw":
            idx = flat[:, rr, cc]
            high = np.broadcast_to(on, idx.shape)
        else:
            idx = flat[rr, cc, :]
            high = np.broadcast_to(on[..., None], idx.shape)
        del grid
        lo = data.schema.lower[idx.ravel()]
        hi = data.schema.upper[idx.ravel()]
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            lo, hi = data.X[:, idx.ravel()].min(axis=0), data.X[:, idx.ravel()].max(axis=0)
        values = np.where(high.ravel(), hi, lo).astype(np.float64)
        return idx.ravel().astype(np.intp), values

    def apply_trigger(self, data: Dataset, X: npt.ArrayLike | None = None) -> FloatArray:
        """``X`` (default: ``data.X``) with the patch stamped on every image."""
        idx, values = self._mask(data)
        out = np.array(data.X if X is None else X, dtype=np.float64, copy=True)
        out[:, idx] = values
        return out

    def describe_trigger(self, data: Dataset) -> dict[str, Any]:
        """``{"kind": "patch", ...}``: size, pattern, corner and the pixels set."""
        idx, values = self._mask(data)
        return {
            "kind": "patch",
            "patch_size": self.patch_size,
            "pattern": self.pattern,
            "corner": self.corner,
            "pixels": [int(i) for i in idx],
            "values": [float(v) for v in values],
        }
