"""Property-based tests: projection onto the fraud schema, and exact file round trips."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mlwarden.data import Dataset, FeatureSchema, fraud, read_table, write_table

N_FEATURES = 16


@lru_cache(maxsize=1)
def fraud_data() -> Dataset:
    return fraud(300, random_state=9)


any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
plausible = st.floats(min_value=-3e4, max_value=3e4, allow_nan=False)


@st.composite
def candidates(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Original fraud rows, and candidate rows anywhere (wild values, or near the originals)."""
    data = fraud_data()
    rows = draw(st.lists(st.integers(0, data.n_samples - 1), min_size=1, max_size=8))
    x0 = data.X[rows]
    shape = (len(rows), N_FEATURES)
    if draw(st.booleans()):
        cand = draw(arrays(np.float64, shape, elements=any_float))
    else:
        noise = draw(arrays(np.float64, shape, elements=st.floats(-3, 3)))
        cand = x0 + noise * data.schema.scale
    return cand, x0


@settings(max_examples=100, deadline=None)
@given(candidates())
def test_project_always_yields_feasible_rows(pair: tuple[np.ndarray, np.ndarray]) -> None:
    cand, x0 = pair
    schema = fraud_data().schema
    out = schema.project(cand, x0)
    assert out.shape == cand.shape
    assert np.isfinite(out).all()
    assert not schema.violations(out).any()
    assert not schema.violations(out, x0).any()
    immutable = ~schema.mutable
    np.testing.assert_array_equal(out[:, immutable], x0[:, immutable])


@settings(max_examples=50, deadline=None)
@given(candidates())
def test_project_is_idempotent(pair: tuple[np.ndarray, np.ndarray]) -> None:
    cand, x0 = pair
    schema = fraud_data().schema
    once = schema.project(cand, x0)
    np.testing.assert_array_equal(schema.project(once, x0), once)


def test_project_keeps_valid_rows() -> None:
    data = fraud_data()
    np.testing.assert_array_equal(data.schema.project(data.X, data.X), data.X)


@settings(max_examples=25, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 4)),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=64),
    ),
    st.sampled_from(["csv", "tsv.gz", "parquet"]),
)
def test_write_read_round_trip_is_exact(X: np.ndarray, ext: str) -> None:
    y = np.arange(len(X)) % 2
    ds = Dataset(X=X, y=y, schema=FeatureSchema.infer(X))
    with tempfile.TemporaryDirectory() as tmp:
        back = read_table(write_table(ds, Path(tmp) / f"t.{ext}"), label="label")
    np.testing.assert_array_equal(back.X, ds.X)
    np.testing.assert_array_equal(back.y, y)
    assert back.fingerprint() == ds.fingerprint()
