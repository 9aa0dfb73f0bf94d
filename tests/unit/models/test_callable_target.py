"""CallableTarget in its three output modes."""

from __future__ import annotations

import numpy as np
import pytest

from mlwarden.exceptions import CapabilityError, IncompatibleModelError, InvalidParameterError
from mlwarden.models import CallableTarget, Capability

W = np.array([[1.0, -1.0, 0.5], [0.0, 2.0, -1.0]])
X = np.random.default_rng(0).normal(size=(15, 2))


def logits(x):
    return x @ W


def proba(x):
    z = logits(x)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


LABELS = np.array(["low", "mid", "high"])


def labels(x):
    return LABELS[logits(x).argmax(axis=1)]


def test_probabilities():
    t = CallableTarget(proba, n_features=2, classes=LABELS)
    assert t.capabilities == Capability.LABELS | Capability.SCORES
    np.testing.assert_allclose(t.predict_proba(X), proba(X))
    np.testing.assert_array_equal(t.predict(X), logits(X).argmax(axis=1))
    assert t.n_queries == 30 and t.kind == "callable"
    with pytest.raises(CapabilityError, match="logits"):
        t.logits(X)


def test_logits():
    t = CallableTarget(logits, n_features=2, n_classes=3, output="logits")
    assert t.capabilities == Capability.LABELS | Capability.SCORES | Capability.LOGITS
    np.testing.assert_allclose(t.logits(X), logits(X))
    np.testing.assert_allclose(t.predict_proba(X), proba(X))
    np.testing.assert_array_equal(t.classes, [0, 1, 2])


def test_labels_only():
    t = CallableTarget(labels, n_features=2, classes=LABELS, output="labels")
    assert t.capabilities == Capability.LABELS
    np.testing.assert_array_equal(t.classes[t.predict(X)], labels(X))
    with pytest.raises(CapabilityError, match="predict_proba needs scores"):
        t.predict_proba(X)
    with pytest.raises(CapabilityError):
        t.loss_gradient(X, np.zeros(len(X)))


def test_integer_labels_match_float_outputs():
    t = CallableTarget(
        lambda x: (x[:, 0] > 0).astype(float), n_features=2, n_classes=2, output="labels"
    )
    np.testing.assert_array_equal(t.predict(X), (X[:, 0] > 0).astype(int))


def test_number_of_classes_is_inferred_from_one_uncounted_call():
    calls = []

    def fn(x):
        calls.append(len(x))
        return proba(x)

    t = CallableTarget(fn, n_features=2)
    assert t.n_classes == 3 and calls == [1] and t.n_queries == 0


def test_bad_outputs_are_reported():
    t = CallableTarget(lambda x: np.ones((len(x), 2)) / 2, n_features=2, n_classes=3)
    with pytest.raises(IncompatibleModelError, match=r"shape \(15, 2\).*expected \(15, 3\)"):
        t.predict_proba(X)
    u = CallableTarget(
        lambda x: ["low"] * (len(x) - 1) + ["huge"], n_features=2, classes=LABELS, output="labels"
    )
    with pytest.raises(IncompatibleModelError, match="'huge'"):
        u.predict(X)
    v = CallableTarget(lambda x: ["low"], n_features=2, classes=LABELS, output="labels")
    with pytest.raises(IncompatibleModelError, match="1 labels for 15 rows"):
        v.predict(X)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_features=2, output="labels"), "needs classes"),
        (dict(n_features=2, output="votes", n_classes=2), "output must be"),
        (dict(n_features=0, n_classes=2), "positive"),
        (dict(n_features=2.5, n_classes=2), "integer"),
        (dict(n_features=2, n_classes=1), "at least 2"),
        (dict(n_features=2, classes=[1, 2], n_classes=3), "n_classes=3"),
        (dict(n_features=2, classes=["only"]), "at least 2"),
    ],
)
def test_invalid_parameters(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        CallableTarget(proba, **kwargs)


def test_not_callable_and_bad_dry_run():
    with pytest.raises(InvalidParameterError, match="callable"):
        CallableTarget(42, n_features=2, n_classes=2)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="expected \\(1, n_classes\\)"):
        CallableTarget(lambda x: x[:, 0], n_features=2)


def test_wrong_feature_count_and_nan():
    t = CallableTarget(proba, n_features=2, n_classes=3)
    with pytest.raises(IncompatibleModelError, match="expects 2 features"):
        t.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        t.predict([[np.nan, 0.0]])
