"""The `privacy.membership` audit check: leaky vs non-leaky models, and when it skips."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from mlwarden.audit.runner import audit
from mlwarden.data import Dataset, FeatureSchema
from mlwarden.models import SklearnTarget
from mlwarden.privacy.checks import MembershipCheck


def _split(n: int = 600, flip: float = 0.3):
    X, y = make_classification(
        n_samples=n, n_features=8, n_informative=4, flip_y=flip, random_state=0
    )
    half = n // 2
    schema = FeatureSchema.infer(X)
    return (
        Dataset(X=X[:half], y=y[:half], schema=schema),
        Dataset(X=X[half:], y=y[half:], schema=schema),
    )


def _finding(report, metric="tpr_at_1pct_fpr"):
    (finding,) = [f for f in report.findings if f.metric in (metric, "nonmembers_scored")]
    return finding


def test_a_memorising_model_fails_and_a_simple_one_passes():
    train, test = _split()
    forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(train.X, train.y)
    check = MembershipCheck(members=train, n_models=4, max_records=300)
    report = audit(SklearnTarget(forest), test, checks=[check], random_state=0)
    bad = _finding(report)
    assert not bad.passed and bad.rule_id == "MLW-PRI-001"
    assert bad.value > 0.05 and bad.evidence["auc"] > 0.6
    assert bad.evidence["most_exposed_training_rows"]
    assert not _finding(report, "auc").passed
    # The report draws a log-log ROC curve per attack.
    from mlwarden.findings.plots import curve_plots

    curves = report.metrics["model"]["privacy.membership"]["curves"]
    assert {c["label"] for c in curves} == {"loss-threshold", "lira", "rmia"}
    assert all(c["x_scale"] == c["y_scale"] == "log" and min(c["y"]) > 0 for c in curves)
    ((title, svg),) = curve_plots(report)
    assert "Membership inference ROC" in title and "<svg" in svg

    # A linear model on enough data barely leaks.
    train, test = _split(n=2000)
    simple = SklearnTarget(LogisticRegression().fit(train.X, train.y))
    check = MembershipCheck(members=train, n_models=4, max_records=500)
    report = audit(simple, test, checks=[check], random_state=0)
    assert _finding(report).passed and _finding(report, "auc").passed


def test_scores_that_tie_still_fail_on_the_auc():
    # A fully grown tree answers 0 or 1: its scores tie too much for a low-FPR figure,
    # but on average it still gives its training rows away.
    train, test = _split()
    tree = SklearnTarget(DecisionTreeClassifier(random_state=0).fit(train.X, train.y))
    check = MembershipCheck(members=train, n_models=4, max_records=300)
    report = audit(tree, test, checks=[check], random_state=0)
    assert not _finding(report, "auc").passed


def test_too_few_nonmembers_is_reported_as_unresolved_not_as_safe():
    train, test = _split(n=120)
    leaky = SklearnTarget(DecisionTreeClassifier(random_state=0).fit(train.X, train.y))
    finding = _finding(audit(leaky, test, checks=[MembershipCheck(members=train)], random_state=0))
    assert finding.rule_id == "MLW-PRI-006" and finding.value == 45


def test_it_skips_with_the_reason_when_it_cannot_run():
    train, test = _split(n=100)
    model = SklearnTarget(LogisticRegression().fit(train.X, train.y))
    report = audit(model, test, checks=[MembershipCheck()])
    (skip,) = report.skipped
    assert "--train-data" in skip["reason"] and not report.findings

    torch = pytest.importorskip("torch")
    from mlwarden.models.torch import TorchTarget

    net = TorchTarget(torch.nn.Sequential(torch.nn.Linear(8, 2)), input_shape=(8,))
    report = audit(net, test, checks=[MembershipCheck(members=train)])
    (skip,) = report.skipped
    assert "way to retrain" in skip["reason"] and net.n_queries == 0


def test_odd_reference_models_are_refused_before_any_query():
    train, test = _split(n=100)
    model = SklearnTarget(LogisticRegression().fit(train.X, train.y))
    q0 = model.n_queries
    with pytest.raises(ValueError, match="n_models must be even"):
        MembershipCheck(members=train, n_models=3).validate(model, test)
    assert model.n_queries == q0


def test_the_attribute_check_says_what_it_needs_and_runs_when_given_it():
    from mlwarden.privacy.checks import AttributeCheck

    train, test = _split(n=400)
    model = SklearnTarget(LogisticRegression().fit(train.X, train.y))
    (skip,) = audit(model, test, checks=[AttributeCheck(members=train)]).skipped
    assert "--sensitive" in skip["reason"]
    (skip,) = audit(model, test, checks=[AttributeCheck(attribute="x0")]).skipped
    assert "--train-data" in skip["reason"]
    name = train.schema.names[0]
    report = audit(model, test, checks=[AttributeCheck(attribute=name, members=train)])
    (finding,) = report.findings
    assert finding.rule_id == "MLW-PRI-002" and "seconds" not in finding.evidence


def test_the_inversion_check_puts_its_images_in_the_html_report():
    torch = pytest.importorskip("torch")
    from mlwarden.data import digits
    from mlwarden.findings.plots import figure_plots
    from mlwarden.findings.render.html import render_html
    from mlwarden.models._torch_nets import mlp_classifier, train_classifier
    from mlwarden.models.torch import TorchTarget

    data = digits()
    torch.manual_seed(0)
    y = np.asarray(data.labels, dtype=np.int64)
    net = train_classifier(mlp_classifier(data.X, 10), data.X, y, epochs=5, seed=0)
    target = TorchTarget(net, input_shape=(64,), lower=0.0, upper=16.0, classes=list(range(10)))
    report = audit(target, data, checks=["privacy.inversion"], random_state=0)
    (finding,) = report.findings
    assert finding.rule_id == "MLW-PRI-003" and 0 <= finding.value <= 1
    html = render_html(report)
    assert "model inversion: reconstruction" in html and html.count("<svg") >= 1
    # A figure that could carry script (a report JSON edited by someone) is dropped.
    report.metrics["model"]["privacy.inversion"]["figures"].append(
        {"title": "evil", "svg": '<svg onload="alert(1)"></svg>'}
    )
    assert [t for t, _ in figure_plots(report) if "evil" in t] == []
    # Tabular data: nothing to draw, the check says why.
    tabular = Dataset(X=data.X[:50], y=data.y[:50], schema=data.schema)
    (skip,) = audit(target, tabular, checks=["privacy.inversion"]).skipped
    assert "image shape" in skip["reason"]
