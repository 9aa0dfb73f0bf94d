"""Targets: models wrapped so that attacks can query them (numpy in, numpy out).

:func:`target` wraps whatever it is given: a scikit-learn estimator, a torch module,
an ONNX session, a plain function, or a model file (see :func:`load_model`).
:class:`TorchTarget`, :class:`OnnxTarget` and :func:`save_torchscript` are loaded on
first use, so that importing this package imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import builtins
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwarden.exceptions import InvalidParameterError
from mlwarden.models.base import Capability, InputSpec, Target
from mlwarden.models.callable import CallableTarget
from mlwarden.models.loading import load_model, save_skops
from mlwarden.models.sklearn import SklearnTarget

if TYPE_CHECKING:
    from mlwarden.models.onnx import OnnxTarget as OnnxTarget
    from mlwarden.models.torch import TorchTarget as TorchTarget
    from mlwarden.models.torch import save_torchscript as save_torchscript

__all__ = [
    "CallableTarget",
    "Capability",
    "InputSpec",
    "SklearnTarget",
    "Target",
    "load_model",
    "save_skops",
    "target",
]
# Also public, loaded lazily (and kept out of __all__ so that a star import does not
# import torch or onnxruntime): TorchTarget, save_torchscript, OnnxTarget.
_LAZY = {
    "TorchTarget": "mlwarden.models.torch",
    "save_torchscript": "mlwarden.models.torch",
    "OnnxTarget": "mlwarden.models.onnx",
    "RemoteTarget": "mlwarden.models.remote",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, *_LAZY])


def target(obj: Any, **kwargs: Any) -> Target:
    """Wrap ``obj`` as a :class:`Target`.

    Parameters
    ----------
    obj : object
        A :class:`Target` (returned as is), an ``http(s)://`` prediction URL
        (:class:`RemoteTarget`), a path to a model file (:func:`load_model`), a
        ``torch.nn.Module`` (:class:`TorchTarget`), an ``onnxruntime.InferenceSession``
        or ``onnx.ModelProto`` (:class:`OnnxTarget`), a fitted scikit-learn classifier
        (:class:`SklearnTarget`), or a plain function (:class:`CallableTarget`, which
        needs ``n_features=...``).
    **kwargs
        Passed to the wrapper's constructor (``name=...``, ``input_shape=...``, ...).

    Returns
    -------
    Target

    Raises
    ------
    InvalidParameterError
        If ``obj`` is of a type mlwarden cannot wrap, or keyword arguments are given
        with an object that is already a target.
    """
    if isinstance(obj, Target):
        if kwargs:
            raise InvalidParameterError(
                f"{type(obj).__name__} is already a target; it takes no options "
                f"(got {', '.join(sorted(kwargs))})"
            )
        return obj
    if isinstance(obj, str) and obj.startswith(("http://", "https://")):
        from mlwarden.models.remote import RemoteTarget

        return RemoteTarget(obj, **kwargs)
    if isinstance(obj, str | Path):
        return load_model(obj, **kwargs)
    if "torch" in sys.modules:
        import torch

        if isinstance(obj, torch.nn.Module):
            from mlwarden.models.torch import TorchTarget

            return TorchTarget(obj, **kwargs)
    if _is_onnx(obj):
        from mlwarden.models.onnx import OnnxTarget

        return OnnxTarget(obj, **kwargs)
    if (hasattr(obj, "predict") and hasattr(obj, "fit")) or hasattr(obj, "classes_"):
        return SklearnTarget(obj, **kwargs)
    # ``callable`` in this namespace is the submodule mlwarden.models.callable.
    if builtins.callable(obj):
        return CallableTarget(obj, **kwargs)
    raise InvalidParameterError(
        f"cannot wrap a {type(obj).__module__}.{type(obj).__qualname__} as a target; "
        "expected a scikit-learn classifier, a torch.nn.Module, an ONNX session or "
        "model, a function, or a path to a model file"
    )


def _is_onnx(obj: Any) -> bool:
    if "onnxruntime" in sys.modules:
        import onnxruntime

        if isinstance(obj, onnxruntime.InferenceSession):
            return True
    if "onnx" in sys.modules:
        import onnx

        if isinstance(obj, onnx.ModelProto):
            return True
    return False
