"""TRADES: trade natural accuracy for robustness through a KL regulariser.

Zhang, Yu, Jiao, Xing, El Ghaoui and Jordan, "Theoretically Principled Trade-off
between Robustness and Accuracy", ICML 2019.

The training objective, per row ``x`` with label ``y``, is

    CE(f(x), y) + beta * max_{x' in B(x)} KL(softmax f(x) || softmax f(x')),

where the inner maximisation is solved approximately by projected sign-gradient
ascent on the KL term, started at ``x`` plus a small Gaussian jitter (the KL and
its gradient are zero at ``x'`` = ``x``). ``beta`` trades clean accuracy (small) for
robustness (large; the paper uses 6).

Threat model: the same as the evasion attacks (see
:mod:`mlwarden.evasion.threat_model`): an L∞ box of ``eps`` per-feature scale units
around each row, intersected with the schema's bounds; immutable features never
move; with ``categorical="free"``, relaxed binary/categorical features move in
``[0, 1]``. This module holds the tensor-level pieces; the training loop is
:func:`mlwarden.evasion.defenses.adversarial_training` with ``method="trades"``
(or :func:`trades_training`).

Importing this module imports :mod:`torch`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as nnf

if TYPE_CHECKING:
    from mlwarden.data.dataset import Dataset

__all__ = ["trades_examples", "trades_loss", "trades_training"]

Forward = Callable[[torch.Tensor], torch.Tensor]
"""Maps raw feature rows ``(n, d)`` to logits ``(n, k)``."""

_JITTER = 0.1
"""Start of the inner maximisation: ``x + _JITTER * alpha * N(0, 1)``, about 3 % of ``eps``
with the default step (the paper's code starts at ``x + 0.001 * N(0, 1)`` for
``eps = 8/255``, the same ratio)."""


def _kl_rows(logits_clean: torch.Tensor, logits_adv: torch.Tensor) -> torch.Tensor:
    """Per-row ``KL(softmax(clean) || softmax(adv))``."""
    return nnf.kl_div(
        nnf.log_softmax(logits_adv, dim=1),
        nnf.log_softmax(logits_clean, dim=1),
        reduction="none",
        log_target=True,
    ).sum(dim=1)


def trades_examples(
    forward: Forward,
    x: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    alpha: torch.Tensor,
    *,
    steps: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Approximately maximise ``KL(f(x) || f(x'))`` over the box ``[lower, upper]``.

    Parameters
    ----------
    forward : callable
        Raw rows to logits; called with gradients enabled on the input only.
    x : Tensor of shape (n, d)
        Clean rows (inside the box).
    lower, upper : Tensor of shape (n, d)
        The per-row feasible box (equal bounds pin a feature).
    alpha : Tensor of shape (d,)
        Step per feature and iteration (0 for features that cannot move).
    steps : int
        Sign-gradient ascent steps.
    generator : torch.Generator
        Source of the initial jitter.

    Returns
    -------
    Tensor of shape (n, d)
        Detached rows inside the box.
    """
    with torch.no_grad():
        target = forward(x).detach()
    jitter = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    x_adv = _clip(x + _JITTER * alpha * jitter, lower, upper)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = _kl_rows(target, forward(x_adv)).sum()
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = _clip(x_adv.detach() + alpha * grad.sign(), lower, upper)
    return x_adv.detach()


def trades_loss(
    logits_clean: torch.Tensor,
    logits_adv: torch.Tensor,
    y: torch.Tensor,
    *,
    beta: float,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The TRADES objective ``CE(f(x), y) + beta * KL(f(x) || f(x'))``, averaged over rows.

    Parameters
    ----------
    logits_clean, logits_adv : Tensor of shape (n, k)
        Logits on the clean rows and on the rows from :func:`trades_examples`.
    y : Tensor of shape (n,)
        Class indices.
    beta : float
        Weight of the robustness (KL) term.
    weight : Tensor of shape (k,) or None
        Class weights; rows are weighted by the weight of their class and the mean is
        taken over the total weight (as :class:`torch.nn.CrossEntropyLoss` does).
    """
    per_row = nnf.cross_entropy(logits_clean, y, reduction="none") + beta * _kl_rows(
        logits_clean, logits_adv
    )
    if weight is None:
        return per_row.mean()
    w = weight[y]
    return (w * per_row).sum() / w.sum()


def trades_training(model: Any, data: Dataset, *, eps: float, **kwargs: Any) -> Any:
    """TRADES fine-tuning: :func:`adversarial_training` with ``method="trades"``.

    Parameters
    ----------
    model : torch.nn.Module or TorchTarget
        The classifier (taking raw feature rows).
    data : Dataset
        Labelled training data; its schema defines the threat model.
    eps : float
        L∞ budget in per-feature scale units.
    **kwargs
        Any other keyword argument of
        :func:`~mlwarden.evasion.defenses.adversarial_training` (``beta``,
        ``epochs``, ``steps``, ...).

    Returns
    -------
    torch.nn.Module or TorchTarget
        A trained copy, of the same kind as ``model``.
    """
    from mlwarden.evasion.defenses.adversarial_training import adversarial_training

    return adversarial_training(model, data, eps=eps, method="trades", **kwargs)


def _clip(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    return torch.maximum(torch.minimum(x, upper), lower)
