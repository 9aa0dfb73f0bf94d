"""Every registered check × the same rulebook (scikit-learn's estimator checks, for audits)."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import pickle
import tempfile
from pathlib import Path

import pytest
from tests.helpers import linear_problem

from mlwarden import _registry
from mlwarden.audit.runner import audit
from mlwarden.exceptions import CapabilityError, InvalidParameterError
from mlwarden.findings.taxonomy import RULES
from mlwarden.models.base import Capability

CHECKS = _registry.available("check")


def _fast(name: str) -> dict[str, object]:
    """Small budgets so that each contract run takes a fraction of a second (and, for the
    membership check, the training rows and a way to retrain reference models)."""
    from sklearn.linear_model import LogisticRegression

    from mlwarden.privacy.reference import SklearnTrainer

    accepted = _registry.get("check", name)._param_names()
    small = {
        "max_samples": 25,
        "eps_grid": (0.2,),
        "members": linear_problem(n=120, seed=1)[1],
        "trainer": SklearnTrainer(LogisticRegression()),
        "max_records": 60,
        "attribute": "flag",
        "budgets": (25, 50),
        "key": str(_data_key()[1]),
    }
    return {k: v for k, v in small.items() if k in accepted}


def test_there_are_checks_and_every_family_package_registers():
    assert {"evasion.whitebox", "evasion.blackbox", "evasion.decision"} <= set(CHECKS)


_DP_RECORD = {"epsilon_prv": 3.0, "delta": 1e-5, "n_samples": 1000, "poisson_sampling": True}
"""What `mlwarden harden dp` records in a model file (the privacy.dp check reads it)."""


@functools.cache
def _data_key() -> tuple[Path, Path]:
    """An Ed25519 key pair for the data.manifest check's signed test data."""
    from mlwarden.data import generate_data_key

    root = Path(tempfile.mkdtemp(prefix="mlw-contract-key-"))
    generate_data_key(root / "data.key", root / "data.pub")
    return root / "data.key", root / "data.pub"


def _data_file(data) -> str:
    """The data written to a CSV and signed (the data checks read the file)."""
    from mlwarden.data import sign_dataset, write_table

    path = Path(tempfile.mkdtemp(prefix="mlw-contract-")) / "data.csv"
    write_table(data, path, label="label")
    sign_dataset(path, key=_data_key()[0])
    return str(path)


def _model_file() -> str:
    """A benign pickle standing in for the file a model was loaded from."""
    path = Path(tempfile.mkdtemp(prefix="mlw-contract-")) / "model.pkl"
    path.write_bytes(pickle.dumps({"coef": [0.5, -1.0], "intercept": 0.1}, protocol=4))
    return str(path)


def runnable(name: str, n: int = 200):
    """The linear problem with the target's capabilities cut down until the check applies
    (and, for checks that scan the model's file, a file it was loaded from)."""
    cls = _registry.get("check", name)
    for caps in (
        Capability.LABELS | Capability.SCORES | Capability.LOGITS | Capability.GRADIENTS,
        Capability.LABELS | Capability.SCORES,
        Capability.LABELS,
    ):
        for source, image, on_disk in itertools.product(
            (None, _model_file()), (False, True), (False, True)
        ):
            target, data = linear_problem(n=n)
            target.caps = caps
            target.source = source
            target.training = {"differential_privacy": _DP_RECORD}
            if image:  # the rows seen as 1 x 5 images (model inversion needs image data)
                data = dataclasses.replace(data, image_shape=(1, data.n_features))
            if on_disk:  # the data checks read the data's file
                data = dataclasses.replace(data, source=_data_file(data))
            if cls(**_fast(name)).skip_reason(target, data) is None:
                return target, data
    raise AssertionError(f"no test target satisfies {name}")


@pytest.mark.parametrize("name", CHECKS)
def test_init_only_stores_parameters(name):
    cls = _registry.get("check", name)
    params = {p: object() for p in cls._param_names()}
    check = cls(**params)  # nonsense values: __init__ must not validate
    assert check.get_params() == params
    assert check.id == name


@pytest.mark.parametrize("name", CHECKS)
def test_same_seed_gives_the_same_report(name):
    target, data = runnable(name)
    kwargs = {"checks": [name], "check_params": {name: _fast(name)}}
    a = audit(target, data, random_state=7, **kwargs).to_dict(include_timing=False)
    b = audit(target, data, random_state=7, **kwargs).to_dict(include_timing=False)
    assert a == b
    assert a["findings"], "a check that runs must report at least one finding"
    assert a["provenance"]["seed"] == 7
    assert "numpy" in a["provenance"]["versions"]
    assert a["params"][name]


@pytest.mark.parametrize("name", CHECKS)
def test_missing_capability_raises_before_work_and_is_skipped_by_the_runner(name):
    cls = _registry.get("check", name)
    target, data = linear_problem(n=100)
    target.caps = Capability.NONE
    check = cls(**_fast(name))
    if cls.per_data and check.skip_reason(target, data) is None:
        # A check of the data alone needs nothing from the model: it runs, and never
        # queries the model.
        assert cls.requires == Capability.NONE
        report = audit(target, data, checks=[check])
        assert report.findings
        assert target.n_queries == 0
        return
    with pytest.raises(CapabilityError):
        check.validate(target, data)
    report = audit(target, data, checks=[check])
    assert not report.findings
    assert [s["check"] for s in report.skipped] == [name]
    assert target.n_queries == 0


@pytest.mark.parametrize("name", CHECKS)
def test_bad_numeric_parameters_raise_before_any_query(name):
    cls = _registry.get("check", name)
    target, data = runnable(name, n=100)
    defaults = cls().get_params()
    numeric = [
        k for k, v in defaults.items() if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    if name == "data.manifest":  # a signature check: no budget or threshold to tune
        assert not numeric
        return
    assert numeric, "checks expose numeric parameters (budgets, thresholds)"
    for key in numeric:
        check = cls(**{**_fast(name), key: math.nan})
        with pytest.raises(InvalidParameterError, match=key):
            audit(target, data, checks=[check])
    assert target.n_queries == 0


@pytest.mark.parametrize("name", CHECKS)
def test_rules_are_registered_with_taxonomy_ids(name):
    cls = _registry.get("check", name)
    assert cls.rules
    for rule in cls.rules:
        assert RULES[rule.id] is rule
        assert rule.atlas and rule.owasp
