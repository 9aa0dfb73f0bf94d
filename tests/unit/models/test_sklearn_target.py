"""SklearnTarget: agreement with the estimator, capabilities, input checks."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mlwarden.exceptions import (
    CapabilityError,
    DataError,
    IncompatibleModelError,
    InvalidParameterError,
)
from mlwarden.models import Capability, SklearnTarget


@pytest.mark.parametrize("kind", ["lr", "hgb", "rf", "pipeline"])
def test_predictions_agree_with_the_estimator(kind, sk_models, data3):
    X, _ = data3
    est = sk_models[kind]
    t = SklearnTarget(est, name=kind)
    x = X[:40]
    np.testing.assert_allclose(t.predict_proba(x), est.predict_proba(x))
    labels = t.predict(x)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(t.classes[labels], est.predict(x))
    assert t.n_queries == 80
    assert t.capabilities == Capability.LABELS | Capability.SCORES | Capability.TRAINABLE
    assert t.kind == "sklearn"
    spec = t.input_spec
    assert spec.n_features == 6 and spec.shape == (6,)
    np.testing.assert_array_equal(spec.classes, [0, 1, 2])
    assert spec.feature_names is None and spec.lower is None


def test_string_labels_are_mapped_to_indices(data3_str):
    X, y = data3_str
    est = LogisticRegression(max_iter=500).fit(X, y)
    t = SklearnTarget(est)
    idx = t.predict(X[:30])
    np.testing.assert_array_equal(t.classes[idx], est.predict(X[:30]))
    np.testing.assert_array_equal(t.encode_labels(["cat", "ant"]), [2, 0])
    with pytest.raises(IncompatibleModelError, match="'dog'"):
        t.encode_labels(["ant", "dog"])


def test_fitted_on_dataframe_gives_no_feature_name_warning(frame_model, data3):
    X, _ = data3
    t = SklearnTarget(frame_model)
    assert t.input_spec.feature_names == tuple(f"f{i}" for i in range(6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = t.predict_proba(X[:10])
        t.predict(X[:10])
    np.testing.assert_allclose(
        p, frame_model.predict_proba(pd.DataFrame(X[:10], columns=t.input_spec.feature_names))
    )


def test_pipeline_selecting_columns_by_name_gets_a_dataframe(data3):
    X, y = data3
    cols = [f"f{i}" for i in range(6)]
    df = pd.DataFrame(X, columns=cols)
    pre = ColumnTransformer([("scale", StandardScaler(), cols[:4])], remainder="drop")
    est = Pipeline([("pre", pre), ("lr", LogisticRegression(max_iter=500))]).fit(df, y)
    t = SklearnTarget(est)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = t.predict_proba(X[:15])
        p2 = t.predict_proba(X[15:20])  # second call goes straight to the DataFrame path
    np.testing.assert_allclose(p, est.predict_proba(df.iloc[:15]))
    np.testing.assert_allclose(p2, est.predict_proba(df.iloc[15:20]))


def test_classifier_without_predict_proba_offers_labels_only(data3_str):
    X, y = data3_str
    est = RidgeClassifier().fit(X, y)
    t = SklearnTarget(est)
    assert t.capabilities == Capability.LABELS | Capability.TRAINABLE
    np.testing.assert_array_equal(t.classes[t.predict(X[:25])], est.predict(X[:25]))
    with pytest.raises(CapabilityError, match="scores"):
        t.predict_proba(X[:2])


@pytest.mark.parametrize(
    ("method", "args"),
    [("loss_gradient", ([[0.0] * 6], [0])), ("logits", ([[0.0] * 6],))],
)
def test_missing_capabilities_raise_before_any_query(method, args, sk_models):
    t = SklearnTarget(sk_models["lr"], name="lr")
    with pytest.raises(CapabilityError, match="'lr' \\(sklearn\\) offers only labels, scores"):
        getattr(t, method)(*args)
    assert t.n_queries == 0


def test_unfitted_estimator_is_rejected():
    with pytest.raises(InvalidParameterError, match="not fitted"):
        SklearnTarget(make_pipeline(StandardScaler(), LogisticRegression()))
    with pytest.raises(InvalidParameterError, match="not fitted"):
        SklearnTarget(LogisticRegression())


def test_regressor_and_non_estimators_are_rejected(data3):
    X, y = data3
    with pytest.raises(InvalidParameterError, match="not a classifier"):
        SklearnTarget(LinearRegression().fit(X, y))
    with pytest.raises(InvalidParameterError, match="StandardScaler"):
        SklearnTarget(StandardScaler().fit(X))
    with pytest.raises(InvalidParameterError, match="str"):
        SklearnTarget("model.pkl")


def test_wrong_feature_count_and_nan_inputs(sk_models, data3):
    X, _ = data3
    t = SklearnTarget(sk_models["lr"])
    with pytest.raises(IncompatibleModelError, match="expects 6 features per row, got 5"):
        t.predict(X[:3, :5])
    bad = X[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        t.predict_proba(bad)
    with pytest.raises(DataError, match="numeric"):
        t.predict([["a"] * 6])
    assert t.n_queries == 0
    assert t.predict(X[0]).shape == (1,)  # a single row is accepted


def test_describe_is_json_serialisable(sk_models):
    t = SklearnTarget(sk_models["hgb"], name="hgb")
    d = t.describe()
    assert json.loads(json.dumps(d))["capabilities"] == ["labels", "scores", "trainable"]
    assert d["sha256"] is None and d["kind"] == "sklearn"


def test_targets_compare_by_identity(sk_models):
    a = SklearnTarget(sk_models["lr"])
    b = SklearnTarget(sk_models["rf"])
    assert a != b and a == a
    assert len({a, b}) == 2
