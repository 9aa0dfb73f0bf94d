"""Regenerate ``src/mlwarden/supplychain/data/allowlist.json``.

Usage::

    .venv/bin/python scripts/build_allowlist.py            # write the file
    .venv/bin/python scripts/build_allowlist.py --check    # exit 1 if it would change

The allowlist is what mlwarden's pickle scanner and restricted unpickler accept; a
global that is not on it is refused (fail closed). It is generated, never edited by
hand, and the diff of every regeneration is reviewed like code.

Review rules
------------
A global may be on the allowlist only if importing it and calling it with arguments
chosen by an attacker can do nothing but build in-memory data:

1. **Sources.** Names come from (a) a short hand-written core (plain builtin data
   types, ``collections``/``datetime``/``decimal``/``fractions``/``uuid`` value types,
   ``argparse.Namespace``, the ``copyreg`` reconstructors pickle itself emits,
   ``_codecs.encode`` for protocol-2 bytes, ``functools.partial``), (b) introspection
   of *classes* in NumPy, SciPy (sparse, stats, interpolate, spatial), scikit-learn,
   pandas, pyarrow array types and torch (``nn`` modules, parameters, optimisers, and
   ``torch._weights_only_unpickler``'s own allowlist), (c) NumPy/SciPy *ufuncs*
   (pure element-wise math), (d) pickle helper functions of those libraries
   (``__pyx_unpickle_*``, ``_unpickle*``, ``_new_*``, ``_reconstruct``,
   ``_rebuild_*``), (e) the score functions of ``sklearn.metrics`` and
   ``sklearn.feature_selection`` (stored by ``make_scorer``/``SelectKBest``), and (f)
   every global recorded by mlwarden's own scanner while pickling representative real
   objects (fitted estimators, arrays, frames, sparse matrices, torch checkpoints) in
   protocols 0 to 5.
2. **Exclusions (always win).** Anything the shipped denylist matches; anything in a
   module with a path segment ``io``, ``testing``, ``tests``, ``_testing``,
   ``externals``, ``datasets``, ``compat``, ``computation``, ``plotting``, ``util``
   (pandas), ``f2py``, ``distutils``, ``ctypeslib``, ``npyio``, ``format``,
   ``_datasource``, ``hub``, ``jit``, ``fx``, ``package``, ``cpp_extension``; any
   *function* whose name suggests I/O, code or processes (``load``, ``save``,
   ``read``, ``write``, ``dump``, ``open``, ``eval``, ``exec``, ``compile``,
   ``system``, ``fetch``, ``download``, ``from_file``, ``fromfile``, ``to_``); and
   ``builtins.getattr`` (handled statically by the scanner, never allowed as a value).
   ``functools.partial`` is kept: it only stores a callable, which is itself decided
   by the allowlist, so it adds no capability beyond calling an allowed callable.
   ``operator.attrgetter``/``methodcaller``, ``numpy.memmap``, ``numpy.load``,
   ``pandas.read_*``, ``pandas.eval`` and ``torch.load`` are excluded.
3. **No attribute walks.** Dotted qualified names (``zoneinfo.ZoneInfo._unpickle``)
   are kept only when a real pickle of a representative object needs them.
4. **Aliases.** For every ``numpy._core.X`` name the NumPy 1.x spelling
   ``numpy.core.X`` is added, so files written by NumPy 1 still load.

The output is sorted, one name per line, with the library versions it was generated
with, so that a review sees exactly which names appeared or disappeared.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import decimal
import fractions
import functools
import importlib
import inspect
import io
import json
import pickle
import pkgutil
import re
import sys
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mlwarden.supplychain.allowlist import deny_entry  # noqa: E402
from mlwarden.supplychain.pickle_scan import scan_pickle  # noqa: E402

OUT = ROOT / "src" / "mlwarden" / "supplychain" / "data" / "allowlist.json"
VERSION = "1"

CORE = [
    "builtins.Ellipsis",
    "builtins.NotImplemented",
    "builtins.bool",
    "builtins.bytearray",
    "builtins.bytes",
    "builtins.complex",
    "builtins.dict",
    "builtins.float",
    "builtins.frozenset",
    "builtins.int",
    "builtins.list",
    "builtins.object",
    "builtins.range",
    "builtins.set",
    "builtins.slice",
    "builtins.str",
    "builtins.tuple",
    "_codecs.encode",
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.Counter",
    "collections.deque",
    "datetime.date",
    "datetime.datetime",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "datetime.tzinfo",
    "decimal.Decimal",
    "fractions.Fraction",
    "uuid.UUID",
    "argparse.Namespace",
    "types.SimpleNamespace",
    "functools.partial",
    "zoneinfo.ZoneInfo",
    "array.array",
    "array._array_reconstructor",
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "numpy.core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
]

NUMPY_FUNCTIONS = [
    "abs", "absolute", "amax", "amin", "argmax", "argmin", "argsort", "around", "average",
    "clip", "cumprod", "cumsum", "max", "mean", "median", "min", "nan_to_num", "nanmax",
    "nanmean", "nanmedian", "nanmin", "nanstd", "nansum", "percentile", "prod", "quantile",
    "ravel", "round", "sort", "squeeze", "std", "sum", "transpose", "var",
]  # fmt: skip

EXCLUDED_SEGMENTS = frozenset(
    {
        "io", "testing", "tests", "_testing", "externals", "datasets", "compat",
        "computation", "plotting", "f2py", "distutils", "ctypeslib", "npyio", "_npyio_impl",
        "format", "_datasource", "hub", "jit", "fx", "package", "cpp_extension", "conftest",
        "_build_utils", "_show_versions", "__check_build", "_pyinstaller", "benchmarks",
        "_print_versions", "_distributor_init", "_lib", "data",
    }
)  # fmt: skip
RISKY_FUNCTION = re.compile(
    r"(^|_)(load|loads|save|read|write|dump|dumps|open|eval|exec|compile|system|popen|spawn"
    r"|fetch|download|from_?file|import)(_|$)|^to_"
)
HELPER_FUNCTION = re.compile(
    r"^(__pyx_unpickle_.*|_unpickle.*|.*_unpickle|_new_.*|_reconstruct|_rebuild_.*|"
    r"__[a-z_]+_ctor)$"
)


def _segments_ok(module: str) -> bool:
    parts = module.split(".")
    if parts[0] == "pandas" and "util" in parts:
        return False
    return not (set(parts) & EXCLUDED_SEGMENTS)


def _walk(package: str, skip: Callable[[str], bool] = lambda _: False) -> Iterator[ModuleType]:
    """Import ``package`` and its submodules (skipping excluded segments)."""
    root = importlib.import_module(package)
    yield root
    paths = getattr(root, "__path__", None)
    if paths is None:
        return
    for info in pkgutil.walk_packages(paths, prefix=package + "."):
        name = info.name
        if not _segments_ok(name) or skip(name):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mod = importlib.import_module(name)
        except Exception:  # optional dependencies, platform-specific modules
            continue
        yield mod


def _classes(modules: Iterable[ModuleType]) -> set[str]:
    out: set[str] = set()
    for mod in modules:
        for value in list(vars(mod).values()):
            if not inspect.isclass(value):
                continue
            module = getattr(value, "__module__", None)
            qual = getattr(value, "__qualname__", "")
            if not isinstance(module, str) or not isinstance(qual, str) or "." in qual:
                continue
            if module.split(".")[0] != mod.__name__.split(".")[0]:
                continue
            out.add(f"{module}.{qual}")
    return out


def _helpers(modules: Iterable[ModuleType]) -> set[str]:
    out: set[str] = set()
    for mod in modules:
        for key, value in list(vars(mod).items()):
            if not callable(value) or inspect.isclass(value) or not HELPER_FUNCTION.match(key):
                continue
            module = getattr(value, "__module__", None) or mod.__name__
            if module.split(".")[0] == mod.__name__.split(".")[0]:
                out.add(f"{module}.{key}")
    return out


def _ufuncs(mod: ModuleType, ufunc_type: type) -> set[str]:
    out = set()
    for key, value in vars(mod).items():
        if isinstance(value, ufunc_type) and not key.startswith("_"):
            out.add(f"{mod.__name__}.{key}")
    return out


def _public_functions(mod: ModuleType) -> set[str]:
    out = set()
    for key in getattr(mod, "__all__", []):
        value = getattr(mod, key, None)
        if inspect.isfunction(value) and not key.startswith("_"):
            out.add(f"{value.__module__}.{value.__qualname__}")
    return out


# ---------------------------------------------------------------- recorded objects
def _record(objs: Iterable[Any]) -> set[str]:
    out: set[str] = set()
    for obj in objs:
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            try:
                data = pickle.dumps(obj, protocol=proto)
            except Exception:
                continue
            scan = scan_pickle(data, path="<build>")
            if not scan.complete:
                raise SystemExit(f"scanner failed on {type(obj).__name__}: {scan.error}")
            out.update(scan.globals)
    return out


def _record_torch(objs: Iterable[Any]) -> set[str]:
    import torch

    out: set[str] = set()
    for obj in objs:
        buf = io.BytesIO()
        torch.save(obj, buf)
        with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
            name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
            scan = scan_pickle(zf.read(name), path="<build>")
        out.update(scan.globals)
        legacy = io.BytesIO()
        torch.save(obj, legacy, _use_new_zipfile_serialization=False)
        data = memoryview(legacy.getvalue())
        offset = 0
        for _ in range(5):  # magic, protocol, sys_info, object, storage keys
            scan = scan_pickle(data[offset:], path="<build>")
            out.update(scan.globals)
            offset += scan.end
    return out


def _sklearn_objects() -> list[Any]:
    import numpy as np
    import pandas as pd
    from sklearn import (
        calibration,
        cluster,
        compose,
        decomposition,
        discriminant_analysis,
        dummy,
        ensemble,
        feature_extraction,
        feature_selection,
        gaussian_process,
        impute,
        isotonic,
        kernel_approximation,
        linear_model,
        metrics,
        model_selection,
        multiclass,
        multioutput,
        naive_bayes,
        neighbors,
        neural_network,
        pipeline,
        preprocessing,
        svm,
        tree,
    )
    from sklearn.datasets import make_classification, make_regression

    X, y = make_classification(n_samples=120, n_features=6, n_informative=4, random_state=0)
    Xr, yr = make_regression(n_samples=120, n_features=6, random_state=0)
    y3 = np.arange(120) % 3
    df = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
    df["cat"] = np.array(["x", "y", "z"])[y3]
    df.loc[::7, "a"] = np.nan
    texts = ["the cat sat", "a dog ran", "cats and dogs", "the end"] * 30
    est: list[Any] = [
        linear_model.LogisticRegression(max_iter=200).fit(X, y),
        linear_model.SGDClassifier(random_state=0).fit(X, y),
        linear_model.Ridge().fit(Xr, yr),
        linear_model.Lasso().fit(Xr, yr),
        linear_model.ElasticNet().fit(Xr, yr),
        ensemble.RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y),
        ensemble.ExtraTreesRegressor(n_estimators=3, random_state=0).fit(Xr, yr),
        ensemble.GradientBoostingClassifier(n_estimators=3).fit(X, y3),
        ensemble.HistGradientBoostingClassifier(max_iter=3).fit(X, y3),
        ensemble.HistGradientBoostingRegressor(max_iter=3).fit(Xr, yr),
        ensemble.IsolationForest(n_estimators=3, random_state=0).fit(X),
        ensemble.AdaBoostClassifier(n_estimators=3).fit(X, y),
        ensemble.BaggingClassifier(n_estimators=3).fit(X, y),
        ensemble.VotingClassifier(
            [("lr", linear_model.LogisticRegression()), ("nb", naive_bayes.GaussianNB())],
            voting="soft",
        ).fit(X, y),
        ensemble.StackingClassifier([("t", tree.DecisionTreeClassifier(max_depth=2))], cv=2).fit(
            X, y
        ),
        tree.DecisionTreeRegressor(max_depth=3).fit(Xr, yr),
        pipeline.Pipeline(
            [
                (
                    "ct",
                    compose.ColumnTransformer(
                        [
                            (
                                "num",
                                pipeline.make_pipeline(
                                    impute.SimpleImputer(), preprocessing.StandardScaler()
                                ),
                                ["a", "b", "c"],
                            ),
                            ("cat", preprocessing.OneHotEncoder(), ["cat"]),
                        ]
                    ),
                ),
                ("lr", linear_model.LogisticRegression()),
            ]
        ).fit(df, y),
        neural_network.MLPClassifier(hidden_layer_sizes=(4,), max_iter=20).fit(X, y),
        svm.SVC(probability=True).fit(X, y),
        svm.LinearSVC().fit(X, y),
        svm.OneClassSVM().fit(X),
        cluster.KMeans(n_clusters=2, n_init=1, random_state=0).fit(X),
        cluster.MiniBatchKMeans(n_clusters=2, n_init=1, random_state=0).fit(X),
        cluster.DBSCAN().fit(X),
        cluster.Birch(n_clusters=2).fit(X),
        calibration.CalibratedClassifierCV(linear_model.LogisticRegression(), cv=2).fit(X, y),
        neighbors.KNeighborsClassifier(algorithm="kd_tree").fit(X, y),
        neighbors.KNeighborsClassifier(algorithm="ball_tree").fit(X, y),
        neighbors.KernelDensity().fit(X),
        neighbors.LocalOutlierFactor(novelty=True).fit(X),
        naive_bayes.GaussianNB().fit(X, y),
        naive_bayes.MultinomialNB().fit(np.abs(X), y),
        decomposition.PCA(n_components=2).fit(X),
        decomposition.TruncatedSVD(n_components=2).fit(X),
        decomposition.NMF(n_components=2, max_iter=20).fit(np.abs(X)),
        decomposition.KernelPCA(n_components=2).fit(X),
        discriminant_analysis.LinearDiscriminantAnalysis().fit(X, y),
        discriminant_analysis.QuadraticDiscriminantAnalysis(reg_param=0.1).fit(X, y),
        dummy.DummyClassifier().fit(X, y),
        gaussian_process.GaussianProcessClassifier().fit(X[:40], y[:40]),
        isotonic.IsotonicRegression().fit(X[:, 0], yr),
        kernel_approximation.Nystroem(n_components=5).fit(X),
        kernel_approximation.RBFSampler().fit(X),
        preprocessing.FunctionTransformer(np.log1p).fit(np.abs(X)),
        preprocessing.PolynomialFeatures().fit(X),
        preprocessing.QuantileTransformer(n_quantiles=10).fit(X),
        preprocessing.PowerTransformer().fit(X),
        preprocessing.KBinsDiscretizer(n_bins=3).fit(X),
        preprocessing.SplineTransformer().fit(X),
        preprocessing.OrdinalEncoder().fit(df[["cat"]]),
        preprocessing.LabelEncoder().fit(df["cat"]),
        preprocessing.TargetEncoder().fit(df[["cat"]], y),
        preprocessing.MinMaxScaler().fit(X),
        preprocessing.RobustScaler().fit(X),
        feature_selection.SelectKBest(k=2).fit(X, y),
        feature_selection.VarianceThreshold().fit(X),
        multiclass.OneVsRestClassifier(linear_model.LogisticRegression()).fit(X, y3),
        multioutput.MultiOutputClassifier(linear_model.LogisticRegression()).fit(X, np.c_[y, y]),
        pipeline.make_pipeline(
            feature_extraction.text.TfidfVectorizer(), linear_model.LogisticRegression()
        ).fit(texts, np.arange(len(texts)) % 2),
        feature_extraction.text.CountVectorizer().fit(texts),
        feature_extraction.DictVectorizer().fit([{"a": 1}, {"b": 2}]),
        model_selection.GridSearchCV(
            linear_model.LogisticRegression(),
            {"C": [0.1, 1.0]},
            cv=2,
            scoring=metrics.make_scorer(metrics.f1_score),
        ).fit(X, y),
        compose.TransformedTargetRegressor(
            regressor=linear_model.Ridge(), func=np.log1p, inverse_func=np.expm1
        ).fit(np.abs(Xr), np.abs(yr)),
        metrics.get_scorer("roc_auc"),
    ]
    return est


def _data_objects() -> list[Any]:
    import argparse as ap

    import numpy as np
    import pandas as pd
    import scipy.interpolate
    import scipy.sparse as sp
    import scipy.spatial
    import scipy.stats

    arrays: list[Any] = [
        np.zeros(3, dtype=d)
        for d in [
            "?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "g",
            "c8", "c16", "U5", "S5", "M8[ns]", "m8[s]", "O", ">f8",
            [("a", "<i8"), ("b", "<f8")], [("a", "<i8"), ("o", "O")], ("f8", (2, 2)),
        ]
    ]  # fmt: skip
    arrays += [
        np.arange(6.0).reshape(2, 3).T,
        np.ma.masked_array([1.0, 2.0], mask=[False, True]),
        np.matrix([[1, 2]]),
        np.float64(1.0), np.int64(2), np.bool_(True), np.str_("s"), np.bytes_(b"b"),
        np.datetime64("2020-01-01"), np.timedelta64(3, "D"), np.complex128(1j),
        np.dtype("f8"), np.random.default_rng(0), np.random.RandomState(0),
        np.random.Generator(np.random.PCG64DXSM(0)), np.random.MT19937(0),
        np.random.Philox(0), np.random.SFC64(0), np.random.SeedSequence(0),
        np.array(["a", None, 1.5], dtype=object), np.poly1d([1, 2]),
    ]  # fmt: skip
    frames: list[Any] = []
    df = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [1.0, np.nan, 3.0],
            "b": [True, False, True],
            "o": ["x", None, "z"],
            "s": pd.array(["x", "y", None], dtype="string"),
            "sp": pd.array(["x", "y", None], dtype="string[python]"),
            "c": pd.Categorical(["u", "v", "u"]),
            "co": pd.Categorical(["u", "v", "u"], ordered=True),
            "d": pd.date_range("2020", periods=3),
            "du": pd.date_range("2020", periods=3, tz="UTC"),
            "dz": pd.date_range("2020", periods=3, tz="Europe/Paris"),
            "dt": pd.date_range("2020", periods=3, tz=datetime.UTC),
            "td": pd.to_timedelta([1, 2, 3], unit="s"),
            "p": pd.period_range("2020-01", periods=3, freq="M"),
            "iv": pd.interval_range(0, 3),
            "I": pd.array([1, None, 3], dtype="Int64"),
            "B": pd.array([True, None, False], dtype="boolean"),
            "F": pd.array([1.5, None, 3.0], dtype="Float64"),
            "sparse": pd.arrays.SparseArray([0, 0, 1]),
        }
    )
    frames += [
        df,
        df.set_index(["i", "o"]),
        df["f"],
        pd.Series([1, 2], index=pd.date_range("2020", periods=2, freq="D")),
        pd.Timestamp("2020-01-01"), pd.Timestamp("2020", tz="UTC"), pd.Timedelta(1, "s"),
        pd.Period("2020-01", "M"), pd.Interval(0, 1), pd.offsets.MonthEnd(2),
        pd.offsets.Day(), pd.offsets.BusinessDay(), pd.offsets.Hour(), pd.NaT, pd.NA,
        pd.CategoricalDtype(["a", "b"]), pd.RangeIndex(3), pd.Index([1.0, 2.0]),
        pd.MultiIndex.from_product([[1, 2], ["a", "b"]]),
        pd.array(["a"], dtype="string[pyarrow]") if _has_pyarrow() else None,
    ]  # fmt: skip
    m = sp.random(5, 5, density=0.3, random_state=0)
    sparse: list[Any] = [m.tocsr(), m.tocsc(), m.tocoo(), m.tolil(), m.todok(), m.tobsr(),
                         m.todia(), sp.csr_array(m), sp.csc_array(m), sp.coo_array(m)]  # fmt: skip
    misc: list[Any] = [
        collections.OrderedDict(a=1), collections.defaultdict(list, a=[1]),
        collections.Counter("aab"), collections.deque([1]), datetime.datetime(2020, 1, 1),
        datetime.date(2020, 1, 1), datetime.time(1), datetime.timedelta(1),
        datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC), decimal.Decimal("1.5"),
        fractions.Fraction(1, 3), uuid.UUID(int=1), ap.Namespace(a=1), {1, 2}, frozenset({1}),
        b"bytes", bytearray(b"x"), 1j, range(3), slice(1, 2), ..., NotImplemented,
        functools.partial(max, 1), scipy.stats.norm(0, 1), scipy.stats.norm,
        scipy.interpolate.interp1d([0, 1], [0, 1]), scipy.spatial.cKDTree([[0.0], [1.0]]),
        scipy.spatial.KDTree([[0.0], [1.0]]),
    ]  # fmt: skip
    return [o for o in arrays + frames + sparse + misc if o is not None]


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _torch_objects() -> list[Any]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    seq = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Dropout(0.1), nn.Linear(8, 4), nn.LayerNorm(4), nn.GELU(), nn.Tanh(),
        nn.Sigmoid(), nn.Softmax(dim=1), nn.Linear(4, 2),
    )  # fmt: skip
    rnn = nn.ModuleDict({"lstm": nn.LSTM(3, 4), "gru": nn.GRU(3, 4), "emb": nn.Embedding(5, 3)})
    enc = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)
    enc_gelu = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, activation="gelu")
    adam = torch.optim.Adam(seq.parameters())
    seq(torch.zeros(1, 1, 6, 6)).sum().backward()
    adam.step()
    sgd = torch.optim.SGD(seq.parameters(), lr=0.1, momentum=0.9)
    tensors = {
        str(d): torch.zeros(2, dtype=d)
        for d in [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8,
                  torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool,
                  torch.complex64]
    }  # fmt: skip
    return [
        seq.state_dict(), seq, rnn, rnn.state_dict(), enc, enc_gelu,
        {"model": seq.state_dict(), "optimizer": adam.state_dict(), "epoch": 3,
         "sgd": sgd.state_dict()},
        tensors, nn.Parameter(torch.ones(2)), torch.Size([2, 3]), torch.device("cpu"),
        torch.zeros(3, 3).to_sparse(), torch.float32, torch.zeros(4)[1:3],
    ]  # fmt: skip


# ------------------------------------------------------------------------- build
def build() -> tuple[dict[str, Any], list[str]]:
    import numpy as np
    import pandas as pd
    import scipy
    import sklearn
    import torch

    names: set[str] = set(CORE)
    # numpy
    numpy_mods = [importlib.import_module(m) for m in (
        "numpy", "numpy.dtypes", "numpy.random", "numpy.ma", "numpy.ma.core", "numpy.polynomial",
        "numpy.polynomial.polynomial", "numpy.polynomial.chebyshev", "numpy.polynomial.legendre",
        "numpy.polynomial.hermite", "numpy.polynomial.hermite_e", "numpy.polynomial.laguerre",
        "numpy.random._pickle", "numpy._core.multiarray", "numpy._core.numeric",
        "numpy.matrixlib.defmatrix", "numpy.random.mtrand", "numpy.random.bit_generator",
        "numpy.random._generator", "numpy.random._mt19937", "numpy.random._pcg64",
        "numpy.random._philox", "numpy.random._sfc64",
    )]  # fmt: skip
    names |= _classes(numpy_mods) | _helpers(numpy_mods) | _ufuncs(np, np.ufunc)
    names |= {f"numpy.{f}" for f in NUMPY_FUNCTIONS}
    # scipy
    scipy_mods: list[ModuleType] = []
    for pkg in ("scipy.sparse", "scipy.stats", "scipy.interpolate", "scipy.spatial"):
        scipy_mods += list(_walk(pkg, skip=lambda n: "linalg" in n.split(".")[-1]))
    import scipy.special

    names |= _classes(scipy_mods) | _helpers(scipy_mods)
    names |= {
        n.replace("scipy.special.", "scipy.special._ufuncs.")
        for n in _ufuncs(scipy.special, np.ufunc)
    }
    names |= _ufuncs(scipy.special, np.ufunc)
    # scikit-learn
    sk_mods = list(_walk("sklearn"))
    names |= _classes(sk_mods) | _helpers(sk_mods)
    import sklearn.feature_selection
    import sklearn.metrics
    import sklearn.metrics.pairwise

    for mod in (sklearn.metrics, sklearn.metrics.pairwise, sklearn.feature_selection):
        names |= _public_functions(mod)
    # pandas
    pd_mods = list(_walk("pandas"))
    names |= _classes(pd_mods) | _helpers(pd_mods)
    # torch
    import torch._weights_only_unpickler as wo
    import torch.nn.functional as F  # noqa: N812

    names |= set(wo._get_allowed_globals())
    torch_mods = list(_walk("torch.nn.modules")) + [
        importlib.import_module(m) for m in ("torch.nn.parameter", "torch.optim", "torch")
    ]
    torch_mods += list(_walk("torch.optim"))
    torch_classes = {n for n in _classes(torch_mods) if n.startswith(("torch.nn.", "torch.optim."))}
    names |= torch_classes
    for key in getattr(F, "__all__", dir(F)):
        value = getattr(F, key, None)
        if callable(value) and not key.startswith("_") and not inspect.isclass(value):
            module = getattr(value, "__module__", None) or "torch.nn.functional"
            if module in ("torch.nn.functional", "torch._C._nn"):  # not overrides/_jit_internal
                names.add(f"{module}.{key}")
    names |= {f"torch.{k}" for k, v in vars(torch).items() if isinstance(v, torch.dtype)}
    # recorded from real pickles
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recorded = _record(_sklearn_objects() + _data_objects()) | _record_torch(_torch_objects())
    names |= recorded
    # numpy 1.x spellings
    names |= {
        "numpy.core." + n[len("numpy._core.") :] for n in names if n.startswith("numpy._core.")
    }

    kept: set[str] = set()
    dropped: list[str] = []
    for name in names:
        why = _excluded(name)
        if why:
            dropped.append(f"{name}: {why}")
        else:
            kept.add(name)
    missing = sorted(n for n in recorded if n not in kept and n != "builtins.getattr")
    out = {
        "version": VERSION,
        "generated_with": {
            "python": ".".join(map(str, sys.version_info[:3])),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "pandas": pd.__version__,
            "torch": torch.__version__,
            "joblib": importlib.import_module("joblib").__version__,
            "pyarrow": _version("pyarrow"),
        },
        "globals": sorted(kept),
        "modules_prefix": [],
    }
    notes = sorted(dropped)
    if missing:
        notes.append("recorded from benign pickles but excluded: " + ", ".join(missing))
    return out, notes


def _version(module: str) -> str:
    try:
        return str(importlib.import_module(module).__version__)
    except ImportError:
        return "absent"


RECORDED_EXCEPTIONS = {
    # name: why a name the rules would drop is safe and needed by real pickles
    "scipy._lib.array_api_compat.numpy._aliases.asarray": (
        "numpy.asarray wrapper that scipy.interpolate.BSpline stores (SplineTransformer)"
    ),
}


def _excluded(name: str) -> str:
    if name in CORE or name in RECORDED_EXCEPTIONS:
        return ""
    if name == "builtins.getattr":
        return "resolved statically by the scanner, never allowed as a value"
    if deny_entry(name) is not None:
        return "on the denylist"
    module, _, leaf = name.rpartition(".")
    if not _segments_ok(module):
        return "module excluded by the review rules"
    if leaf.startswith("__") and leaf.endswith("__") and not HELPER_FUNCTION.match(leaf):
        return "dunder"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj: Any = importlib.import_module(module.split(".")[0])
            for part in name.split(".")[1:]:
                obj = getattr(obj, part)
    except Exception:
        obj = None
        try:
            mod = importlib.import_module(module)
            obj = getattr(mod, leaf)
        except Exception:
            pass
    import numpy as np

    pure = inspect.isclass(obj) or isinstance(obj, np.ufunc)
    if not pure and RISKY_FUNCTION.search(leaf) and not HELPER_FUNCTION.match(leaf):
        return "function name suggests I/O, code or processes"
    return ""


def render(out: dict[str, Any]) -> str:
    lines = ["{"]
    lines.append(f'  "version": {json.dumps(out["version"])},')
    lines.append('  "generated_with": {')
    items = list(out["generated_with"].items())
    for i, (k, v) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"    {json.dumps(k)}: {json.dumps(v)}{comma}")
    lines.append("  },")
    lines.append('  "modules_prefix": [],')
    lines.append('  "globals": [')
    names = out["globals"]
    for i, n in enumerate(names):
        comma = "," if i < len(names) - 1 else ""
        lines.append(f"    {json.dumps(n)}{comma}")
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file would change")
    parser.add_argument("--verbose", action="store_true", help="list the excluded names")
    args = parser.parse_args(argv)
    out, notes = build()
    text = render(out)
    if args.verbose:
        print("\n".join(notes))
    print(f"{len(out['globals'])} names; {len(notes)} excluded", file=sys.stderr)
    if args.check:
        old = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        old_names = set(json.loads(old)["globals"]) if old else set()
        new_names = set(out["globals"])
        if old_names != new_names:
            print("added:", sorted(new_names - old_names), file=sys.stderr)
            print("removed:", sorted(old_names - new_names), file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
