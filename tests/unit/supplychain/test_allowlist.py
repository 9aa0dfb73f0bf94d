"""The allowlist, the denylist and the one decision function scanner and loader share."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from mlwarden.findings.taxonomy import Severity
from mlwarden.supplychain.allowlist import (
    decide,
    deny_entry,
    load_allowlist,
    load_denylist,
    normalize,
)
from mlwarden.supplychain.policy import Policy

ROOT = Path(__file__).resolve().parents[3]
DATA = resources.files("mlwarden.supplychain").joinpath("data")


def test_allowlist_file_is_reviewable():
    text = DATA.joinpath("allowlist.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    names = raw["globals"]
    assert raw["version"] == "1"
    assert {"numpy", "scikit-learn", "pandas", "torch", "python"} <= set(raw["generated_with"])
    assert names == sorted(names) and len(names) == len(set(names))
    # one name per line
    assert sum(1 for line in text.splitlines() if line.strip().startswith('"')) >= len(names)
    assert len(names) > 1000


def test_no_allowed_name_is_denylisted_or_excluded():
    allowed = load_allowlist().names
    hits = sorted(n for n in allowed if deny_entry(n) is not None)
    assert hits == []
    excluded = {"io", "testing", "tests", "_testing", "externals", "datasets", "computation"}
    assert not [n for n in allowed if set(n.split(".")[:-1]) & excluded]


@pytest.mark.parametrize(
    "name",
    [
        "builtins.getattr", "builtins.eval", "builtins.exec", "builtins.open",
        "builtins.__import__", "builtins.compile", "builtins.type", "functools.reduce",
        "operator.attrgetter", "operator.methodcaller", "numpy.load", "numpy.memmap",
        "numpy.fromfile", "numpy.core._ufunc_reconstruct", "pandas.read_pickle",
        "pandas.read_csv", "pandas.eval", "torch.load", "torch.storage._load_from_bytes",
        "pickle.loads", "joblib.load", "os.system", "subprocess.Popen",
    ],
)  # fmt: skip
def test_dangerous_names_are_not_allowed(name):
    assert name not in load_allowlist()
    module, _, qual = name.rpartition(".")
    assert not decide(module, qual).allowed


@pytest.mark.parametrize(
    "name",
    [
        "numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct",
        "numpy.ndarray", "numpy.dtype", "numpy.log1p", "scipy.sparse._csr.csr_matrix",
        "sklearn.linear_model._logistic.LogisticRegression", "sklearn.tree._tree.Tree",
        "sklearn.pipeline.Pipeline", "pandas.DataFrame", "pandas.core.indexes.base._new_Index",
        "torch._utils._rebuild_tensor_v2", "torch.nn.modules.linear.Linear", "torch.float32",
        "collections.OrderedDict", "datetime.datetime", "argparse.Namespace",
        "copyreg._reconstructor", "_codecs.encode", "functools.partial",
        "zoneinfo.ZoneInfo._unpickle", "joblib.numpy_pickle.NumpyArrayWrapper",
    ],
)  # fmt: skip
def test_model_building_blocks_are_allowed(name):
    assert name in load_allowlist()
    if name == "zoneinfo.ZoneInfo._unpickle":
        module, qual = "zoneinfo", "ZoneInfo._unpickle"
    else:
        module, qual = name.rsplit(".", 1)
    d = decide(module, qual)
    assert d.allowed and d.rule is None


def test_decisions_name_rule_and_severity():
    d = decide("os", "system")
    assert not d.allowed and d.rule.id == "MLW-SUP-001" and d.severity is Severity.CRITICAL
    assert "command" in d.reason
    d = decide("mypkg", "Net")
    assert d.rule.id == "MLW-SUP-002" and d.severity is Severity.HIGH
    d = decide("numpy", "os.system")  # attribute walk through an allowed module
    assert d.rule.id == "MLW-SUP-003" and d.severity is Severity.CRITICAL
    d = decide("os ", "system")
    assert d.rule.id == "MLW-SUP-003"
    d = decide("builtins", "getattr.__self__")
    assert d.rule.id == "MLW-SUP-001"  # a prefix on the denylist


def test_python2_names_are_normalised():
    assert normalize("__builtin__", "eval") == ("builtins", "eval")
    assert normalize("copy_reg", "_reconstructor") == ("copyreg", "_reconstructor")
    assert decide("__builtin__", "eval").rule.id == "MLW-SUP-001"
    assert decide("copy_reg", "_reconstructor").allowed


def test_policy_semantics():
    mine = Policy(allow=frozenset({"mypkg.Net", "other.*"}))
    assert decide("mypkg", "Net", mine).allowed
    assert decide("other.sub", "Thing", mine).allowed
    assert not decide("mypkg", "Other", mine).allowed
    assert not decide("os", "system", Policy(allow=frozenset({"os.system"}))).allowed
    forced = decide("os", "system", Policy(allow=frozenset({"os.system"}), force=True))
    assert forced.allowed and forced.forced
    denied = decide("collections", "OrderedDict", Policy(deny=frozenset({"collections.*"})))
    assert not denied.allowed and "policy" in denied.reason
    both = Policy(allow=frozenset({"mypkg.Net"}), deny=frozenset({"mypkg.Net"}))
    assert not decide("mypkg", "Net", both).allowed  # deny wins


def test_denylist_entries_are_explained():
    entries = load_denylist()
    assert len(entries) > 100
    for e in entries:
        assert e.reason and e.severity in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM)
    assert deny_entry("pandas.read_parquet").pattern == "pandas.read_*"
    assert deny_entry("os.path.join").pattern == "os.*"
    assert deny_entry("osx.thing") is None
    assert deny_entry("numpy.loadtxt").pattern == "numpy.loadtxt"


def test_supplychain_import_stays_light():
    code = (
        "import sys, mlwarden.supplychain.pickle_scan, mlwarden.supplychain.allowlist;"
        "heavy = [m for m in ('numpy', 'torch', 'pandas', 'sklearn', 'scipy') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""


@pytest.mark.slow
def test_build_script_reproduces_the_shipped_allowlist():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_allowlist.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
