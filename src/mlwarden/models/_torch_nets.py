"""Small torch networks and a plain training loop, used by the demo and the tests.

Importing this module imports torch; nothing on mlwarden's import path does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

__all__ = ["Standardize", "mlp_classifier", "train_classifier"]


class Standardize(nn.Module):
    """``(x - mean) / std`` as a layer, so a saved model takes raw feature rows."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: npt.ArrayLike, std: npt.ArrayLike) -> None:
        super().__init__()
        std_arr = np.asarray(std, dtype=np.float32)
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("std", torch.as_tensor(np.where(std_arr > 0, std_arr, 1.0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def mlp_classifier(
    x_train: npt.NDArray[np.float64], n_classes: int, hidden: tuple[int, ...] = (64, 32)
) -> nn.Module:
    """An MLP with a built-in standardisation layer fitted on ``x_train``."""
    layers: list[nn.Module] = [Standardize(x_train.mean(axis=0), x_train.std(axis=0))]
    width = x_train.shape[1]
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def train_classifier(
    model: nn.Module,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.int64],
    *,
    epochs: int = 20,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    balanced: bool = False,
    seed: int = 0,
) -> nn.Module:
    """Train ``model`` with Adam and cross-entropy; deterministic for a given ``seed``.

    With ``balanced=True`` classes are weighted by ``n / (n_classes * count)``, as
    scikit-learn's ``class_weight="balanced"``.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    weight = None
    if balanced:
        counts = np.bincount(y, minlength=int(y.max()) + 1).astype(np.float64)
        weight = torch.as_tensor(
            len(y) / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32
        )
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model
