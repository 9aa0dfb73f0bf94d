"""Adversarial training of torch classifiers: PGD (Madry et al.) and TRADES.

Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning Models Resistant
to Adversarial Attacks", ICLR 2018: train on the worst case found by L∞ PGD inside
the threat model, ``min_θ E[max_{x' in B(x)} CE(f_θ(x'), y)]``.

Zhang, Yu, Jiao, Xing, El Ghaoui and Jordan, "Theoretically Principled Trade-off
between Robustness and Accuracy", ICML 2019 (TRADES, see
:mod:`mlwarden.evasion.defenses.trades`): ``CE(f(x), y) + beta * max KL(f(x) || f(x'))``.

Threat model: the one the evasion attacks and checks use
(:class:`~mlwarden.evasion.threat_model.PerturbationSet`): each row may move by
``eps`` per-feature scale units in L∞ (a standard deviation for tabular data),
within the schema's bounds; features the attacker does not control never move;
with ``categorical="free"`` the attacker-controlled binary and categorical
features are relaxed to ``[0, 1]`` (with ``"fixed"`` they stay put). The inner
maximisation runs in torch on whole batches, in the relaxed box (no rounding to
integers or one-hot during training: the relaxed set contains the discrete one, so
training against it is at least as hard). A model hardened this way should then be
audited (``mlwarden audit --checks evasion``), which attacks the discrete,
feasible rows.

Importing this module imports :mod:`torch`.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden._random import RandomState, as_generator, torch_generator
from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.data.dataset import Dataset
from mlwarden.data.schema import FeatureKind
from mlwarden.evasion.threat_model import PerturbationSet
from mlwarden.exceptions import (
    CapabilityError,
    IncompatibleModelError,
    InvalidParameterError,
)
from mlwarden.models.base import Target
from mlwarden.models.torch import TorchTarget  # raises MissingDependencyError without torch

import torch  # isort: skip
import torch.nn.functional as nnf  # isort: skip
from torch import nn  # isort: skip

from mlwarden.evasion.defenses.trades import trades_examples, trades_loss  # isort: skip

__all__ = ["adversarial_training", "pgd_examples"]

Forward = Callable[[torch.Tensor], torch.Tensor]
METHODS = ("pgd", "trades")
CLASS_WEIGHTS = ("balanced",)
_OWNER = "adversarial_training"


def pgd_examples(
    forward: Forward,
    x: torch.Tensor,
    y: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    alpha: torch.Tensor,
    *,
    steps: int,
    generator: torch.Generator,
    random_start: bool = True,
) -> torch.Tensor:
    """L∞ PGD on the cross-entropy, projected onto the per-row box ``[lower, upper]``.

    Parameters
    ----------
    forward : callable
        Raw rows ``(n, d)`` to logits ``(n, k)``.
    x : Tensor of shape (n, d)
        Clean rows (inside the box).
    y : Tensor of shape (n,)
        Class indices.
    lower, upper : Tensor of shape (n, d)
        The per-row feasible box (equal bounds pin a feature).
    alpha : Tensor of shape (d,)
        Step per feature and iteration (0 for features that cannot move).
    steps : int
        Gradient steps.
    generator : torch.Generator
        Source of the uniform random start.
    random_start : bool
        Start from a uniform point of the box (Madry et al.) instead of ``x``.

    Returns
    -------
    Tensor of shape (n, d)
        Detached rows inside the box.
    """
    if random_start:
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype)
        x_adv = lower + u * (upper - lower)
    else:
        x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = nnf.cross_entropy(forward(x_adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = torch.maximum(torch.minimum(x_adv.detach() + alpha * grad.sign(), upper), lower)
    return x_adv.detach()


@overload
def adversarial_training(
    model: TorchTarget,
    data: Dataset,
    *,
    eps: float,
    method: str = ...,
    steps: int = ...,
    step_size: float | None = ...,
    epochs: int = ...,
    lr: float = ...,
    weight_decay: float = ...,
    batch_size: int = ...,
    beta: float = ...,
    class_weight: str | None = ...,
    categorical: str = ...,
    random_state: RandomState = ...,
    progress: ProgressCallback | None = ...,
) -> TorchTarget: ...


@overload
def adversarial_training(
    model: nn.Module,
    data: Dataset,
    *,
    eps: float,
    method: str = ...,
    steps: int = ...,
    step_size: float | None = ...,
    epochs: int = ...,
    lr: float = ...,
    weight_decay: float = ...,
    batch_size: int = ...,
    beta: float = ...,
    class_weight: str | None = ...,
    categorical: str = ...,
    random_state: RandomState = ...,
    progress: ProgressCallback | None = ...,
) -> nn.Module: ...


def adversarial_training(
    model: nn.Module | TorchTarget,
    data: Dataset,
    *,
    eps: float,
    method: str = "pgd",
    steps: int = 10,
    step_size: float | None = None,
    epochs: int = 10,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 256,
    beta: float = 6.0,
    class_weight: str | None = None,
    categorical: str = "free",
    random_state: RandomState = 0,
    progress: ProgressCallback | None = None,
) -> nn.Module | TorchTarget:
    """Train (or fine-tune) a copy of a torch classifier on adversarial examples.

    Each batch is first attacked inside the threat model (the module in eval mode),
    then the parameters take one Adam step on the adversarial loss (the module in
    train mode): the cross-entropy of the PGD examples (``method="pgd"``, Madry et
    al. 2018) or the TRADES objective (``method="trades"``, Zhang et al. 2019).

    Parameters
    ----------
    model : torch.nn.Module or TorchTarget
        The classifier, taking *raw* feature rows (it may standardise them itself,
        as a ``Standardize`` layer does, or through the target's ``preprocessing``).
        A module is wrapped as ``TorchTarget(module)``; a module whose first layer
        is not linear (a CNN) must be given as a :class:`TorchTarget` with its
        ``input_shape``. The model itself is never modified: a copy is trained.
    data : Dataset
        Labelled training rows; its schema defines the threat model (bounds,
        scales, which features the attacker controls).
    eps : float
        L∞ budget in per-feature scale units, as in the evasion attacks.
    method : {"pgd", "trades"}
        Madry et al.'s PGD adversarial training, or TRADES.
    steps : int
        Steps of the inner maximisation.
    step_size : float or None
        Inner step in scale units; default ``2.5 * eps / steps`` (relaxed
        binary/categorical features move ``2.5 / steps`` per step), as
        :class:`~mlwarden.evasion.PGD`.
    epochs : int
        Passes over ``data``.
    lr, weight_decay : float
        Adam's learning rate and L2 penalty.
    batch_size : int
        Rows per step.
    beta : float
        TRADES' weight of the KL term (ignored by ``"pgd"``).
    class_weight : {"balanced"} or None
        ``"balanced"`` weights classes by ``n / (n_classes * count)``, as
        scikit-learn does; use it for rare-class problems such as fraud.
    categorical : {"free", "fixed"}
        Whether attacker-controlled binary/categorical features may change.
    random_state : int, Generator or None
        Seed for shuffling, random starts and dropout; the same seed gives the same
        model.
    progress : callable, optional
        ``progress(task, done, total)``, called once per epoch.

    Returns
    -------
    torch.nn.Module or TorchTarget
        The trained copy, in eval mode: a module for a module, a
        :class:`TorchTarget` with the same metadata (classes, bounds, feature names,
        preprocessing) for a target.

    Raises
    ------
    InvalidParameterError
        For a bad hyper-parameter (checked before any training).
    CapabilityError
        If ``model`` is a target of another framework, or has no trainable parameters.
    DataError, IncompatibleModelError
        Unlabelled data, or data and model that do not fit (feature count, labels).
    """
    validate_training_params(
        eps=eps, method=method, steps=steps, step_size=step_size, epochs=epochs, lr=lr,
        weight_decay=weight_decay, batch_size=batch_size, beta=beta,
        class_weight=class_weight, categorical=categorical,
    )  # fmt: skip
    rng = as_generator(random_state)
    source = _as_torch_target(model)
    if source.input_spec.n_features != data.n_features:
        raise IncompatibleModelError(
            f"model {source.name!r} expects {source.input_spec.n_features} features, "
            f"the data {data.name!r} has {data.n_features}"
        )
    y_np = source.encode_labels(data.labels)
    trained = _copy_target(source)
    module = trained.module
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise CapabilityError(f"{source.name!r}: the module has no trainable parameters")

    pset = PerturbationSet.build(data.X, eps, data.schema, categorical=categorical)
    alpha_np = _step(pset, eps, steps, step_size)
    x_all = torch.as_tensor(data.X, dtype=torch.float32)
    y_all = torch.as_tensor(y_np, dtype=torch.int64)
    lo_all = torch.as_tensor(pset.lower, dtype=torch.float32)
    hi_all = torch.as_tensor(pset.upper, dtype=torch.float32)
    alpha = torch.as_tensor(alpha_np, dtype=torch.float32)
    weight = _class_weight(class_weight, y_np, trained.n_classes)
    forward = _logits_fn(trained)
    gen = torch_generator(rng)
    task = f"adversarial training ({method}, eps={eps:g})"
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    with torch.random.fork_rng():
        torch.manual_seed(int(rng.integers(0, 2**63 - 1)))  # dropout and similar layers
        for epoch in range(epochs):
            report_progress(progress, task, epoch, epochs)
            perm = torch.randperm(len(x_all), generator=gen)
            for start in range(0, len(perm), batch_size):
                idx = perm[start : start + batch_size]
                xb, yb, lo, hi = x_all[idx], y_all[idx], lo_all[idx], hi_all[idx]
                module.eval()
                if method == "pgd":
                    x_adv = pgd_examples(forward, xb, yb, lo, hi, alpha, steps=steps, generator=gen)
                    module.train()
                    loss = nnf.cross_entropy(forward(x_adv), yb, weight=weight)
                else:
                    x_adv = trades_examples(forward, xb, lo, hi, alpha, steps=steps, generator=gen)
                    module.train()
                    loss = trades_loss(forward(xb), forward(x_adv), yb, beta=beta, weight=weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        report_progress(progress, task, epochs, epochs)
    module.eval()
    for p in module.parameters():
        p.grad = None
    return trained if isinstance(model, TorchTarget) else module


# ---------------------------------------------------------------------- helpers
def validate_training_params(
    *,
    eps: Any,
    method: Any,
    steps: Any,
    step_size: Any,
    epochs: Any,
    lr: Any,
    weight_decay: Any,
    batch_size: Any,
    beta: Any,
    class_weight: Any,
    categorical: Any,
) -> None:
    """Raise :class:`InvalidParameterError` for hyper-parameters :func:`adversarial_training`
    cannot use (lets a caller fail fast, before loading models or data)."""
    check_number(_OWNER, "eps", eps, low=0, low_open=True)
    check_choice(_OWNER, "method", method, METHODS)
    check_int(_OWNER, "steps", steps)
    if step_size is not None:
        check_number(_OWNER, "step_size", step_size, low=0, low_open=True)
    check_int(_OWNER, "epochs", epochs)
    check_number(_OWNER, "lr", lr, low=0, low_open=True)
    check_number(_OWNER, "weight_decay", weight_decay, low=0)
    check_int(_OWNER, "batch_size", batch_size)
    check_number(_OWNER, "beta", beta, low=0)
    if class_weight is not None:
        check_choice(_OWNER, "class_weight", class_weight, CLASS_WEIGHTS)
    check_choice(_OWNER, "categorical", categorical, ("free", "fixed"))


def _as_torch_target(model: Any) -> TorchTarget:
    if isinstance(model, TorchTarget):
        return model
    if isinstance(model, nn.Module):
        try:
            return TorchTarget(model)
        except InvalidParameterError as exc:
            raise InvalidParameterError(
                f"{_OWNER}: {exc}; wrap the module in TorchTarget(module, input_shape=...) first"
            ) from None
    if isinstance(model, Target):
        raise CapabilityError(
            f"{_OWNER} trains PyTorch models; {model.name!r} is a {model.kind} model"
        )
    raise InvalidParameterError(
        f"{_OWNER}: model must be a torch.nn.Module or a TorchTarget, got {type(model).__name__}"
    )


def target_kwargs(tgt: TorchTarget) -> dict[str, Any]:
    """Keyword arguments that rebuild ``tgt``'s metadata around another module.

    They fit both :class:`TorchTarget` and :func:`~mlwarden.models.torch.save_torchscript`.
    """
    spec = tgt.input_spec
    return {
        "classes": spec.classes,
        "input_shape": tgt.input_shape,
        "lower": spec.lower,
        "upper": spec.upper,
        "feature_names": spec.feature_names,
        "output": tgt.output,
        "preprocessing": tgt.preprocessing,
    }


def _copy_module(module: nn.Module) -> nn.Module:
    """An independent copy whose parameters are leaf tensors (trainable).

    ``copy.deepcopy`` of a TorchScript module records the copy in the autograd graph
    (the parameters are no longer leaves), so TorchScript goes through save and load.
    """
    if isinstance(module, torch.jit.ScriptModule):
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated
            torch.jit.save(module, buffer)  # type: ignore[no-untyped-call]
            buffer.seek(0)
            loaded: nn.Module = torch.jit.load(buffer, map_location="cpu")  # type: ignore[no-untyped-call]
        return loaded
    return copy.deepcopy(module)


def _copy_target(tgt: TorchTarget) -> TorchTarget:
    module = _copy_module(tgt.module)
    return TorchTarget(
        module, name=f"{tgt.name}-hardened", batch_size=tgt.batch_size, **target_kwargs(tgt)
    )


def _logits_fn(tgt: TorchTarget) -> Forward:
    """Raw rows → logits through the target's own forward (preprocessing, binary heads)."""
    as_probabilities = tgt.output == "probabilities"

    def forward(x: torch.Tensor) -> torch.Tensor:
        z = tgt._scores(x)
        return torch.log(z.clamp_min(1e-30)) if as_probabilities else z

    return forward


def _step(
    pset: PerturbationSet, eps: float, steps: int, step_size: float | None
) -> npt.NDArray[np.float64]:
    """Per-feature step, exactly as :class:`~mlwarden.evasion.PGD` takes it."""
    step = step_size if step_size is not None else 2.5 * eps / steps
    graded = pset.schema.mask(FeatureKind.CONTINUOUS, FeatureKind.INTEGER) & pset.movable
    unit = np.where(pset.step_unit > 0, pset.step_unit, 0.0)
    return np.asarray(np.where(graded, unit * step, unit * min(1.0, 2.5 / steps)))


def _class_weight(
    class_weight: str | None, y: npt.NDArray[np.int64], n_classes: int
) -> torch.Tensor | None:
    if class_weight is None:
        return None
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = len(y) / (n_classes * np.maximum(counts, 1.0))
    return torch.as_tensor(w, dtype=torch.float32)
