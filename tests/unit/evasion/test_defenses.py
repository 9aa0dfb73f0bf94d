"""Evasion defenses: adversarial training (PGD, TRADES) and randomized smoothing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from tests.helpers import SoftmaxTarget, linear_problem

import mlwarden
from mlwarden import _registry
from mlwarden.audit.check import Check, CheckResult
from mlwarden.audit.runner import resolve_checks
from mlwarden.data import Dataset, Feature, FeatureKind, FeatureSchema
from mlwarden.evasion.defenses import (
    ABSTAIN,
    SmoothedTarget,
    certify,
    clopper_pearson_lower,
    predict_smoothed,
)
from mlwarden.evasion.defenses.smoothing import binomial_test_half
from mlwarden.evasion.pgd import PGD
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.exceptions import CapabilityError, DataError, InvalidParameterError
from mlwarden.findings.taxonomy import ThreatFamily
from mlwarden.models import CallableTarget
from mlwarden.models.base import Capability

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")

from mlwarden.evasion.defenses import adversarial_training  # noqa: E402
from mlwarden.evasion.defenses.adversarial_training import pgd_examples  # noqa: E402
from mlwarden.evasion.defenses.trades import trades_examples  # noqa: E402
from mlwarden.models._torch_nets import mlp_classifier, train_classifier  # noqa: E402
from mlwarden.models.torch import TorchTarget  # noqa: E402

EPS = 0.5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: on tiny batches, thread start-up and spinning on a busy machine
    cost far more than the arithmetic."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ fixtures
def robust_vs_useful(n: int, seed: int) -> Dataset:
    """One robust feature (margin 1, noise 0.35) and eight weak ones an attacker can flip.

    Standard training leans on the weak features (each moves more than their class
    separation under eps=0.5); a robust model must rely on the first one. A binary
    feature and an immutable one (pure noise) complete the threat model.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = 2.0 * y - 1.0
    X = np.column_stack(
        [
            s + rng.normal(0, 0.35, n),
            s[:, None] * 0.35 + rng.normal(0, 1, (n, 8)),
            rng.integers(0, 2, n).astype(float),
            rng.normal(0, 1, n),
        ]
    )
    features = (
        Feature("robust", lower=-4, upper=4),
        *(Feature(f"weak{i}", lower=-5, upper=5) for i in range(8)),
        Feature("flag", FeatureKind.BINARY),
        Feature("history", lower=-5, upper=5, mutable=False),
    )
    return Dataset(X, y, FeatureSchema(features), name="synthetic")


@pytest.fixture(scope="module")
def split() -> tuple[Dataset, Dataset]:
    return robust_vs_useful(400, 0), robust_vs_useful(300, 1)


def fresh_mlp(train: Dataset) -> torch.nn.Module:
    torch.manual_seed(0)
    return mlp_classifier(train.X, 2, hidden=(32,))


def clean_and_robust(module: torch.nn.Module, test: Dataset) -> tuple[float, float]:
    target = TorchTarget(module)
    y = np.asarray(test.y)
    correct = target.predict(test.X) == y
    res = PGD(eps=EPS, steps=20).generate(target, test.X, y, schema=test.schema, random_state=0)
    return float(correct.mean()), float((correct & ~res.success).mean())


@pytest.fixture(scope="module")
def standard(split) -> tuple[float, float]:
    train, test = split
    model = train_classifier(
        fresh_mlp(train), train.X, np.asarray(train.y), epochs=10, batch_size=64, lr=3e-3
    )
    return clean_and_robust(model, test)


TRAINING = {"epochs": 10, "steps": 5, "batch_size": 64, "lr": 3e-3, "random_state": 0}


# ------------------------------------------------------ adversarial training
@pytest.mark.parametrize("method", ["pgd", "trades"])
def test_adversarial_training_raises_robust_accuracy(split, standard, method):
    train, test = split
    model = adversarial_training(fresh_mlp(train), train, eps=EPS, method=method, **TRAINING)
    clean, robust = clean_and_robust(model, test)
    std_clean, std_robust = standard
    assert std_robust < 0.6  # the baseline really is fragile
    assert robust >= std_robust + 0.2, (method, robust, std_robust)
    assert clean >= std_clean - 0.05


def test_training_is_deterministic_and_leaves_the_input_alone(split):
    train, _ = split
    model = fresh_mlp(train)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs = {**TRAINING, "epochs": 2}
    a = adversarial_training(model, train, eps=EPS, **kwargs)
    b = adversarial_training(model, train, eps=EPS, **kwargs)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
        torch.testing.assert_close(a.state_dict()[key], b.state_dict()[key], rtol=0, atol=0)
    assert not torch.equal(a.state_dict()["1.weight"], before["1.weight"])
    assert not a.training


def test_a_target_comes_back_as_a_target_with_its_metadata(split):
    train, _ = split
    source = TorchTarget(
        fresh_mlp(train), classes=["legit", "fraud"], feature_names=train.feature_names, name="m"
    )
    labelled = Dataset(train.X, np.where(train.y == 1, "fraud", "legit"), train.schema)
    hardened = adversarial_training(source, labelled, eps=EPS, **{**TRAINING, "epochs": 1})
    assert isinstance(hardened, TorchTarget) and hardened is not source
    assert hardened.module is not source.module
    assert hardened.classes.tolist() == ["legit", "fraud"]
    assert hardened.input_spec.feature_names == source.input_spec.feature_names
    assert hardened.name == "m-hardened"


def test_a_torchscript_module_can_be_fine_tuned(split):
    train, _ = split
    traced = torch.jit.trace(fresh_mlp(train), torch.zeros(1, train.n_features))
    source = TorchTarget(traced, input_shape=(train.n_features,))
    out = adversarial_training(source, train, eps=EPS, **{**TRAINING, "epochs": 1})
    assert isinstance(out.module, torch.jit.ScriptModule)
    assert all(p.is_leaf for p in out.module.parameters())
    assert not torch.equal(out.module.state_dict()["1.weight"], traced.state_dict()["1.weight"])


@pytest.mark.parametrize("categorical", ["free", "fixed"])
def test_inner_examples_stay_in_the_threat_model(split, categorical):
    train, _ = split
    x, y = train.X[:64], np.asarray(train.y[:64])
    pset = PerturbationSet.build(x, EPS, train.schema, categorical=categorical)
    forward = TorchTarget(fresh_mlp(train))._scores
    args = [torch.as_tensor(a, dtype=torch.float32) for a in (x, pset.lower, pset.upper)]
    alpha = torch.full((x.shape[1],), 0.3)
    gen = torch.Generator().manual_seed(0)
    pgd = pgd_examples(
        forward, args[0], torch.as_tensor(y), args[1], args[2], alpha, steps=5, generator=gen
    )
    trades = trades_examples(forward, args[0], args[1], args[2], alpha, steps=5, generator=gen)
    for adv in (pgd.double().numpy(), trades.double().numpy()):
        assert np.all(adv >= pset.lower - 1e-6) and np.all(adv <= pset.upper + 1e-6)
        np.testing.assert_array_equal(adv[:, -1], x[:, -1].astype(np.float32))  # immutable
        moved = np.abs(adv - x).max(axis=0)
        assert np.all(moved[:9] <= EPS + 1e-6)
        if categorical == "fixed":
            np.testing.assert_array_equal(adv[:, 9], x[:, 9])


def test_bad_parameters_fail_before_training(split):
    train, _ = split
    model = fresh_mlp(train)
    for bad in ({"eps": 0.0}, {"eps": EPS, "method": "fgsm"}, {"eps": EPS, "epochs": 0},
                {"eps": EPS, "class_weight": "auto"}, {"eps": EPS, "beta": -1.0}):  # fmt: skip
        with pytest.raises(InvalidParameterError):
            adversarial_training(model, train, **bad)
    with pytest.raises(CapabilityError, match="PyTorch"):
        adversarial_training(SoftmaxTarget(W=np.ones((11, 2))), train, eps=EPS)
    with pytest.raises(DataError):
        adversarial_training(model, Dataset(train.X, None, train.schema), eps=EPS)


# ------------------------------------------------------------------ smoothing
def random_labels(n_features: int, n_classes: int = 2) -> CallableTarget:
    rng = np.random.default_rng(0)
    return CallableTarget(
        lambda x: rng.integers(0, n_classes, len(x)),
        n_features=n_features,
        n_classes=n_classes,
        output="labels",
    )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_random_classifier_gets_no_certificate(n_classes):
    x = np.zeros((20, 4))
    cert = certify(random_labels(4, n_classes), x, sigma=0.5, n0=50, n=500, random_state=0)
    assert np.all(cert.prediction == ABSTAIN)
    assert np.all(cert.radius == 0)
    assert cert.certified_accuracy(np.zeros(20, dtype=int)) == 0.0
    pred = predict_smoothed(random_labels(4, n_classes), x, sigma=0.5, n=500, random_state=0)
    assert np.mean(pred == ABSTAIN) >= 0.95


def test_a_confident_linear_model_gets_a_sound_positive_radius():
    target, data = linear_problem(n=200)
    schema, sigma = data.schema, 0.5
    y = target.encode_labels(data.y)
    cert = certify(target, data.X, sigma=sigma, n=2000, schema=schema, random_state=0)
    # Exact L2 distance to the boundary in scale units, over the noised (mutable) features.
    w = target.W[:, 1] - target.W[:, 0]
    margin = data.X @ w + (target.b[1] - target.b[0])
    w_scaled = np.where(schema.mutable, w * schema.scale, 0.0)
    distance = np.abs(margin) / np.linalg.norm(w_scaled)
    certified = ~cert.abstained
    assert certified.mean() > 0.7
    # Sound: never beyond the true distance, and predicting the model's own class.
    assert np.all(cert.radius[certified] <= distance[certified] + 1e-9)
    assert np.all(cert.prediction[certified] == (margin[certified] > 0))
    # Tight: far rows reach the cap sigma * Phi^-1(alpha^(1/n)) set by the sample size.
    cap = sigma * stats.norm.ppf(0.001 ** (1 / 2000))
    far = distance > 2 * cap
    assert far.any()
    np.testing.assert_allclose(cert.radius[far], cap, rtol=1e-9)
    assert cert.certified_accuracy(y) > 0.7
    assert cert.certified_accuracy(y, radius=cap) <= cert.certified_accuracy(y, radius=0.1)


def test_clopper_pearson_matches_scipy():
    for n in (1, 10, 100, 1000):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for alpha in (0.001, 0.05):
                ours = clopper_pearson_lower(k, n, alpha)
                assert ours == pytest.approx(stats.beta.ppf(alpha, k, n - k + 1) if k else 0.0)
                # Independent: scipy's exact two-sided interval at level 1 - 2 alpha.
                ci = stats.binomtest(k, n).proportion_ci(1 - 2 * alpha, method="exact")
                assert ours == pytest.approx(ci.low, abs=1e-9)
                if k:  # the defining property: P(Bin(n, p_low) >= k) = alpha
                    assert stats.binom.sf(k - 1, n, ours) == pytest.approx(alpha, rel=1e-6)


def test_binomial_test_matches_scipy():
    for a, b in [(0, 0), (5, 5), (9, 1), (60, 40), (100, 0), (3, 7)]:
        expected = stats.binomtest(a, a + b, 0.5).pvalue if a + b else 1.0
        assert binomial_test_half(a, b) == pytest.approx(expected, rel=1e-9)


def test_certify_checks_its_parameters():
    target, data = linear_problem(n=10)
    for bad in ({"sigma": 0}, {"sigma": 1, "alpha": 1.0}, {"sigma": 1, "n": 0}):
        with pytest.raises(InvalidParameterError):
            certify(target, data.X, **bad)
    target.caps = Capability.NONE
    with pytest.raises(CapabilityError):
        certify(target, data.X, sigma=1.0)


class AccuracyCheck(Check):
    """A label-only check, as a decision-based attack would be."""

    family = ThreatFamily.EVASION
    requires = Capability.LABELS
    summary = "accuracy"

    def __init__(self) -> None:
        pass

    def run(self, target, data, *, random_state, progress=None):
        y = target.encode_labels(data.labels)
        return CheckResult(metrics={"accuracy": float(np.mean(target.predict(data.X) == y))})


def test_smoothed_target_is_a_deterministic_label_only_target():
    target, data = linear_problem(n=120)
    smoothed = SmoothedTarget(target, sigma=0.25, n_samples=200, schema=data.schema)
    assert smoothed.capabilities == Capability.LABELS
    assert smoothed.kind == "smoothed" and smoothed.name == f"{target.name}-smoothed"
    q0 = target.n_queries
    first = smoothed.predict(data.X)
    assert target.n_queries - q0 == 200 * len(data.X)
    np.testing.assert_array_equal(first, smoothed.predict(data.X))
    assert np.mean(first == target.predict(data.X)) > 0.9
    with pytest.raises(CapabilityError):
        smoothed.predict_proba(data.X)


def test_the_audit_runs_only_label_based_checks_on_a_smoothed_target():
    target, data = linear_problem(n=60)
    smoothed = SmoothedTarget(target, sigma=0.25, n_samples=20, schema=data.schema)
    small = {"max_samples": 4, "eps": 0.25, "eps_grid": (0.25,)}
    params = {
        name: {k: v for k, v in small.items() if k in _registry.get("check", name)._param_names()}
        for name in mlwarden.available_checks("evasion")
    }
    checks = resolve_checks("evasion", params)
    report = mlwarden.audit(smoothed, data, checks=[AccuracyCheck(), *checks])
    assert not report.errors, report.errors
    skipped = {s["check"]: s["reason"] for s in report.skipped}
    # The gradient (white-box) check is skipped; label-only checks all run.
    assert any("gradients" in reason for reason in skipped.values()), skipped
    assert set(skipped) == {c.id for c in checks if c.skip_reason(smoothed, data) is not None}
    ran = {c for metrics in report.metrics.values() for c in metrics}
    assert ran == {"AccuracyCheck"} | ({c.id for c in checks} - set(skipped))
    assert report.targets[0]["smoothing"]["sigma"] == 0.25


def test_smoothing_wraps_a_torch_module():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 2))
    x = np.random.default_rng(0).normal(size=(5, 3))
    cert = certify(module, x, sigma=0.1, n0=20, n=200, random_state=0)
    assert cert.prediction.shape == (5,)
    assert SmoothedTarget(module, sigma=0.1, n_samples=10).predict(x).shape == (5,)
