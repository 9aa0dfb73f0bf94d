"""FeatureSchema and Feature: validation, inference, editing, projection, serialisation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from mlwarden.data import Feature, FeatureKind, FeatureSchema
from mlwarden.exceptions import DataError, DataFileError, InvalidParameterError

CONT, INT, BIN, CAT = (
    FeatureKind.CONTINUOUS,
    FeatureKind.INTEGER,
    FeatureKind.BINARY,
    FeatureKind.CATEGORICAL,
)


@pytest.fixture
def schema() -> FeatureSchema:
    """x (continuous, [0, 10]), n (integer, [0, 5]), b (binary), c_a/c_b/c_c (group c),
    age (immutable integer)."""
    return FeatureSchema(
        (
            Feature("x", CONT, 0.0, 10.0, scale=2.0, description="a length"),
            Feature("n", INT, 0.0, 5.0),
            Feature("b", BIN, 0.0, 1.0),
            Feature("c_a", CAT, 0.0, 1.0, group="c"),
            Feature("c_b", CAT, 0.0, 1.0, group="c"),
            Feature("c_c", CAT, 0.0, 1.0, group="c"),
            Feature("age", INT, 0.0, 100.0, mutable=False),
        )
    )


# --------------------------------------------------------------------- Feature
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": ""}, "non-empty name"),
        ({"name": "f", "lower": 2.0, "upper": 1.0}, "lower bound 2.0 is above upper bound 1.0"),
        ({"name": "f", "lower": float("nan")}, "NaN"),
        ({"name": "f", "scale": 0.0}, "scale must be positive"),
        ({"name": "f", "scale": -1.0}, "scale must be positive"),
        ({"name": "f", "scale": float("inf")}, "scale must be positive"),
        ({"name": "f", "kind": CAT}, "needs a group name"),
        ({"name": "f", "kind": "ordinal"}, "unknown kind 'ordinal'"),
        ({"name": "f", "kind": BIN, "lower": 2.0, "upper": 3.0}, "above upper bound"),
    ],
)
def test_feature_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        Feature(**kwargs)  # type: ignore[arg-type]


def test_feature_kind_from_string_and_binary_bounds() -> None:
    f = Feature("f", "binary")  # type: ignore[arg-type]
    assert f.kind is BIN
    assert (f.lower, f.upper) == (0.0, 1.0)  # [0, 1] even when not given
    c = Feature("c", CAT, group="g")
    assert (c.lower, c.upper) == (0.0, 1.0)
    assert Feature("x").kind is CONT
    assert Feature("x").lower == -np.inf


# ---------------------------------------------------------------- FeatureSchema
def test_duplicate_names_rejected() -> None:
    with pytest.raises(InvalidParameterError, match="duplicate feature names: a"):
        FeatureSchema((Feature("a"), Feature("b"), Feature("a")))


def test_group_must_not_mix_mutability() -> None:
    with pytest.raises(InvalidParameterError, match="'g' mixes mutable and immutable"):
        FeatureSchema((Feature("g1", CAT, group="g"), Feature("g2", CAT, group="g", mutable=False)))


def test_properties(schema: FeatureSchema) -> None:
    assert len(schema) == 7
    assert schema.names == ["x", "n", "b", "c_a", "c_b", "c_c", "age"]
    assert schema.lower.tolist() == [0, 0, 0, 0, 0, 0, 0]
    assert schema.upper.tolist() == [10, 5, 1, 1, 1, 1, 100]
    assert schema.scale.tolist() == [2, 1, 1, 1, 1, 1, 1]
    assert schema.mutable.tolist() == [True] * 6 + [False]
    assert schema.mask(INT).tolist() == [False, True, False, False, False, False, True]
    assert schema.mask(BIN, CAT).sum() == 4
    assert schema.groups == {"c": [3, 4, 5]}
    assert schema.index("age") == 6
    with pytest.raises(InvalidParameterError, match="no feature named 'zz'"):
        schema.index("zz")


def test_groups_copy_cannot_corrupt_the_cache(schema: FeatureSchema) -> None:
    schema.groups["c"].append(99)
    schema.groups.pop("c")
    assert schema.groups == {"c": [3, 4, 5]}


def test_replace_does_not_share_the_cache(schema: FeatureSchema) -> None:
    assert schema.groups  # fills the cache
    other = dataclasses.replace(schema, features=schema.features[:3])
    assert other.groups == {}


# ------------------------------------------------------------------------ infer
def test_infer_kinds_bounds_and_scales() -> None:
    X = np.array(
        [
            [0.5, 1.0, 0.0, 3.0, 7.0],
            [1.5, 3.0, 1.0, 3.0, 7.0],
            [2.5, 5.0, 1.0, 3.0, 7.5],
        ]
    )
    s = FeatureSchema.infer(X, ["cont", "int", "bin", "const_int", "c2"], immutable=["int"])
    kinds = [f.kind for f in s.features]
    assert kinds == [CONT, INT, BIN, INT, CONT]
    assert (s.features[0].lower, s.features[0].upper) == (0.5, 2.5)
    assert (s.features[2].lower, s.features[2].upper) == (0.0, 1.0)
    assert s.features[0].scale == pytest.approx(np.std([0.5, 1.5, 2.5]))
    assert s.features[1].scale == pytest.approx(np.std([1.0, 3.0, 5.0]))
    assert s.features[3].scale == 1.0  # integer scale is at least 1
    assert s.features[4].scale == pytest.approx(np.std([7.0, 7.0, 7.5]))
    assert s.mutable.tolist() == [True, False, True, True, True]


def test_infer_default_names_and_constant_columns() -> None:
    s = FeatureSchema.infer(np.full((4, 2), 0.25))
    assert s.names == ["x0", "x1"]
    assert all(f.scale == 1.0 and f.kind is CONT for f in s.features)


def test_infer_huge_values_keep_a_finite_scale() -> None:
    s = FeatureSchema.infer(np.array([[1e300], [-1e300], [3e299]]))
    assert np.isfinite(s.features[0].scale)
    assert s.features[0].scale > 1e299


def test_infer_errors() -> None:
    with pytest.raises(DataError, match="2-D"):
        FeatureSchema.infer(np.zeros(3))
    with pytest.raises(DataError, match="1 feature names for 2 columns"):
        FeatureSchema.infer(np.zeros((3, 2)), ["a"])


# ----------------------------------------------------------------- with_mutable
def test_with_mutable(schema: FeatureSchema) -> None:
    frozen = schema.with_mutable(["x", "c"], mutable=False)
    assert frozen.mutable.tolist() == [False, True, True, False, False, False, False]
    assert schema.mutable.tolist() == [True] * 6 + [False]  # the original is unchanged
    thawed = frozen.with_mutable(["age"])
    assert thawed.mutable[6]
    assert thawed.features[0].scale == 2.0
    assert thawed.features[0].description == "a length"
    with pytest.raises(InvalidParameterError, match="unknown features: nope, zz"):
        schema.with_mutable(["zz", "x", "nope"])


# ------------------------------------------------------------ project/violations
def test_project_repairs_every_kind(schema: FeatureSchema) -> None:
    x0 = np.array([[5.0, 2.0, 0.0, 1.0, 0.0, 0.0, 40.0]])
    cand = np.array([[12.0, 2.6, 0.7, 0.1, 0.3, 0.2, 41.3]])
    out = schema.project(cand, x0)
    assert out.tolist() == [[10.0, 3.0, 1.0, 0.0, 1.0, 0.0, 40.0]]
    assert not schema.violations(out, x0).any()


def test_project_integer_bounds_are_whole(schema: FeatureSchema) -> None:
    s = FeatureSchema((Feature("k", INT, 0.5, 3.7),))
    out = s.project(np.array([[3.7], [0.5], [9.0]]), np.array([[1.0], [1.0], [1.0]]))
    assert out.ravel().tolist() == [3.0, 1.0, 3.0]


def test_project_replaces_nan_and_unbounded_inf(schema: FeatureSchema) -> None:
    s = FeatureSchema((Feature("u"), Feature("v", CONT, 0.0, 1.0)))
    x0 = np.array([[1.5, 0.5], [2.5, 0.25]])
    out = s.project(np.array([[np.nan, np.inf], [np.inf, np.nan]]), x0)
    assert out.tolist() == [[1.5, 1.0], [2.5, 0.25]]


def test_project_does_not_modify_inputs(schema: FeatureSchema) -> None:
    x0 = np.array([[5.0, 2.0, 0.0, 1.0, 0.0, 0.0, 40.0]])
    cand = x0 + 0.3
    before = cand.copy()
    schema.project(cand, x0)
    np.testing.assert_array_equal(cand, before)


@pytest.mark.parametrize(
    ("j", "value"),
    [
        (0, 10.5),
        (0, -0.1),
        (1, 2.5),
        (2, 0.5),
        (2, 2.0),
        (3, 0.0),
        (4, 1.0),
        (0, np.nan),
        (0, np.inf),
    ],
)
def test_violations_flag_each_problem(schema: FeatureSchema, j: int, value: float) -> None:
    good = np.array([[5.0, 2.0, 0.0, 1.0, 0.0, 0.0, 40.0]])
    bad = good.copy()
    bad[0, j] = value
    rows = np.vstack([good, bad])
    assert schema.violations(rows).tolist() == [False, True]


def test_violations_check_immutables_only_with_originals(schema: FeatureSchema) -> None:
    x0 = np.array([[5.0, 2.0, 0.0, 1.0, 0.0, 0.0, 40.0]])
    moved = x0.copy()
    moved[0, 6] = 41.0
    assert not schema.violations(moved).any()
    assert schema.violations(moved, x0).all()
    assert not schema.violations(moved + np.array([[1e-12, 0, 0, 0, 0, 0, 0]]), moved).any()


def test_unbounded_features_accept_any_finite_value() -> None:
    s = FeatureSchema((Feature("u"),))
    assert s.violations(np.array([[1e300], [-1e300], [np.nan]])).tolist() == [False, False, True]


# ---------------------------------------------------------------- serialisation
def test_to_dict_from_dict_round_trip(schema: FeatureSchema) -> None:
    s = FeatureSchema((*schema.features, Feature("free", description="unbounded")))
    d = s.to_dict()
    text = json.dumps(d)  # JSON-serialisable
    free = d["features"][-1]
    assert free["lower"] is None
    assert free["upper"] is None
    assert d["features"][0]["kind"] == "continuous"
    back = FeatureSchema.from_dict(json.loads(text))
    assert back == s
    assert back.features[-1].lower == -np.inf


def test_from_dict_defaults() -> None:
    s = FeatureSchema.from_dict({"features": [{"name": "a"}, {"name": "b", "kind": "binary"}]})
    assert s.features[0] == Feature("a")
    assert s.features[1].kind is BIN


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({}, "src: not a feature schema"),
        ({"features": 3}, "src: not a feature schema"),
        ({"features": [{"kind": "binary"}]}, r"src: features\[0\] needs a 'name'"),
        ({"features": [{"name": "a", "kind": "weird"}]}, "src: .*weird"),
        ({"features": [{"name": "a", "lower": 2, "upper": 1}]}, "src: .*above upper bound"),
        ({"features": [{"name": "a", "scale": "big"}]}, "src: "),
        ({"features": [{"name": "a"}, {"name": "a"}]}, "src: duplicate feature names"),
    ],
)
def test_from_dict_errors_name_the_source(data: dict[str, object], match: str) -> None:
    with pytest.raises(DataError, match=match):
        FeatureSchema.from_dict(data, source="src")


def test_save_load_round_trip(schema: FeatureSchema, tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    schema.save(path)
    assert path.read_text().endswith("\n")
    assert FeatureSchema.load(path) == schema
    assert FeatureSchema.load(str(path)) == schema


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(DataFileError, match="schema file not found") as err:
        FeatureSchema.load(missing)
    assert str(missing) in str(err.value)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(DataFileError, match=f"{bad_json}: cannot read schema"):
        FeatureSchema.load(bad_json)
    a_list = tmp_path / "list.json"
    a_list.write_text("[1, 2]")
    with pytest.raises(DataFileError, match="JSON object with 'features'"):
        FeatureSchema.load(a_list)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataFileError, match="cannot read schema"):
        FeatureSchema.load(binary)
    with pytest.raises(DataFileError, match="cannot read schema"):
        FeatureSchema.load(tmp_path)  # a directory
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"features": [{"name": "a", "kind": "nope"}]}')
    with pytest.raises(DataError, match=str(wrong)):
        FeatureSchema.load(wrong)


def test_save_error_names_the_file(schema: FeatureSchema, tmp_path: Path) -> None:
    target = tmp_path / "no" / "dir" / "s.json"
    with pytest.raises(DataFileError, match="cannot write schema") as err:
        schema.save(target)
    assert str(target) in str(err.value)
