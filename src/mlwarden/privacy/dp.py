"""Differential privacy for torch classifiers, through Opacus.

DP-SGD (Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar and Zhang, "Deep Learning
with Differential Privacy", CCS 2016): every step samples a Poisson batch (each row
with probability ``q``), clips each row's gradient to L2 norm ``C`` and adds Gaussian
noise of standard deviation ``sigma * C`` to the sum. The privacy cost of the run is
the composition of ``steps`` Poisson-subsampled Gaussian mechanisms, accounted either
with Rényi DP (Mironov, "Rényi Differential Privacy", CSF 2017; Mironov, Talwar and
Zhang 2019 for the subsampled Gaussian) or with privacy random variables (Gopi, Lee
and Wutschitz, "Numerical Composition of Differential Privacy", NeurIPS 2021), which
gives a tighter epsilon for the same noise.

mlwarden never re-implements DP-SGD: :func:`make_private` is a thin keyword-only
façade over :meth:`opacus.PrivacyEngine.make_private` that returns Opacus's own wrapped
objects, :func:`epsilon` reads the (noise multiplier, sample rate, steps) history with
Opacus's own accountants, and :func:`train_private` is a plain training loop over
those objects. The configuration checks (rule ``MLW-PRI-004``) flag what makes the
stated guarantee meaningless or false: a large epsilon, a sampler that is not Poisson
sampling, or ``delta >= 1 / n``.

Threat model: the adversary sees the final model (white-box, any number of queries)
and may know every training record but one; differential privacy bounds how much the
model can reveal about that one record (membership, attributes), whatever the
adversary's prior. The guarantee is about the *training algorithm* under add/remove
adjacency at the granularity of one row, and only holds if every step went through
the Opacus optimizer with Poisson sampling. Data-dependent choices made outside
DP-SGD (the standardisation layer's mean and standard deviation, class weights from
label counts, the model architecture) are not covered.

Importing this module imports :mod:`torch` and :mod:`opacus` (the ``privacy`` extra).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden._random import RandomState, as_generator, torch_generator
from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.data.dataset import Dataset
from mlwarden.exceptions import (
    CapabilityError,
    IncompatibleModelError,
    InvalidParameterError,
    MissingDependencyError,
)
from mlwarden.findings.finding import Finding
from mlwarden.models.torch import TorchTarget  # raises MissingDependencyError without torch
from mlwarden.privacy.rules import RULE_DP_CONFIG

try:
    from opacus import PrivacyEngine
    from opacus.accountants import PRVAccountant, RDPAccountant
    from opacus.accountants.utils import get_noise_multiplier
    from opacus.data_loader import DPDataLoader
    from opacus.grad_sample import GradSampleModule, GradSampleModuleFastGradientClipping
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler
    from opacus.validators import ModuleValidator
except ImportError:  # pragma: no cover - exercised only without opacus
    raise MissingDependencyError(
        "differential privacy needs the 'privacy' extra: pip install 'mlwarden[privacy]'"
    ) from None

import torch  # isort: skip
import torch.nn.functional as nnf  # isort: skip
from torch import nn  # isort: skip
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler  # isort: skip

__all__ = [
    "DPResult",
    "EpsilonReport",
    "PrivateTraining",
    "choose_grad_sample_mode",
    "delta_finding",
    "dp_config_findings",
    "eager_module",
    "epsilon",
    "epsilon_finding",
    "make_private",
    "sampling_finding",
    "train_private",
    "validate_dp_params",
]

ACCOUNTANTS = ("prv", "rdp")
GRAD_SAMPLE_MODES = ("ghost", "hooks", "functorch")
CLASS_WEIGHTS = ("balanced",)
DEFAULT_MAX_EPSILON = 8.0
GHOST_MIN_ELEMENTS = 1 << 24
"""Per-sample gradient elements (batch x parameters) from which ghost clipping is chosen."""
_CHECK = "privacy.dp"
History = Sequence[tuple[float, float, int]]


# ---------------------------------------------------------------------- make_private
@dataclass
class PrivateTraining:
    """What :func:`make_private` returns: Opacus's own wrapped objects and the engine.

    Attributes
    ----------
    module : opacus.grad_sample.GradSampleModule
        The user's module, wrapped to compute per-sample gradients (or their norms).
    optimizer : opacus.optimizers.DPOptimizer
        The user's optimizer, wrapped to clip and add noise.
    data_loader : torch.utils.data.DataLoader
        With ``poisson_sampling=True``, an :class:`opacus.data_loader.DPDataLoader`.
    engine : opacus.PrivacyEngine
        Its accountant holds the history; ``engine.get_epsilon(delta)``.
    criterion : callable or None
        The loss to use: with ``grad_sample_mode="ghost"`` Opacus's
        ``DPLossFastGradientClipping`` wrapping the given criterion (its
        ``backward`` runs the two passes of ghost clipping); otherwise the criterion
        as given.
    noise_multiplier : float
        ``sigma``: noise standard deviation over the clipping norm.
    sample_rate : float
        ``q``: the probability that a row is in a batch.
    max_grad_norm : float
        ``C``: the per-sample clipping norm.
    grad_sample_mode : str
        ``"ghost"``, ``"hooks"`` or ``"functorch"``.
    delta : float or None
        The delta the noise was calibrated for (with ``target_epsilon``).
    """

    module: Any
    optimizer: Any
    data_loader: Any
    engine: Any
    criterion: Any
    noise_multiplier: float
    sample_rate: float
    max_grad_norm: float
    grad_sample_mode: str
    delta: float | None = None

    def epsilon(self, delta: float | None = None) -> EpsilonReport:
        """Epsilon spent so far, from both accountants (see :func:`epsilon`)."""
        d = self.delta if delta is None else delta
        if d is None:
            raise InvalidParameterError("PrivateTraining.epsilon: delta is required")
        return epsilon(self.engine, d)


def _trainable_layers(module: nn.Module) -> list[nn.Module]:
    return [
        m for m in module.modules() if any(p.requires_grad for p in m.parameters(recurse=False))
    ]


def choose_grad_sample_mode(
    module: nn.Module, *, criterion: Any = None, batch_size: int | None = None
) -> str:
    """The fastest correct Opacus per-sample-gradient mode for ``module``.

    Ghost clipping (Li et al. 2022; Bu et al. 2023) computes per-sample gradient
    *norms* without materialising the ``batch x parameters`` per-sample gradients,
    at the cost of a second backward pass. It needs the loss through Opacus's
    criterion wrapper, so it is chosen only when a ``criterion`` is given, every
    trainable layer has an Opacus norm sampler (``Linear``, ``Embedding``, ...), and
    the per-sample gradients would be large (``batch_size * n_parameters`` above
    ``GHOST_MIN_ELEMENTS``): on small tabular MLPs the second backward costs more
    than it saves (measured: 0.071 s vs 0.059 s per epoch, 600 rows, one thread).
    Otherwise ``"hooks"`` when every trainable layer has an Opacus grad sampler, else
    ``"functorch"`` (generic, slower).
    """
    layers = _trainable_layers(module)
    norm = GradSampleModuleFastGradientClipping.NORM_SAMPLERS
    grad = GradSampleModule.GRAD_SAMPLERS
    n_params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    big = batch_size is None or batch_size * n_params >= GHOST_MIN_ELEMENTS
    if criterion is not None and big and layers and all(type(m) in norm for m in layers):
        return "ghost"
    if all(type(m) in grad for m in layers):
        return "hooks"
    return "functorch"


def _offenders(module: nn.Module) -> list[str]:
    """``name (Type): first line of Opacus's reason`` for each layer it refuses."""
    found = []
    for name, sub in module.named_modules():
        check = ModuleValidator.VALIDATORS.get(type(sub))
        errs = check(sub) if check is not None else []
        if errs:
            reason = str(errs[0]).strip().split(". ")[0]
            found.append(f"{name or '<root>'} ({type(sub).__name__}): {reason}")
    return found


def _validate_module(module: nn.Module, fix: bool) -> nn.Module:
    if isinstance(module, torch.jit.ScriptModule):
        raise CapabilityError(
            "make_private: module is TorchScript, whose layers Opacus cannot hook; "
            "pass an eager module (mlwarden.privacy.dp.eager_module converts simple ones)"
        )
    module.train()  # Opacus refuses modules in eval mode; the module is about to train
    if not ModuleValidator.validate(module, strict=False):
        return module
    if fix:
        fixed: nn.Module = ModuleValidator.fix(module)
        if not ModuleValidator.validate(fixed, strict=False):
            return fixed
        module = fixed
    layers = _offenders(module) or [
        str(e).strip().splitlines()[0] for e in ModuleValidator.validate(module)
    ]
    raise InvalidParameterError(
        f"make_private: module has layers DP-SGD cannot train: {'; '.join(layers[:5])}. "
        "BatchNorm mixes the rows of a batch, so per-sample gradients do not exist: "
        "replace it with GroupNorm/LayerNorm, or pass fix=True to let Opacus do it"
    )


def make_private(
    *,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    data_loader: DataLoader[Any],
    target_epsilon: float | None = None,
    noise_multiplier: float | None = None,
    max_grad_norm: float = 1.0,
    epochs: int | None = None,
    target_delta: float | None = None,
    accountant: str = "prv",
    grad_sample_mode: str | None = None,
    poisson_sampling: bool = True,
    criterion: Any = None,
    fix: bool = False,
    noise_generator: torch.Generator | None = None,
) -> PrivateTraining:
    """Wrap a module, optimizer and data loader for DP-SGD with Opacus.

    Give either ``noise_multiplier`` or ``target_epsilon`` (with ``epochs``; the noise
    is then calibrated by Opacus with the chosen ``accountant`` to reach
    ``(target_epsilon, target_delta)`` after ``epochs`` passes).

    Parameters
    ----------
    module : torch.nn.Module
        An eager module (not TorchScript). Validated with Opacus's
        ``ModuleValidator``; BatchNorm and other layers without per-sample gradients
        are refused unless ``fix=True``.
    optimizer : torch.optim.Optimizer
        Over ``module``'s parameters. With ``fix=True`` and a module that needed
        fixing, an optimizer of the same class and defaults is rebuilt on the fixed
        module's parameters.
    data_loader : torch.utils.data.DataLoader
        Its batch size over its length sets the sample rate ``q = 1 / len(loader)``.
    target_epsilon, noise_multiplier : float or None
        Exactly one of them.
    max_grad_norm : float
        Per-sample clipping norm ``C``.
    epochs : int or None
        Planned passes (required with ``target_epsilon``).
    target_delta : float or None
        Delta for calibration; default ``1 / (10 n)``.
    accountant : {"prv", "rdp"}
        Opacus accountant attached to the engine (and used for calibration).
    grad_sample_mode : {"ghost", "hooks", "functorch"} or None
        ``None`` picks with :func:`choose_grad_sample_mode`.
    poisson_sampling : bool
        Replace the loader's sampler by Poisson sampling (the accountant assumes it).
    criterion : callable or None
        The loss module (e.g. ``nn.CrossEntropyLoss()``); required for ghost
        clipping, whose wrapped criterion is returned.
    fix : bool
        Let Opacus replace unsupported layers (BatchNorm → GroupNorm).
    noise_generator : torch.Generator or None
        Source of the Gaussian noise (seeded runs; not for production secrecy).

    Returns
    -------
    PrivateTraining
        Opacus's wrapped module, optimizer, data loader and criterion, and the engine.

    Raises
    ------
    InvalidParameterError
        Bad parameters, or layers DP-SGD cannot train (named in the message).
    CapabilityError
        A TorchScript module.
    """
    owner = "make_private"
    if (target_epsilon is None) == (noise_multiplier is None):
        raise InvalidParameterError(
            f"{owner}: give exactly one of target_epsilon and noise_multiplier"
        )
    check_choice(owner, "accountant", accountant, ACCOUNTANTS)
    check_number(owner, "max_grad_norm", max_grad_norm, low=0, low_open=True)
    if grad_sample_mode is not None:
        check_choice(owner, "grad_sample_mode", grad_sample_mode, GRAD_SAMPLE_MODES)
        if grad_sample_mode == "ghost" and criterion is None:
            raise InvalidParameterError(
                f"{owner}: grad_sample_mode='ghost' needs the criterion (the loss module)"
            )
    if not isinstance(data_loader, DataLoader):
        raise InvalidParameterError(
            f"{owner}: data_loader must be a torch DataLoader, got {type(data_loader).__name__}"
        )
    n = len(data_loader.dataset)  # type: ignore[arg-type]
    if n < 1 or len(data_loader) < 1:
        raise InvalidParameterError(f"{owner}: data_loader is empty")
    delta = target_delta
    if delta is not None:
        check_number(owner, "target_delta", delta, low=0, low_open=True, high=1)
    if target_epsilon is not None:
        check_number(owner, "target_epsilon", target_epsilon, low=0, low_open=True)
        check_int(owner, "epochs", epochs)
        if delta is None:
            delta = 0.1 / n
    else:
        check_number(owner, "noise_multiplier", noise_multiplier, low=0)
    fixed = _validate_module(module, fix)
    if fixed is not module:
        defaults = dict(optimizer.defaults)
        optimizer = type(optimizer)(fixed.parameters(), **defaults)
        module = fixed
    batch = getattr(data_loader, "batch_size", None)
    mode = grad_sample_mode or choose_grad_sample_mode(
        module, criterion=criterion, batch_size=batch if isinstance(batch, int) else None
    )
    sample_rate = 1.0 / len(data_loader)
    if target_epsilon is not None:
        assert delta is not None and epochs is not None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Optimal order.*")
            sigma = float(
                get_noise_multiplier(
                    target_epsilon=target_epsilon,
                    target_delta=delta,
                    sample_rate=sample_rate,
                    epochs=epochs,
                    accountant=accountant,
                )
            )
    else:
        sigma = float(noise_multiplier)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    if mode == "ghost":
        kwargs["criterion"] = criterion
    with warnings.catch_warnings():
        # Opacus warns that secure RNG is off on every engine; secure_mode needs torchcsprng.
        warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
        engine = PrivacyEngine(accountant=accountant)
        wrapped = engine.make_private(
            module=module,
            optimizer=optimizer,
            data_loader=data_loader,
            noise_multiplier=sigma,
            max_grad_norm=max_grad_norm,
            poisson_sampling=poisson_sampling,
            grad_sample_mode=mode,
            noise_generator=noise_generator,
            **kwargs,
        )
    if mode == "ghost":
        w_module, w_opt, w_crit, w_loader = wrapped
    else:
        w_module, w_opt, w_loader = wrapped
        w_crit = criterion
    return PrivateTraining(
        module=w_module,
        optimizer=w_opt,
        data_loader=w_loader,
        engine=engine,
        criterion=w_crit,
        noise_multiplier=sigma,
        sample_rate=sample_rate,
        max_grad_norm=float(max_grad_norm),
        grad_sample_mode=mode,
        delta=delta,
    )


# ---------------------------------------------------------------------- accounting
@dataclass(frozen=True)
class EpsilonReport:
    """Epsilon of one history of DP-SGD steps, from both Opacus accountants.

    Attributes
    ----------
    rdp : float
        :class:`opacus.accountants.RDPAccountant` (Mironov 2017), default orders.
    prv : float
        :class:`opacus.accountants.PRVAccountant` (Gopi et al. 2021), upper bound at
        ``eps_error``.
    delta : float
    history : tuple of (noise_multiplier, sample_rate, steps)
    """

    rdp: float
    prv: float
    delta: float
    history: tuple[tuple[float, float, int], ...]

    @property
    def steps(self) -> int:
        """Total DP-SGD steps in the history."""
        return sum(s for _, _, s in self.history)


def epsilon(engine_or_history: Any, delta: float, *, eps_error: float = 0.01) -> EpsilonReport:
    """Epsilon spent, from Opacus's RDP and PRV accountants given the same history.

    Parameters
    ----------
    engine_or_history : PrivacyEngine, accountant, PrivateTraining or sequence
        Anything holding an Opacus history, or the history itself: a sequence of
        ``(noise_multiplier, sample_rate, steps)``.
    delta : float
        In ``(0, 1)``.
    eps_error : float
        The PRV accountant's epsilon accuracy (Opacus's default).

    Returns
    -------
    EpsilonReport
        The values equal ``RDPAccountant().get_epsilon(delta)`` and
        ``PRVAccountant().get_epsilon(delta, eps_error=eps_error)`` on the history.
    """
    check_number("epsilon", "delta", delta, low=0, low_open=True, high=1)
    obj = engine_or_history
    if isinstance(obj, PrivateTraining):
        obj = obj.engine
    if isinstance(obj, PrivacyEngine):
        obj = obj.accountant
    raw = getattr(obj, "history", obj)
    try:
        history = tuple((float(s), float(q), int(k)) for s, q, k in raw)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            "epsilon: engine_or_history must be a PrivacyEngine, an accountant or a "
            "sequence of (noise_multiplier, sample_rate, steps)"
        ) from None
    if not history:
        return EpsilonReport(rdp=0.0, prv=0.0, delta=float(delta), history=())
    rdp = RDPAccountant()
    rdp.history = list(history)
    prv = PRVAccountant()
    prv.history = list(history)
    with warnings.catch_warnings():
        # "Optimal order is the largest alpha": the RDP figure is valid, only looser.
        warnings.filterwarnings("ignore", message=".*Optimal order.*")
        eps_rdp = float(rdp.get_epsilon(delta))
    return EpsilonReport(
        rdp=eps_rdp,
        prv=float(prv.get_epsilon(delta, eps_error=eps_error)),
        delta=float(delta),
        history=history,
    )


_epsilon_report = epsilon  # train_private's ``epsilon`` parameter shadows the function


# ---------------------------------------------------------------------- training
@dataclass
class DPResult:
    """What :func:`train_private` returns.

    Attributes
    ----------
    model : torch.nn.Module or TorchTarget
        The DP-trained copy (eval mode, no Opacus hooks), of the kind given.
    epsilon_rdp, epsilon_prv : float
        Epsilon spent, from both accountants.
    delta : float
    noise_multiplier, sample_rate, max_grad_norm : float
    steps, epochs : int
    seconds_per_epoch : float
        Wall-clock time of one DP epoch (median over the epochs).
    baseline_seconds_per_epoch : float or None
        A non-private epoch of the same model and batch size (median of 3), when measured.
    grad_sample_mode : str
    history : tuple
        The accountant's ``(noise_multiplier, sample_rate, steps)`` history.
    """

    model: Any
    epsilon_rdp: float
    epsilon_prv: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    max_grad_norm: float
    steps: int
    epochs: int
    seconds_per_epoch: float
    baseline_seconds_per_epoch: float | None
    grad_sample_mode: str
    history: tuple[tuple[float, float, int], ...] = field(default_factory=tuple)
    initial_weights: str = "reset"

    def provenance(self, *, n_samples: int) -> dict[str, Any]:
        """What a model file records about this training (JSON), for audits to check.

        Parameters
        ----------
        n_samples : int
            Training rows (the audit checks ``delta < 1 / n``).
        """
        return {
            "mechanism": "DP-SGD (Opacus)",
            "epsilon_prv": self.epsilon_prv,
            "epsilon_rdp": self.epsilon_rdp,
            "delta": self.delta,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "max_grad_norm": self.max_grad_norm,
            "steps": self.steps,
            "epochs": self.epochs,
            "poisson_sampling": True,
            "n_samples": int(n_samples),
            "initial_weights": self.initial_weights,
        }


class _WeightedCrossEntropy(nn.Module):
    """Cross-entropy with per-class weights applied per row, then a plain mean.

    PyTorch's weighted ``mean`` divides by the batch's sum of weights, which couples
    the rows of a batch; DP-SGD needs each row's loss to depend on that row only.
    """

    def __init__(self, weight: torch.Tensor | None) -> None:
        super().__init__()
        self.weight = weight
        self.reduction = "mean"

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = nnf.cross_entropy(logits, y, reduction="none")
        if self.weight is not None:
            loss = loss * self.weight[y]
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        return loss.sum() / max(int(loss.shape[0]), 1)  # an empty Poisson batch gives 0


class _Head(nn.Module):
    """The target's forward (preprocessing, shape, binary head) around a module."""

    def __init__(self, module: nn.Module, tgt: TorchTarget) -> None:
        super().__init__()
        self.inner = module
        self.shape = tuple(tgt.input_shape)
        self.binary = bool(getattr(tgt, "_binary", False))
        self.probabilities = tgt.output == "probabilities"
        pre = tgt.preprocessing
        self.mean = None if pre is None else torch.as_tensor(pre[0], dtype=torch.float32)
        self.std = None if pre is None else torch.as_tensor(pre[1], dtype=torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape((x.shape[0], *self.shape))
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / self.std
        out = self.inner(x)
        out = out.reshape(out.shape[0], -1)
        if self.binary:
            z = out[:, 0]
            first = 1.0 - z if self.probabilities else torch.zeros_like(z)
            out = torch.stack([first, z], dim=1)
        if self.probabilities:
            out = torch.log(out.clamp_min(1e-30))
        result: torch.Tensor = out
        return result


_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "ReLU": nn.ReLU,
    "Tanh": nn.Tanh,
    "Sigmoid": nn.Sigmoid,
    "Identity": nn.Identity,
    "SiLU": nn.SiLU,
}


def _eager(m: Any) -> nn.Module:
    kind = getattr(m, "original_name", type(m).__name__)
    if kind == "Sequential":
        return nn.Sequential(*(_eager(c) for _, c in m.named_children()))
    if kind == "Linear":
        w = m.weight.detach()
        lin = nn.Linear(w.shape[1], w.shape[0], bias=getattr(m, "bias", None) is not None)
        with torch.no_grad():
            lin.weight.copy_(w)
            if lin.bias is not None:
                lin.bias.copy_(m.bias.detach())
        return lin
    if kind == "Standardize":
        from mlwarden.models._torch_nets import Standardize

        return Standardize(m.mean.detach().numpy(), m.std.detach().numpy())
    if kind in _ACTIVATIONS and not list(m.parameters()):
        return _ACTIVATIONS[kind]()
    raise CapabilityError(
        f"DP training cannot rebuild the TorchScript layer {kind!r} as an eager module "
        f"(Opacus needs one); supported: Sequential, Linear, Standardize, "
        f"{', '.join(_ACTIVATIONS)}. Train the eager model with make_private instead"
    )


def eager_module(module: nn.Module, input_shape: Sequence[int]) -> nn.Module:
    """An eager copy of ``module`` that Opacus can hook.

    An eager module is deep-copied. A TorchScript module is rebuilt layer by layer
    when it is a ``Sequential`` of ``Linear``, ``Standardize`` and parameter-free
    activations (what :func:`~mlwarden.models._torch_nets.mlp_classifier` saves), and
    the copy is checked to give the same outputs.

    Raises
    ------
    CapabilityError
        A TorchScript layer that cannot be rebuilt, or a rebuilt copy that differs.
    """
    if not isinstance(module, torch.jit.ScriptModule):
        return copy.deepcopy(module)
    eager = _eager(module)
    probe = torch.randn((5, *input_shape), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        was = module.training
        module.eval()
        same = torch.allclose(eager.eval()(probe), module(probe), rtol=1e-4, atol=1e-5)
        module.train(was)
    if not same:
        raise CapabilityError(
            "DP training rebuilt the TorchScript module as an eager one, but the copy "
            "gives different outputs; train the eager model with make_private instead"
        )
    return eager


def _as_target(model: Any) -> TorchTarget:
    if isinstance(model, TorchTarget):
        return model
    if isinstance(model, nn.Module):
        try:
            return TorchTarget(model)
        except InvalidParameterError as exc:
            raise InvalidParameterError(
                f"train_private: {exc}; wrap the module in TorchTarget(module, input_shape=...)"
            ) from None
    raise InvalidParameterError(
        f"train_private: model must be a torch.nn.Module or a TorchTarget, "
        f"got {type(model).__name__}"
    )


def validate_dp_params(
    *,
    epsilon: Any,
    delta: Any,
    epochs: Any,
    batch_size: Any,
    lr: Any,
    max_grad_norm: Any,
    class_weight: Any,
    accountant: Any,
    owner: str = "train_private",
    names: dict[str, str] | None = None,
) -> None:
    """Raise :class:`InvalidParameterError` for parameters :func:`train_private` cannot use.

    ``names`` renames parameters in the messages (the CLI passes ``--epsilon``...).
    """
    nm = names or {}
    check_number(owner, nm.get("epsilon", "epsilon"), epsilon, low=0, low_open=True)
    if delta is not None:
        check_number(owner, nm.get("delta", "delta"), delta, low=0, low_open=True, high=1)
        if delta >= 1:
            raise InvalidParameterError(f"{owner}: {nm.get('delta', 'delta')} must be < 1")
    check_int(owner, nm.get("epochs", "epochs"), epochs)
    check_int(owner, nm.get("batch_size", "batch_size"), batch_size)
    check_number(owner, nm.get("lr", "lr"), lr, low=0, low_open=True)
    check_number(
        owner, nm.get("max_grad_norm", "max_grad_norm"), max_grad_norm, low=0, low_open=True
    )
    if class_weight is not None:
        check_choice(owner, nm.get("class_weight", "class_weight"), class_weight, CLASS_WEIGHTS)
    check_choice(owner, nm.get("accountant", "accountant"), accountant, ACCOUNTANTS)


def train_private(
    model: nn.Module | TorchTarget,
    dataset: Dataset,
    *,
    epsilon: float,
    delta: float | None = None,
    epochs: int,
    batch_size: int,
    lr: float,
    max_grad_norm: float,
    class_weight: str | None = None,
    accountant: str = "prv",
    grad_sample_mode: str | None = None,
    measure_baseline: bool = False,
    initial_weights: str = "reset",
    random_state: RandomState = 0,
    progress: ProgressCallback | None = None,
) -> DPResult:
    """Train a DP copy of a torch classifier on a labelled :class:`Dataset` (DP-Adam).

    The noise multiplier is calibrated by Opacus so that ``epochs`` passes with
    Poisson sampling at rate ``batch_size / n`` spend ``(epsilon, delta)`` under the
    chosen ``accountant``; the result reports the epsilon of the steps actually
    taken under both accountants.

    By default training starts from freshly initialised weights (the architecture is
    kept): weights already trained on the same rows without DP would carry their
    leakage into the result, which the accountant does not see, and the stated epsilon
    would be false. ``initial_weights="keep"`` starts from the model's weights, for
    weights pre-trained on *public* data only.

    Parameters
    ----------
    model : torch.nn.Module or TorchTarget
        Takes raw feature rows. TorchScript modules are rebuilt as eager ones
        (:func:`eager_module`). The model itself is never modified.
    dataset : Dataset
        Labelled training rows.
    epsilon : float
        Target epsilon.
    delta : float or None
        Target delta; default ``1 / (10 n)``.
    epochs, batch_size : int
        Passes and *expected* batch size (Poisson batches vary in size).
    lr : float
        Adam's learning rate.
    max_grad_norm : float
        Per-sample clipping norm.
    class_weight : {"balanced"} or None
        Balance classes with weights ``w_c = n / (n_classes * count_c)``. Per-sample
        clipping undoes loss weights (a clipped gradient has norm ``C`` whatever its
        weight), so when the module is a ``Sequential`` ending in ``Linear`` with
        logit outputs, training uses the plain loss and ``log w_c`` is added to the
        output bias afterwards (post-hoc logit adjustment, Menon et al. 2021, the
        balanced-loss optimum); other modules get a per-row weighted loss. The label
        counts are not protected by DP.
    accountant : {"prv", "rdp"}
        Used to calibrate the noise.
    grad_sample_mode : str or None
        See :func:`make_private` (``None``: the fastest that applies).
    measure_baseline : bool
        Also time three non-private epochs of a throwaway copy (same batch size; median).
    initial_weights : {"reset", "keep"}
        Re-initialise every layer's parameters before training (default), or keep the
        model's weights (only when they were trained on public data).
    random_state : int, Generator or None
        Seeds sampling and noise (a seeded run is for experiments: real deployments
        should use unseeded noise).
    progress : callable, optional
        ``progress(task, done, total)``, once per epoch.

    Returns
    -------
    DPResult
    """
    validate_dp_params(
        epsilon=epsilon, delta=delta, epochs=epochs, batch_size=batch_size, lr=lr,
        max_grad_norm=max_grad_norm, class_weight=class_weight, accountant=accountant,
    )  # fmt: skip
    if grad_sample_mode is not None:
        check_choice("train_private", "grad_sample_mode", grad_sample_mode, GRAD_SAMPLE_MODES)
    rng = as_generator(random_state)
    source = _as_target(model)
    if source.input_spec.n_features != dataset.n_features:
        raise IncompatibleModelError(
            f"model {source.name!r} expects {source.input_spec.n_features} features, "
            f"the data {dataset.name!r} has {dataset.n_features}"
        )
    y_np = source.encode_labels(dataset.labels)
    n = dataset.n_samples
    if batch_size > n:
        raise InvalidParameterError(
            f"train_private: batch_size ({batch_size}) is larger than the data ({n} rows)"
        )
    d = 0.1 / n if delta is None else float(delta)
    pristine = eager_module(source.module, source.input_shape)
    if not any(p.requires_grad for p in pristine.parameters()):
        raise CapabilityError(f"{source.name!r}: the module has no trainable parameters")
    check_choice("train_private", "initial_weights", initial_weights, ("reset", "keep"))
    work = copy.deepcopy(pristine)
    if initial_weights == "reset":
        with torch.random.fork_rng():
            torch.manual_seed(int(rng.integers(0, 2**63 - 1)))
            for layer in work.modules():
                reset = getattr(layer, "reset_parameters", None)
                if callable(reset):
                    reset()
    head = _Head(work, source)
    weight = None
    adjust = None
    if class_weight is not None:
        counts = np.bincount(y_np, minlength=source.n_classes).astype(np.float64)
        w = n / (source.n_classes * np.maximum(counts, 1.0))
        if _last_linear(pristine) is not None and not head.probabilities:
            adjust = np.log(w)  # post-hoc logit adjustment instead of a weighted loss
        else:
            weight = torch.as_tensor(w, dtype=torch.float32)
    x_all = torch.as_tensor(dataset.X, dtype=torch.float32)
    y_all = torch.as_tensor(y_np, dtype=torch.int64)
    gen = torch_generator(rng)
    noise_gen = torch_generator(rng)
    loader = DataLoader(TensorDataset(x_all, y_all), batch_size=batch_size, generator=gen)
    criterion = _WeightedCrossEntropy(weight)
    baseline = None
    with torch.random.fork_rng(), warnings.catch_warnings():
        torch.manual_seed(int(rng.integers(0, 2**63 - 1)))
        if measure_baseline:
            baseline = _baseline_epoch(pristine, source, x_all, y_all, batch_size, lr, weight, gen)
        opt = torch.optim.Adam(head.parameters(), lr=lr)
        priv = make_private(
            module=head, optimizer=opt, data_loader=loader, target_epsilon=epsilon,
            epochs=epochs, target_delta=d, max_grad_norm=max_grad_norm,
            accountant=accountant, grad_sample_mode=grad_sample_mode,
            criterion=criterion, noise_generator=noise_gen,
        )  # fmt: skip
        task = f"DP training (epsilon={epsilon:g})"
        times: list[float] = []
        priv.module.train()
        # Opacus's hooks on a first layer whose input needs no gradient: harmless.
        warnings.filterwarnings("ignore", message=".*Full backward hook.*", category=UserWarning)
        for ep in range(epochs):
            report_progress(progress, task, ep, epochs)
            start = time.perf_counter()
            # Opacus's Poisson batch sampler draws the rows; the batch is sliced from the
            # tensors at once instead of fetched row by row and collated (30 % of an
            # epoch on small tabular models), the same rows either way.
            for rows in priv.data_loader.batch_sampler:
                index = torch.as_tensor(rows, dtype=torch.int64)
                xb, yb = x_all[index], y_all[index]
                priv.optimizer.zero_grad(set_to_none=True)
                loss = priv.criterion(priv.module(xb), yb)
                loss.backward()
                priv.optimizer.step()
            times.append(time.perf_counter() - start)
        report_progress(progress, task, epochs, epochs)
    rep = _epsilon_report(priv.engine, d)
    pristine.load_state_dict(work.state_dict())
    pristine.eval()
    if adjust is not None:
        _shift_last_bias(pristine, adjust, binary=head.binary)
    if isinstance(model, TorchTarget):
        from mlwarden.evasion.defenses.adversarial_training import target_kwargs

        out: Any = TorchTarget(
            pristine, name=f"{source.name}-dp", batch_size=source.batch_size,
            **target_kwargs(source),
        )  # fmt: skip
    else:
        out = pristine
    return DPResult(
        model=out,
        epsilon_rdp=rep.rdp,
        epsilon_prv=rep.prv,
        delta=d,
        noise_multiplier=priv.noise_multiplier,
        sample_rate=priv.sample_rate,
        max_grad_norm=float(max_grad_norm),
        steps=rep.steps,
        epochs=epochs,
        seconds_per_epoch=float(np.median(times)),
        baseline_seconds_per_epoch=baseline,
        grad_sample_mode=priv.grad_sample_mode,
        history=rep.history,
        initial_weights=initial_weights,
    )


def _last_linear(module: nn.Module) -> nn.Linear | None:
    """The output layer, when the module is a ``Sequential`` ending with ``Linear``."""
    if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], nn.Linear):
        last = module[-1]
        return last if last.bias is not None else None
    return None


def _shift_last_bias(module: nn.Module, log_w: np.ndarray[Any, Any], *, binary: bool) -> None:
    """Add ``log w_c`` to the output logits (Menon et al. 2021, logit adjustment)."""
    last = _last_linear(module)
    assert last is not None and last.bias is not None
    shift = np.array([log_w[1] - log_w[0]]) if binary else log_w
    if last.bias.shape[0] != len(shift):
        return
    with torch.no_grad():
        last.bias.add_(torch.as_tensor(shift, dtype=last.bias.dtype))


def _baseline_epoch(
    module: nn.Module,
    tgt: TorchTarget,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    lr: float,
    weight: torch.Tensor | None,
    gen: torch.Generator,
) -> float:
    """Seconds for a plain (non-private) Adam epoch of a throwaway copy (median of 3)."""
    head = _Head(copy.deepcopy(module), tgt)
    head.train()
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    crit = _WeightedCrossEntropy(weight)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad(set_to_none=True)
            crit(head(x[idx]), y[idx]).backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# ---------------------------------------------------------------------- config checks
def epsilon_finding(
    epsilon_value: float,
    *,
    delta: float | None = None,
    max_epsilon: float = DEFAULT_MAX_EPSILON,
    accountant: str | None = None,
    target: str = "model",
) -> Finding:
    """``MLW-PRI-004``: the accountant's epsilon against the policy's maximum."""
    check_number(_CHECK, "epsilon", epsilon_value, low=0)
    check_number(_CHECK, "max_epsilon", max_epsilon, low=0, low_open=True)
    ok = epsilon_value <= max_epsilon
    return Finding.from_rule(
        RULE_DP_CONFIG,
        target=target,
        check=_CHECK,
        metric="epsilon",
        value=float(epsilon_value),
        threshold=float(max_epsilon),
        higher_is_better=False,
        description=(
            f"The accountant's epsilon is {epsilon_value:.3g}"
            + (f" at delta={delta:.3g}" if delta is not None else "")
            + f"; the policy allows at most {max_epsilon:g}."
            + ("" if ok else " A guarantee this weak does not stop membership inference.")
        ),
        evidence={"epsilon": float(epsilon_value), "delta": delta, "accountant": accountant},
    )


def sampling_finding(
    data_loader: Any = None, *, poisson_sampling: bool = True, target: str = "model"
) -> Finding:
    """``MLW-PRI-004``: does the batch sampling match the accountant's assumption?

    Opacus's accountants assume Poisson sampling (each row independently with
    probability ``q``), which :class:`opacus.data_loader.DPDataLoader` (batch sampler
    :class:`opacus.utils.uniform_sampler.UniformWithReplacementSampler`) does. A
    :class:`~torch.utils.data.WeightedRandomSampler` (rows with unequal, data-dependent
    probabilities) or fixed-size shuffled batches with ``poisson_sampling=False``
    break it.
    """
    sampler = getattr(data_loader, "sampler", None)
    batch_sampler = getattr(data_loader, "batch_sampler", None)
    sampler_name = type(sampler).__name__ if sampler is not None else None
    batch_name = type(batch_sampler).__name__ if batch_sampler is not None else None
    poisson = isinstance(data_loader, DPDataLoader) or isinstance(
        batch_sampler, UniformWithReplacementSampler
    )
    problems: list[str] = []
    if isinstance(sampler, WeightedRandomSampler) or isinstance(
        getattr(batch_sampler, "sampler", None), WeightedRandomSampler
    ):
        problems.append(
            "the data loader uses a WeightedRandomSampler: rows are drawn with unequal, "
            "data-dependent probabilities (and Opacus's Poisson sampling would silently "
            "drop the weights)"
        )
    if not poisson_sampling and not poisson:
        problems.append(
            "poisson_sampling=False: batches are fixed-size shuffles, not the Poisson "
            "sampling the accountant's amplification assumes"
        )
    ok = not problems
    return Finding.from_rule(
        RULE_DP_CONFIG,
        target=target,
        check=_CHECK,
        metric="poisson_sampling",
        value=1.0 if ok else 0.0,
        threshold=1.0,
        description=(
            "Batch sampling matches the accountant's Poisson-sampling assumption."
            if ok
            else "The stated epsilon does not hold: " + "; ".join(problems) + "."
        ),
        evidence={
            "sampler": sampler_name,
            "batch_sampler": batch_name,
            "poisson_sampling": bool(poisson_sampling),
            "dp_data_loader": bool(poisson),
            "problems": problems,
        },
    )


def delta_finding(delta: float, n_samples: int, *, target: str = "model") -> Finding:
    """``MLW-PRI-004``: ``delta`` must be below ``1 / n``.

    With ``delta >= 1 / n`` the mechanism "publish one random row in the clear" is
    (0, delta)-DP, so the guarantee says nothing about individual rows.
    """
    check_number(_CHECK, "delta", delta, low=0, high=1)
    check_int(_CHECK, "n_samples", n_samples)
    value = float(delta) * n_samples
    f = Finding.from_rule(
        RULE_DP_CONFIG,
        target=target,
        check=_CHECK,
        metric="delta_times_n",
        value=value,
        threshold=1.0,
        higher_is_better=False,
        description=(
            f"delta={delta:.3g} with n={n_samples} training rows: delta * n = {value:.3g} "
            + ("< 1." if value < 1 else ">= 1, so the guarantee allows leaking whole rows.")
        ),
        evidence={"delta": float(delta), "n_samples": int(n_samples), "one_over_n": 1 / n_samples},
    )
    return replace(f, passed=value < 1.0)


def dp_config_findings(
    *,
    epsilon_value: float,
    delta: float,
    n_samples: int,
    data_loader: Any = None,
    poisson_sampling: bool = True,
    max_epsilon: float = DEFAULT_MAX_EPSILON,
    accountant: str | None = None,
    target: str = "model",
) -> list[Finding]:
    """All three ``MLW-PRI-004`` findings: epsilon, sampling and delta."""
    return [
        epsilon_finding(
            epsilon_value, delta=delta, max_epsilon=max_epsilon, accountant=accountant,
            target=target,
        ),
        sampling_finding(data_loader, poisson_sampling=poisson_sampling, target=target),
        delta_finding(delta, n_samples, target=target),
    ]  # fmt: skip
