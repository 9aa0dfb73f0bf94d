"""OnnxTarget: skl2onnx classifiers (with and without ZipMap) and network-style graphs."""

from __future__ import annotations

import json

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
skl2onnx = pytest.importorskip("skl2onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from mlwarden.exceptions import (  # noqa: E402
    CapabilityError,
    IncompatibleModelError,
    InvalidParameterError,
    ModelLoadError,
)
from mlwarden.models import Capability  # noqa: E402
from mlwarden.models.onnx import OnnxTarget  # noqa: E402

W = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
B = np.array([0.1, -0.2, 0.3], dtype=np.float32)
XN = np.random.default_rng(1).normal(size=(10, 4))


def skl(est, x, zipmap: bool) -> onnx.ModelProto:
    return skl2onnx.to_onnx(est, x[:1].astype(np.float32), options={"zipmap": zipmap})


def net(
    head: str | None = None,
    w: np.ndarray = W,
    b: np.ndarray = B,
    input_dims=("N", 4),
    flatten: bool = False,
    in_type=TensorProto.FLOAT,
) -> onnx.ModelProto:
    """A linear "network" as torch.onnx.export writes it: x @ W + b, then an optional head.

    (Built by hand: torch's legacy exporter is deprecated and its first use takes ~0.6 s.)
    """
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    nodes = []
    src = "x"
    if in_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT))
        src = "xf"
    if flatten:
        nodes.append(helper.make_node("Flatten", [src], ["flat"], axis=1))
        src = "flat"
    nodes += [
        helper.make_node("MatMul", [src, "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["z"]),
    ]
    out = "z"
    if head == "softmax":
        nodes.append(helper.make_node("Softmax", ["z"], ["p"], axis=1))
        out = "p"
    elif head == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", ["z"], ["p"]))
        out = "p"
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", in_type, list(input_dims))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", w.shape[1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def logits_of(x, w=W, b=B):
    return x.astype(np.float32) @ w + b


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------ skl2onnx
@pytest.fixture(scope="module")
def lr_str(data3_str):
    X, y = data3_str
    return LogisticRegression(max_iter=500).fit(X, y)


@pytest.mark.parametrize("zipmap", [False, True])
def test_skl2onnx_classifier_agrees_with_sklearn(lr_str, data3_str, zipmap):
    X, _ = data3_str
    t = OnnxTarget(skl(lr_str, X, zipmap), name="lr")
    np.testing.assert_array_equal(t.classes, ["ant", "bee", "cat"])
    assert t.capabilities == Capability.LABELS | Capability.SCORES
    assert t.output == "probabilities" and t.kind == "onnx"
    x = X[:30]
    np.testing.assert_allclose(t.predict_proba(x), lr_str.predict_proba(x), atol=1e-5)
    np.testing.assert_array_equal(t.classes[t.predict(x)], lr_str.predict(x))
    assert t.n_queries == 60
    with pytest.raises(CapabilityError):
        t.logits(x)


def test_binary_forest_with_integer_labels(data3):
    X, y = data3
    yb = np.where(y == 0, 3, 7)
    rf = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, yb)
    t = OnnxTarget(skl(rf, X, zipmap=False))
    np.testing.assert_array_equal(t.classes, [3, 7])
    np.testing.assert_allclose(t.predict_proba(X[:20]), rf.predict_proba(X[:20]), atol=1e-5)
    np.testing.assert_array_equal(t.encode_labels([7, 3]), [1, 0])


def test_every_way_to_pass_the_model(lr_str, data3_str, tmp_path):
    X, _ = data3_str
    proto = skl(lr_str, X, zipmap=False)
    path = tmp_path / "lr.onnx"
    path.write_bytes(proto.SerializeToString())
    expected = lr_str.predict_proba(X[:5])
    for obj in (
        proto,
        proto.SerializeToString(),
        path,
        str(path),
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]),
        ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]),
    ):
        t = OnnxTarget(obj)
        np.testing.assert_array_equal(t.classes, ["ant", "bee", "cat"])
        np.testing.assert_allclose(t.predict_proba(X[:5]), expected, atol=1e-5)
    assert OnnxTarget(path).source == str(path)
    assert OnnxTarget(proto).source is None


def test_classes_from_metadata_and_from_the_caller():
    model = net()
    helper.set_model_props(model, {"mlwarden.classes": json.dumps(["x", "y", "z"])})
    assert list(OnnxTarget(model).classes) == ["x", "y", "z"]
    assert list(OnnxTarget(model, classes=[5, 6, 7]).classes) == [5, 6, 7]
    assert list(OnnxTarget(net()).classes) == [0, 1, 2]
    with pytest.raises(InvalidParameterError, match="2 classes given"):
        OnnxTarget(net(), classes=["a", "b"])
    helper.set_model_props(model, {"mlwarden.classes": "not json"})
    with pytest.raises(ModelLoadError, match=r"mlwarden\.classes"):
        OnnxTarget(model)


# ----------------------------------------------------------------- networks
def test_network_logits_are_detected():
    t = OnnxTarget(net())
    assert t.output == "logits"
    assert Capability.LOGITS in t.capabilities
    np.testing.assert_allclose(t.logits(XN), logits_of(XN), atol=1e-5)
    np.testing.assert_allclose(t.predict_proba(XN), softmax(logits_of(XN)), atol=1e-5)
    np.testing.assert_array_equal(t.predict(XN), logits_of(XN).argmax(axis=1))


def test_network_probabilities_are_detected_and_output_can_be_forced():
    t = OnnxTarget(net("softmax"))
    assert t.output == "probabilities" and Capability.LOGITS not in t.capabilities
    np.testing.assert_allclose(t.predict_proba(XN), softmax(logits_of(XN)), atol=1e-5)
    forced = OnnxTarget(net(), output="probabilities")
    assert Capability.LOGITS not in forced.capabilities
    forced = OnnxTarget(net("softmax"), output="logits")
    assert Capability.LOGITS in forced.capabilities
    with pytest.raises(InvalidParameterError, match="output must be"):
        OnnxTarget(net(), output="scores")


def test_single_output_networks_are_binary():
    w, b = W[:, :1].copy(), B[:1].copy()
    z = logits_of(XN, w, b)[:, 0]
    t = OnnxTarget(net(w=w, b=b))
    assert t.output == "logits" and t.n_classes == 2
    np.testing.assert_allclose(t.logits(XN), np.column_stack([np.zeros_like(z), z]), atol=1e-5)
    s = OnnxTarget(net("sigmoid", w=w, b=b))
    assert s.output == "probabilities"
    np.testing.assert_allclose(s.predict_proba(XN)[:, 1], 1 / (1 + np.exp(-z)), atol=1e-5)


def test_image_input_shape():
    w = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32)
    t = OnnxTarget(net(w=w, input_dims=("N", 2, 2, 2), flatten=True))
    assert t.input_spec.shape == (2, 2, 2) and t.input_spec.n_features == 8
    x = np.random.default_rng(3).normal(size=(5, 8))
    np.testing.assert_allclose(t.logits(x), logits_of(x, w), atol=1e-5)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (net(input_dims=("N", "F")), "fixed sizes"),
        (net(in_type=TensorProto.INT64), "float or double"),
    ],
)
def test_unusable_inputs(model, match):
    with pytest.raises(InvalidParameterError, match=match):
        OnnxTarget(model)


def test_two_inputs_are_rejected():
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "two",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 2]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N", 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(InvalidParameterError, match="2 inputs"):
        OnnxTarget(model)


def test_bad_objects_and_inputs(tmp_path):
    with pytest.raises(InvalidParameterError, match="OnnxTarget needs"):
        OnnxTarget(42)
    with pytest.raises(ModelLoadError, match="not a valid ONNX model"):
        OnnxTarget(b"\x08\x07garbage")
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelLoadError, match=r"nope\.onnx: model file not found"):
        OnnxTarget(missing)
    t = OnnxTarget(net())
    with pytest.raises(IncompatibleModelError, match="expects 4 features"):
        t.predict(XN[:, :3])
