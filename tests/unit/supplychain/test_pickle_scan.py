"""The static pickle scanner: benign model files are clean, every known trick is caught.

Malicious pickles are written with raw opcodes or ``__reduce__`` classes whose
payloads are harmless (``true``, ``"1"``); none is ever loaded here.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import io
import os
import pickle
import struct
import subprocess
import time
import zipfile
import zlib

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlwarden.findings.taxonomy import Severity
from mlwarden.supplychain.pickle_scan import MAX_DEPTH, PickleScan, scan_pickle
from mlwarden.supplychain.policy import Policy

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


# ------------------------------------------------------------------ helpers
def scan(data: bytes, **kw) -> PickleScan:
    return scan_pickle(data, path="model.pkl", **kw)


def rules(result: PickleScan) -> set[str]:
    return {i.rule_id for i in result.issues}


def constructs(result: PickleScan) -> set[str]:
    return {i.construct for i in result.issues}


def u(s: str) -> bytes:
    """SHORT_BINUNICODE."""
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def sg(module: str, name: str) -> bytes:
    """STACK_GLOBAL of constant strings."""
    return u(module) + u(name) + b"\x93"


def g0(module: str, name: str) -> bytes:
    """Protocol 0 GLOBAL."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def call(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"tR"


P4 = b"\x80\x04"
STOP = b"."


class Reduce:
    """Pickles to ``func(*args)``: never loaded, only scanned."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# ------------------------------------------------------------ benign files
@pytest.fixture(scope="module")
def estimators():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import make_classification
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        IsolationForest,
        RandomForestClassifier,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
    from sklearn.svm import SVC

    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    df = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
    df["cat"] = np.array(["x", "y", "z", "x"])[np.arange(80) % 4]
    df.loc[::9, "a"] = np.nan
    pipe = Pipeline(
        [
            (
                "ct",
                ColumnTransformer(
                    [
                        ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b", "c"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["cat"]),
                    ]
                ),
            ),
            ("lr", LogisticRegression()),
        ]
    ).fit(df, y)
    return {
        "lr": LogisticRegression().fit(X, y),
        "rf": RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y),
        "hgb": HistGradientBoostingClassifier(max_iter=3).fit(X, y),
        "gb": GradientBoostingClassifier(n_estimators=3).fit(X, y),
        "pipeline": pipe,
        "mlp": MLPClassifier(hidden_layer_sizes=(3,), max_iter=5).fit(X, y),
        "svc": SVC().fit(X, y),
        "kmeans": KMeans(n_clusters=2, n_init=1, random_state=0).fit(X),
        "iforest": IsolationForest(n_estimators=3, random_state=0).fit(X),
        "calibrated": CalibratedClassifierCV(LogisticRegression(), cv=2).fit(X, y),
        "log1p": FunctionTransformer(np.log1p).fit(np.abs(X)),
    }


ESTIMATORS = [
    "lr", "rf", "hgb", "gb", "pipeline", "mlp", "svc", "kmeans", "iforest", "calibrated", "log1p",
]  # fmt: skip


def assert_clean(result: PickleScan, data: bytes) -> None:
    assert result.issues == [], [(i.rule_id, i.construct) for i in result.issues]
    assert result.complete and result.error is None
    assert result.end == len(data)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", ESTIMATORS)
def test_benign_estimator_pickles_are_clean(estimators, name, protocol):
    data = pickle.dumps(estimators[name], protocol=protocol)
    result = scan(data)
    assert_clean(result, data)
    assert any(g.startswith("sklearn.") for g in result.globals)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("name", ["rf", "pipeline", "hgb", "mlp"])
def test_benign_joblib_frames_are_clean(estimators, name, protocol):
    buf = io.BytesIO()
    joblib.dump(estimators[name], buf, protocol=protocol)
    data = buf.getvalue()
    result = scan(data, joblib_frames=True)
    assert_clean(result, data)
    assert "joblib.numpy_pickle.NumpyArrayWrapper" in result.globals
    assert any("array payload" in n for n in result.notes)


@pytest.mark.parametrize("compress", ["zlib", "gzip", "bz2", "lzma", "xz"])
def test_benign_compressed_joblib_is_clean_once_decompressed(estimators, compress, tmp_path):
    import bz2
    import lzma

    path = tmp_path / "m.joblib"
    joblib.dump(estimators["pipeline"], path, compress=(compress, 3))
    raw = path.read_bytes()
    data = {
        "zlib": zlib.decompress,
        "gzip": lambda b: zlib.decompress(b, 31),
        "bz2": bz2.decompress,
        "lzma": lzma.decompress,
        "xz": lzma.decompress,
    }[compress](raw)
    assert_clean(scan(data, joblib_frames=True), data)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [1.0, np.nan, 3.0],
            "o": ["x", None, "z"],
            "s": pd.array(["x", "y", None], dtype="string"),
            "c": pd.Categorical(["u", "v", "u"]),
            "d": pd.date_range("2020", periods=3),
            "dz": pd.date_range("2020", periods=3, tz="Europe/Paris"),
            "du": pd.date_range("2020", periods=3, tz="UTC"),
            "td": pd.to_timedelta([1, 2, 3], unit="s"),
            "I": pd.array([1, None, 3], dtype="Int64"),
        }
    )


DATA_OBJECTS = {
    "float-array": lambda: np.arange(12.0).reshape(3, 4),
    "fortran-array": lambda: np.asfortranarray(np.ones((3, 2), dtype="f4")),
    "structured-array": lambda: np.zeros(3, dtype=[("a", "<i8"), ("b", "<f8")]),
    "object-array": lambda: np.array(["a", None, 1.5], dtype=object),
    "datetime-array": lambda: np.array(["2020-01-01"], dtype="M8[ns]"),
    "unicode-array": lambda: np.array(["ab", "c"]),
    "masked-array": lambda: np.ma.masked_array([1.0, 2.0], mask=[False, True]),
    "scalars": lambda: [np.float64(1), np.int32(2), np.bool_(True), np.datetime64("2020")],
    "generator": lambda: np.random.default_rng(0),
    "dataframe": _frame,
    "series": lambda: _frame()["dz"],
    "multiindex": lambda: _frame().set_index(["i", "o"]),
    "csr": lambda: sp.random(5, 4, density=0.4, format="csr", random_state=0),
    "coo-array": lambda: sp.coo_array(np.eye(3)),
    "containers": lambda: {
        "od": collections.OrderedDict(a=1),
        "dd": collections.defaultdict(list, a=[1]),
        "when": datetime.datetime(2020, 1, 2, tzinfo=datetime.UTC),
        "delta": datetime.timedelta(days=2),
        "ns": argparse.Namespace(lr=0.1, epochs=3),
        "set": {1, 2},
        "bytes": b"\x00\x01",
        "complex": 1 + 2j,
    },
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", sorted(DATA_OBJECTS))
def test_benign_data_pickles_are_clean(name, protocol):
    data = pickle.dumps(DATA_OBJECTS[name](), protocol=protocol)
    assert_clean(scan(data), data)


@pytest.mark.parametrize("name", ["dataframe", "object-array", "structured-array"])
def test_joblib_object_arrays_of_allowed_objects_are_not_flagged(name):
    buf = io.BytesIO()
    joblib.dump(DATA_OBJECTS[name](), buf)
    data = buf.getvalue()
    result = scan(data, joblib_frames=True)
    assert_clean(result, data)


def test_oracle_globals_match_what_unpickling_imports():
    """On benign files the scanner lists exactly what a real unpickler imports."""

    class Recorder(pickle.Unpickler):
        def __init__(self, f):
            super().__init__(f)
            self.seen: set[str] = set()

        def find_class(self, module, name):
            self.seen.add(f"{module}.{name}")
            return super().find_class(module, name)

    for obj in [_frame(), np.arange(3.0), sp.eye(3, format="csr"), {"a": [1, 2]}]:
        data = pickle.dumps(obj, protocol=4)
        rec = Recorder(io.BytesIO(data))
        rec.load()  # benign data built by this test
        seen = {s for s in rec.seen if s != "builtins.getattr"}
        assert seen <= set(scan(data).globals)


@needs_torch
@pytest.mark.parametrize("kind", ["state_dict", "sequential", "checkpoint", "tensors"])
def test_benign_torch_pickles_are_clean(kind):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    )
    params = list(net.parameters())
    # what Adam(...).state_dict() holds after a step (torch.optim costs seconds to import)
    optim = {
        "state": {
            i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(p), "exp_avg_sq": p * 0}
            for i, p in enumerate(params)
        },
        "param_groups": [
            {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0,
             "amsgrad": False, "foreach": None, "params": list(range(len(params)))}
        ],
    }  # fmt: skip
    obj = {
        "state_dict": net.state_dict(),
        "sequential": net,
        "checkpoint": {"model": net.state_dict(), "optimizer": optim, "epoch": 3},
        "tensors": {"h": torch.zeros(2, dtype=torch.float16), "b": torch.ones(2).bool()},
    }[kind]
    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/data.pkl"))
        data = zf.read(name)
    result = scan_pickle(data, path="m.pt", member=name)
    assert_clean(result, data)
    assert "torch._utils._rebuild_tensor_v2" in result.globals
    # the legacy format: five stacked pickles, then raw storage bytes
    legacy = io.BytesIO()
    torch.save(obj, legacy, _use_new_zipfile_serialization=False)
    view, offset = memoryview(legacy.getvalue()), 0
    for _ in range(5):
        part = scan_pickle(view[offset:], path="m.pt", base_offset=offset)
        assert part.complete and part.issues == []
        offset += part.end
    assert offset < len(view)


# ------------------------------------------------------------ malicious files
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_os_system(protocol):
    result = scan(pickle.dumps(Reduce(os.system, "true"), protocol=protocol))
    (issue,) = result.issues
    assert issue.rule_id == "MLW-SUP-001" and issue.severity is Severity.CRITICAL
    assert issue.construct in ("posix.system", "nt.system")
    assert issue.path == "model.pkl" and issue.location.startswith("@")
    assert result.complete and issue.construct in result.globals


@pytest.mark.parametrize(
    ("func", "args", "construct"),
    [
        (subprocess.run, (["true"],), "subprocess.run"),
        (eval, ("1",), "builtins.eval"),
        (exec, ("x = 1",), "builtins.exec"),
        (open, ("/dev/null",), "io.open"),
        (__import__, ("os",), "builtins.__import__"),
    ],
)
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_dangerous_callables(func, args, construct, protocol):
    result = scan(pickle.dumps(Reduce(func, *args), protocol=protocol))
    assert construct in constructs(result)
    assert rules(result) == {"MLW-SUP-001"}


def test_runpy_run_code_and_location_with_member():
    data = P4 + call(sg("runpy", "_run_code"), u("x = 1"), b"}") + STOP
    result = scan_pickle(data, path="m.pt", member="archive/data.pkl", base_offset=100)
    (issue,) = result.issues
    assert issue.construct == "runpy._run_code" and issue.rule_id == "MLW-SUP-001"
    assert issue.location == "archive/data.pkl@" + str(100 + data.index(b"\x93"))


def test_unknown_global_is_high_and_policy_can_allow_it():
    data = P4 + call(sg("mypkg.models", "Net")) + STOP
    (issue,) = scan(data).issues
    assert issue.rule_id == "MLW-SUP-002" and issue.severity is Severity.HIGH
    assert scan(data, policy=Policy(allow=frozenset({"mypkg.models.Net"}))).issues == []
    assert scan(data, policy=Policy(allow=frozenset({"mypkg.*"}))).issues == []


def test_policy_cannot_allow_a_denylisted_global_without_force():
    data = pickle.dumps(Reduce(os.system, "true"), protocol=4)
    name = scan(data).issues[0].construct
    assert scan(data, policy=Policy(allow=frozenset({name}))).issues
    forced = scan(data, policy=Policy(allow=frozenset({name}), force=True))
    assert forced.issues == [] and any("force" in n for n in forced.notes)


def test_policy_deny_refuses_an_allowlisted_global():
    data = pickle.dumps(collections.OrderedDict(a=1), protocol=4)
    result = scan(data, policy=Policy(deny=frozenset({"collections.OrderedDict"})))
    assert rules(result) == {"MLW-SUP-002"}


def test_protocol0_inst_and_obj():
    inst = b"(S'true'\nios\nsystem\n."
    assert "os.system" in constructs(scan(inst))
    obj = b"(" + g0("builtins", "eval") + b"S'1'\no."
    assert "builtins.eval" in constructs(scan(obj))


def test_python2_names_are_mapped_like_pickle_does():
    data = g0("__builtin__", "eval") + b"(S'1'\ntR."
    assert "builtins.eval" in constructs(scan(data))
    benign = g0("copy_reg", "_reconstructor") + b"(" + g0("__builtin__", "object")
    benign += g0("__builtin__", "object") + b"NtR."
    assert scan(benign).issues == []


@pytest.mark.parametrize(
    "data",
    [
        b"cos \nsystem\n(S'true'\ntR.",  # trailing space in the module
        b"cos\r\nsystem\r\n(S'true'\ntR.",  # CRLF line endings: the CR stays in the names
        b"cbuiltins\neval\x00\n(S'1'\ntR.",  # NUL in the name
    ],
)
def test_protocol0_global_line_tricks(data):
    result = scan(data)
    assert result.issues and rules(result) <= {"MLW-SUP-001", "MLW-SUP-003"}


def test_dotted_stack_global_attribute_walk():
    data = P4 + call(sg("torch", "serialization.os.system"), u("true")) + STOP
    (issue,) = scan(data).issues
    assert issue.rule_id == "MLW-SUP-003" and issue.construct == "torch.serialization.os.system"
    denylisted_module = P4 + call(sg("posixpath", "os.system"), u("true")) + STOP
    assert rules(scan(denylisted_module)) == {"MLW-SUP-001"}


def test_stack_global_with_a_computed_name():
    # module = builtins.str("os") (a call result), name = "system"
    data = P4 + call(sg("builtins", "str"), u("os")) + u("system") + b"\x93" + b"(" + u("true")
    data += b"tR" + STOP
    result = scan(data)
    assert rules(result) == {"MLW-SUP-003"}
    assert any("STACK_GLOBAL" in c for c in constructs(result))


def test_stack_global_with_memoized_strings_is_resolved():
    data = P4 + u("collections") + b"\x94" + u("OrderedDict") + b"\x94"
    data += b"h\x00h\x01\x93)R" + STOP
    result = scan(data)
    assert result.issues == [] and result.globals == ["collections.OrderedDict"]


def test_memoized_dangerous_name_is_still_caught():
    data = P4 + u("os") + b"\x94" + u("system") + b"\x94" + b"0"  # POP the name
    data += b"h\x00h\x01\x93(" + u("true") + b"tR" + STOP
    assert "os.system" in constructs(scan(data))


def test_getattr_chain_to_os_system():
    # getattr(getattr(LogisticRegression, "__init__"), "__globals__") ...
    lr = sg("sklearn.linear_model._logistic", "LogisticRegression")
    inner = call(sg("builtins", "getattr"), lr, u("__init__"))
    data = P4 + call(sg("builtins", "getattr"), inner, u("__globals__")) + STOP
    result = scan(data)
    walk = "sklearn.linear_model._logistic.LogisticRegression.__init__"
    assert {walk, walk + ".__globals__"} <= constructs(result)
    assert rules(result) == {"MLW-SUP-003"}
    # getattr on a value computed at load time cannot be resolved at all
    computed = call(sg("builtins", "getattr"), call(sg("builtins", "str"), u("x")), u("join"))
    result = scan(P4 + computed + STOP)
    assert constructs(result) == {"builtins.getattr"} and rules(result) == {"MLW-SUP-001"}


def test_getattr_of_allowed_method_is_resolved_statically():
    data = P4 + call(call(sg("builtins", "getattr"), sg("zoneinfo", "ZoneInfo"), u("_unpickle")))
    data = P4 + call(sg("builtins", "getattr"), sg("zoneinfo", "ZoneInfo"), u("_unpickle"))
    data += b"(" + u("UTC") + b"K\x01tR" + STOP
    result = scan(data)
    assert result.issues == []
    assert "zoneinfo.ZoneInfo._unpickle" in result.globals


def test_getattr_kept_as_a_value_is_flagged():
    data = P4 + b"}" + u("f") + sg("builtins", "getattr") + b"s" + STOP  # {"f": getattr}
    (issue,) = scan(data).issues
    assert issue.construct == "builtins.getattr" and issue.rule_id == "MLW-SUP-001"


def test_call_of_a_computed_value():
    data = P4 + call(call(sg("builtins", "str"), u("x")), u("y")) + STOP
    assert rules(scan(data)) == {"MLW-SUP-003"}


def test_newobj_of_a_computed_class():
    data = P4 + call(sg("builtins", "str"), u("x")) + b")\x81" + STOP
    assert rules(scan(data)) == {"MLW-SUP-003"}


def test_build_and_setitem_on_an_imported_global_are_monkey_patching():
    build = P4 + sg("collections", "OrderedDict") + b"N}" + u("x") + b"K\x01s\x86b" + STOP
    assert "BUILD on collections.OrderedDict" in constructs(scan(build))
    setitem = P4 + sg("collections", "OrderedDict") + u("k") + b"K\x01s" + STOP
    assert "SETITEM on collections.OrderedDict" in constructs(scan(setitem))


def test_invoker_given_a_computed_class():
    computed = call(sg("builtins", "str"), u("x"))
    data = P4 + call(sg("copyreg", "_reconstructor"), computed, sg("builtins", "object"), b"N")
    result = scan(data + STOP)
    assert any(c.startswith("copyreg._reconstructor calling") for c in constructs(result))


@pytest.mark.parametrize(
    ("op", "arg"), [(b"\x82", b"\x01"), (b"\x83", b"\x01\x00"), (b"\x84", b"\x01\x00\x00\x00")]
)
def test_extension_codes(op, arg):
    data = P4 + op + arg + b"(" + u("true") + b"tR" + STOP
    result = scan(data)
    assert rules(result) == {"MLW-SUP-003"} and len(result.issues) == 1


def test_nested_pickle_loads():
    inner = pickle.dumps(Reduce(os.system, "true"), protocol=4)
    outer = pickle.dumps(Reduce(pickle.loads, inner), protocol=4)
    result = scan(outer)
    assert {"MLW-SUP-001", "MLW-SUP-004"} <= rules(result)
    assert any(c.endswith(".loads") for c in constructs(result))
    assert any(c.endswith(".system") for c in constructs(result))
    nested = next(i for i in result.issues if i.construct.endswith(".system"))
    offset = int(nested.location.lstrip("@"))
    assert outer[offset] == 0x93  # points at the inner STACK_GLOBAL, in outer coordinates


def test_nested_pickle_in_protocol2_bytes():
    inner = pickle.dumps(Reduce(os.system, "true"), protocol=2)
    outer = pickle.dumps(Reduce(pickle.loads, inner), protocol=2)  # bytes via _codecs.encode
    assert {"MLW-SUP-001", "MLW-SUP-004"} <= rules(scan(outer))


def test_benign_nested_pickle_is_still_reported():
    outer = pickle.dumps(Reduce(pickle.loads, pickle.dumps([1, 2])), protocol=4)
    result = scan(outer)
    assert "MLW-SUP-004" in rules(result)


def test_pickle_hidden_in_a_byte_string():
    inner = pickle.dumps(Reduce(os.system, "true"), protocol=4)
    result = scan(pickle.dumps({"weights": inner}, protocol=4))
    assert {"MLW-SUP-004", "MLW-SUP-001"} <= rules(result)
    harmless = scan(pickle.dumps({"weights": pickle.dumps([1.0])}, protocol=4))
    assert harmless.issues == []


def test_nesting_depth_is_limited():
    data = pickle.dumps(Reduce(os.system, "true"), protocol=4)
    for _ in range(MAX_DEPTH + 2):
        data = pickle.dumps(Reduce(pickle.loads, data), protocol=4)
    result = scan(data)
    assert any("nested deeper" in c for c in constructs(result))


def test_payload_after_a_benign_prefix():
    prefix = {"weights": np.zeros(1000), "names": [f"f{i}" for i in range(200)]}
    data = pickle.dumps([prefix, Reduce(os.system, "true")], protocol=4)
    result = scan(data)
    assert rules(result) == {"MLW-SUP-001"}
    assert int(result.issues[0].location.lstrip("@")) > len(data) // 2


def test_payload_result_popped_is_still_caught():
    data = P4 + call(sg("os", "system"), u("true")) + b"0N" + STOP
    assert "os.system" in constructs(scan(data))


@pytest.mark.parametrize("cut", [1, 2, 8])
def test_truncated_after_the_dangerous_opcode(cut):
    full = P4 + call(sg("os", "system"), u("true")) + STOP
    stop_global = full.index(b"\x93") + 1
    data = full[: stop_global + cut - 1]
    result = scan(data)
    assert "os.system" in constructs(result)
    assert not result.complete and "truncated" in result.error and "model.pkl" in result.error


def test_truncated_benign_stream_is_incomplete_without_issues():
    data = pickle.dumps(np.arange(100.0), protocol=4)
    result = scan(data[: len(data) // 2])
    assert result.issues == [] and not result.complete and result.error


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (P4 + b"h\x05" + STOP, "memo key 5"),
        (P4 + b"t" + STOP, "MARK"),
        (P4 + b"R" + STOP, "underflow"),
        (P4 + b"\xff" + STOP, "invalid pickle opcode 0xff"),
        (b"\x80\x09N.", "unsupported pickle protocol 9"),
        (P4 + b"\x95" + struct.pack("<Q", 1 << 40) + b"N.", "truncated"),
        (P4 + b"X" + struct.pack("<I", 10) + b"abc", "truncated"),
        (P4 + b"\x8c\x02\xff\xfe" + STOP, "UTF-8"),
        (b"", "truncated"),
    ],
)
def test_malformed_streams_stop_with_an_error(data, message):
    result = scan(data)
    assert not result.complete and message in result.error


def test_stacked_pickles_end_offset():
    first = pickle.dumps([1, 2], protocol=2)
    second = pickle.dumps(Reduce(os.system, "true"), protocol=2)
    result = scan(first + second)
    assert result.complete and result.end == len(first) and result.issues == []
    rest = scan_pickle(memoryview(first + second)[result.end :], path="x", base_offset=result.end)
    assert rest.issues and rest.issues[0].location == f"@{len(first) + 2}"


def test_stop_inside_a_frame_is_a_parser_differential():
    body = b"N." + b"N" * 5
    data = P4 + b"\x95" + struct.pack("<Q", len(body)) + body
    result = scan(data)
    assert rules(result) == {"MLW-SUP-008"}
    assert result.end == len(data)  # file-based loaders resume after the frame


# ---------------------------------------------------------------- joblib
def _joblib_bytes(obj, protocol=4) -> bytes:
    buf = io.BytesIO()
    joblib.dump(obj, buf, protocol=protocol)
    return buf.getvalue()


def test_joblib_object_array_with_a_payload():
    arr = np.array([Reduce(os.system, "true"), 1], dtype=object)
    data = _joblib_bytes({"a": np.arange(3.0), "o": arr})
    result = scan(data, joblib_frames=True)
    assert {"MLW-SUP-004", "MLW-SUP-001"} <= rules(result)
    assert result.end == len(data)


def test_joblib_payload_after_an_array_is_found():
    data = _joblib_bytes([np.arange(1000.0), Reduce(os.system, "true")])
    result = scan(data, joblib_frames=True)
    assert rules(result) == {"MLW-SUP-001"} and result.complete


def test_joblib_without_frames_flag_loses_track_but_fails_closed():
    data = _joblib_bytes([np.arange(1000.0), 1])
    result = scan(data)  # array bytes read as opcodes: never "clean and complete"
    assert result.issues or not result.complete or result.end != len(data)


def test_joblib_wrapper_with_an_unresolvable_dtype_fails_closed():
    data = _joblib_bytes(np.arange(4.0))
    bad = data.replace(b"\x8c\x02f8", b"\x8c\x02q8")
    assert bad != data
    result = scan(bad, joblib_frames=True)
    assert not result.complete and "dtype" in result.error


@pytest.mark.parametrize(
    "make",
    [
        lambda w: call(sg("copyreg", "__newobj__"), w),  # an instance without NEWOBJ
        lambda w: call(sg("numpy.random._pickle", "__bit_generator_ctor"), w),  # a factory
        lambda w: call(w, sg("numpy", "ndarray"), b"N", b"N", b"N"),  # __init__ via REDUCE
        lambda w: b"}" + u("w") + w + b"s",  # stored in a dict
    ],
)
def test_joblib_wrapper_built_an_unusual_way_fails_closed(make):
    wrapper = sg("joblib.numpy_pickle", "NumpyArrayWrapper")
    data = P4 + make(wrapper) + b"}" + b"b" + STOP
    result = scan(data, joblib_frames=True)
    assert not result.complete and "joblib" in result.error


def test_joblib_array_inside_a_frame_is_malformed():
    data = _joblib_bytes(np.arange(4.0), protocol=4)
    i = data.index(b"b", data.index(b"numpy_array_alignment_bytes"))  # the wrapper's BUILD
    frame_at = data.rindex(b"\x95", 0, i)
    (size,) = struct.unpack_from("<Q", data, frame_at + 1)
    grown = data[: frame_at + 1] + struct.pack("<Q", size + 1) + data[frame_at + 9 :]
    result = scan(grown, joblib_frames=True)
    assert "MLW-SUP-008" in rules(result) and not result.complete


# ------------------------------------------------------------- robustness
def test_large_byte_strings_are_skipped_fast():
    size, count = 100_000_000, 3  # a 300 MB pickle: [b"...", b"...", b"..."]
    head = P4 + b"("
    item = b"\x8e" + struct.pack("<Q", size)
    data = bytearray(len(head) + count * (len(item) + size) + 2)
    data[: len(head)] = head
    at = len(head)
    for _ in range(count):
        data[at : at + len(item)] = item
        at += len(item) + size
    data[at:] = b"l."
    start = time.perf_counter()
    result = scan_pickle(memoryview(data), path="big.pkl")
    assert time.perf_counter() - start < 0.2
    assert result.issues == [] and result.complete and result.end == len(data)


@pytest.mark.parametrize("protocol", [0, 1])
def test_long_protocol0_lines(protocol):
    data = pickle.dumps({"w": np.arange(50_000.0), "s": "x" * 100_000}, protocol=protocol)
    assert_clean(scan(data), data)
    assert_clean(scan_pickle(memoryview(data), path="x"), data)
    inner = pickle.dumps([Reduce(os.system, "true"), "y" * 5000], protocol=2)
    outer = pickle.dumps(Reduce(pickle.loads, inner), protocol=0)
    assert {"MLW-SUP-001", "MLW-SUP-004"} <= rules(scan(outer))


def test_out_of_band_buffers():
    data = pickle.dumps(np.arange(10.0), protocol=5, buffer_callback=lambda _: False)
    assert b"\x97" in data  # NEXT_BUFFER
    assert_clean(scan(data), data)


def test_memoryview_input_is_not_copied():
    data = bytearray(pickle.dumps({"w": bytes(10_000_000)}, protocol=4))
    result = scan_pickle(memoryview(data), path="x")
    assert_clean(result, bytes(data))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data):
    result = scan(b"\x80\x04" + data)
    assert isinstance(result, PickleScan)
    assert result.complete or result.error


_BASE = pickle.dumps({"a": [1, 2.5, "x"], "b": np.arange(3)}, protocol=4)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(_BASE) - 1), st.integers(0, 255))
def test_mutated_pickles_never_crash(index, value):
    data = bytearray(_BASE)
    data[index] = value
    result = scan(bytes(data))
    assert result.complete or result.error
