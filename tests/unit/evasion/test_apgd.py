"""APGD: exact answers on a linear model, strength against PGD, losses, binary models."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from tests.helpers import SoftmaxTarget, linear_problem
from tests.unit.evasion.test_attacks import exact_linear_robust

from mlwarden.evasion.apgd import APGD, resolve_loss
from mlwarden.evasion.pgd import PGD
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.exceptions import CapabilityError, InvalidParameterError
from mlwarden.models.base import Capability

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from mlwarden.models.torch import TorchTarget  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: on tiny batches, thread start-up and spinning on a busy machine
    cost far more than the arithmetic."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def problem():
    target, data = linear_problem(n=300)
    y = target.encode_labels(data.y)
    correct = target.predict(data.X) == y
    return target, data, data.X[correct], y[correct]


class Scaled(nn.Module):
    """Multiplies the logits: the same decisions, a saturated cross-entropy."""

    def __init__(self, module: nn.Module, factor: float) -> None:
        super().__init__()
        self.module, self.factor = module, factor

    def forward(self, x):
        return self.module(x) * self.factor


@pytest.fixture(scope="module")
def digits_mlp():
    """A 64-32-10 ReLU MLP on scikit-learn's digits in [0, 1], trained in ~0.1 s."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    xt = torch.tensor(X[:600], dtype=torch.float32)
    yt = torch.tensor(y[:600])
    params = list(m.parameters())
    velocity = [torch.zeros_like(p) for p in params]
    for _ in range(100):  # plain momentum SGD: no optimizer import cost
        grads = torch.autograd.grad(nn.functional.cross_entropy(m(xt), yt), params)
        with torch.no_grad():
            for p, v, g in zip(params, velocity, grads, strict=True):
                v.mul_(0.9).add_(g)
                p.sub_(0.1 * v)
    target = TorchTarget(m, lower=0.0, upper=1.0)
    x, y_test = X[1000:1150], y[1000:1150]
    keep = target.predict(x) == y_test
    return m, x[keep], y_test[keep]


# --------------------------------------------------------------- exact answers
@pytest.mark.parametrize("loss", ["ce", "auto", "margin-targeted"])
@pytest.mark.parametrize("eps", [0.1, 0.3, 0.6])
def test_apgd_reaches_the_exact_optimum_on_a_linear_model(problem, eps, loss):
    target, data, x, y = problem
    pset = PerturbationSet.build(x, eps, data.schema)
    truth = exact_linear_robust(target, pset, y)
    res = APGD(eps=eps, steps=20, loss=loss).generate(
        target, x, y, schema=data.schema, random_state=0
    )
    assert not np.any(res.success & truth)  # never beats the optimum: all feasible
    assert res.success[~truth].mean() >= 0.98
    assert res.infeasible == 0
    assert pset.contains(res.x_adv).all()


# ---------------------------------------------------------------- strength
def test_apgd_is_at_least_as_strong_as_pgd_with_the_same_budget(digits_mlp):
    m, x, y = digits_mlp
    target = TorchTarget(m, lower=0.0, upper=1.0)
    eps = 0.08
    pgd = PGD(eps=eps, steps=20).generate(target, x, y, random_state=0)
    apgd = APGD(eps=eps, steps=20).generate(target, x, y, random_state=0)
    robust_pgd, robust_apgd = 1 - pgd.success.mean(), 1 - apgd.success.mean()
    assert 0.2 < robust_pgd < 0.9  # a budget where the comparison means something
    assert robust_apgd <= robust_pgd + 0.02
    assert apgd.queries.max() <= 2 + 2 * 20 + 1


def test_dlr_beats_a_saturated_cross_entropy(digits_mlp):
    """Logits x100: CE gradients vanish in float32 and PGD-CE stalls; DLR is scale-free."""
    m, x, y = digits_mlp
    plain = TorchTarget(m, lower=0.0, upper=1.0)
    scaled = TorchTarget(Scaled(m, 100.0), lower=0.0, upper=1.0)
    eps = 0.08
    pgd_ce = PGD(eps=eps, steps=20).generate(scaled, x, y, random_state=0)
    apgd_dlr = APGD(eps=eps, steps=20, loss="auto").generate(scaled, x, y, random_state=0)
    apgd_plain = APGD(eps=eps, steps=20, loss="auto").generate(plain, x, y, random_state=0)
    assert apgd_dlr.success.mean() > pgd_ce.success.mean() + 0.2
    # DLR is invariant to scaling the logits: the same rows fall either way.
    assert abs(apgd_dlr.success.mean() - apgd_plain.success.mean()) <= 0.02


def test_targeted_dlr_on_ten_classes(digits_mlp):
    m, x, y = digits_mlp
    x, y = x[:40], y[:40]
    target = TorchTarget(m, lower=0.0, upper=1.0)
    q0 = target.n_queries
    res = APGD(eps=0.08, steps=10, loss="dlr-targeted", n_target_classes=3).generate(
        target, x, y, random_state=0
    )
    untargeted = APGD(eps=0.08, steps=10, loss="dlr").generate(target, x, y, random_state=0)
    assert res.success.mean() >= untargeted.success.mean() - 0.05
    # Per row: one prediction and one score query, then per target class 2 + 2 * steps.
    assert res.queries.max() <= 2 + 3 * (2 + 2 * 10)
    assert target.n_queries - q0 == res.queries.sum() + len(y) + untargeted.queries.sum() + len(y)


# ------------------------------------------------------------- binary models
def test_binary_models_use_the_margin_with_loss_auto(problem):
    _, data, x, _ = problem
    assert resolve_loss("auto", 2) == "margin"
    assert resolve_loss("auto", 3) == "dlr"
    assert resolve_loss("auto-targeted", 3) == "margin-targeted"
    assert resolve_loss("auto-targeted", 4) == "dlr-targeted"
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
    binary = TorchTarget(m)
    yb = binary.predict(x)
    for loss in ("auto", "auto-targeted", "margin", "ce"):
        res = APGD(eps=0.3, steps=10, loss=loss).generate(
            binary, x, yb, schema=data.schema, random_state=0
        )
        assert res.success.any() and res.infeasible == 0


@pytest.mark.parametrize("loss", ["dlr", "dlr-targeted"])
def test_dlr_on_a_binary_model_fails_before_any_query(problem, loss):
    target, data, x, y = problem
    q0 = target.n_queries
    with pytest.raises(InvalidParameterError, match=r"use 'margin"):
        APGD(eps=0.1, loss=loss).generate(target, x, y, schema=data.schema)
    assert target.n_queries == q0


# -------------------------------------------------------------- the rulebook
@pytest.mark.parametrize(
    "attack",
    [
        APGD(eps=-1),
        APGD(eps=float("inf")),
        APGD(eps=0.1, steps=0),
        APGD(eps=0.1, restarts=0),
        APGD(eps=0.1, loss="hinge"),
        APGD(eps=0.1, norm="l1"),
        APGD(eps=0.1, rho=0.0),
        APGD(eps=0.1, n_target_classes=0),
        APGD(eps=0.1, categorical="maybe"),
    ],
)
def test_bad_parameters_fail_before_any_query(problem, attack):
    target, data, x, y = problem
    q0 = target.n_queries
    with pytest.raises(InvalidParameterError):
        attack.generate(target, x, y, schema=data.schema)
    assert target.n_queries == q0


def test_targeted_losses_need_scores_and_gradients_before_any_query(problem):
    target, data, x, y = problem
    q0 = target.n_queries
    target.caps = Capability.LABELS | Capability.GRADIENTS
    with pytest.raises(CapabilityError, match="scores"):
        APGD(eps=0.1, loss="margin-targeted").generate(target, x, y, schema=data.schema)
    target.caps = Capability.LABELS | Capability.SCORES
    with pytest.raises(CapabilityError, match="gradients"):
        APGD(eps=0.1).generate(target, x, y, schema=data.schema)
    assert target.n_queries == q0


def test_same_seed_same_result(problem):
    target, data, x, y = problem
    a, b, c = (
        APGD(eps=0.2, steps=10).generate(target, x, y, schema=data.schema, random_state=s)
        for s in (5, 5, 6)
    )
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.queries, b.queries)
    assert not np.array_equal(a.x_adv, c.x_adv)


def test_misclassified_rows_cost_one_query_and_queries_are_counted(problem):
    target, data, x, y = problem
    q0 = target.n_queries
    y_wrong = 1 - y[:10]
    res = APGD(eps=0.2, steps=10).generate(target, x[:10], y_wrong, schema=data.schema)
    assert res.success.all()
    np.testing.assert_array_equal(res.queries, 1)
    np.testing.assert_array_equal(res.x_adv, x[:10])
    res = APGD(eps=0.2, steps=10, restarts=3).generate(
        target, x, y, schema=data.schema, random_state=0
    )
    assert target.n_queries - q0 == 10 + 10 + res.queries.sum() + len(y)


def test_init_only_stores_parameters():
    attack = APGD(eps=-5, steps="many", loss="nonsense")  # type: ignore[arg-type]
    assert attack.get_params()["steps"] == "many"
    assert attack.get_params()["loss"] == "nonsense"


def test_three_class_softmax_caps_the_target_classes():
    rng = np.random.default_rng(0)
    target = SoftmaxTarget(W=rng.normal(size=(4, 3)), b=np.zeros(3))
    x = rng.normal(size=(30, 4))
    y = target.predict(x)
    res = APGD(eps=0.2, steps=5, loss="auto-targeted", n_target_classes=9).generate(
        target, x, y, random_state=0
    )
    # Two other classes at most, each run costs 2 + 2 * steps queries per row.
    assert res.queries.max() <= 2 + 2 * (2 + 2 * 5)


def test_target_patience_stops_going_down_the_ranking(digits_mlp):
    m, x, y = digits_mlp
    target = TorchTarget(m, lower=0.0, upper=1.0)
    ok = target.predict(x[:40]) == y[:40]
    x, y = x[:40][ok], y[:40][ok]
    # At this budget no target class fools the model on any row: every class is fruitless.
    kw = dict(eps=1e-4, steps=5, loss="dlr-targeted", n_target_classes=6)
    full = APGD(**kw).generate(target, x, y, random_state=0)
    patient = APGD(**kw, target_patience=2).generate(target, x, y, random_state=0)
    assert not full.success.any() and not patient.success.any()
    # Per row: a prediction and a score query, then per target class one query per
    # iterate (the gradient's forward pass also answers the prediction).
    np.testing.assert_array_equal(full.queries, 2 + 6 * (5 + 1))
    np.testing.assert_array_equal(patient.queries, 2 + 2 * (5 + 1))


def test_target_patience_is_validated(problem):
    target, _, x, y = problem
    with pytest.raises(InvalidParameterError, match="target_patience"):
        APGD(loss="margin-targeted", target_patience=0).generate(target, x, y)
