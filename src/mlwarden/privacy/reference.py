"""Reference (shadow) models, trained once and shared by every membership attack.

Shokri, Stronati, Song and Shmatikov, "Membership Inference Attacks Against Machine
Learning Models", IEEE S&P 2017 (shadow models); Carlini, Chien, Nasr, Song, Terzis and
Tramèr, "Membership Inference Attacks From First Principles", IEEE S&P 2022 (LiRA's
paired IN/OUT reference models).

Threat model: the attacker holds a population of labelled records drawn from the target's
data distribution (it includes the records to audit) and knows, or imitates, the target's
training procedure. It trains ``K`` reference models on **paired half-splits** of that
population: for each pair a stratified random half and its complement, so that every
record is IN the training set of exactly ``K / 2`` models and OUT of the other ``K / 2``.
The outputs of the fitted models on every population record (logits, or log-probabilities
for models that only return probabilities) and the IN/OUT mask are cached on the object,
so LiRA, RMIA and any later attack share one set of reference models.

Training runs one model after another (``backend="sequential"``), in parallel processes
(``"joblib"``, loky, one thread per worker), through Ray (``"ray"``, optional), or — for
small torch MLPs (:class:`MLPTrainer`) — as one stacked model trained in one loop with
batched matrix products (``"batched"``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden._random import RandomState, as_generator
from mlwarden._validation import check_choice, check_int, check_number
from mlwarden.exceptions import (
    DataError,
    DataFileError,
    InvalidParameterError,
    MissingDependencyError,
)
from mlwarden.models.base import Capability, Target

__all__ = [
    "BACKENDS",
    "BUDGETS",
    "MLPTrainer",
    "ReferenceModels",
    "SklearnTrainer",
    "TorchModuleTrainer",
    "Trainer",
    "target_log_scores",
    "true_class_logit",
    "true_class_prob",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

Trainer = Callable[[FloatArray, IntArray, int], Target]
"""``trainer(X, y, seed) -> Target``: fit one model on ``X`` with class indices ``y``."""

BUDGETS: dict[str, int] = {"quick": 4, "standard": 16, "thorough": 64}
"""Number of reference models of each budget preset."""

BACKENDS = ("auto", "batched", "joblib", "sequential", "ray")
"""Ways of training the reference models."""

_OWNER = "ReferenceModels"


# ----------------------------------------------------------------------- signals
def true_class_logit(logits: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """Logit-scaled confidence of the true class, ``φ = log(p_y / (1 - p_y))``.

    Computed stably from logits (or log-probabilities) ``z`` as
    ``z_y - logsumexp_{j != y} z_j``.

    Parameters
    ----------
    logits : array-like of shape (..., n, n_classes)
    y : array-like of shape (n,)
        True class indices.

    Returns
    -------
    ndarray of shape (..., n)
    """
    from scipy.special import logsumexp

    z = np.asarray(logits, dtype=np.float64)
    ys = np.asarray(y, dtype=np.int64).reshape(-1)
    onehot = np.arange(z.shape[-1]) == ys[:, None]
    zy = np.where(onehot, z, 0.0).sum(axis=-1)
    others = np.where(onehot, -np.inf, z)
    return np.asarray(zy - logsumexp(others, axis=-1), dtype=np.float64)


def true_class_prob(logits: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """Softmax probability of the true class, from logits (or log-probabilities)."""
    from scipy.special import logsumexp

    z = np.asarray(logits, dtype=np.float64)
    ys = np.asarray(y, dtype=np.int64).reshape(-1)
    onehot = np.arange(z.shape[-1]) == ys[:, None]
    zy = np.where(onehot, z, 0.0).sum(axis=-1)
    return np.asarray(np.exp(zy - logsumexp(z, axis=-1)), dtype=np.float64)


def target_log_scores(target: Target, x: FloatArray) -> FloatArray:
    """Logits of ``target`` on ``x``, or log-probabilities when it offers no logits."""
    if Capability.LOGITS in target.capabilities:
        return target.logits(x)
    p = target.predict_proba(x)
    return np.asarray(np.log(np.clip(p, np.finfo(np.float64).tiny, None)), dtype=np.float64)


# ----------------------------------------------------------------------- trainers
class MLPTrainer:
    """Train a small torch MLP (standardisation layer, ReLU hidden layers, Adam).

    Reference models built by this trainer can be trained together, stacked into one
    model (``backend="batched"``).

    Parameters
    ----------
    hidden : tuple of int, default=(64,)
        Hidden layer widths.
    epochs : int, default=50
        Passes over each model's training half.
    lr : float, default=1e-2
        Adam learning rate.
    weight_decay : float, default=0.0
        Adam's L2 penalty.
    batch_size : int, default=64
        Rows per step, per model.
    """

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (64,),
        epochs: int = 50,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
        batch_size: int = 64,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size

    def _validate(self) -> None:
        owner = "MLPTrainer"
        if not isinstance(self.hidden, Sequence) or isinstance(self.hidden, str):
            raise InvalidParameterError(f"{owner}: hidden must be a tuple of ints")
        for h in self.hidden:
            check_int(owner, "hidden", h, minimum=1)
        check_int(owner, "epochs", self.epochs, minimum=1)
        check_number(owner, "lr", self.lr, low=0.0, low_open=True)
        check_number(owner, "weight_decay", self.weight_decay, low=0.0)
        check_int(owner, "batch_size", self.batch_size, minimum=1)

    def __call__(
        self, X: FloatArray, y: IntArray, seed: int, n_classes: int | None = None
    ) -> Target:
        """Train one MLP on ``X, y`` and return it as a target."""
        self._validate()
        k = int(np.max(y)) + 1 if n_classes is None else n_classes
        params = self.train_stacked(X, y, np.ones((1, len(X)), dtype=bool), k, seed)
        return _stacked_target(params, 0)

    def train_stacked(
        self, X: FloatArray, y: IntArray, in_mask: BoolArray, n_classes: int, seed: int
    ) -> list[Any]:
        """Train ``len(in_mask)`` MLPs at once, model ``k`` on the rows ``in_mask[k]``.

        Returns the stacked parameters ``[mean, std, (W, b), ...]`` (torch tensors with a
        leading model axis). Each model's steps see ``batch_size`` of its own rows on
        average, so one model trained here matches one trained alone.
        """
        import torch

        self._validate()
        gen = torch.Generator().manual_seed(int(seed))
        xt = torch.as_tensor(X, dtype=torch.float32)
        yt = torch.as_tensor(y, dtype=torch.long)
        m = torch.as_tensor(in_mask, dtype=torch.float32)
        n_models, n = m.shape
        cnt = m.sum(1).clamp(min=1.0)
        mean = (m @ xt) / cnt[:, None]
        var = ((m @ (xt * xt)) / cnt[:, None] - mean**2).clamp(min=0.0)
        std = var.sqrt()
        std = torch.where(std > 0, std, torch.ones_like(std))
        widths = [X.shape[1], *[int(h) for h in self.hidden], n_classes]
        layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        for fan_in, fan_out in itertools.pairwise(widths):
            bound = 1.0 / float(np.sqrt(fan_in))
            w = (torch.rand(n_models, fan_in, fan_out, generator=gen) * 2 - 1) * bound
            b = (torch.rand(n_models, 1, fan_out, generator=gen) * 2 - 1) * bound
            layers.append((w.requires_grad_(), b.requires_grad_()))
        opt = torch.optim.Adam(
            [p for pair in layers for p in pair], lr=self.lr, weight_decay=self.weight_decay
        )
        # A population batch holding ``batch_size`` rows of each model on average.
        step = max(1, round(self.batch_size * n / float(cnt.mean())))
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n, step):
                idx = perm[i : i + step]
                mb = m[:, idx]
                if not bool((mb.sum(1) > 0).any()):
                    continue
                logits = _stacked_forward(xt[idx], mean, std, layers)
                logp = torch.log_softmax(logits, dim=-1)
                nll = -logp.gather(-1, yt[idx].expand(n_models, -1).unsqueeze(-1)).squeeze(-1)
                loss = ((nll * mb).sum(1) / mb.sum(1).clamp(min=1.0)).sum()
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        return [mean, std, *[(w.detach(), b.detach()) for w, b in layers]]

    @staticmethod
    def stacked_logits(params: list[Any], X: FloatArray) -> FloatArray:
        """Logits of every stacked model on ``X``, shape ``(n_models, n, n_classes)``."""
        import torch

        mean, std, *layers = params
        with torch.no_grad():
            out = _stacked_forward(torch.as_tensor(X, dtype=torch.float32), mean, std, layers)
        return np.asarray(out.numpy(), dtype=np.float64)


def _stacked_forward(x: Any, mean: Any, std: Any, layers: Sequence[tuple[Any, Any]]) -> Any:
    import torch

    h = (x.unsqueeze(0) - mean.unsqueeze(1)) / std.unsqueeze(1)
    for j, (w, b) in enumerate(layers):
        h = torch.baddbmm(b, h, w)
        if j < len(layers) - 1:
            h = torch.relu(h)
    return h


def _stacked_target(params: list[Any], k: int) -> Target:
    """Model ``k`` of a stack, as an ordinary torch target."""
    import torch
    from torch import nn

    from mlwarden.models._torch_nets import Standardize
    from mlwarden.models.torch import TorchTarget

    mean, std, *layers = params
    mods: list[nn.Module] = [Standardize(mean[k].numpy(), std[k].numpy())]
    for j, (w, b) in enumerate(layers):
        lin = nn.Linear(w.shape[1], w.shape[2])
        with torch.no_grad():
            lin.weight.copy_(w[k].T)
            lin.bias.copy_(b[k, 0])
        mods.append(lin)
        if j < len(layers) - 1:
            mods.append(nn.ReLU())
    module = nn.Sequential(*mods).eval()
    return TorchTarget(module, output="logits", name=f"reference-{k}")


class TorchModuleTrainer:
    """Train a torch module built by ``factory(X, n_classes)`` with Adam.

    Parameters
    ----------
    factory : callable
        ``factory(X, n_classes) -> torch.nn.Module`` returning logits, e.g.
        :func:`mlwarden.models._torch_nets.mlp_classifier`.
    epochs, batch_size, lr, weight_decay
        Passed to the training loop.
    """

    def __init__(
        self,
        factory: Callable[[FloatArray, int], Any],
        *,
        epochs: int = 20,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
    ) -> None:
        self.factory = factory
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay

    def __call__(self, X: FloatArray, y: IntArray, seed: int) -> Target:
        """Build, train and wrap one module."""
        from mlwarden.models._torch_nets import train_classifier
        from mlwarden.models.torch import TorchTarget

        module = self.factory(X, int(np.max(y)) + 1)
        train_classifier(
            module,
            X,
            y,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            seed=int(seed),
        )
        return TorchTarget(module, output="logits", name="reference")


class SklearnTrainer:
    """Fit a clone of a scikit-learn classifier (its ``random_state`` set to the seed)."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def __call__(self, X: FloatArray, y: IntArray, seed: int) -> Target:
        """Clone, seed, fit and wrap."""
        from sklearn.base import clone

        from mlwarden.models.sklearn import SklearnTarget

        est = clone(self.estimator)
        if "random_state" in est.get_params():
            est.set_params(random_state=int(seed))
        est.fit(X, y)
        return SklearnTarget(est, name="reference")


def _as_trainer(trainer: Any) -> Trainer:
    if trainer is None:
        return MLPTrainer()
    if isinstance(trainer, MLPTrainer | TorchModuleTrainer | SklearnTrainer):
        return trainer
    if hasattr(trainer, "fit") and hasattr(trainer, "predict"):
        return SklearnTrainer(trainer)
    if callable(trainer):
        return trainer  # type: ignore[no-any-return]
    raise InvalidParameterError(
        f"{_OWNER}: trainer must be None, an MLPTrainer, a TorchModuleTrainer, a "
        f"scikit-learn classifier or a callable (X, y, seed) -> Target; got "
        f"{type(trainer).__name__}"
    )


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run BLAS/OpenMP and torch on one thread; restore the previous settings after."""
    from threadpoolctl import threadpool_limits

    torch_threads = None
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        if torch_threads is not None:
            sys.modules["torch"].set_num_threads(torch_threads)


def _fit_one(
    trainer: Trainer,
    X: FloatArray,
    y: IntArray,
    mask: BoolArray,
    seed: int,
    keep: bool,
    limit_threads: bool,
) -> tuple[FloatArray, Target | None]:
    """Train one reference model on ``X[mask]`` and return its outputs on all of ``X``."""
    if limit_threads and isinstance(trainer, MLPTrainer | TorchModuleTrainer):
        import torch  # noqa: F401  (imported first so that _one_thread limits it)
    with _one_thread() if limit_threads else contextlib.nullcontext():
        model = trainer(X[mask], y[mask], seed)
        if not isinstance(model, Target):
            raise InvalidParameterError(
                f"{_OWNER}: trainer returned a {type(model).__name__}, not a Target; wrap "
                "the fitted model with mlwarden.target(...)"
            )
        cols = model.encode_labels(np.arange(int(y.max()) + 1))
        model.require(Capability.SCORES, by="a reference model")
        out = target_log_scores(model, X)[:, cols]
    return out, model if keep else None


# ----------------------------------------------------------------------- the models
class ReferenceModels:
    """``K`` reference models trained on paired half-splits of a population.

    Parameters
    ----------
    n_models : int or {"quick", "standard", "thorough"}, default="standard"
        Number of reference models ``K`` (even, at least 2), or a budget preset:
        ``quick`` = 4, ``standard`` = 16, ``thorough`` = 64.
    trainer : callable, scikit-learn classifier, MLPTrainer, TorchModuleTrainer or None
        How to train one model: ``trainer(X, y, seed) -> Target`` with ``y`` as class
        indices ``0..n_classes-1``; a scikit-learn classifier is cloned and fitted
        (:class:`SklearnTrainer`); ``None`` means ``MLPTrainer()``. Train the
        reference models the way the target was trained.
    backend : {"auto", "batched", "joblib", "sequential", "ray"}, default="auto"
        ``batched`` stacks :class:`MLPTrainer` models into one; ``joblib`` trains in
        ``n_jobs`` loky processes with one thread each; ``ray`` needs ray installed;
        ``auto`` is ``batched`` for an :class:`MLPTrainer`, else ``joblib`` when
        ``n_jobs != 1``, else ``sequential``.
    n_jobs : int or None, default=None
        Processes for ``joblib`` (``None`` = 1, ``-1`` = all cores).
    keep_models : bool, default=True
        Keep the fitted models in :attr:`models_` (their outputs are always kept).
    random_state : int, Generator or None
        Seed for the splits and the training.

    Attributes
    ----------
    n_models_ : int
        ``K``.
    classes_ : ndarray
        The population's class labels; ``y_`` indexes into them.
    y_ : ndarray of shape (n,)
        Class index of each population record.
    in_mask_ : ndarray of shape (K, n)
        ``True`` where record ``i`` was in model ``k``'s training half. Rows ``2p`` and
        ``2p + 1`` are complementary (on the records not excluded).
    logits_ : ndarray of shape (K, n, n_classes)
        Each model's logits (log-probabilities for score-only models) on every record.
    models_ : list of Target or None
        The fitted models, when ``keep_models``.
    backend_ : str
        The backend used.
    seconds_ : float
        Training wall time.
    """

    def __init__(
        self,
        *,
        n_models: int | str = "standard",
        trainer: Any = None,
        backend: str = "auto",
        n_jobs: int | None = None,
        keep_models: bool = True,
        random_state: RandomState = None,
    ) -> None:
        self.n_models = n_models
        self.trainer = trainer
        self.backend = backend
        self.n_jobs = n_jobs
        self.keep_models = keep_models
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _n_models(self) -> int:
        k = self.n_models
        if isinstance(k, str):
            if k not in BUDGETS:
                raise InvalidParameterError(
                    f"{_OWNER}: n_models must be an even integer or one of "
                    f"{', '.join(map(repr, BUDGETS))}, got {k!r}"
                )
            return BUDGETS[k]
        k = check_int(_OWNER, "n_models", k, minimum=2)
        if k % 2:
            raise InvalidParameterError(
                f"{_OWNER}: n_models must be even for paired half-splits (each record IN "
                f"for half of the models), got {k}"
            )
        return k

    def _resolve_backend(self, trainer: Trainer) -> str:
        backend = check_choice(_OWNER, "backend", self.backend, BACKENDS)
        if self.n_jobs is not None and (
            not isinstance(self.n_jobs, int) or isinstance(self.n_jobs, bool) or self.n_jobs == 0
        ):
            raise InvalidParameterError(
                f"{_OWNER}: n_jobs must be None, -1 or a positive integer, got {self.n_jobs!r}"
            )
        if backend == "auto":
            if isinstance(trainer, MLPTrainer):
                return "batched"
            return "joblib" if self.n_jobs not in (None, 1) else "sequential"
        if backend == "batched" and not isinstance(trainer, MLPTrainer):
            raise InvalidParameterError(
                f"{_OWNER}: backend='batched' needs an MLPTrainer, got "
                f"{type(trainer).__name__}; use 'joblib' or 'sequential'"
            )
        if backend == "ray":
            try:
                importlib.import_module("ray")
            except ImportError:
                raise MissingDependencyError(
                    f"{_OWNER}: backend='ray' needs the ray package, which is not installed "
                    "(pip install 'ray[default]'), or use backend='joblib'"
                ) from None
        return backend

    # ------------------------------------------------------------------ work
    def fit(
        self,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        exclude: npt.ArrayLike | None = None,
        progress: ProgressCallback | None = None,
    ) -> ReferenceModels:
        """Split the population, train the ``K`` models and cache their outputs.

        Parameters
        ----------
        X : array-like of shape (n, d)
            The attacker's population (it should contain the records to audit).
        y : array-like of shape (n,)
            Labels.
        exclude : array-like of int, optional
            Rows never used for training (always OUT) but still scored; for an
            offline attack on records the attacker may not train on.
        progress : callable, optional
            ``progress(task, done, total)``.

        Returns
        -------
        self

        Raises
        ------
        InvalidParameterError
            For an odd ``n_models``, an unknown backend or trainer.
        DataError
            If the population is too small to split (each class needs two trainable
            rows), or has NaNs or fewer than two classes.
        MissingDependencyError
            For ``backend="ray"`` without ray.
        """
        k = self._n_models()
        trainer = _as_trainer(self.trainer)
        backend = self._resolve_backend(trainer)
        if isinstance(trainer, MLPTrainer):
            trainer._validate()
        if not isinstance(self.keep_models, bool):
            raise InvalidParameterError(f"{_OWNER}: keep_models must be a bool")
        xs, y_idx, classes = _check_population(X, y)
        n = len(xs)
        eligible = np.ones(n, dtype=bool)
        if exclude is not None:
            ex = np.asarray(exclude).reshape(-1)
            if ex.size and (ex.dtype.kind not in "iu" or ex.min() < 0 or ex.max() >= n):
                raise InvalidParameterError(f"{_OWNER}: exclude must hold row indices in [0, {n})")
            eligible[ex.astype(np.int64)] = False
        counts = np.bincount(y_idx[eligible], minlength=len(classes))
        if eligible.sum() < 4 or counts.min() < 2:
            raise DataError(
                f"{_OWNER}: the population is too small to split in halves: "
                f"{int(eligible.sum())} trainable row(s), class counts "
                f"{dict(zip(map(str, classes.tolist()), counts.tolist(), strict=True))}; "
                "each class needs at least 2 rows (more for useful models)"
            )
        rng = as_generator(self.random_state)
        in_mask = _paired_splits(y_idx, eligible, k // 2, rng)
        seeds = rng.integers(0, 2**31 - 1, size=k)
        start = time.perf_counter()
        report_progress(progress, "reference models", 0, k)
        models: list[Target] | None
        if backend == "batched":
            assert isinstance(trainer, MLPTrainer)
            params = trainer.train_stacked(xs, y_idx, in_mask, len(classes), int(seeds[0]))
            logits = MLPTrainer.stacked_logits(params, xs)
            models = [_stacked_target(params, j) for j in range(k)] if self.keep_models else None
        else:
            outs = self._fit_each(trainer, backend, xs, y_idx, in_mask, seeds, progress)
            logits = np.stack([o for o, _ in outs])
            models = [m for _, m in outs if m is not None] if self.keep_models else None
        report_progress(progress, "reference models", k, k)
        self.seconds_ = time.perf_counter() - start
        self.n_models_ = k
        self.backend_ = backend
        self.classes_ = classes
        self.y_ = y_idx
        self.in_mask_ = in_mask
        self.logits_ = logits
        self.models_ = models
        self.fingerprint_ = _fingerprint(xs, y_idx)
        return self

    def _fit_each(
        self,
        trainer: Trainer,
        backend: str,
        xs: FloatArray,
        y_idx: IntArray,
        in_mask: BoolArray,
        seeds: IntArray,
        progress: ProgressCallback | None,
    ) -> list[tuple[FloatArray, Target | None]]:
        keep = bool(self.keep_models)
        if backend == "sequential":
            outs = []
            for j in range(len(in_mask)):
                outs.append(_fit_one(trainer, xs, y_idx, in_mask[j], int(seeds[j]), keep, False))
                report_progress(progress, "reference models", j + 1, len(in_mask))
            return outs
        import joblib

        n_jobs = 1 if self.n_jobs is None else self.n_jobs
        jobs = (
            joblib.delayed(_fit_one)(trainer, xs, y_idx, in_mask[j], int(seeds[j]), keep, True)
            for j in range(len(in_mask))
        )
        if backend == "ray":  # pragma: no cover - ray is an optional extra
            importlib.import_module("ray.util.joblib").register_ray()
            with joblib.parallel_backend("ray"):
                return list(joblib.Parallel(n_jobs=n_jobs)(jobs))
        return list(joblib.Parallel(n_jobs=n_jobs, backend="loky")(jobs))

    # ------------------------------------------------------------------ use
    def _check_fitted(self) -> None:
        if not hasattr(self, "logits_"):
            raise InvalidParameterError(f"{_OWNER} is not fitted; call fit(X, y) first")

    def check_population(self, X: npt.ArrayLike, y: npt.ArrayLike) -> None:
        """Raise :class:`DataError` unless ``X, y`` is the population the models were fitted on."""
        self._check_fitted()
        xs = np.asarray(X, dtype=np.float64)
        ys = np.asarray(y).reshape(-1)
        if xs.ndim != 2 or len(xs) != len(self.y_) or len(ys) != len(self.y_):
            raise DataError(
                f"the reference models were fitted on {len(self.y_)} population rows, but the "
                f"attack got X of shape {xs.shape}; pass the same X and y to both"
            )
        try:
            y_idx = np.clip(np.searchsorted(self.classes_, ys), 0, len(self.classes_) - 1)
            same_labels = bool(np.all(self.classes_[y_idx] == ys))
        except TypeError:  # labels of another type than the population's
            same_labels = False
        if not same_labels or _fingerprint(xs, y_idx) != self.fingerprint_:
            raise DataError(
                "X and y differ from the population the reference models were fitted on; "
                "pass the same X and y to both"
            )

    def save(self, path: str | Path) -> None:
        """Write the cached outputs (not the models) to an ``.npz`` file.

        Raises
        ------
        InvalidParameterError
            If the models are not fitted or the class labels are Python objects
            (which ``.npz`` could only store by pickling).
        """
        self._check_fitted()
        if self.classes_.dtype.kind == "O":
            raise InvalidParameterError(
                f"{_OWNER}.save: class labels of dtype object cannot be saved without pickle"
            )
        np.savez(
            path,
            logits=self.logits_,
            in_mask=self.in_mask_,
            y=self.y_,
            classes=self.classes_,
            fingerprint=np.array(self.fingerprint_),
            backend=np.array(self.backend_),
            seconds=np.array(self.seconds_),
        )

    @classmethod
    def load(cls, path: str | Path) -> ReferenceModels:
        """Read outputs written by :meth:`save` (without the models; no pickle).

        Raises
        ------
        DataFileError
            If the file is missing or not a reference-model cache.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise DataFileError(f"{path}: cannot read reference-model outputs: {exc}") from None
        need = {"logits", "in_mask", "y", "classes", "fingerprint", "backend", "seconds"}
        if not need <= set(arrays):
            missing = ", ".join(sorted(need - set(arrays)))
            raise DataFileError(f"{path}: not a reference-model cache (missing {missing})")
        logits, in_mask = arrays["logits"], arrays["in_mask"]
        if logits.ndim != 3 or in_mask.shape != logits.shape[:2] or in_mask.dtype != np.bool_:
            raise DataFileError(f"{path}: inconsistent array shapes in reference-model cache")
        ref = cls(n_models=len(logits), keep_models=False)
        ref.logits_ = logits.astype(np.float64)
        ref.in_mask_ = in_mask
        ref.y_ = arrays["y"].astype(np.int64)
        ref.classes_ = arrays["classes"]
        ref.fingerprint_ = str(arrays["fingerprint"])
        ref.backend_ = str(arrays["backend"])
        ref.seconds_ = float(arrays["seconds"])
        ref.n_models_ = len(logits)
        ref.models_ = None
        return ref

    def signals(self, kind: str = "logit") -> FloatArray:
        """Per-model score of each record's true class, shape ``(K, n)``.

        ``kind="logit"`` gives ``φ = log(p / (1 - p))`` (LiRA); ``"prob"`` gives ``p``.
        """
        self._check_fitted()
        check_choice(_OWNER, "kind", kind, ("logit", "prob"))
        if kind == "logit":
            return true_class_logit(self.logits_, self.y_)
        return true_class_prob(self.logits_, self.y_)


def _check_population(X: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, IntArray, Any]:
    try:
        xs = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{_OWNER}: X must be numeric: {exc}") from None
    ys = np.asarray(y).reshape(-1)
    if xs.ndim != 2 or len(xs) != len(ys):
        raise DataError(
            f"{_OWNER}: X must be (n, d) with one label per row, got X {xs.shape} and "
            f"{len(ys)} labels"
        )
    if not np.all(np.isfinite(xs)):
        raise DataError(f"{_OWNER}: X contains NaN or infinite values")
    classes, y_idx = np.unique(ys, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{_OWNER}: the population needs at least 2 classes, got {len(classes)}")
    return xs, y_idx.astype(np.int64), classes


def _paired_splits(
    y_idx: IntArray, eligible: BoolArray, n_pairs: int, rng: np.random.Generator
) -> BoolArray:
    """``2 * n_pairs`` masks; masks ``2p`` and ``2p + 1`` split the eligible rows in halves,
    stratified by class."""
    n = len(y_idx)
    out = np.zeros((2 * n_pairs, n), dtype=bool)
    for p in range(n_pairs):
        half = np.zeros(n, dtype=bool)
        for c in np.unique(y_idx[eligible]):
            rows = rng.permutation(np.flatnonzero(eligible & (y_idx == c)))
            h = len(rows) // 2 + (int(rng.integers(0, 2)) if len(rows) % 2 else 0)
            half[rows[:h]] = True
        out[2 * p] = half & eligible
        out[2 * p + 1] = ~half & eligible
    return out


def _fingerprint(xs: FloatArray, y_idx: IntArray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(xs, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(y_idx, dtype="<i8").tobytes())
    return h.hexdigest()
