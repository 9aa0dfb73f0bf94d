"""``mlwarden harden``: defenses that write a new, hardened model file.

``mlwarden harden adversarial`` fine-tunes a TorchScript classifier with adversarial
training (PGD, Madry et al. 2018, or TRADES, Zhang et al. 2019) in the same threat
model the evasion audit attacks (``--eps`` in per-feature scale units, features the
schema marks immutable never change), saves it with the original metadata, and
prints clean and robust accuracy before and after on a held-out split.

``mlwarden harden dp`` retrains a TorchScript classifier with DP-SGD through Opacus
(Abadi et al. 2016), calibrated to ``--epsilon``/``--delta``, saves it the same way,
and prints the epsilon of both accountants (PRV, Gopi et al. 2021; RDP, Mironov
2017), the noise multiplier, clean accuracy before and after, and seconds per epoch
with and without DP.

Exit codes as for every command: ``0`` done, ``2`` bad usage or input. torch is
imported inside the command, so ``mlwarden --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["harden_app"]

harden_app = typer.Typer(
    name="harden",
    help="Defend models: write hardened copies (adversarial training, DP-SGD).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_EVAL_STEPS = 50


# Options both commands take.
DataOption = Annotated[
    str,
    typer.Option(
        "--data", "-d", help="Training data: CSV/Parquet file, or builtin:fraud|digits|..."
    ),
]
LabelOption = Annotated[
    str | None, typer.Option("--label", "-l", help="Label column of a CSV/Parquet file.")
]
SchemaOption = Annotated[
    Path | None,
    typer.Option("--schema", help="Feature schema JSON (kinds, bounds, attacker control)."),
]
PositiveLabelOption = Annotated[
    str | None,
    typer.Option(
        "--positive-label", help="Class the model must catch (e.g. 1): also report on it."
    ),
]


@harden_app.callback()
def _harden() -> None:
    """Defend models: write hardened copies (adversarial training, DP-SGD)."""


@harden_app.command("adversarial")
def adversarial(
    model: Annotated[
        Path, typer.Option("--model", "-m", help="TorchScript model file (.pt) to harden.")
    ],
    data: DataOption,
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the hardened TorchScript model.")
    ],
    label: LabelOption = None,
    schema: SchemaOption = None,
    positive_label: PositiveLabelOption = None,
    eps: Annotated[
        float, typer.Option("--eps", help="L∞ budget in per-feature scale units.")
    ] = 0.25,
    method: Annotated[
        str, typer.Option("--method", help="pgd (Madry et al.) or trades (Zhang et al.).")
    ] = "pgd",
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training split.")] = 10,
    steps: Annotated[int, typer.Option("--steps", help="Inner attack steps per batch.")] = 10,
    beta: Annotated[float, typer.Option("--beta", help="TRADES robustness weight.")] = 6.0,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 1e-3,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per step.")] = 256,
    class_weight: Annotated[
        str,
        typer.Option(
            "--class-weight",
            help="balanced (weight rare classes up, as fraud models are trained) or none.",
        ),
    ] = "balanced",
    categorical: Annotated[
        str,
        typer.Option(
            "--categorical", help="free: attacker-controlled categories may change; fixed: not."
        ),
    ] = "free",
    test_size: Annotated[
        float, typer.Option("--test-size", help="Held-out fraction for the before/after figures.")
    ] = 0.25,
    max_samples: Annotated[
        int, typer.Option("--max-samples", help="Held-out rows attacked per population at most.")
    ] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
) -> None:
    """Fine-tune a torch model with adversarial training and save the hardened copy."""
    from mlwarden.cli.app import _friendly_errors, _progress, out

    with _friendly_errors():
        import sys

        import numpy as np

        from mlwarden._validation import check_choice, check_int, check_number
        from mlwarden.evasion.defenses.adversarial_training import (
            adversarial_training,
            validate_training_params,
        )
        from mlwarden.models import load_model

        check_choice("harden", "--class-weight", class_weight, ("balanced", "none"))
        weight = None if class_weight == "none" else class_weight
        validate_training_params(
            eps=eps, method=method, steps=steps, step_size=None, epochs=epochs, lr=lr,
            weight_decay=0.0, batch_size=batch_size, beta=beta, class_weight=weight,
            categorical=categorical,
        )  # fmt: skip
        check_number("harden", "--test-size", test_size, low=0, low_open=True, high=0.9)
        check_int("harden", "--max-samples", max_samples)
        target, train, test = _torch_model_and_data(
            model, data, label, schema, positive_label, test_size, seed,
            what="adversarial training fine-tunes",
        )  # fmt: skip
        rows = _eval_rows(target, test, max_samples, np.random.default_rng(seed))
        before = _evaluate(target, test, rows, eps, categorical, seed)
        with _progress(not quiet and sys.stderr.isatty()) as cb:
            hardened = adversarial_training(
                target, train, eps=eps, method=method, steps=steps, epochs=epochs, lr=lr,
                batch_size=batch_size, beta=beta, class_weight=weight,
                categorical=categorical, random_state=seed, progress=cb,
            )  # fmt: skip
        _save(hardened.module, out_path, target)
        saved = load_model(out_path)
        after = _evaluate(saved, test, rows, eps, categorical, seed)
        if not quiet:
            _print_table(out, before, after, eps, test, rows)
            out.print(f"before: {model}", soft_wrap=True, highlight=False)
            out.print(f"after:  {out_path}", soft_wrap=True, highlight=False)


def _eval_rows(target: Any, test: Any, max_samples: int, rng: Any) -> dict[str, Any]:
    """Held-out rows evaluated: a sample of all rows and, with a positive label, of its class."""
    import numpy as np

    def sample(pool: Any) -> Any:
        if pool.size > max_samples:
            pool = np.sort(rng.choice(pool, size=max_samples, replace=False))
        return pool

    rows = {"all": sample(np.arange(test.n_samples))}
    if test.positive_label is not None:
        pos = target.encode_labels([test.positive_label])[0]
        rows["positive"] = sample(np.flatnonzero(target.encode_labels(test.labels) == pos))
    return rows


def _evaluate(
    target: Any, test: Any, rows: dict[str, Any], eps: float, categorical: str, seed: int
) -> dict[str, tuple[float, float]]:
    """Clean and robust accuracy per population (PGD cross-entropy, then margin)."""
    import numpy as np

    from mlwarden.evasion.pgd import PGD

    y_all = target.encode_labels(test.labels)
    result: dict[str, tuple[float, float]] = {}
    for key, idx in rows.items():
        x, y = test.X[idx], y_all[idx]
        if not len(y):
            result[key] = (float("nan"), float("nan"))
            continue
        correct = target.predict(x) == y
        robust = correct.copy()
        for loss in ("ce", "margin"):
            alive = np.flatnonzero(robust)
            if alive.size == 0:
                break
            attack = PGD(eps=eps, steps=_EVAL_STEPS, loss=loss, categorical=categorical)
            res = attack.generate(target, x[alive], y[alive], schema=test.schema, random_state=seed)
            robust[alive[res.success]] = False
        result[key] = (float(correct.mean()), float(robust.mean()))
    return result


def _print_table(
    console: Any,
    before: dict[str, tuple[float, float]],
    after: dict[str, tuple[float, float]],
    eps: float,
    test: Any,
    rows: dict[str, Any],
) -> None:
    from rich.table import Table

    table = Table(
        title=f"Held-out rows: clean and robust accuracy (PGD, eps={eps:g})",
        title_justify="left",
    )
    table.add_column("model")
    table.add_column(f"clean, {len(rows['all'])} rows", justify="right")
    table.add_column("robust", justify="right")
    if "positive" in rows:
        table.add_column(
            f"class {test.positive_label!r} ({len(rows['positive'])})", justify="right"
        )
        table.add_column("robust", justify="right")
    for tag, res in (("before", before), ("after", after)):
        cells = [tag]
        for key in ("all", "positive"):
            if key in res:
                cells += [f"{res[key][0]:.1%}", f"{res[key][1]:.1%}"]
        table.add_row(*cells)
    console.print(table)


@harden_app.command("dp")
def dp(
    model: Annotated[
        Path, typer.Option("--model", "-m", help="TorchScript model file (.pt) to retrain.")
    ],
    data: DataOption,
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the DP-trained TorchScript model.")
    ],
    label: LabelOption = None,
    schema: SchemaOption = None,
    positive_label: PositiveLabelOption = None,
    epsilon: Annotated[
        float, typer.Option("--epsilon", help="Target epsilon of the whole training run.")
    ] = 8.0,
    delta: Annotated[
        float | None,
        typer.Option("--delta", help="Target delta (default 1 / (10 n)); must be below 1 / n."),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training split.")] = 5,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 1e-3,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Expected rows per (Poisson) batch.")
    ] = 256,
    max_grad_norm: Annotated[
        float, typer.Option("--max-grad-norm", help="Per-sample gradient clipping norm.")
    ] = 1.0,
    accountant: Annotated[
        str, typer.Option("--accountant", help="prv (Gopi et al.) or rdp (Mironov): calibrates.")
    ] = "prv",
    class_weight: Annotated[
        str,
        typer.Option(
            "--class-weight",
            help="balanced (weight rare classes up; the label counts are not DP) or none.",
        ),
    ] = "balanced",
    test_size: Annotated[
        float, typer.Option("--test-size", help="Held-out fraction for the before/after figures.")
    ] = 0.25,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    keep_weights: Annotated[
        bool,
        typer.Option(
            "--keep-weights",
            help="Start DP training from the model's weights instead of fresh ones; only "
            "when they were trained on public data (otherwise epsilon would not hold).",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
) -> None:
    """Retrain a torch model with DP-SGD (Opacus) and save the private copy."""
    from mlwarden.cli.app import _friendly_errors, _progress, out

    with _friendly_errors():
        import sys

        from mlwarden._validation import check_choice, check_number
        from mlwarden.models import load_model

        names = {
            "epsilon": "--epsilon", "delta": "--delta", "epochs": "--epochs",
            "batch_size": "--batch-size", "lr": "--lr", "max_grad_norm": "--max-grad-norm",
            "class_weight": "--class-weight", "accountant": "--accountant",
        }  # fmt: skip
        check_choice("harden", "--class-weight", class_weight, ("balanced", "none"))
        weight = None if class_weight == "none" else class_weight
        check_number("harden", "--epsilon", epsilon, low=0, low_open=True)
        check_number("harden", "--test-size", test_size, low=0, low_open=True, high=0.9)
        from mlwarden.privacy.dp import train_private, validate_dp_params

        validate_dp_params(
            epsilon=epsilon, delta=delta, epochs=epochs, batch_size=batch_size, lr=lr,
            max_grad_norm=max_grad_norm, class_weight=weight, accountant=accountant,
            owner="harden", names=names,
        )  # fmt: skip

        target, train, test = _torch_model_and_data(
            model, data, label, schema, positive_label, test_size, seed,
            what="DP training retrains",
        )  # fmt: skip
        if delta is not None and delta * train.n_samples >= 1:
            from mlwarden.exceptions import InvalidParameterError

            raise InvalidParameterError(
                f"harden: --delta must be below 1 / n = {1 / train.n_samples:.3g} "
                f"({train.n_samples} training rows), got {delta:g}"
            )
        before = _clean_accuracy(target, test)
        with _progress(not quiet and sys.stderr.isatty()) as cb:
            res = train_private(
                target, train, epsilon=epsilon, delta=delta, epochs=epochs,
                batch_size=min(batch_size, train.n_samples), lr=lr,
                max_grad_norm=max_grad_norm, class_weight=weight, accountant=accountant,
                measure_baseline=True, random_state=seed, progress=cb,
                initial_weights="keep" if keep_weights else "reset",
            )  # fmt: skip
        _save(
            res.model.module, out_path, target,
            training={"differential_privacy": res.provenance(n_samples=train.n_samples)},
        )  # fmt: skip
        after = _clean_accuracy(load_model(out_path), test)
        if not quiet:
            _print_dp(out, res, before, after, test)
            out.print(f"before: {model}", soft_wrap=True, highlight=False)
            out.print(f"after:  {out_path}", soft_wrap=True, highlight=False)


def _clean_accuracy(target: Any, test: Any) -> dict[str, float]:
    """Held-out accuracy, and recall on the positive class when there is one."""
    import numpy as np

    y = target.encode_labels(test.labels)
    pred = target.predict(test.X)
    res = {"all": float(np.mean(pred == y))}
    if test.positive_label is not None:
        pos = y == target.encode_labels([test.positive_label])[0]
        res["positive"] = float(np.mean(pred[pos] == y[pos])) if pos.any() else float("nan")
    return res


def _print_dp(
    console: Any, res: Any, before: dict[str, float], after: dict[str, float], test: Any
) -> None:
    from rich.table import Table

    table = Table(title=f"Held-out rows ({test.n_samples}): clean accuracy", title_justify="left")
    table.add_column("model")
    table.add_column("accuracy", justify="right")
    if "positive" in before:
        table.add_column(f"recall of class {test.positive_label!r}", justify="right")
    for tag, acc in (("before", before), ("after (DP)", after)):
        table.add_row(tag, *(f"{acc[k]:.1%}" for k in ("all", "positive") if k in acc))
    console.print(table)
    base = res.baseline_seconds_per_epoch
    lines = [
        f"epsilon: {res.epsilon_prv:.3f} (PRV), {res.epsilon_rdp:.3f} (RDP) "
        f"at delta={res.delta:.3g}",
        f"noise multiplier: {res.noise_multiplier:.4g}, clipping norm: {res.max_grad_norm:g}, "
        f"sample rate: {res.sample_rate:.4g}, steps: {res.steps} ({res.grad_sample_mode})",
        f"seconds per epoch: {res.seconds_per_epoch:.3f} DP"
        + ("" if base is None else f", {base:.3f} non-private"),
    ]
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)


def _torch_model_and_data(
    model: Path,
    data: str,
    label: str | None,
    schema: Path | None,
    positive_label: str | None,
    test_size: float,
    seed: int,
    *,
    what: str,
) -> tuple[Any, Any, Any]:
    """Load the labelled data and the TorchScript model that fits it; split train/test."""
    from mlwarden.data.io import load_dataset
    from mlwarden.exceptions import CapabilityError, IncompatibleModelError
    from mlwarden.models import load_model
    from mlwarden.models.torch import TorchTarget

    ds = load_dataset(data, label=label, schema=schema, positive_label=positive_label)
    ds.labels  # noqa: B018 - raises DataError when unlabelled
    target = load_model(model)
    if not isinstance(target, TorchTarget):
        raise CapabilityError(
            f"{model}: {what} PyTorch models saved as TorchScript; this is a {target.kind} model"
        )
    if target.input_spec.n_features != ds.n_features:
        raise IncompatibleModelError(
            f"model {target.name!r} expects {target.input_spec.n_features} features, "
            f"the data {ds.name!r} has {ds.n_features}"
        )
    target.encode_labels(ds.labels)
    train, test = ds.split(test_size=test_size, random_state=seed)
    return target, train, test


def _save(
    module: Any, out_path: Path, like: Any, *, training: dict[str, Any] | None = None
) -> None:
    """Save ``module`` as TorchScript with ``like``'s metadata; a clear error if it cannot."""
    from mlwarden.evasion.defenses.adversarial_training import target_kwargs
    from mlwarden.exceptions import DataFileError
    from mlwarden.models.torch import save_torchscript

    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        save_torchscript(module, out_path, **target_kwargs(like), training=training)
    except (OSError, RuntimeError) as exc:
        raise DataFileError(f"{out_path}: cannot write the model: {exc}") from None
