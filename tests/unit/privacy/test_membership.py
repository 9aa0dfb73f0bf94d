"""Membership-inference attacks: leaky vs. regularised models, loop oracles, errors."""

import json
import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlwarden.exceptions import CapabilityError, DataError, InvalidParameterError
from mlwarden.models.callable import CallableTarget
from mlwarden.models.sklearn import SklearnTarget
from mlwarden.privacy.membership import RMIA, LabelOnly, LiRA, LossThreshold, MembershipResult
from mlwarden.privacy.reference import MLPTrainer, ReferenceModels

FPRS = (0.1, 0.05, 0.01, 0.0)
LEAKY = MLPTrainer(hidden=(64,), epochs=100, lr=2e-2, batch_size=60)
SAFE = MLPTrainer(hidden=(4,), epochs=2, lr=1e-3, weight_decay=1e-2, batch_size=60)


def _population(seed=0):
    # Random labels: a model can only fit its training rows by memorising them. The
    # margins of the loss-threshold baseline at 5 % FPR are small (as Carlini et al.
    # report), so its strict orderings are checked at 10 % FPR; seeds are fixed.
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 6))
    y = (X[:, 0] > 0).astype(int)
    flip = rng.random(600) < 0.5
    y[flip] = 1 - y[flip]
    perm = rng.permutation(480)
    return X, y, perm[:240], perm[240:]  # rows 480..599 are population-only (RMIA's z)


@pytest.fixture(scope="module")
def setups():
    X, y, mem, non = _population()
    out = {}
    for name, trainer in (("leaky", LEAKY), ("safe", SAFE)):
        target = trainer(X[mem], y[mem], 123, n_classes=2)
        ref = ReferenceModels(n_models=8, trainer=trainer, random_state=0).fit(X, y)
        out[name] = (target, ref)
    return X, y, mem, non, out


ATTACKS = [
    LossThreshold(),
    LiRA(),
    LiRA(online=False),
    RMIA(),
    RMIA(online=False),
    LabelOnly(n_noise=20, noise_scale=0.3),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: f"{a.name}-{a.get_params()}")
def test_attack_finds_more_on_the_leaky_model(setups, attack):
    X, y, mem, non, models = setups
    res = {}
    for name, (target, ref) in models.items():
        res[name] = attack.infer(
            target, X, y, members=mem, nonmembers=non, reference=ref, fprs=FPRS, random_state=0
        )
    leaky, safe = res["leaky"].metrics, res["safe"].metrics
    assert leaky.auc > 0.65
    assert leaky.auc > safe.auc + 0.15
    assert safe.auc < 0.6
    if attack.name == "label-only":
        # Labels only: many records tie at "always correct", so low FPRs stay empty.
        assert leaky.tpr(0.1).tpr >= safe.tpr(0.1).tpr
    else:
        assert leaky.tpr(0.1).tpr > safe.tpr(0.1).tpr + 0.1
        assert leaky.tpr(0.05).tpr >= safe.tpr(0.05).tpr


def test_lira_beats_the_threshold_baseline_at_low_fpr(setups):
    X, y, mem, non, models = setups
    target, ref = models["leaky"]
    kw = {"members": mem, "nonmembers": non, "reference": ref, "fprs": FPRS}
    base = LossThreshold().infer(target, X, y, **kw).metrics
    # 240 non-members: 1 % FPR is two false positives, too noisy to order attacks by.
    for attack in (LiRA(), LiRA(online=False), RMIA()):
        m = attack.infer(target, X, y, **kw).metrics
        assert m.tpr(0.1).tpr >= base.tpr(0.1).tpr
        assert m.tpr(0.05).tpr >= base.tpr(0.05).tpr


def test_result_carries_assumptions_and_ranking(setups):
    X, y, mem, non, models = setups
    target, ref = models["leaky"]
    q0 = target.n_queries
    res = LiRA().infer(target, X, y, members=mem, nonmembers=non, reference=ref)
    assert isinstance(res, MembershipResult)
    assert res.n_queries == target.n_queries - q0 == 480
    assert res.assumptions == {
        "data_access": LiRA.data_access,
        "capability": "scores",
        "n_reference_models": 8,
        "mode": "online",
        "queries": 480,
    }
    rows, scores = res.risk_ranking(5)
    assert set(rows.tolist()) <= set(mem.tolist())
    assert np.all(np.diff(scores) <= 0)
    fpr, tpr = res.roc_points(20)
    assert len(fpr) == len(tpr) <= 20
    json.dumps(res.to_dict())


def test_rmia_scores_do_not_tie_at_one(setups):
    X, y, mem, non, models = setups
    target, ref = models["leaky"]
    res = RMIA().infer(target, X, y, members=mem, nonmembers=non, reference=ref)
    frac = res.extra["fraction"]
    assert (frac == 1.0).sum() > 1  # the paper's score ties ...
    top = res.scores[frac == 1.0]
    assert len(np.unique(top)) == len(top)  # ... the reported one does not
    # The ranking refines the fraction's and follows the likelihood ratio.
    order = np.argsort(res.scores)
    assert np.all(np.diff(frac[order]) >= 0)
    assert np.all(np.diff(res.extra["log_ratio"][order]) >= 0)


# ----------------------------------------------------------------------------- oracles
@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(28, 3))
    y = (X[:, 0] + rng.normal(scale=0.7, size=28) > 0).astype(int)
    ref = ReferenceModels(
        n_models=4, trainer=LogisticRegression(C=10.0), backend="sequential", random_state=1
    ).fit(X, y)
    target = SklearnTarget(LogisticRegression(C=10.0).fit(X[:10], y[:10]))
    return X, y, ref, target, np.arange(10), np.arange(10, 20)  # 20 records, rows 20.. are z


def _p_true(model, x, label):
    """Probability of the true class, from one query of one row."""
    return float(model.predict_proba(x[None, :])[0, label])


def _lira_loop(X, y, ref, target, rows, online, fix_variance):
    phis_in, phis_out, phi_t = [], [], []
    for i in rows:
        ins, outs = [], []
        for k, model in enumerate(ref.models_):
            p = _p_true(model, X[i], y[i])
            phi = math.log(p) - math.log(1 - p)
            (ins if ref.in_mask_[k, i] else outs).append(phi)
        phis_in.append(ins)
        phis_out.append(outs)
        p = _p_true(target, X[i], y[i])
        phi_t.append(math.log(p) - math.log(1 - p))

    def stats(groups):
        means = [sum(g) / len(g) for g in groups]
        var = [sum((v - m) ** 2 for v in g) / len(g) for g, m in zip(groups, means, strict=True)]
        if fix_variance:
            var = [sum(var) / len(var)] * len(var)
        return means, [max(math.sqrt(v), 1e-6) for v in var]

    def log_pdf(x, mu, sd):
        return -0.5 * math.log(2 * math.pi * sd * sd) - (x - mu) ** 2 / (2 * sd * sd)

    mu_out, sd_out = stats(phis_out)
    if not online:
        return [(f - m) / s for f, m, s in zip(phi_t, mu_out, sd_out, strict=True)]
    mu_in, sd_in = stats(phis_in)
    return [
        log_pdf(phi_t[j], mu_in[j], sd_in[j]) - log_pdf(phi_t[j], mu_out[j], sd_out[j])
        for j in range(len(rows))
    ]


@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("fix_variance", [True, False])
def test_lira_equals_loop_reference(tiny, online, fix_variance):
    X, y, ref, target, mem, non = tiny
    res = LiRA(online=online, fix_variance=fix_variance).infer(
        target, X, y, members=mem, nonmembers=non, reference=ref
    )
    expected = _lira_loop(X, y, ref, target, res.index, online, fix_variance)
    np.testing.assert_allclose(res.scores, expected, rtol=1e-9, atol=1e-9)


def _rmia_loop(X, y, ref, target, rows, online, gamma, a):
    z_rows = [j for j in range(len(X)) if j not in set(rows.tolist())]

    def pr(j):
        ps = [_p_true(m, X[j], y[j]) for m in ref.models_]
        if online:
            return sum(ps) / len(ps)
        outs = [p for k, p in enumerate(ps) if not ref.in_mask_[k, j]]
        return ((1 + a) * (sum(outs) / len(outs)) + (1 - a)) / 2

    def ratio(j):
        return _p_true(target, X[j], y[j]) / pr(j)

    lr_z = [ratio(j) for j in z_rows]
    fractions, logs = [], []
    for i in rows:
        r = ratio(i)
        fractions.append(sum(1 for rz in lr_z if r / rz >= gamma) / len(lr_z))
        logs.append(math.log(r))
    return fractions, logs


@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("gamma", [1.0, 2.0])
def test_rmia_equals_loop_reference(tiny, online, gamma):
    X, y, ref, target, mem, non = tiny
    res = RMIA(online=online, gamma=gamma, offline_a=0.4).infer(
        target, X, y, members=mem, nonmembers=non, reference=ref
    )
    fractions, logs = _rmia_loop(X, y, ref, target, res.index, online, gamma, 0.4)
    np.testing.assert_allclose(res.extra["fraction"], fractions, rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.extra["log_ratio"], logs, rtol=1e-9, atol=1e-9)
    # Reported score: the fraction, ties broken by the ratio without reordering.
    assert np.all(np.floor(res.scores * 8 + 1e-9) / 8 == pytest.approx(res.extra["fraction"]))


def test_threshold_attack_signals(tiny):
    X, y, _, target, mem, non = tiny
    loss = LossThreshold().infer(target, X, y, members=mem, nonmembers=non)
    conf = LossThreshold(signal="confidence").infer(target, X, y, members=mem, nonmembers=non)
    p = np.array([_p_true(target, X[i], y[i]) for i in loss.index])
    np.testing.assert_allclose(conf.scores, p, rtol=1e-12)
    np.testing.assert_allclose(loss.scores, np.log(p), rtol=1e-9)
    assert loss.metrics.auc == conf.metrics.auc
    assert loss.assumptions["n_reference_models"] == 0


def test_label_only_is_seeded_and_counts_queries(tiny):
    X, y, _, target, mem, non = tiny
    labels = CallableTarget(
        lambda x: target.predict(x), n_features=3, classes=[0, 1], output="labels"
    )
    a = LabelOnly(n_noise=5).infer(labels, X, y, members=mem, nonmembers=non, random_state=4)
    b = LabelOnly(n_noise=5).infer(labels, X, y, members=mem, nonmembers=non, random_state=4)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.n_queries == 20 * 6
    assert a.assumptions["capability"] == "labels"


# ------------------------------------------------------------------------------ errors
def test_score_attacks_refuse_a_label_only_target_before_any_query(tiny):
    X, y, ref, target, mem, non = tiny
    labels = CallableTarget(
        lambda x: target.predict(x), n_features=3, classes=[0, 1], output="labels"
    )
    for attack in (LossThreshold(), LiRA(), RMIA()):
        with pytest.raises(CapabilityError, match="scores"):
            attack.infer(labels, X, y, members=mem, nonmembers=non, reference=ref)
    assert labels.n_queries == 0


@pytest.mark.parametrize(
    ("members", "nonmembers", "match"),
    [
        ([0, 1, 2], [2, 3], "overlap"),
        ([0, 1, 1], [2, 3], "more than once"),
        ([0, 99], [2, 3], "outside"),
        ([], [2, 3], "empty"),
        ([0.5, 1.0], [2, 3], "integer"),
    ],
)
def test_bad_member_split(tiny, members, nonmembers, match):
    X, y, ref, target, _, _ = tiny
    before = target.n_queries
    with pytest.raises(InvalidParameterError, match=match):
        LiRA().infer(target, X, y, members=members, nonmembers=nonmembers, reference=ref)
    assert target.n_queries == before


def test_reference_errors(tiny):
    X, y, ref, target, mem, non = tiny
    with pytest.raises(InvalidParameterError, match="reference"):
        LiRA().infer(target, X, y, members=mem, nonmembers=non)
    with pytest.raises(DataError, match="same X"):
        RMIA().infer(target, X * 2, y, members=mem, nonmembers=non, reference=ref)
    with pytest.raises(InvalidParameterError, match="no population records"):
        RMIA().infer(target, X, y, members=mem, nonmembers=np.arange(10, 28), reference=ref)
    excl = ReferenceModels(
        n_models=2, trainer=LogisticRegression(), backend="sequential", random_state=0
    ).fit(X, y, exclude=mem)
    with pytest.raises(InvalidParameterError, match="online=False"):
        LiRA().infer(target, X, y, members=mem, nonmembers=non, reference=excl)
    offline = LiRA(online=False).infer(target, X, y, members=mem, nonmembers=non, reference=excl)
    assert offline.assumptions["mode"] == "offline"


@pytest.mark.parametrize(
    ("attack", "match"),
    [
        (LiRA(fix_variance="sometimes"), "fix_variance"),
        (LiRA(online="yes"), "online"),
        (LiRA(min_std=0.0), "min_std"),
        (RMIA(gamma=0.0), "gamma"),
        (RMIA(offline_a=1.5), "offline_a"),
        (RMIA(n_population=0), "n_population"),
        (LabelOnly(n_noise=0), "n_noise"),
        (LabelOnly(noise_scale=-1.0), "noise_scale"),
        (LossThreshold(signal="margin"), "signal"),
    ],
)
def test_bad_hyper_parameters(tiny, attack, match):
    X, y, ref, target, mem, non = tiny
    before = target.n_queries
    with pytest.raises(InvalidParameterError, match=match):
        attack.infer(target, X, y, members=mem, nonmembers=non, reference=ref)
    assert target.n_queries == before


def test_init_is_inert():
    attack = RMIA(gamma=-5.0)  # validated only when the work runs
    assert attack.get_params() == {
        "online": True,
        "gamma": -5.0,
        "offline_a": 0.3,
        "n_population": None,
    }
