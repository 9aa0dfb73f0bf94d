"""Attack losses of Target.loss_gradient: CE, margin, DLR and their targeted forms.

Oracles: a float64 numpy reference of every loss on the module's own logits, central
finite differences of that reference (through the target's preprocessing) for the
gradients, and the analytic gradients of the numpy SoftmaxTarget.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import SoftmaxTarget

from mlwarden.exceptions import IncompatibleModelError, InvalidParameterError
from mlwarden.models.base import LOSSES, TARGETED_LOSSES, loss_from_logits

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from mlwarden.models.torch import TorchTarget  # noqa: E402

RNG = np.random.default_rng(0)
X6 = RNG.normal(size=(6, 6)) * 2.0 + 1.0
MEAN6 = np.linspace(0.5, 1.5, 6)
STD6 = np.linspace(1.5, 2.5, 6)
X32 = RNG.uniform(0, 1, size=(3, 32))  # 2-channel 4x4 images
CH_MEAN = np.array([0.4, 0.6]).reshape(2, 1, 1)
CH_STD = np.array([0.2, 0.3]).reshape(2, 1, 1)


def mlp(n_out: int = 5, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, n_out))


def cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(12, 4))


def reference_logits(module, x, shape, mean, std, output="logits"):
    """The module in float64, preprocessing included; log-probabilities for probability outputs."""
    ref = copy.deepcopy(module).double().eval()
    xt = torch.as_tensor(x, dtype=torch.float64).reshape((len(x), *shape))
    xt = (xt - torch.as_tensor(np.asarray(mean))) / torch.as_tensor(np.asarray(std))
    with torch.no_grad():
        z = ref(xt).reshape(len(x), -1).numpy()
    return np.log(z) if output == "probabilities" else z


def finite_differences(fn, x, h=1e-5):
    n, d = x.shape
    steps = h * np.eye(d)
    plus = fn((x[:, None, :] + steps).reshape(-1, d), np.repeat(np.arange(n), d))
    minus = fn((x[:, None, :] - steps).reshape(-1, d), np.repeat(np.arange(n), d))
    return (plus - minus).reshape(n, d) / (2 * h)


def targets_for(y, k):
    """A target class per row, never the true one."""
    return (y + 1 + np.arange(len(y)) % (k - 1)) % k


CASES = {
    "mlp": dict(make=mlp, kwargs=dict(preprocessing=(MEAN6, STD6)), x=X6, shape=(6,)),
    "cnn": dict(
        make=cnn,
        kwargs=dict(input_shape=(2, 4, 4), preprocessing=(CH_MEAN, CH_STD)),
        x=X32,
        shape=(2, 4, 4),
    ),
}


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("case", ["mlp", "cnn"])
def test_losses_and_gradients_match_a_float64_reference(case, loss):
    c = CASES[case]
    m = c["make"]()
    pre = c["kwargs"]["preprocessing"]
    t = TorchTarget(m, **c["kwargs"])
    x = c["x"]
    k = t.n_classes
    y = np.arange(len(x)) % k
    tc = targets_for(y, k) if loss in TARGETED_LOSSES else None
    value, grad = t.loss_gradient(x, y, loss=loss, target_class=tc)

    def ref(xx, rows):
        z = reference_logits(m, xx, c["shape"], *pre)
        return loss_from_logits(z, y[rows], loss, None if tc is None else tc[rows])[0]

    np.testing.assert_allclose(value, ref(x, np.arange(len(x))), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad, finite_differences(ref, x), rtol=2e-3, atol=5e-5)
    assert np.abs(grad).max() > 1e-3
    assert t.n_gradient_queries == len(x)


def test_losses_on_a_probability_output_use_log_probabilities():
    torch.manual_seed(3)
    m = nn.Sequential(nn.Linear(6, 4), nn.Softmax(dim=1))
    t = TorchTarget(m, output="probabilities")
    y = np.array([0, 1, 2, 3, 0, 1])
    for loss in ("dlr", "dlr-targeted", "margin-targeted"):
        tc = targets_for(y, 4) if loss in TARGETED_LOSSES else None
        value, _ = t.loss_gradient(X6, y, loss=loss, target_class=tc)
        z = reference_logits(m, X6, (6,), 0.0, 1.0, output="probabilities")
        np.testing.assert_allclose(value, loss_from_logits(z, y, loss, tc)[0], rtol=1e-4)


def test_ascending_each_loss_is_the_attack_direction():
    """Bigger is more adversarial: misclassified rows score higher than correct ones."""
    t = TorchTarget(mlp())
    z = t.logits(X6)
    pred = z.argmax(axis=1)
    runner_up = np.argsort(-z, axis=1)[:, 1]
    wrong = (pred + 1) % 5
    for loss in ("margin", "dlr"):
        right_v, _ = t.loss_gradient(X6, pred, loss=loss)
        wrong_v, _ = t.loss_gradient(X6, wrong, loss=loss)
        assert np.all(right_v < 0) and np.all(wrong_v > 0)
    # Targeted: pulling towards the runner-up is further along than towards the true class.
    for loss in TARGETED_LOSSES:
        v, _ = t.loss_gradient(X6, pred, loss=loss, target_class=runner_up)
        if loss != "ce-targeted":
            assert np.all(v < 0)
    ce, _ = t.loss_gradient(X6, pred, loss="ce")
    tce, _ = t.loss_gradient(X6, pred, loss="ce-targeted", target_class=runner_up)
    assert np.all(tce < -ce)  # the target class is less likely than the predicted one


def test_binary_models_refuse_dlr_and_collapse_the_targeted_margin():
    t = TorchTarget(mlp(n_out=1))
    y = np.array([0, 1, 1, 0, 1, 0])
    q0 = t.n_queries
    with pytest.raises(InvalidParameterError, match=r"needs at least 3 classes.*use 'margin'"):
        t.loss_gradient(X6, y, loss="dlr")
    with pytest.raises(InvalidParameterError, match="use 'margin-targeted'"):
        t.loss_gradient(X6, y, loss="dlr-targeted", target_class=1 - y)
    assert t.n_queries == q0
    margin = t.loss_gradient(X6, y, loss="margin")
    targeted = t.loss_gradient(X6, y, loss="margin-targeted", target_class=1 - y)
    np.testing.assert_allclose(margin[0], targeted[0])
    np.testing.assert_allclose(margin[1], targeted[1])
    ce_other, _ = t.loss_gradient(X6, 1 - y, loss="ce")
    tce, _ = t.loss_gradient(X6, y, loss="ce-targeted", target_class=1 - y)
    np.testing.assert_allclose(tce, -ce_other, rtol=1e-6)


def test_targeted_dlr_needs_four_classes():
    t = TorchTarget(mlp(n_out=3))
    y = np.zeros(6, dtype=int)
    t.loss_gradient(X6, y, loss="dlr")  # three classes are enough for DLR
    with pytest.raises(InvalidParameterError, match="at least 4 classes"):
        t.loss_gradient(X6, y, loss="dlr-targeted", target_class=y + 1)


def test_target_class_is_checked_before_any_query():
    t = TorchTarget(mlp())
    y = np.zeros(6, dtype=int)
    cases = [
        ({"loss": "dlr-targeted"}, InvalidParameterError, "needs target_class"),
        ({"loss": "ce", "target_class": y + 1}, InvalidParameterError, "only used by"),
        ({"loss": "margin-targeted", "target_class": y}, InvalidParameterError, "equals the true"),
        ({"loss": "margin-targeted", "target_class": y + 7}, IncompatibleModelError, r"\[0, 5\)"),
        ({"loss": "margin-targeted", "target_class": [1, 2]}, Exception, "target classes"),
        ({"loss": "hinge"}, InvalidParameterError, "loss must be one of"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            t.loss_gradient(X6, y, **kwargs)
    assert t.n_queries == 0


def test_batching_gives_the_same_targeted_answers():
    m = mlp()
    big, small = TorchTarget(m), TorchTarget(m, batch_size=4)
    y = np.arange(6) % 5
    tc = targets_for(y, 5)
    for loss in ("dlr-targeted", "ce-targeted"):
        v1, g1 = big.loss_gradient(X6, y, loss=loss, target_class=tc)
        v2, g2 = small.loss_gradient(X6, y, loss=loss, target_class=tc)
        np.testing.assert_allclose(v1, v2, atol=1e-6)
        np.testing.assert_allclose(g1, g2, atol=1e-6)


# ------------------------------------------------------------- numpy reference
@pytest.mark.parametrize("loss", LOSSES)
def test_softmax_target_gradients_match_finite_differences(loss):
    rng = np.random.default_rng(1)
    target = SoftmaxTarget(W=rng.normal(size=(3, 5)), b=rng.normal(size=5))
    x = rng.normal(size=(4, 3))
    y = np.array([0, 1, 2, 4])
    tc = targets_for(y, 5) if loss in TARGETED_LOSSES else None
    value, grad = target.loss_gradient(x, y, loss=loss, target_class=tc)

    def ref(xx, rows):
        z = xx @ target.W + target.b
        return loss_from_logits(z, y[rows], loss, None if tc is None else tc[rows])[0]

    np.testing.assert_allclose(value, ref(x, np.arange(4)))
    np.testing.assert_allclose(grad, finite_differences(ref, x), rtol=1e-5, atol=1e-7)


@settings(max_examples=30, deadline=None)
@given(
    scale=st.floats(0.1, 10.0),
    shift=st.floats(-5.0, 5.0),
    seed=st.integers(0, 2**16),
)
def test_dlr_is_invariant_to_shifting_and_scaling_the_logits(scale, shift, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(5, 6)) * 3
    y = rng.integers(0, 6, size=5)
    tc = (y + 1 + rng.integers(0, 5, size=5)) % 6
    for loss, t in (("dlr", None), ("dlr-targeted", tc)):
        a, _ = loss_from_logits(z, y, loss, t)
        b, _ = loss_from_logits(scale * z + shift, y, loss, t)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
