"""TorchTarget: agreement with the module, binary and probability outputs, gradients."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from mlwarden.exceptions import (  # noqa: E402
    CapabilityError,
    IncompatibleModelError,
    InvalidParameterError,
)
from mlwarden.models import Capability  # noqa: E402
from mlwarden.models.torch import TorchTarget  # noqa: E402

RNG = np.random.default_rng(0)
X6 = RNG.normal(size=(20, 6)) * 2.0 + 1.0
MEAN6 = np.linspace(0.5, 1.5, 6)
STD6 = np.linspace(1.5, 2.5, 6)
X32 = RNG.uniform(0, 1, size=(12, 32))  # 2-channel 4x4 images
CH_MEAN = np.array([0.4, 0.6]).reshape(2, 1, 1)
CH_STD = np.array([0.2, 0.3]).reshape(2, 1, 1)


def mlp(n_out: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, n_out))


def cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 2 * 2, 4))


def module_out(module: nn.Module, x: np.ndarray, shape=(6,), mean=None, std=None) -> np.ndarray:
    """Reference forward pass in float64 on a copy of the module."""
    ref = copy.deepcopy(module).double().eval()
    xt = torch.as_tensor(x, dtype=torch.float64).reshape((len(x), *shape))
    if mean is not None:
        mean, std = np.asarray(mean), np.asarray(std)
        if mean.ndim == 1:
            mean, std = mean.reshape(shape), std.reshape(shape)
        xt = (xt - torch.as_tensor(mean)) / torch.as_tensor(std)
    with torch.no_grad():
        return ref(xt).numpy()


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------ predictions
def test_mlp_predictions_agree_with_the_module():
    m = mlp()
    t = TorchTarget(m, preprocessing=(MEAN6, STD6), name="mlp")
    ref = module_out(m, X6, mean=MEAN6, std=STD6)
    np.testing.assert_allclose(t.logits(X6), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(t.predict_proba(X6), softmax(ref), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(t.predict(X6), ref.argmax(axis=1))
    assert t.n_queries == 60
    assert t.capabilities == (
        Capability.LABELS
        | Capability.SCORES
        | Capability.LOGITS
        | Capability.GRADIENTS
        | Capability.TRAINABLE
    )
    assert t.n_classes == 3 and t.input_spec.shape == (6,) and t.kind == "torch"
    pre = t.preprocessing
    assert pre is not None
    np.testing.assert_allclose(pre[0], MEAN6)


def test_cnn_with_input_shape_and_per_channel_preprocessing():
    m = cnn()
    t = TorchTarget(m, input_shape=(2, 4, 4), preprocessing=(CH_MEAN, CH_STD), lower=0, upper=1)
    assert t.input_spec.n_features == 32 and t.input_spec.shape == (2, 4, 4)
    np.testing.assert_array_equal(t.input_spec.lower, np.zeros(32))
    np.testing.assert_array_equal(t.input_spec.upper, np.ones(32))
    ref = module_out(m, X32, shape=(2, 4, 4), mean=CH_MEAN, std=CH_STD)
    np.testing.assert_allclose(t.logits(X32), ref, rtol=1e-5, atol=1e-5)
    # Rows may also arrive as images; they are flattened like the data.
    np.testing.assert_allclose(t.logits(X32.reshape(-1, 2, 4, 4)), ref, rtol=1e-5, atol=1e-5)


def test_cnn_needs_an_input_shape():
    with pytest.raises(InvalidParameterError, match="input_shape"):
        TorchTarget(cnn())
    with pytest.raises(InvalidParameterError, match=r"fails on one input of shape \(5,\)"):
        TorchTarget(mlp(), input_shape=(5,))


def test_single_output_unit_is_a_binary_sigmoid_model():
    m = mlp(n_out=1)
    t = TorchTarget(m, classes=["legit", "fraud"])
    z = module_out(m, X6)[:, 0]
    assert t.n_classes == 2
    np.testing.assert_allclose(t.logits(X6), np.column_stack([np.zeros_like(z), z]), atol=1e-5)
    np.testing.assert_allclose(t.predict_proba(X6)[:, 1], 1 / (1 + np.exp(-z)), atol=1e-6)
    np.testing.assert_array_equal(t.predict(X6), (z > 0).astype(int))
    # The CE loss of the 2-class view is the binary cross-entropy of the sigmoid.
    y = (z < 0).astype(int)
    loss, _ = t.loss_gradient(X6, y)
    p1 = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(loss, -np.log(np.where(y == 1, p1, 1 - p1)), rtol=1e-4)


def test_probability_outputs():
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(6, 3), nn.Softmax(dim=1))
    t = TorchTarget(m, output="probabilities")
    assert Capability.LOGITS not in t.capabilities
    np.testing.assert_allclose(t.predict_proba(X6), module_out(m, X6), atol=1e-6)
    with pytest.raises(CapabilityError, match="logits"):
        t.logits(X6)
    torch.manual_seed(2)
    b = TorchTarget(nn.Sequential(nn.Linear(6, 1), nn.Sigmoid()), output="probabilities")
    p = b.predict_proba(X6)
    assert p.shape == (20, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)


# --------------------------------------------------------------------- gradients
def reference_loss(module, x, y, loss, shape=(6,), mean=None, std=None, output="logits"):
    """Per-row loss in float64, computed by hand from the module's outputs."""
    z = module_out(module, x, shape, mean, std)
    if output == "probabilities":
        z = np.log(z)
    rows = np.arange(len(y))
    if loss == "ce":
        zmax = z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
        return lse - z[rows, y]
    other = z.copy()
    other[rows, y] = -np.inf
    return other.max(axis=1) - z[rows, y]


def finite_differences(fn, x, y, h=1e-5):
    """Central differences of ``fn(x, y)`` for every feature, in one batched call."""
    n, d = x.shape
    steps = h * np.eye(d)
    xs = np.concatenate(
        [(x[:, None, :] + steps).reshape(-1, d), (x[:, None, :] - steps).reshape(-1, d)]
    )
    values = fn(xs, np.tile(np.repeat(y, d), 2))
    return (values[: n * d] - values[n * d :]).reshape(n, d) / (2 * h)


CASES = {
    "mlp": dict(
        make=mlp,
        kwargs=dict(preprocessing=(MEAN6, STD6)),
        x=X6[:5],
        shape=(6,),
        mean=MEAN6,
        std=STD6,
    ),
    "cnn": dict(
        make=cnn,
        kwargs=dict(input_shape=(2, 4, 4), preprocessing=(CH_MEAN, CH_STD)),
        x=X32[:3],
        shape=(2, 4, 4),
        mean=CH_MEAN,
        std=CH_STD,
    ),
}


@pytest.mark.parametrize("loss", ["ce", "margin"])
@pytest.mark.parametrize("case", ["mlp", "cnn"])
def test_gradients_match_finite_differences(case, loss):
    c = CASES[case]
    m = c["make"]()
    t = TorchTarget(m, **c["kwargs"])
    x = c["x"]
    y = np.arange(len(x)) % t.n_classes
    value, grad = t.loss_gradient(x, y, loss=loss)
    ref = lambda xx, yy: reference_loss(m, xx, yy, loss, c["shape"], c["mean"], c["std"])  # noqa: E731
    np.testing.assert_allclose(value, ref(x, y), rtol=1e-4, atol=1e-5)
    fd = finite_differences(ref, x, y)
    assert grad.shape == x.shape
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=2e-5)
    assert np.abs(grad).max() > 1e-3  # not trivially zero
    assert t.n_gradient_queries == len(x) and t.n_queries == len(x)


def test_gradients_for_a_probability_output_use_log_probabilities():
    torch.manual_seed(3)
    m = nn.Sequential(nn.Linear(6, 3), nn.Softmax(dim=1))
    t = TorchTarget(m, output="probabilities", preprocessing=(MEAN6, STD6))
    x, y = X6[:4], np.array([0, 1, 2, 0])
    for loss in ("ce", "margin"):
        value, grad = t.loss_gradient(x, y, loss=loss)
        ref = lambda xx, yy, loss=loss: reference_loss(  # noqa: E731
            m, xx, yy, loss, mean=MEAN6, std=STD6, output="probabilities"
        )
        np.testing.assert_allclose(value, ref(x, y), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(grad, finite_differences(ref, x, y), rtol=1e-3, atol=2e-5)


def test_batching_gives_the_same_answers():
    m = mlp()
    big = TorchTarget(m)
    small = TorchTarget(m, batch_size=3)
    y = np.arange(len(X6)) % 3
    np.testing.assert_allclose(small.logits(X6), big.logits(X6), atol=1e-6)
    for loss in ("ce", "margin"):
        v1, g1 = big.loss_gradient(X6, y, loss=loss)
        v2, g2 = small.loss_gradient(X6, y, loss=loss)
        np.testing.assert_allclose(v1, v2, atol=1e-6)
        np.testing.assert_allclose(g1, g2, atol=1e-6)


def test_gradient_calls_leave_the_module_untouched():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.5), nn.Linear(16, 3))
    m.train()
    t = TorchTarget(m)
    a = t.logits(X6)
    b = t.logits(X6)
    np.testing.assert_array_equal(a, b)  # dropout is off inside the wrapper
    t.loss_gradient(X6[:3], [0, 1, 2])
    assert m.training and m[1].training  # every flag restored
    assert all(p.grad is None for p in m.parameters())


def test_float64_module_runs_in_float32():
    m = mlp().double()
    t = TorchTarget(m)
    assert all(p.dtype == torch.float32 for p in m.parameters())
    assert t.logits(X6).dtype == np.float64


def test_labels_and_losses_are_checked():
    t = TorchTarget(mlp())
    with pytest.raises(IncompatibleModelError, match=r"class indices must be in \[0, 3\)"):
        t.loss_gradient(X6[:2], [0, 3])
    with pytest.raises(InvalidParameterError, match="loss must be"):
        t.loss_gradient(X6[:2], [0, 1], loss="hinge")
    with pytest.raises(IncompatibleModelError, match="expects 6 features"):
        t.predict(X6[:, :4])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_classes=4), "n_classes=4"),
        (dict(classes=["a", "b"]), "2 classes given"),
        (dict(output="softmax"), "output must be"),
        (dict(batch_size=0), "batch_size"),
        (dict(preprocessing=(np.zeros(6), np.zeros(6))), "std must be positive"),
        (dict(preprocessing=(np.zeros(5), np.ones(5))), "does not fit"),
        (dict(preprocessing=3.0), "pair"),
        (dict(lower=1.0, upper=0.0), "above upper"),
        (dict(lower=np.zeros(5)), "5 values"),
        (dict(feature_names=["a"]), "1 feature names"),
        (dict(input_shape=(0, 6)), "positive"),
    ],
)
def test_invalid_parameters(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        TorchTarget(mlp(), **kwargs)


def test_not_a_module():
    with pytest.raises(InvalidParameterError, match=r"torch\.nn\.Module"):
        TorchTarget(lambda x: x)


# ------------------------------------------------- gradient and labels in one query
@pytest.mark.parametrize(("n_out", "output"), [(3, "logits"), (1, "logits"), (3, "probabilities")])
def test_loss_gradient_labels_match_separate_calls_and_cost_one_query(n_out, output):
    m = mlp(n_out)
    if output == "probabilities":
        m = nn.Sequential(m, nn.Softmax(dim=1))
    t = TorchTarget(m, input_shape=(6,), output=output)
    y = np.arange(len(X6)) % t.n_classes
    loss, grad = t.loss_gradient(X6, y, loss="margin")
    labels = t.predict(X6)
    q0, g0 = t.n_queries, t.n_gradient_queries
    loss2, grad2, labels2 = t.loss_gradient_labels(X6, y, loss="margin")
    assert t.n_queries - q0 == len(X6) and t.n_gradient_queries - g0 == len(X6)
    np.testing.assert_allclose(loss2, loss, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad2, grad, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(labels2, labels)


def test_loss_gradient_labels_falls_back_to_a_counted_prediction():
    from tests.helpers import SoftmaxTarget

    t = SoftmaxTarget(W=np.array([[1.0, -1.0], [0.5, 2.0]]), b=np.array([0.1, -0.2]))
    x = RNG.normal(size=(7, 2))
    y = np.zeros(7, dtype=np.int64)
    _, grad, labels = t.loss_gradient_labels(x, y)
    np.testing.assert_array_equal(labels, t.predict(x))
    np.testing.assert_allclose(grad, t.loss_gradient(x, y)[1])
    assert t.n_gradient_queries == 14 and t.n_queries == 4 * 7
