"""DP-SGD through Opacus: the façade returns Opacus's objects, epsilons equal Opacus's
accountants, configuration findings (MLW-PRI-004) pass and fail with evidence."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*torch.jit.*:DeprecationWarning",
    "ignore:.*[Ss]ecure RNG.*:UserWarning",
    "ignore:.*Full backward hook.*:UserWarning",
    "ignore:.*Optimal order.*:UserWarning",
)

from opacus import GradSampleModule, PrivacyEngine  # noqa: E402
from opacus.accountants import PRVAccountant, RDPAccountant  # noqa: E402
from opacus.data_loader import DPDataLoader  # noqa: E402
from opacus.optimizers import DPOptimizer  # noqa: E402
from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler  # noqa: E402

from mlwarden.data import fraud  # noqa: E402
from mlwarden.exceptions import CapabilityError, InvalidParameterError  # noqa: E402
from mlwarden.models._torch_nets import mlp_classifier  # noqa: E402
from mlwarden.models.torch import TorchTarget, load_torchscript, save_torchscript  # noqa: E402
from mlwarden.privacy.dp import (  # noqa: E402
    choose_grad_sample_mode,
    delta_finding,
    dp_config_findings,
    eager_module,
    epsilon,
    epsilon_finding,
    make_private,
    sampling_finding,
    train_private,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _loader(n: int = 200, batch_size: int = 20, **kw):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=g)
    y = (x[:, 0] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, generator=g, **kw)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))


def _run(priv, steps: int = 3) -> None:
    crit = priv.criterion or nn.CrossEntropyLoss()
    it = iter(priv.data_loader)
    for _ in range(steps):
        xb, yb = next(it)
        priv.optimizer.zero_grad()
        crit(priv.module(xb), yb).backward()
        priv.optimizer.step()


def test_make_private_returns_opacus_objects():
    module = _mlp()
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    priv = make_private(
        module=module, optimizer=opt, data_loader=_loader(), noise_multiplier=1.0,
        max_grad_norm=1.0, noise_generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    assert isinstance(priv.module, GradSampleModule)
    assert priv.module._module is module
    assert isinstance(priv.optimizer, DPOptimizer)
    assert priv.optimizer.original_optimizer is opt
    assert isinstance(priv.data_loader, DPDataLoader)
    assert isinstance(priv.engine, PrivacyEngine)
    assert priv.grad_sample_mode == "hooks"  # small MLP: hooks beat ghost clipping
    assert priv.sample_rate == pytest.approx(0.1)
    _run(priv)
    assert priv.engine.accountant.history == [(1.0, 0.1, 3)]


def test_ghost_clipping_wraps_the_criterion():
    module = _mlp()
    priv = make_private(
        module=module, optimizer=torch.optim.SGD(module.parameters(), lr=0.1),
        data_loader=_loader(), noise_multiplier=1.0, grad_sample_mode="ghost",
        criterion=nn.CrossEntropyLoss(),
    )  # fmt: skip
    assert isinstance(priv.criterion, DPLossFastGradientClipping)
    before = [p.detach().clone() for p in module.parameters()]
    _run(priv, steps=2)
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))
    assert choose_grad_sample_mode(module, criterion=nn.CrossEntropyLoss()) == "ghost"
    assert choose_grad_sample_mode(module, criterion=None) == "hooks"
    assert choose_grad_sample_mode(module, criterion=nn.CrossEntropyLoss(), batch_size=8) == (
        "hooks"
    )


@pytest.mark.parametrize("mechanism", ["prv", "rdp"])
def test_epsilon_equals_opacus_accountants(mechanism: str):
    module = _mlp()
    priv = make_private(
        module=module, optimizer=torch.optim.SGD(module.parameters(), lr=0.1),
        data_loader=_loader(), noise_multiplier=0.8, accountant=mechanism,
    )  # fmt: skip
    _run(priv, steps=5)
    delta = 1e-5
    rep = epsilon(priv.engine, delta)
    assert rep.steps == 5
    assert rep.history == ((0.8, 0.1, 5),)
    own = priv.engine.get_epsilon(delta)
    assert getattr(rep, mechanism) == pytest.approx(own, abs=1e-9)
    fresh_prv, fresh_rdp = PRVAccountant(), RDPAccountant()
    fresh_prv.history = list(priv.engine.accountant.history)
    fresh_rdp.history = list(priv.engine.accountant.history)
    assert rep.prv == pytest.approx(fresh_prv.get_epsilon(delta), abs=1e-9)
    assert rep.rdp == pytest.approx(fresh_rdp.get_epsilon(delta), abs=1e-9)
    assert rep.prv < rep.rdp  # PRV accounting is tighter
    assert epsilon(rep.history, delta) == rep
    assert priv.epsilon(delta) == rep


def test_epsilon_empty_history_and_bad_input():
    assert epsilon([], 1e-5).rdp == 0.0
    with pytest.raises(InvalidParameterError, match="delta"):
        epsilon([], 0.0)
    with pytest.raises(InvalidParameterError, match="engine_or_history"):
        epsilon(object(), 1e-5)


def test_batchnorm_refused_with_clear_error_or_fixed():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    named = r"layers DP-SGD cannot train: 1 \(BatchNorm1d\): BatchNorm cannot.*fix=True"
    with pytest.raises(InvalidParameterError, match=named):
        make_private(module=module, optimizer=opt, data_loader=_loader(), noise_multiplier=1.0)
    priv = make_private(
        module=module, optimizer=opt, data_loader=_loader(), noise_multiplier=1.0, fix=True
    )
    assert not any(isinstance(m, nn.BatchNorm1d) for m in priv.module.modules())
    assert isinstance(priv.optimizer.original_optimizer, torch.optim.SGD)
    _run(priv, steps=1)


def test_bad_parameters_fail_before_work():
    module = _mlp()
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    with pytest.raises(InvalidParameterError, match="exactly one"):
        make_private(module=module, optimizer=opt, data_loader=_loader())
    with pytest.raises(InvalidParameterError, match="epochs"):
        make_private(module=module, optimizer=opt, data_loader=_loader(), target_epsilon=1.0)
    with pytest.raises(InvalidParameterError, match="accountant"):
        make_private(
            module=module, optimizer=opt, data_loader=_loader(), noise_multiplier=1.0,
            accountant="gdp",
        )  # fmt: skip
    with pytest.raises(InvalidParameterError, match="criterion"):
        make_private(
            module=module, optimizer=opt, data_loader=_loader(), noise_multiplier=1.0,
            grad_sample_mode="ghost",
        )  # fmt: skip
    data = fraud(100, random_state=0)
    for bad in (-1.0, float("nan"), 0.0):
        with pytest.raises(InvalidParameterError, match="epsilon"):
            train_private(
                module, data, epsilon=bad, epochs=1, batch_size=10, lr=1e-3, max_grad_norm=1.0
            )


def test_torchscript_rebuilt_as_eager(tmp_path):
    data = fraud(100, random_state=0)
    mlp = mlp_classifier(data.X, 2, hidden=(8,))
    path = save_torchscript(mlp, tmp_path / "m.pt", classes=[0, 1])
    scripted = load_torchscript(path).module
    opt = torch.optim.SGD(scripted.parameters(), lr=0.1)
    with pytest.raises(CapabilityError, match="TorchScript"):
        make_private(module=scripted, optimizer=opt, data_loader=_loader(), noise_multiplier=1)
    eager = eager_module(scripted, (data.n_features,))
    assert not isinstance(eager, torch.jit.ScriptModule)
    x = torch.as_tensor(data.X[:7], dtype=torch.float32)
    with torch.no_grad():
        assert torch.allclose(eager(x), scripted(x), atol=1e-5)


def test_config_findings_pass_and_fail():
    assert epsilon_finding(7.9).passed
    fail = epsilon_finding(8.5, delta=1e-5, accountant="prv")
    assert not fail.passed and fail.rule_id == "MLW-PRI-004"
    assert fail.evidence["epsilon"] == 8.5 and fail.threshold == 8.0
    assert not epsilon_finding(2.0, max_epsilon=1.0).passed

    assert delta_finding(1e-4, 1000).passed
    at = delta_finding(1e-3, 1000)  # delta == 1 / n fails
    assert not at.passed and at.value == pytest.approx(1.0)
    assert at.evidence["n_samples"] == 1000

    loader = _loader()
    module = _mlp()
    priv = make_private(
        module=module, optimizer=torch.optim.SGD(module.parameters(), lr=0.1),
        data_loader=loader, noise_multiplier=1.0,
    )  # fmt: skip
    assert sampling_finding(priv.data_loader).passed
    assert sampling_finding(loader, poisson_sampling=True).passed  # Opacus will replace it
    shuffled = _loader(shuffle=True)
    no_poisson = sampling_finding(shuffled, poisson_sampling=False)
    assert not no_poisson.passed and "poisson_sampling=False" in no_poisson.description
    weighted = _loader(sampler=WeightedRandomSampler(np.ones(200) / 200, 200))
    f = sampling_finding(weighted)
    assert not f.passed and f.evidence["sampler"] == "WeightedRandomSampler"
    assert "WeightedRandomSampler" in f.description

    all3 = dp_config_findings(epsilon_value=3.0, delta=1e-5, n_samples=500, data_loader=weighted)
    assert [x.passed for x in all3] == [True, False, True]
    assert {x.rule_id for x in all3} == {"MLW-PRI-004"}


@pytest.mark.slow
def test_train_private_on_tiny_fraud(record_property):
    data = fraud(400, random_state=1)
    mlp = mlp_classifier(data.X, 2, hidden=(16,))
    target = TorchTarget(mlp, classes=[0, 1])
    before = [p.detach().clone() for p in mlp.parameters()]
    start = time.perf_counter()
    res = train_private(
        target, data, epsilon=4.0, delta=1e-4, epochs=2, batch_size=50, lr=1e-2,
        max_grad_norm=1.0, class_weight="balanced", accountant="rdp",
        measure_baseline=True, random_state=0,
    )  # fmt: skip
    total = time.perf_counter() - start
    assert all(torch.equal(a, b) for a, b in zip(before, mlp.parameters(), strict=True))
    assert isinstance(res.model, TorchTarget)
    assert res.epsilon_rdp <= 4.0 + 0.05  # calibrated with RDP
    assert res.epsilon_prv < res.epsilon_rdp
    assert res.delta == 1e-4 and res.steps == 16 and res.sample_rate == pytest.approx(0.125)
    assert res.noise_multiplier > 0
    assert res.grad_sample_mode == "hooks"
    assert res.seconds_per_epoch > 0 and res.baseline_seconds_per_epoch is not None
    preds = res.model.predict(data.X)
    assert set(np.unique(preds)) <= {0, 1}
    # Record, do not assert, the DP overhead (tiny batches on one thread).
    record_property("dp_seconds_per_epoch", res.seconds_per_epoch)
    record_property("nonprivate_seconds_per_epoch", res.baseline_seconds_per_epoch)
    record_property("train_private_total_seconds", total)


def test_balanced_classes_by_logit_adjustment():
    from mlwarden.privacy.dp import _shift_last_bias

    log_w = np.log([0.5, 5.0])
    multi = nn.Sequential(nn.Linear(3, 2))
    b = multi[0].bias.detach().clone()
    _shift_last_bias(multi, log_w, binary=False)
    assert torch.allclose(multi[0].bias, b + torch.as_tensor(log_w, dtype=torch.float32))
    single = nn.Sequential(nn.Linear(3, 1))
    b = single[0].bias.detach().clone()
    _shift_last_bias(single, log_w, binary=True)
    assert single[0].bias.item() == pytest.approx(b.item() + math.log(10.0), abs=1e-6)


def test_dp_training_starts_from_fresh_weights_unless_told_they_are_public():
    # Weights already trained on the same rows without DP would carry their leakage past
    # the accountant: by default they are re-initialised.
    data = fraud(300, random_state=3)
    module = mlp_classifier(data.X, 2, hidden=(8,))
    start = [p.detach().clone() for p in module.parameters()]
    kw = dict(epsilon=8.0, epochs=1, batch_size=30, lr=1e-9, max_grad_norm=1.0)
    kept = train_private(module, data, initial_weights="keep", **kw)
    fresh = train_private(module, data, **kw)
    for a, b in zip(start, kept.model.parameters(), strict=True):
        assert torch.allclose(a, b.detach(), atol=1e-5)  # lr ~ 0: the weights it kept
    moved = [not torch.allclose(a, c.detach(), atol=1e-3) for a, c in
             zip(start, fresh.model.parameters(), strict=True)]  # fmt: skip
    assert any(moved)
    assert fresh.provenance(n_samples=300)["initial_weights"] == "reset"
    assert kept.provenance(n_samples=300)["initial_weights"] == "keep"
    with pytest.raises(InvalidParameterError, match="initial_weights"):
        train_private(module, data, initial_weights="warm", **kw)
