"""poisoning.training-data: flipped labels in the training rows fail the check, once per audit."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from mlwarden.audit import audit
from mlwarden.data import Dataset, FeatureSchema
from mlwarden.models import SklearnTarget
from mlwarden.poisoning import LabelFlip


def _blobs(n: int = 400, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 4)) + 2.5 * y[:, None]
    return Dataset(X=X, y=y, schema=FeatureSchema.infer(X, [f"f{i}" for i in range(4)]))


def test_flipped_labels_fail_and_clean_rows_pass():
    clean = _blobs()
    test = _blobs(seed=1)
    est = LogisticRegression().fit(clean.X, clean.y)
    targets = [SklearnTarget(est, name="a"), SklearnTarget(est, name="b")]
    params = {"members": clean, "backdoor": False}
    ok = audit(targets, test, checks="poisoning.training-data",
               check_params={"poisoning.training-data": params})  # fmt: skip
    (finding,) = ok.findings  # once per data set, not per model
    assert finding.passed and finding.rule_id == "MLW-POI-003"
    poisoned = LabelFlip(rate=0.15, random_state=0).poison(clean)
    bad = audit(targets, test, checks="poisoning.training-data",
                check_params={"poisoning.training-data": {**params,
                                                          "members": poisoned.data}})  # fmt: skip
    (finding,) = bad.findings
    assert not finding.passed
    assert finding.value > 0.1
    flagged = {r["row"] for r in finding.evidence["dropped"]}
    assert flagged <= set(range(len(clean.X)))
    assert len(flagged & set(poisoned.indices.tolist())) >= 0.8 * len(flagged)
