"""Penultimate-layer representations of a small network trained on the data itself.

Spectral signatures and activation clustering look at what a network trained on the
(possibly poisoned) data has learned; when the user gives no network, a small MLP is
trained here (torch, CPU, one thread, seeded) and its last hidden layer is read out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden.exceptions import MissingDependencyError

__all__ = ["penultimate_activations"]


def penultimate_activations(
    X: npt.NDArray[np.float64],
    y: npt.NDArray[np.int64],
    *,
    hidden: tuple[int, ...] = (128, 64),
    epochs: int = 40,
    batch_size: int = 64,
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """Train an MLP on ``(X, y)`` and return its last hidden layer for every row.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Features.
    y : ndarray of int, shape (n,)
        Class codes ``0..k-1``.
    hidden : tuple of int
        Hidden layer widths; the last one is the representation's width.
    epochs, batch_size : int
        Training length (Adam, lr 1e-3, weight decay 1e-4).
    seed : int
        Seed of the initialisation and the batch order.

    Returns
    -------
    ndarray of shape (n, hidden[-1])
    """
    try:
        import torch

        from mlwarden.models._torch_nets import mlp_classifier, train_classifier
    except ImportError as exc:  # pragma: no cover - torch is optional
        raise MissingDependencyError(
            "spectral signatures and activation clustering need torch "
            "(pip install 'mlwarden[torch]'), or pass representations= yourself"
        ) from exc
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        n_classes = int(y.max()) + 1
        model: Any = mlp_classifier(X, n_classes, hidden=hidden)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            train_classifier(model, X, y, epochs=epochs, batch_size=batch_size, seed=seed)
        with torch.no_grad():
            feats = model[:-1](torch.as_tensor(X, dtype=torch.float32)).numpy()
    finally:
        torch.set_num_threads(threads)
    return np.asarray(feats, dtype=np.float64)
