"""Reference models: paired half-splits, backends, cache and errors."""

import importlib.util

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlwarden.exceptions import (
    DataError,
    DataFileError,
    InvalidParameterError,
    MissingDependencyError,
)
from mlwarden.models.base import Target
from mlwarden.privacy.reference import (
    MLPTrainer,
    ReferenceModels,
    TorchModuleTrainer,
    true_class_logit,
    true_class_prob,
)

FAST_MLP = MLPTrainer(hidden=(8,), epochs=5, lr=1e-2, batch_size=32)


def _data(n=60, d=4, seed=0, n_classes=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] > 0).astype(int) if n_classes == 2 else rng.integers(0, n_classes, size=n)
    return X, y


def test_paired_half_splits_put_every_record_in_half_of_the_models():
    X, y = _data(n=61)
    ref = ReferenceModels(n_models=6, trainer=FAST_MLP, random_state=0).fit(X, y)
    m = ref.in_mask_
    assert m.shape == (6, 61)
    assert np.all(m.sum(axis=0) == 3)
    for p in range(3):
        assert np.all(m[2 * p] ^ m[2 * p + 1])
    # Stratified: each half holds about half of each class.
    for k in range(6):
        for c in (0, 1):
            total = int((y == c).sum())
            assert abs(int(m[k][y == c].sum()) - total / 2) <= 0.5
    assert ref.logits_.shape == (6, 61, 2)
    assert ref.backend_ == "batched"


def test_budget_presets():
    X, y = _data()
    ref = ReferenceModels(n_models="quick", trainer=FAST_MLP, random_state=0).fit(X, y)
    assert ref.n_models_ == 4


def test_same_seed_same_outputs_and_different_seed_differs():
    X, y = _data()
    a = ReferenceModels(n_models=4, trainer=FAST_MLP, random_state=3).fit(X, y)
    b = ReferenceModels(n_models=4, trainer=FAST_MLP, random_state=3).fit(X, y)
    c = ReferenceModels(n_models=4, trainer=FAST_MLP, random_state=4).fit(X, y)
    np.testing.assert_array_equal(a.logits_, b.logits_)
    np.testing.assert_array_equal(a.in_mask_, b.in_mask_)
    assert not np.array_equal(a.in_mask_, c.in_mask_)


def test_batched_models_are_ordinary_targets_with_the_cached_outputs():
    X, y = _data()
    trainer = MLPTrainer(hidden=(16,), epochs=60, lr=3e-2, batch_size=16)
    ref = ReferenceModels(n_models=4, trainer=trainer, random_state=0).fit(X, y)
    assert ref.models_ is not None and len(ref.models_) == 4
    for k, model in enumerate(ref.models_):
        assert isinstance(model, Target)
        np.testing.assert_allclose(model.logits(X), ref.logits_[k], rtol=1e-5, atol=1e-5)
        # Each model learnt its own half.
        inside = ref.in_mask_[k]
        assert (model.predict(X[inside]) == y[inside]).mean() > 0.9


def test_one_stacked_model_equals_one_model_trained_alone():
    X, y = _data()
    params = FAST_MLP.train_stacked(X, y, np.ones((1, len(X)), dtype=bool), 2, seed=7)
    alone = FAST_MLP(X, y, 7, n_classes=2)
    np.testing.assert_allclose(
        MLPTrainer.stacked_logits(params, X)[0], alone.logits(X), rtol=1e-6, atol=1e-6
    )


def test_sklearn_trainer_sequential_and_joblib_agree():
    X, y = _data(n=40, n_classes=3)
    seq = ReferenceModels(
        n_models=4, trainer=LogisticRegression(max_iter=200), backend="sequential", random_state=0
    ).fit(X, y)
    par = ReferenceModels(
        n_models=4,
        trainer=LogisticRegression(max_iter=200),
        backend="joblib",
        n_jobs=2,
        keep_models=False,
        random_state=0,
    ).fit(X, y)
    np.testing.assert_allclose(seq.logits_, par.logits_, rtol=1e-10, atol=1e-10)
    assert par.models_ is None
    assert seq.models_ is not None
    # Score-only models: the cache holds log-probabilities.
    p = seq.models_[1].predict_proba(X)
    np.testing.assert_allclose(np.exp(seq.logits_[1]), p, rtol=1e-10)
    np.testing.assert_allclose(seq.signals("prob")[1], p[np.arange(len(y)), y], rtol=1e-10)


def test_torch_module_trainer_and_callable_trainer():
    from mlwarden.models._torch_nets import mlp_classifier

    X, y = _data(n=40)
    tm = TorchModuleTrainer(lambda x, k: mlp_classifier(x, k, hidden=(8,)), epochs=2)
    ref = ReferenceModels(n_models=2, trainer=tm, random_state=0).fit(X, y)
    assert ref.backend_ == "sequential"
    assert ref.logits_.shape == (2, 40, 2)

    def bad(x, yy, seed):
        return LogisticRegression().fit(x, yy)

    with pytest.raises(InvalidParameterError, match="not a Target"):
        ReferenceModels(n_models=2, trainer=bad, random_state=0).fit(X, y)


def test_signals_are_logit_scaled_true_class_confidence():
    z = np.array([[[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]]])
    y = np.array([0, 2])
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    py = p[0, [0, 1], y]
    np.testing.assert_allclose(true_class_prob(z, y)[0], py, rtol=1e-12)
    np.testing.assert_allclose(true_class_logit(z, y)[0], np.log(py / (1 - py)), rtol=1e-12)


def test_excluded_rows_are_never_in():
    X, y = _data()
    ref = ReferenceModels(n_models=4, trainer=FAST_MLP, random_state=0).fit(X, y, exclude=[0, 5])
    assert not ref.in_mask_[:, [0, 5]].any()
    assert np.all(np.delete(ref.in_mask_.sum(axis=0), [0, 5]) == 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_models": 5}, "even"),
        ({"n_models": 0}, "n_models"),
        ({"n_models": "huge"}, "quick"),
        ({"backend": "spark"}, "backend"),
        ({"backend": "batched", "trainer": LogisticRegression()}, "MLPTrainer"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"trainer": 3}, "trainer"),
        ({"trainer": MLPTrainer(epochs=0)}, "epochs"),
    ],
)
def test_bad_parameters(kwargs, match):
    X, y = _data()
    ref = ReferenceModels(**{"trainer": FAST_MLP, **kwargs})
    with pytest.raises(InvalidParameterError, match=match):
        ref.fit(X, y)


def test_population_too_small_or_unusable():
    X, y = _data()
    with pytest.raises(DataError, match="too small"):
        ReferenceModels(n_models=2, trainer=FAST_MLP).fit(X[:3], [0, 1, 1])
    with pytest.raises(DataError, match="too small"):
        ReferenceModels(n_models=2, trainer=FAST_MLP).fit(X[:6], [0, 1, 1, 1, 1, 1])
    with pytest.raises(DataError, match="2 classes"):
        ReferenceModels(n_models=2, trainer=FAST_MLP).fit(X[:6], np.zeros(6))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        ReferenceModels(n_models=2, trainer=FAST_MLP).fit(bad, y)


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_ray_backend_without_ray():
    X, y = _data()
    with pytest.raises(MissingDependencyError, match="ray"):
        ReferenceModels(n_models=2, trainer=LogisticRegression(), backend="ray").fit(X, y)


def test_check_population_refuses_other_data():
    X, y = _data()
    ref = ReferenceModels(n_models=2, trainer=FAST_MLP, random_state=0).fit(X, y)
    ref.check_population(X, y)
    with pytest.raises(DataError, match="same X"):
        ref.check_population(X[:-1], y[:-1])
    with pytest.raises(DataError, match="same X"):
        ref.check_population(X + 1.0, y)
    with pytest.raises(InvalidParameterError, match="not fitted"):
        ReferenceModels().signals()


def test_progress_callback_is_called_per_model():
    X, y = _data(n=40)
    calls = []
    ReferenceModels(
        n_models=2, trainer=LogisticRegression(), backend="sequential", random_state=0
    ).fit(X, y, progress=lambda task, done, total: calls.append((task, done, total)))
    assert calls[0] == ("reference models", 0, 2)
    assert calls[-1] == ("reference models", 2, 2)
    assert len(calls) >= 3


def test_save_and_load_the_cached_outputs(tmp_path):
    X, y = _data(n=40)
    ref = ReferenceModels(n_models=2, trainer=FAST_MLP, random_state=0).fit(X, y)
    path = tmp_path / "ref.npz"
    ref.save(path)
    back = ReferenceModels.load(path)
    np.testing.assert_array_equal(back.logits_, ref.logits_)
    np.testing.assert_array_equal(back.in_mask_, ref.in_mask_)
    assert back.n_models_ == 2 and back.models_ is None
    back.check_population(X, y)
    np.testing.assert_array_equal(back.signals(), ref.signals())
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(DataFileError, match="not a reference-model cache"):
        ReferenceModels.load(tmp_path / "other.npz")
    with pytest.raises(DataFileError, match="cannot read"):
        ReferenceModels.load(tmp_path / "missing.npz")
