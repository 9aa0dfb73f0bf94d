"""The data checks run once per audit, on the data file, and find what they should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlwarden.audit import audit
from mlwarden.data import (
    Feature,
    FeatureKind,
    FeatureSchema,
    generate_data_key,
    load_dataset,
    sign_dataset,
)
from mlwarden.models import SklearnTarget

SCHEMA = FeatureSchema(
    (
        Feature("amount", lower=0, upper=10_000),
        Feature("age", FeatureKind.INTEGER, lower=0, upper=120),
        Feature("card_number", lower=0, upper=1e17),
    )
)


def _card(rng) -> int:
    """A Luhn-valid 16-digit Visa-like number: raw card numbers used as a model feature."""
    digits = [4, *rng.integers(0, 10, 14).tolist()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    return int("".join(map(str, [*digits, (10 - total % 10) % 10])))


@pytest.fixture
def data_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame(
        {
            "amount": rng.normal(50, 10, n).round(2),
            "age": rng.integers(18, 80, n),
            "card_number": [_card(rng) for _ in range(n)],
            "label": (rng.random(n) < 0.5).astype(int),
        }
    )
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _targets(ds):
    est = LogisticRegression().fit(ds.X, ds.y)
    return [SklearnTarget(est, name="a"), SklearnTarget(est, name="b")]


def test_pii_check_runs_once_and_finds_the_card_numbers(data_file):
    path, _ = data_file
    ds = load_dataset(path, label="label", schema=SCHEMA)
    report = audit(_targets(ds), ds, checks="data.pii")
    pii = [f for f in report.findings if f.rule_id == "MLW-DAT-001"]
    assert len(pii) == 1  # once for the data, not once per model
    assert not pii[0].passed
    assert "card_number" in pii[0].description
    assert pii[0].target == "customers.csv"


def test_manifest_check_names_the_changed_row(data_file, tmp_path):
    path, frame = data_file
    key, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    generate_data_key(key, pub)
    sign_dataset(path, key=key)
    ds = load_dataset(path, label="label", schema=SCHEMA)
    params = {"data.manifest": {"key": str(pub)}}
    ok = audit(_targets(ds), ds, checks="data.manifest", check_params=params)
    assert [f.passed for f in ok.findings] == [True]
    frame.loc[7, "amount"] = 9999.0
    frame.to_csv(path, index=False)
    ds = load_dataset(path, label="label", schema=SCHEMA)
    bad = audit(_targets(ds), ds, checks="data.manifest", check_params=params)
    (finding,) = bad.findings
    assert not finding.passed
    assert "7" in str(finding.evidence)


def test_data_checks_skip_with_a_reason(data_file):
    path, _ = data_file
    ds = load_dataset(path, label="label", schema=SCHEMA)
    report = audit(_targets(ds), ds, checks="data.manifest")
    assert report.findings == []
    assert len(report.skipped) == 1
    assert "--data-key" in report.skipped[0]["reason"]
