"""DAWN-style watermark: keyed, deterministic answers and verification of a copied model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from mlwarden.exceptions import DataError, InvalidParameterError
from mlwarden.theft.watermark import Watermark

KEY = b"a-secret-key-of-32-bytes-length!"


@pytest.fixture(scope="module")
def setting():
    X, y = make_classification(
        n_samples=6000, n_features=8, n_informative=5, n_classes=3, random_state=0
    )
    victim = LogisticRegression(max_iter=500).fit(X[:2000], y[:2000])
    thief_X = X[2000:4000]  # the thief's queries, as logged
    return victim, thief_X, X[4000:], y[4000:]


def test_answers_are_deterministic_keyed_and_at_the_rate(setting):
    victim, X, _, _ = setting
    wm = Watermark(key=KEY, rate=0.05, classes=[0, 1, 2])
    honest = victim.predict(X)
    answers, changed = wm.apply(X, honest)
    assert 0.03 < changed.mean() < 0.07
    assert (answers[changed] != honest[changed]).all()
    assert (answers[~changed] == honest[~changed]).all()
    # a query read back from a JSON log (lists of floats) gets the same answer
    again, _ = wm.apply(json.loads(json.dumps(X.tolist())), honest.tolist())
    np.testing.assert_array_equal(again, answers)
    i = int(np.flatnonzero(changed)[0])
    assert wm.answer(X[i].tolist(), int(honest[i])) == answers[i]
    _, other_changed = Watermark(key=KEY[::-1], rate=0.05, classes=[0, 1, 2]).apply(X, honest)
    assert (other_changed != changed).any()
    np.testing.assert_array_equal(wm.selected(X), changed)


def test_a_surrogate_trained_on_watermarked_answers_is_caught(setting):
    victim, X, _, _ = setting
    wm = Watermark(key=KEY, rate=0.05, classes=[0, 1, 2])
    honest = victim.predict(X)
    stolen, _ = wm.apply(X, honest)
    surrogate = DecisionTreeClassifier(random_state=0).fit(X, stolen)
    result = wm.verify(surrogate, X, honest)
    assert result.n_watermarked > 50
    assert result.extracted and result.p_value < 1e-6
    assert result.agreement > 0.9 > result.chance_rate
    # the same verdict through a wrapped target (labels mapped from class indices)
    from mlwarden.models import target

    assert wm.verify(target(surrogate), X, honest).p_value == result.p_value


def test_independent_and_honestly_extracted_models_are_not_flagged(setting):
    victim, X, X_own, y_own = setting
    wm = Watermark(key=KEY, rate=0.05, classes=[0, 1, 2])
    honest = victim.predict(X)
    independent = DecisionTreeClassifier(random_state=0).fit(X_own, y_own)
    result = wm.verify(independent, X, honest)
    assert not result.extracted and result.p_value > 0.01
    copy_without_watermark = DecisionTreeClassifier(random_state=0).fit(X, honest)
    assert not wm.verify(copy_without_watermark.predict, X, honest).extracted
    # the victim itself never gives the wrong labels
    assert wm.verify(victim, X, honest).n_agree == 0


def test_too_few_queries_give_no_evidence(setting):
    victim, X, _, _ = setting
    wm = Watermark(key=KEY, rate=0.005, classes=[0, 1, 2])
    honest = victim.predict(X[:100])
    stolen, changed = wm.apply(X[:100], honest)
    surrogate = DecisionTreeClassifier(random_state=0).fit(X[:100], stolen)
    result = wm.verify(surrogate, X[:100], honest)
    assert result.n_watermarked == int(changed.sum()) <= 2
    assert not result.extracted


def test_bad_parameters_and_inputs():
    X = np.zeros((3, 2))
    assert "secret" in repr(Watermark(key=KEY)) and "a-secret" not in repr(Watermark(key=KEY))
    with pytest.raises(InvalidParameterError, match="16 bytes"):
        Watermark(key=b"short").apply(X, [0, 0, 0])
    with pytest.raises(InvalidParameterError, match="rate"):
        Watermark(key=KEY, rate=0).apply(X, [0, 0, 0])
    with pytest.raises(InvalidParameterError, match="classes"):
        Watermark(key=KEY, classes=[1]).apply(X, [1, 1, 1])
    with pytest.raises(DataError, match="labels"):
        Watermark(key=KEY).apply(X, [0, 0])
    with pytest.raises(DataError, match="not one of the classes"):
        Watermark(key=KEY, rate=1.0).apply(X, [0, 5, 0])
    with pytest.raises(InvalidParameterError, match="suspect"):
        Watermark(key=KEY).verify(42, X, [0, 0, 0])
