"""Attribute inference against the imputation baseline (tiny synthetic tabular data)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from mlwarden.data import Dataset, Feature, FeatureKind, FeatureSchema
from mlwarden.exceptions import (
    CapabilityError,
    DataError,
    IncompatibleModelError,
    InvalidParameterError,
)
from mlwarden.models import CallableTarget, SklearnTarget
from mlwarden.privacy.attribute import (
    AttributeInference,
    AttributeInferenceResult,
    attribute_inference_finding,
)

SCHEMA = FeatureSchema(
    (
        Feature("s", FeatureKind.BINARY),
        Feature("x1"),
        Feature("x2"),
        Feature("x3"),
        Feature("c_a", FeatureKind.CATEGORICAL, group="c"),
        Feature("c_b", FeatureKind.CATEGORICAL, group="c"),
        Feature("c_c", FeatureKind.CATEGORICAL, group="c"),
    )
)


def _data(n: int, seed: int, name: str) -> Dataset:
    """Label = sensitive bit s, flipped for 25 % of rows (noise no feature explains)."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 3))
    c = np.eye(3)[rng.integers(0, 3, n)]
    y = np.where(rng.random(n) < 0.25, 1 - s, s)
    return Dataset(np.column_stack([s, x, c]), y, SCHEMA, name=name)


@pytest.fixture(scope="module")
def splits() -> tuple[Dataset, Dataset, Dataset]:
    return _data(200, 1, "train"), _data(200, 2, "test"), _data(300, 3, "aux")


def _forest(train: Dataset, *, ignore_s: bool) -> SklearnTarget:
    X = train.X.copy()
    if ignore_s:
        X[:, 0] = 0.0  # never sees s: no split on it, its value cannot matter
    rf = RandomForestClassifier(n_estimators=25, bootstrap=False, random_state=0, n_jobs=1)
    rf.fit(X, train.labels)
    return SklearnTarget(rf, name="ignores-s" if ignore_s else "leaky")


@pytest.fixture(scope="module")
def leaky_result(splits: tuple[Dataset, Dataset, Dataset]) -> AttributeInferenceResult:
    train, test, aux = splits
    attack = AttributeInference(attribute="s", imputer="logistic", random_state=0)
    return attack.infer(
        _forest(train, ignore_s=False), members=train, non_members=test, auxiliary=aux
    )


def test_leaky_model_beats_imputation_on_members(leaky_result: AttributeInferenceResult) -> None:
    r = leaky_result
    # Imputation from the label alone recovers s ~75 %; the memorising model ~100 %.
    assert 0.6 < r.members["imputation"].accuracy < 0.9
    assert r.members["model"].accuracy > 0.95
    assert r.leakage_members > 0.1
    assert r.leakage_members_ci[0] > 0.0
    assert r.member_specific_leakage > 0.1
    # On held-out rows the model knows no more than the label does.
    assert r.leakage_non_members_ci[0] <= 0.0 + 0.05
    lo, hi = r.members["model"].accuracy_ci
    assert lo <= r.members["model"].accuracy <= hi
    assert r.members["model"].auc is not None
    assert r.queries == (200 + 200 + 300) * 2
    assert r.kind == "binary" and r.candidates == ("0", "1")
    assert any("true label" in a for a in r.assumptions)


def test_model_ignoring_the_column_never_beats_baseline(
    splits: tuple[Dataset, Dataset, Dataset], leaky_result: AttributeInferenceResult
) -> None:
    train, test, aux = splits
    attack = AttributeInference(attribute="s", random_state=0)  # imputer chosen by CV
    r = attack.infer(_forest(train, ignore_s=True), members=train, non_members=test, auxiliary=aux)
    for lo in (r.leakage_members_ci[0], r.leakage_non_members_ci[0]):
        assert lo <= 0.0
    assert r.leakage_members < leaky_result.leakage_members - 0.1
    assert r.params["imputer_used"] in ("logistic", "hgb")
    finding = attribute_inference_finding(r, target="ignores-s")
    assert finding.passed and finding.rule_id == "MLW-PRI-002"


def test_finding_fails_for_leaky_model(leaky_result: AttributeInferenceResult) -> None:
    f = attribute_inference_finding(leaky_result, target="leaky", max_leakage=0.05)
    assert not f.passed
    assert f.severity.value == "high"  # leakage is specific to training members
    assert f.evidence["best_method"] in ("model", "model_aided")
    assert f.evidence["members"]["imputation"]["n"] == 200
    assert 0.5 <= f.confidence <= 1.0


def test_categorical_group_and_binned_column_with_labels_only(
    splits: tuple[Dataset, Dataset, Dataset],
) -> None:
    train, test, aux = splits
    model = _forest(train, ignore_s=False)
    labels_only = CallableTarget(model.predict, n_features=7, classes=[0, 1], output="labels")
    r = AttributeInference(attribute="c", imputer="hgb", random_state=0).infer(
        labels_only, members=train.subset(np.arange(60)), non_members=test.subset(np.arange(60)),
        auxiliary=aux.subset(np.arange(80)),
    )  # fmt: skip
    assert r.kind == "categorical" and r.candidates == ("c_a", "c_b", "c_c")
    assert r.members["model"].auc is None and r.members["model"].n == 60
    assert r.queries == 3 * (60 + 60 + 80)
    assert any("labels only" in a for a in r.assumptions)
    q0 = model.n_queries
    b = AttributeInference(
        attribute="x1", n_bins=3, imputer="logistic", observed_output=True
    ).infer(
        model, members=train.subset(np.arange(50)), non_members=test.subset(np.arange(50)),
        auxiliary=aux.subset(np.arange(90)),
    )  # fmt: skip
    assert b.kind == "binned" and len(b.candidates) == 3
    assert b.queries == model.n_queries - q0 == (3 + 1) * (50 + 50 + 90)
    assert any("output on the true record" in text for text in b.assumptions)
    assert 0.0 <= b.members["imputation"].balanced_accuracy <= 1.0
    assert b.to_dict()["member_specific_leakage"] == pytest.approx(b.member_specific_leakage)


def test_errors(splits: tuple[Dataset, Dataset, Dataset]) -> None:
    train, test, aux = splits
    model = _forest(train, ignore_s=False)
    kw = {"members": train, "non_members": test, "auxiliary": aux}
    with pytest.raises(DataError, match="'nope'"):
        AttributeInference(attribute="nope").infer(model, **kw)
    with pytest.raises(DataError, match="name the group"):
        AttributeInference(attribute="c_a").infer(model, **kw)
    with pytest.raises(DataError, match="auxiliary"):
        AttributeInference(attribute="s").infer(
            model, **{**kw, "auxiliary": aux.subset(np.arange(0))}
        )
    constant = Dataset(np.where(np.arange(7) == 1, 0.0, aux.X), aux.labels, SCHEMA)
    with pytest.raises(DataError, match="fewer than 2"):
        AttributeInference(attribute="x1").infer(model, **{**kw, "auxiliary": constant})
    with pytest.raises(InvalidParameterError, match="n_bins"):
        AttributeInference(attribute="x1", n_bins=1).infer(model, **kw)
    with pytest.raises(InvalidParameterError, match="observed_output"):
        AttributeInference(attribute="s", observed_output=1).infer(model, **kw)
    with pytest.raises(InvalidParameterError, match="imputer"):
        AttributeInference(attribute="s", imputer="magic").infer(model, **kw)
    # A model that takes fewer features than the data: s is not one of its inputs.
    narrow = CallableTarget(lambda x: np.full((len(x), 2), 0.5), n_features=6)
    with pytest.raises(IncompatibleModelError, match="'s'"):
        AttributeInference(attribute="s").infer(narrow, **kw)


def test_named_model_without_the_column(splits: tuple[Dataset, Dataset, Dataset]) -> None:
    import pandas as pd

    train, test, aux = splits
    frame = pd.DataFrame(train.X, columns=["s2", *SCHEMA.names[1:]])
    rf = RandomForestClassifier(n_estimators=2, random_state=0).fit(frame, train.labels)
    with pytest.raises(IncompatibleModelError, match="does not take 's'"):
        AttributeInference(attribute="s").infer(
            SklearnTarget(rf), members=train, non_members=test, auxiliary=aux
        )


def test_capability_error_before_any_query(splits: tuple[Dataset, Dataset, Dataset]) -> None:
    from mlwarden.models.base import Capability, InputSpec, Target

    class NoOutputs(Target):
        @property
        def capabilities(self) -> Capability:
            return Capability.NONE

        @property
        def input_spec(self) -> InputSpec:
            return InputSpec(n_features=7, classes=np.array([0, 1]))

    train, test, aux = splits
    t = NoOutputs()
    with pytest.raises(CapabilityError):
        AttributeInference(attribute="s").infer(t, members=train, non_members=test, auxiliary=aux)
    assert t.n_queries == 0
