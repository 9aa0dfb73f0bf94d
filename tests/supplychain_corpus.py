"""A corpus of model files for the scanner: benign files from real libraries and crafted
malicious ones, one per technique, plus broken and hostile edge files.

:func:`build_corpus` only *writes* files: nothing in it loads a model or unpickles
anything. Every malicious payload is harmless (``touch <dir>/PWNED`` through
``os.system``, an identity lambda, a template that would run ``true``): if the marker
file ever appears, something executed a payload. The benign files come from the real
libraries (scikit-learn, joblib, torch, pandas, NumPy, skops, skl2onnx/onnx, h5py) or
are written by hand in the exact layout those libraries use (safetensors, Keras
configs, GGUF).
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import marshal
import os
import pickle
import pickletools
import random
import shlex
import struct
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MARKER",
    "CorpusEntry",
    "build_corpus",
    "corrupt_crc",
    "gguf_bytes",
    "npy_bytes",
    "payload_pickle",
    "rules_of",
    "safetensors_bytes",
    "scan_bytes",
    "zip_bytes",
]

MARKER = "PWNED"
"""Name of the file the payloads would create if anything ran them."""


@dataclass(frozen=True)
class CorpusEntry:
    """One corpus file and what the scanner must say about it.

    Parameters
    ----------
    path : Path
        The file.
    technique : str
        What the file demonstrates (``pickle-proto2``, ``torch-zip-crc``, ...).
    expected : str
        ``safe``, ``unsafe`` or ``error``.
    rule : str or None
        For ``unsafe`` files, a rule id that must be among the issues.
    fmt : str or None
        The format the scanner must report (None: not checked).
    """

    path: Path
    technique: str
    expected: str
    rule: str | None = None
    fmt: str | None = None


class _Payload:
    """Pickles to ``os.system(cmd)``: unpickling would run the command."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.cmd,))


class _Nested:
    """Pickles to ``pickle.loads(inner)``: a pickle hidden inside a pickle."""

    def __init__(self, inner: bytes) -> None:
        self.inner = inner

    def __reduce__(self) -> tuple[Any, ...]:
        return (pickle.loads, (self.inner,))


def _cmd(root: Path) -> str:
    return f"touch {shlex.quote(str(root / MARKER))}"


def payload_pickle(root: Path, protocol: int = 4) -> bytes:
    """A pickle whose loading would create ``root/PWNED``."""
    return pickle.dumps(_Payload(_cmd(root)), protocol=protocol)


# ------------------------------------------------------------------- benign models
def _sklearn_models() -> dict[str, Any]:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return {
        "logreg": LogisticRegression().fit(X, y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
        "forest": RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0).fit(X, y),
    }


def _torch_objects() -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss = net(torch.randn(5, 4)).sum()
    loss.backward()
    opt.step()
    return {
        "net": net,
        "state_dict": net.state_dict(),
        "checkpoint": {
            "epoch": 3,
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "loss": float(loss.detach()),
        },
    }


# ---------------------------------------------------------------------- zip tools
def _zip_members(path: Path) -> list[tuple[str, bytes]]:
    """Read a zip archive's members (raw bytes, no unpickling)."""
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _write_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of some files
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            for name, data in members:
                zf.writestr(name, data)


def _corrupt_crc(path: Path, member: str) -> None:
    """Flip the CRC-32 of ``member`` in its local header and central directory entry."""
    path.write_bytes(corrupt_crc(path.read_bytes(), member))


def corrupt_crc(data: bytes, member: str) -> bytes:
    """``data`` (a zip archive) with the CRC-32 of ``member`` flipped everywhere."""
    raw = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(member)
    local = info.header_offset
    raw[local + 14 : local + 18] = struct.pack("<I", info.CRC ^ 0xDEADBEEF)
    pos = raw.find(b"PK\x01\x02")
    encoded = member.encode()
    while pos >= 0:
        n = struct.unpack("<H", raw[pos + 28 : pos + 30])[0]
        if bytes(raw[pos + 46 : pos + 46 + n]) == encoded:
            raw[pos + 16 : pos + 20] = struct.pack("<I", info.CRC ^ 0xDEADBEEF)
        pos = raw.find(b"PK\x01\x02", pos + 4)
    return bytes(raw)


# ------------------------------------------------------------------------ pickles
def _split_pickles(data: bytes, count: int) -> list[bytes]:
    """Cut ``count`` stacked pickles off the front of ``data`` (opcodes only)."""
    out = []
    pos = 0
    for _ in range(count):
        stream = io.BytesIO(data[pos:])
        for _op, _arg, _p in pickletools.genops(stream):
            pass
        end = stream.tell()
        out.append(data[pos : pos + end])
        pos += end
    out.append(data[pos:])
    return out


# --------------------------------------------------------------------------- GGUF
def _gguf_value(vtype: int, value: Any) -> bytes:
    fixed = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q"}
    if vtype in fixed:
        return struct.pack("<" + fixed[vtype], value)
    if vtype == 12:
        return struct.pack("<d", value)
    if vtype == 8:
        raw = value.encode()
        return struct.pack("<Q", len(raw)) + raw
    if vtype == 9:
        etype, items = value
        return struct.pack("<IQ", etype, len(items)) + b"".join(
            _gguf_value(etype, i) for i in items
        )
    raise ValueError(vtype)


def gguf_bytes(kvs: list[tuple[str, int, Any]], n_floats: int = 16, version: int = 3) -> bytes:
    """A GGUF file with the given metadata and one float32 tensor of ``n_floats``."""
    out = b"GGUF" + struct.pack("<IQQ", version, 1, len(kvs))
    for key, vtype, value in kvs:
        out += _gguf_value(8, key) + struct.pack("<I", vtype) + _gguf_value(vtype, value)
    out += _gguf_value(8, "token_embd.weight") + struct.pack("<IQIQ", 1, n_floats, 0, 0)
    out += b"\x00" * (-len(out) % 32)
    return out + struct.pack(f"<{n_floats}f", *range(n_floats))


CHATML_TEMPLATE = (
    "{%- set ns = namespace(found_system=false) -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{%- set ns.found_system = true -%}{%- endif -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% if message.tool_calls %}{{ message.tool_calls | tojson }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
SSTI_TEMPLATE = (  # the CVE-2024-34359 proof of concept, with a harmless command
    "{% for x in ().__class__.__base__.__subclasses__() %}"
    "{% if 'warning' in x.__name__ %}"
    "{{ x()._module.__builtins__['__import__']('os').popen('true').read() }}"
    "{% endif %}{% endfor %}"
)
SSTI_CONCAT_TEMPLATE = (  # no dunder spelled out anywhere: concatenation and |attr
    "{% set g = '__glo' ~ 'bals__' %}"
    "{{ (cycler.next|attr('__in' ~ 'it__')|attr(g))['o' ~ 's'].popen('true').read() }}"
    "{{ messages[0]['content'] }}"
)


def _gguf_kvs(template: str) -> list[tuple[str, int, Any]]:
    return [
        ("general.architecture", 8, "llama"),
        ("general.name", 8, "tiny-test"),
        ("llama.context_length", 4, 2048),
        ("llama.embedding_length", 4, 16),
        ("general.file_type", 4, 1),
        ("tokenizer.ggml.model", 8, "gpt2"),
        ("tokenizer.ggml.tokens", 9, (8, ["<s>", "</s>", "hello", "world"])),
        ("tokenizer.ggml.scores", 9, (6, [0.0, 0.0, -1.5, -2.5])),
        ("tokenizer.ggml.bos_token_id", 4, 0),
        ("tokenizer.chat_template", 8, template),
    ]


# -------------------------------------------------------------------------- Keras
def _k3(module: str, class_name: str, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    obj = {"module": module, "class_name": class_name, "config": config, "registered_name": None}
    obj.update(extra)
    return obj


def _k3_dtype() -> dict[str, Any]:
    return _k3("keras", "DTypePolicy", {"name": "float32"})


def _k3_dense(name: str, units: int, activation: Any = "relu") -> dict[str, Any]:
    return _k3(
        "keras.layers",
        "Dense",
        {
            "name": name,
            "trainable": True,
            "dtype": _k3_dtype(),
            "units": units,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": _k3("keras.initializers", "GlorotUniform", {"seed": None}),
            "bias_initializer": _k3("keras.initializers", "Zeros", {}),
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        },
        build_config={"input_shape": [None, 4]},
    )


def _k3_input(name: str = "input_layer") -> dict[str, Any]:
    return _k3(
        "keras.layers",
        "InputLayer",
        {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "name": name},
    )


def _k3_sequential(layers: list[dict[str, Any]], name: str = "sequential") -> dict[str, Any]:
    return _k3(
        "keras",
        "Sequential",
        {"name": name, "trainable": True, "dtype": _k3_dtype(), "layers": layers},
        build_config={"input_shape": [None, 4]},
        compile_config={
            "optimizer": _k3("keras.optimizers", "Adam", {"name": "adam", "learning_rate": 0.001}),
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
        },
    )


def _k3_lambda(name: str = "lambda") -> dict[str, Any]:
    code = base64.b64encode(marshal.dumps((lambda x: x).__code__)).decode()
    return _k3(
        "keras.layers",
        "Lambda",
        {
            "name": name,
            "trainable": True,
            "dtype": _k3_dtype(),
            "function": {
                "class_name": "__lambda__",
                "config": {"code": code, "defaults": None, "closure": None},
            },
            "arguments": {},
        },
    )


def _keras_zip(path: Path, config: dict[str, Any]) -> None:
    weights = io.BytesIO()
    import h5py

    with h5py.File(weights, "w") as f:
        f.create_group("layers/dense/vars").create_dataset("0", data=[[0.0] * 8] * 4)
    meta = {"keras_version": "3.4.1", "date_saved": "2024-07-01@12:00:00"}
    members = [
        ("metadata.json", json.dumps(meta).encode()),
        ("config.json", json.dumps(config).encode()),
        ("model.weights.h5", weights.getvalue()),
    ]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)


def _k2_layer(class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"class_name": class_name, "config": config}


def _keras_h5(path: Path, layers: list[dict[str, Any]]) -> None:
    import h5py

    config = {
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": layers},
    }
    training = {
        "loss": "categorical_crossentropy",
        "metrics": ["accuracy"],
        "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001}},
    }
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["training_config"] = json.dumps(training)
        g = f.create_group("model_weights/dense/dense")
        g.create_dataset("kernel:0", data=[[0.5] * 2] * 4)


def _k2_dense(name: str, units: int) -> dict[str, Any]:
    return _k2_layer(
        "Dense",
        {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "units": units,
            "activation": "relu",
            "use_bias": True,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
        },
    )


# ---------------------------------------------------------------------------- ONNX
def _onnx_model(
    *,
    domain: str = "",
    external: str | None = None,
) -> Any:
    from onnx import TensorProto, helper

    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 2], [0.5] * 8)
    if external is not None:
        w = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 2])
        w.data_location = TensorProto.EXTERNAL
        for k, v in (("location", external), ("offset", "0"), ("length", "32")):
            entry = w.external_data.add()
            entry.key, entry.value = k, v
    nodes = [helper.make_node("MatMul", ["X", "W"], ["Y0"], name="matmul")]
    out = "Y0"
    opsets = [helper.make_opsetid("", 17)]
    if domain:
        nodes.append(helper.make_node("Exfiltrate", ["Y0"], ["Y1"], name="evil", domain=domain))
        opsets.append(helper.make_opsetid(domain, 1))
        out = "Y1"
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [None, 2])],
        initializer=[w],
    )
    return helper.make_model(graph, opset_imports=opsets, producer_name="mlwarden-corpus")


def _onnx_with_subgraph_custom_op() -> Any:
    """An If node whose else-branch sub-graph hides a custom-domain operator."""
    from onnx import TensorProto, helper

    then_g = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["T"])],
        "then",
        [],
        [helper.make_tensor_value_info("T", TensorProto.FLOAT, [None, 4])],
    )
    else_g = helper.make_graph(
        [helper.make_node("Steal", ["X"], ["E"], domain="org.attacker")],
        "else",
        [],
        [helper.make_tensor_value_info("E", TensorProto.FLOAT, [None, 4])],
    )
    node = helper.make_node("If", ["C"], ["Y"], then_branch=then_g, else_branch=else_g)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("C", TensorProto.BOOL, []),
            helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4]),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 4])],
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("org.attacker", 1)],
    )


# -------------------------------------------------------------------- safetensors
def safetensors_bytes(header: dict[str, Any], buffer: bytes, pad: bool = True) -> bytes:
    """A safetensors file with the given header (written by hand, as the format says)."""
    raw = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + buffer


# ----------------------------------------------------------------------- builder
def build_corpus(root: Path) -> list[CorpusEntry]:
    """Write the corpus into ``root`` (created if needed) and describe every file."""
    import joblib
    import numpy as np
    import pandas as pd
    import skops.io as sio
    import torch

    root.mkdir(parents=True, exist_ok=True)
    entries: list[CorpusEntry] = []
    cmd = _cmd(root)

    def add(
        name: str, technique: str, expected: str, rule: str | None = None, fmt: str | None = None
    ) -> Path:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        entries.append(CorpusEntry(p, technique, expected, rule, fmt))
        return p

    def write(
        name: str,
        data: bytes,
        technique: str,
        expected: str,
        rule: str | None = None,
        fmt: str | None = None,
    ) -> None:
        add(name, technique, expected, rule, fmt).write_bytes(data)

    models = _sklearn_models()
    tobj = _torch_objects()
    mal = payload_pickle(root, 4)

    # ---------------------------------------------------------------- benign
    joblib.dump(
        models["logreg"], add("benign/sklearn_logreg.joblib", "joblib", "safe", fmt="joblib")
    )
    joblib.dump(
        models["forest"], add("benign/sklearn_forest.joblib", "joblib", "safe", fmt="joblib")
    )
    for codec, fmt in (
        ("zlib", "zlib"),
        ("gzip", "gzip"),
        ("bz2", "bz2"),
        ("xz", "xz"),
        ("lzma", "lzma"),
    ):
        joblib.dump(
            models["pipeline"],
            add(
                f"benign/sklearn_pipeline.{codec}.joblib",
                f"joblib-{codec}",
                "safe",
                fmt=f"{fmt}+joblib",
            ),
            compress=(codec, 3),
        )
    for proto in (0, 2, 4, 5):
        write(
            f"benign/sklearn_pipeline_p{proto}.pkl",
            pickle.dumps(models["pipeline"], protocol=proto),
            f"pickle-proto{proto}",
            "safe",
            fmt="pickle",
        )
    torch.save(
        tobj["state_dict"],
        add("benign/torch_state_dict.pt", "torch-zip", "safe", fmt="pytorch-zip"),
    )
    torch.save(
        tobj["net"],
        add("benign/torch_full_model.pt", "torch-zip-full-model", "safe", fmt="pytorch-zip"),
    )
    torch.save(
        tobj["checkpoint"],
        add("benign/torch_checkpoint.pth", "torch-zip-checkpoint", "safe", fmt="pytorch-zip"),
    )
    torch.save(
        tobj["state_dict"],
        add("benign/torch_legacy.pt", "torch-legacy", "safe", fmt="pytorch-legacy"),
        _use_new_zipfile_serialization=False,
    )
    df = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5], "c": ["x", "y", "z"]})
    df.to_pickle(add("benign/pandas_frame.pkl", "pandas-pickle", "safe", fmt="pickle"))
    np.save(
        add("benign/array.npy", "numpy", "safe", fmt="numpy"),
        np.arange(12, dtype=np.float32).reshape(3, 4),
    )
    np.save(
        add("benign/structured.npy", "numpy-structured", "safe", fmt="numpy"),
        np.zeros(3, dtype=[("a", "<f4"), ("b", "<i8", (2,)), ("s", "S5")]),
    )
    np.savez(
        add("benign/arrays.npz", "numpy-npz", "safe", fmt="numpy-npz"),
        w=np.ones((2, 2)),
        b=np.arange(3),
    )
    np.savez_compressed(
        add("benign/arrays_compressed.npz", "numpy-npz-deflate", "safe", fmt="numpy-npz"),
        w=np.ones((64, 64)),
    )
    buf = np.arange(8, dtype="<f4").tobytes() + np.arange(3, dtype="<i8").tobytes()
    write(
        "benign/model.safetensors",
        safetensors_bytes(
            {
                "__metadata__": {"format": "pt"},
                "weight": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]},
                "index": {"dtype": "I64", "shape": [3], "data_offsets": [32, 56]},
            },
            buf,
        ),
        "safetensors",
        "safe",
        fmt="safetensors",
    )
    from skl2onnx import to_onnx

    onx = to_onnx(models["logreg"], np.zeros((1, 4), dtype=np.float32), target_opset=17)
    write(
        "benign/sklearn_logreg.onnx", onx.SerializeToString(), "onnx-skl2onnx", "safe", fmt="onnx"
    )
    write(
        "benign/matmul.onnx", _onnx_model().SerializeToString(), "onnx-helper", "safe", fmt="onnx"
    )
    (root / "benign/onnx_ext").mkdir(parents=True, exist_ok=True)
    write(
        "benign/onnx_ext/model.onnx",
        _onnx_model(external="weights.bin").SerializeToString(),
        "onnx-external-data",
        "safe",
        fmt="onnx",
    )
    write(
        "benign/onnx_ext/weights.bin",
        np.full(8, 0.5, dtype="<f4").tobytes(),
        "onnx-external-data-file",
        "safe",
        fmt="onnx-external-data",
    )
    dense = [_k3_input(), _k3_dense("dense", 8), _k3_dense("dense_1", 2, "softmax")]
    _keras_zip(add("benign/model.keras", "keras", "safe", fmt="keras"), _k3_sequential(dense))
    nested_ok = _k3_sequential(
        [
            _k3_input(),
            _k3(
                "keras.layers",
                "TimeDistributed",
                {"name": "td", "layer": _k3_dense("inner", 4)},
            ),
            _k3(
                "keras.layers",
                "Bidirectional",
                {"name": "bi", "layer": _k3("keras.layers", "LSTM", {"name": "lstm", "units": 4})},
            ),
        ]
    )
    _keras_zip(
        add("benign/nested_wrappers.keras", "keras-wrappers", "safe", fmt="keras"), nested_ok
    )
    _keras_h5(
        add("benign/model.h5", "keras-h5", "safe", fmt="keras-h5"),
        [_k2_dense("dense", 8), _k2_dense("dense_1", 2)],
    )
    write("benign/chatml.gguf", gguf_bytes(_gguf_kvs(CHATML_TEMPLATE)), "gguf", "safe", fmt="gguf")
    write(
        "benign/llama3.gguf",
        gguf_bytes(_gguf_kvs(LLAMA3_TEMPLATE), version=2),
        "gguf-v2",
        "safe",
        fmt="gguf",
    )
    write(
        "benign/tokenizer_config.json",
        json.dumps({"bos_token": "<s>", "chat_template": LLAMA3_TEMPLATE}, indent=2).encode(),
        "json-chat-template",
        "safe",
        fmt="json",
    )
    write(
        "benign/config.json",
        json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 16}).encode(),
        "json-config",
        "safe",
        fmt="json",
    )
    sio.dump(models["logreg"], add("benign/sklearn_logreg.skops", "skops", "safe", fmt="skops"))
    sio.dump(
        models["pipeline"],
        add("benign/sklearn_pipeline.skops", "skops-pipeline", "safe", fmt="skops"),
    )

    # ------------------------------------------------------------- malicious
    for proto in range(6):
        write(
            f"malicious/payload_p{proto}.pkl",
            payload_pickle(root, proto),
            f"pickle-proto{proto}",
            "unsafe",
            "MLW-SUP-001",
            "pickle",
        )
    compressors: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
        "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
        "zlib": zlib.compress,
    }
    for codec, fn in compressors.items():
        write(
            f"malicious/payload.pkl.{codec}",
            fn(mal),
            f"{codec}-pickle",
            "unsafe",
            "MLW-SUP-001",
            f"{codec}+pickle",
        )
    joblib.dump(
        {"model": models["logreg"], "hook": _Payload(cmd)},
        add("malicious/payload.joblib", "joblib-payload", "unsafe", "MLW-SUP-001", "joblib"),
    )
    joblib.dump(
        {"model": models["logreg"], "hook": _Payload(cmd)},
        add(
            "malicious/payload_compressed.joblib",
            "joblib-compressed-payload",
            "unsafe",
            "MLW-SUP-001",
            "zlib+joblib",
        ),
        compress=3,
    )
    obj_array = np.empty(2, dtype=object)
    obj_array[0] = "fine"
    obj_array[1] = _Payload(cmd)
    joblib.dump(
        {"weights": np.ones(4), "extra": obj_array},
        add(
            "malicious/object_array_frame.joblib",
            "joblib-object-array-frame",
            "unsafe",
            "MLW-SUP-001",
            "joblib",
        ),
    )
    zf_pickle = pickle.dumps({"model": "x", "hook": _Payload(cmd)}, protocol=2)
    write(
        "malicious/old_zfile.pkl",
        b"ZF" + f"{len(zf_pickle):#x}".ljust(19).encode() + zlib.compress(zf_pickle),
        "joblib-zf",
        "unsafe",
        "MLW-SUP-001",
        "joblib-zf",
    )
    torch.save(
        {"model": tobj["state_dict"], "hook": _Payload(cmd)},
        add(
            "malicious/torch_data_pkl.pt",
            "torch-zip-data.pkl",
            "unsafe",
            "MLW-SUP-001",
            "pytorch-zip",
        ),
    )
    torch.save(tobj["state_dict"], root / "_tmp_benign.pt")
    members = _zip_members(root / "_tmp_benign.pt")
    prefix = members[0][0].split("/")[0]
    _write_zip(
        add(
            "malicious/torch_second_pkl.pt",
            "torch-zip-second-pkl",
            "unsafe",
            "MLW-SUP-001",
            "pytorch-zip",
        ),
        [*members, (f"{prefix}/extra/hook.pkl", mal)],
    )
    crc_members = [(n, mal if n.endswith("/data.pkl") else d) for n, d in members]
    crc_path = add(
        "malicious/torch_crc_mismatch.pt", "torch-zip-crc", "unsafe", "MLW-SUP-008", "pytorch-zip"
    )
    _write_zip(crc_path, crc_members)
    _corrupt_crc(crc_path, f"{prefix}/data.pkl")
    entries.append(
        CorpusEntry(crc_path, "torch-zip-crc-payload", "unsafe", "MLW-SUP-001", "pytorch-zip")
    )
    dup_members = [*members, (f"{prefix}/data.pkl", mal)]
    dup_path = add(
        "malicious/torch_duplicate_member.pt",
        "torch-zip-duplicate",
        "unsafe",
        "MLW-SUP-008",
        "pytorch-zip",
    )
    _write_zip(dup_path, dup_members)
    entries.append(
        CorpusEntry(dup_path, "torch-zip-duplicate-payload", "unsafe", "MLW-SUP-001", "pytorch-zip")
    )
    (root / "_tmp_benign.pt").unlink()

    legacy = io.BytesIO()
    torch.save(tobj["state_dict"], legacy, _use_new_zipfile_serialization=False)
    parts = _split_pickles(legacy.getvalue(), 5)
    evil_sysinfo = pickle.dumps({"protocol_version": 1001, "hook": _Payload(cmd)}, protocol=2)
    write(
        "malicious/torch_legacy_sysinfo.pt",
        b"".join([parts[0], parts[1], evil_sysinfo, *parts[3:]]),
        "torch-legacy-later-pickle",
        "unsafe",
        "MLW-SUP-001",
        "pytorch-legacy",
    )
    evil_keys = pickle.dumps(_Payload(cmd), protocol=2)
    write(
        "malicious/torch_legacy_keys.pt",
        b"".join([*parts[:4], evil_keys, parts[5]]),
        "torch-legacy-storage-keys",
        "unsafe",
        "MLW-SUP-001",
        "pytorch-legacy",
    )
    write(
        "benign/torch_tar_checkpoint.tar",
        _torch_tar(pickle.dumps({"epoch": 1}, protocol=2), with_storage=True),
        "torch-tar",
        "safe",
        fmt="pytorch-tar",
    )
    write(
        "malicious/torch_tar_checkpoint.tar",
        _torch_tar(payload_pickle(root, 2), with_storage=True),
        "torch-tar-payload",
        "unsafe",
        "MLW-SUP-001",
        "pytorch-tar",
    )
    np.save(
        add("malicious/object_array.npy", "numpy-object-array", "unsafe", "MLW-SUP-001", "numpy"),
        obj_array,
        allow_pickle=True,
    )
    entries.append(
        CorpusEntry(
            root / "malicious/object_array.npy",
            "numpy-object-array-embedded",
            "unsafe",
            "MLW-SUP-004",
            "numpy",
        )
    )
    np.savez(
        add(
            "malicious/object_array.npz",
            "numpy-npz-object-array",
            "unsafe",
            "MLW-SUP-001",
            "numpy-npz",
        ),
        ok=np.ones(3),
        bad=obj_array,
    )
    write(
        "malicious/nested_loads.pkl",
        pickle.dumps({"config": _Nested(payload_pickle(root, 2))}, protocol=4),
        "pickle-nested-loads",
        "unsafe",
        "MLW-SUP-001",
        "pickle",
    )
    trunc = pickle.dumps([_Payload(cmd), list(range(500))], protocol=2)
    cut = trunc.index(b"R") + 1 + 40  # after REDUCE, inside the list that follows
    write(
        "malicious/truncated_payload.pkl",
        trunc[:cut],
        "pickle-truncated",
        "unsafe",
        "MLW-SUP-001",
        "pickle",
    )
    write(
        "malicious/overlap.safetensors",
        safetensors_bytes(
            {
                "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
            },
            b"\x00" * 24,
        ),
        "safetensors-invalid-header",
        "unsafe",
        "MLW-SUP-008",
        "safetensors",
    )
    write(
        "malicious/hole.safetensors",
        safetensors_bytes(
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 8 + mal
        ),
        "safetensors-trailing-payload",
        "unsafe",
        "MLW-SUP-008",
        "safetensors",
    )
    (root / "malicious/onnx").mkdir(parents=True, exist_ok=True)
    write(
        "malicious/onnx/traversal.onnx",
        _onnx_model(external="../../etc/passwd").SerializeToString(),
        "onnx-external-traversal",
        "unsafe",
        "MLW-SUP-006",
        "onnx",
    )
    write(
        "malicious/onnx/absolute.onnx",
        _onnx_model(external="/etc/passwd").SerializeToString(),
        "onnx-external-absolute",
        "unsafe",
        "MLW-SUP-006",
        "onnx",
    )
    write(
        "malicious/onnx/custom_domain.onnx",
        _onnx_model(domain="com.evil.ops").SerializeToString(),
        "onnx-custom-domain",
        "unsafe",
        "MLW-SUP-006",
        "onnx",
    )
    write(
        "malicious/onnx/subgraph_custom_op.onnx",
        _onnx_with_subgraph_custom_op().SerializeToString(),
        "onnx-custom-domain-subgraph",
        "unsafe",
        "MLW-SUP-006",
        "onnx",
    )
    inner_model = _k3(
        "keras.src.models.functional",
        "Functional",
        {
            "name": "inner",
            "layers": [
                _k3_input("inner_input"),
                _k3("keras.layers", "TimeDistributed", {"name": "td", "layer": _k3_lambda()}),
            ],
        },
    )
    _keras_zip(
        add(
            "malicious/lambda_nested.keras", "keras-lambda-depth", "unsafe", "MLW-SUP-005", "keras"
        ),
        _k3_sequential([_k3_input(), _k3_dense("dense", 4), inner_model]),
    )
    _keras_zip(
        add(
            "malicious/lambda_bidirectional.keras",
            "keras-lambda-wrapper",
            "unsafe",
            "MLW-SUP-005",
            "keras",
        ),
        _k3_sequential(
            [
                _k3_input(),
                _k3("keras.layers", "Bidirectional", {"name": "bi", "layer": _k3_lambda("l2")}),
            ]
        ),
    )
    injected = _k3_dense(
        "dense",
        4,
        activation={
            "module": "os",
            "class_name": "function",
            "config": "system",
            "registered_name": None,
        },
    )
    _keras_zip(
        add(
            "malicious/module_injection.keras",
            "keras-module-injection",
            "unsafe",
            "MLW-SUP-005",
            "keras",
        ),
        _k3_sequential(
            [
                _k3_input(),
                injected,
                _k3("builtins", "eval", {"name": "x"}),
            ]
        ),
    )
    k2_lambda = _k2_layer(
        "Lambda",
        {
            "name": "lambda",
            "trainable": True,
            "dtype": "float32",
            "function": [
                base64.b64encode(marshal.dumps((lambda x: x).__code__)).decode(),
                None,
                None,
            ],
            "function_type": "lambda",
            "module": "__main__",
            "output_shape": None,
            "output_shape_type": "raw",
            "arguments": {},
        },
    )
    _keras_h5(
        add("malicious/lambda.h5", "keras-h5-lambda", "unsafe", "MLW-SUP-005", "keras-h5"),
        [_k2_dense("dense", 4), _k2_layer("TimeDistributed", {"name": "td", "layer": k2_lambda})],
    )
    write(
        "malicious/ssti.gguf",
        gguf_bytes(_gguf_kvs(SSTI_TEMPLATE)),
        "gguf-ssti",
        "unsafe",
        "MLW-SUP-007",
        "gguf",
    )
    write(
        "malicious/ssti_concat.gguf",
        gguf_bytes(
            [
                *_gguf_kvs(LLAMA3_TEMPLATE),
                ("tokenizer.chat_template.tool_use", 8, SSTI_CONCAT_TEMPLATE),
            ]
        ),
        "gguf-ssti-concat",
        "unsafe",
        "MLW-SUP-007",
        "gguf",
    )
    write(
        "malicious/tokenizer_config.json",
        json.dumps({"chat_template": [{"name": "tool_use", "template": SSTI_TEMPLATE}]}).encode(),
        "json-chat-template-ssti",
        "unsafe",
        "MLW-SUP-007",
        "json",
    )
    write(
        "malicious/keras_model.json",
        json.dumps(_k3_sequential([_k3_input(), _k3_lambda()])).encode(),
        "keras-json-lambda",
        "unsafe",
        "MLW-SUP-005",
        "json",
    )
    sio.dump(models["logreg"], root / "_tmp.skops")
    skops_members = _zip_members(root / "_tmp.skops")
    (root / "_tmp.skops").unlink()
    evil = []
    for name, data in skops_members:
        if name == "schema.json":
            schema = json.loads(data)
            schema["content"]["content"]["callback"] = {
                "__class__": "system",
                "__module__": "os",
                "__loader__": "FunctionNode",
            }
            data = json.dumps(schema).encode()
        evil.append((name, data))
    _write_zip(
        add("malicious/os_system.skops", "skops-function-node", "unsafe", "MLW-SUP-009", "skops"),
        evil,
    )

    # ------------------------------------------------------------------ edges
    write("edge/empty.bin", b"", "empty", "error", fmt="empty")
    torch_zip = (root / "benign/torch_state_dict.pt").read_bytes()
    write("edge/truncated.pt", torch_zip[: len(torch_zip) // 2], "truncated-zip", "error")
    write(
        "edge/random.bin", random.Random(0).randbytes(4096), "random-bytes", "error", fmt="unknown"
    )
    write("edge/README.txt", b"This folder holds models.\n", "text-file", "error", fmt="unknown")
    write(
        "edge/huge_header.safetensors",
        struct.pack("<Q", 1 << 62) + b'{"a": 1}',
        "safetensors-huge-header",
        "error",
        fmt="safetensors",
    )
    huge_gguf = (
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 60) + b"key" + b"\x00" * 64
    )
    write("edge/huge_header.gguf", huge_gguf, "gguf-huge-header", "error", fmt="gguf")
    write(
        "edge/huge_header.npy",
        b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{'descr': '<f8'",
        "numpy-huge-header",
        "error",
        fmt="numpy",
    )
    write(
        "edge/truncated_benign.pkl",
        pickle.dumps(list(range(100)), protocol=4)[:50],
        "pickle-truncated-benign",
        "error",
        fmt="pickle",
    )
    return entries


def _torch_tar(object_pickle: bytes, *, with_storage: bool) -> bytes:
    """A torch < 0.1.10 tar checkpoint (written by hand: torch no longer writes them)."""
    import torch

    sys_info = pickle.dumps(
        {
            "protocol_version": 1000,
            "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 8},
        },
        protocol=2,
    )
    storages = pickle.dumps(1 if with_storage else 0, protocol=2)
    if with_storage:
        storages += pickle.dumps(("0", "cpu", torch.FloatStorage), protocol=2)
        storages += struct.pack("<q", 3) + struct.pack("<3f", 1.0, 2.0, 3.0)
    storages += pickle.dumps([], protocol=2)
    tensors = pickle.dumps(1 if with_storage else 0, protocol=2)
    if with_storage:
        tensors += pickle.dumps(("t0", "0", torch.FloatTensor), protocol=2)
        tensors += struct.pack("<i", 1) + b"\x00" * 4 + struct.pack("<qqq", 3, 1, 0)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            ("sys_info", sys_info),
            ("pickle", object_pickle),
            ("storages", storages),
            ("tensors", tensors),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def scan_bytes(tmp_path: Path, data: bytes, name: str = "model.bin") -> Any:
    """Write ``data`` to ``tmp_path/name`` and scan it (for the unit tests)."""
    from mlwarden.supplychain import scan_file

    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return scan_file(p)


def rules_of(result: Any) -> set[str]:
    """The rule ids of a FileResult's issues."""
    return {i.rule_id for i in result.issues}


def zip_bytes(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip archive in memory (duplicate names allowed)."""
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(out, "w", compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return out.getvalue()


def npy_bytes(descr: Any, shape: tuple[int, ...], body: bytes, version: int = 1) -> bytes:
    """A ``.npy`` stream written by hand (header padded as numpy pads it)."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    pre = 10 if version == 1 else 12
    header += b" " * (-(pre + len(header) + 1) % 64) + b"\n"
    size = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header + body
