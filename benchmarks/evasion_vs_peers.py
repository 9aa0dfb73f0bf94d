"""Evasion attacks side by side: mlwarden, IBM ART and torchattacks on the same models.

Run with ``make bench`` (it creates ``.bench-venv`` with the peers first). Every tool gets
the same model, the same points and the same budget; robust accuracy counts a point as
robust when the tool's adversarial example is still classified correctly (points the
model already gets wrong are never robust). Times are process CPU seconds (the machines
are shared: wall time is printed too), medians over ``--repeats`` runs.

Models: an MLP and a small CNN on scikit-learn's digits (pixels in [0, 1], L∞ budget in
pixel units), the card-fraud MLP and HistGradientBoosting model from
``mlwarden.data.fraud`` with inputs min-max scaled to [0, 1] so that the peers, which
know nothing of feature schemas, attack exactly the same box.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import mlwarden
from mlwarden.data import Feature, FeatureSchema, digits, fraud
from mlwarden.evasion import PGD, HopSkipJump, SquareAttack, TreeGreedyAttack
from mlwarden.evasion.evaluate import evaluate
from mlwarden.models._torch_nets import train_classifier
from mlwarden.models.torch import TorchTarget

RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass
class Row:
    model: str
    tool: str
    attack: str
    robust: float
    cpu_s: float
    wall_s: float
    note: str = ""


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float, float]:
    """Run ``fn`` ``repeats`` times; return the last output and median CPU and wall time."""
    cpu, wall, out = [], [], None
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return out, statistics.median(cpu), statistics.median(wall)


# --------------------------------------------------------------------------- models
class Unit(nn.Module):
    """Maps [0, 1] inputs back to raw features (x = lower + u * (upper - lower))."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("lower", torch.as_tensor(lower, dtype=torch.float32))
        self.register_buffer("span", torch.as_tensor(upper - lower, dtype=torch.float32))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.lower + u * self.span


def digits_models(
    seed: int,
) -> tuple[dict[str, nn.Module], np.ndarray, np.ndarray, tuple[int, ...]]:
    data = digits()
    train, test = data.split(test_size=0.3, random_state=seed)
    y = np.asarray(train.labels, dtype=np.int64)
    mlp = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    train_classifier(mlp, train.X, y, epochs=40, seed=seed)

    class CNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 10),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x.reshape(len(x), -1))

    cnn = CNN()
    train_classifier(cnn, train.X, y, epochs=30, seed=seed)
    return {"digits-mlp": mlp, "digits-cnn": cnn}, test.X, np.asarray(test.labels), (64,)


def fraud_models(
    seed: int,
) -> tuple[nn.Module, Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlwarden.models._torch_nets import mlp_classifier

    data = fraud(20_000, random_state=seed)
    train, test = data.split(test_size=0.25, random_state=seed)
    lower, upper = data.X.min(axis=0), data.X.max(axis=0)
    y = np.asarray(train.labels, dtype=np.int64)
    raw_mlp = train_classifier(
        mlp_classifier(train.X, 2), train.X, y, epochs=15, balanced=True, seed=seed
    )
    mlp = nn.Sequential(Unit(lower, upper), raw_mlp).eval()
    hgb = HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)
    hgb.fit(train.X, y)
    frauds = test.X[test.labels == 1]
    u = (frauds - lower) / (upper - lower)
    return mlp, hgb, np.clip(u, 0, 1), np.ones(len(u), dtype=np.int64), lower, upper


def image_shape(d: int) -> tuple[int, int, int]:
    """ART's and torchattacks' Square take images only: rows are shown as 1×h×w pictures."""
    side = round(d**0.5)
    if side * side != d:
        raise ValueError(f"{d} features do not form a square picture")
    return (1, side, side)


def unit_schema(d: int) -> FeatureSchema:
    return FeatureSchema(tuple(Feature(f"u{i}", lower=0.0, upper=1.0) for i in range(d)))


def robust_accuracy(
    predict: Callable[[np.ndarray], np.ndarray], x_adv: np.ndarray, y: np.ndarray
) -> float:
    return float(np.mean(predict(x_adv) == y))


# ------------------------------------------------------------------------ runners
class Bench:
    """Collects rows; every attack is timed the same way."""

    def __init__(self, repeats: int) -> None:
        self.repeats = repeats
        self.rows: list[Row] = []

    def run(
        self,
        model: str,
        tool: str,
        attack: str,
        fn: Callable[[], np.ndarray],
        predict: Callable[[np.ndarray], np.ndarray],
        y: np.ndarray,
        *,
        repeats: int | None = None,
    ) -> None:
        try:
            adv, cpu, wall = timed(fn, repeats or self.repeats)
        except Exception as exc:  # a peer that cannot run here is a row, not a crash
            note = f"failed: {type(exc).__name__}: {str(exc)[:90]}"
            self.rows.append(Row(model, tool, attack, float("nan"), 0.0, 0.0, note))
            print(f"{model:>16} {tool:>12} {attack:<32} {note}")
            return
        robust = float(np.mean(predict(adv) == y))
        self.rows.append(Row(model, tool, attack, robust, cpu, wall))
        print(f"{model:>16} {tool:>12} {attack:<32} robust {robust:.3f} cpu {cpu:7.3f}s")


def torch_rows(
    bench: Bench,
    name: str,
    module: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    eps: float,
    steps: int,
    queries: int,
    autoattack: bool,
) -> None:
    import torchattacks
    from art.attacks.evasion import ProjectedGradientDescent
    from art.attacks.evasion import SquareAttack as ArtSquare
    from art.estimators.classification import PyTorchClassifier

    module.eval()
    n_classes = int(module(torch.zeros(1, x.shape[1])).shape[1])
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    shape = image_shape(x.shape[1])
    img_module = nn.Sequential(nn.Flatten(), module).eval()
    x_img = x.reshape(len(x), *shape).astype(np.float32)
    flat = len(x), -1

    def predict(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.as_tensor(a, dtype=torch.float32)).argmax(1).numpy()

    def art_classifier(m: nn.Module, input_shape: tuple[int, ...]) -> Any:
        return PyTorchClassifier(
            m, loss=nn.CrossEntropyLoss(), input_shape=input_shape, nb_classes=n_classes,
            clip_values=(0.0, 1.0),
        )  # fmt: skip

    alpha = 2.5 * eps / steps
    art = art_classifier(module, (x.shape[1],))
    for label, batch in (("PGD (ART defaults, batch 32)", 32), ("PGD (ART, batch = all)", len(x))):
        atk = ProjectedGradientDescent(
            art, norm=np.inf, eps=eps, eps_step=alpha, max_iter=steps, num_random_init=1,
            batch_size=batch, verbose=False,
        )  # fmt: skip
        bench.run(name, "ART", label, lambda atk=atk: atk.generate(x.astype(np.float32)),
                  predict, y)  # fmt: skip
    ta = torchattacks.PGD(module, eps=eps, alpha=alpha, steps=steps, random_start=True)
    bench.run(name, "torchattacks", "PGD", lambda: ta(xt, yt).numpy(), predict, y)
    target = TorchTarget(module, input_shape=(x.shape[1],), lower=0.0, upper=1.0, name=name)
    schema = unit_schema(x.shape[1])
    mw = PGD(eps=eps, steps=steps, step_size=alpha, restarts=1)
    bench.run(name, "mlwarden", "PGD",
              lambda: mw.generate(target, x, y, schema=schema, random_state=0).x_adv,
              predict, y)  # fmt: skip

    sq = f"Square ({queries} q)"
    art_sq = ArtSquare(
        art_classifier(img_module, shape), norm=np.inf, eps=eps, max_iter=queries,
        batch_size=len(x), verbose=False,
    )  # fmt: skip
    bench.run(name, "ART", sq, lambda: art_sq.generate(x_img).reshape(flat), predict, y)
    ta_sq = torchattacks.Square(img_module, eps=eps, n_queries=queries, seed=0)
    bench.run(name, "torchattacks", sq,
              lambda: ta_sq(torch.as_tensor(x_img), yt).numpy().reshape(flat),
              predict, y)  # fmt: skip
    mw_sq = SquareAttack(eps=eps, n_queries=queries)
    bench.run(name, "mlwarden", sq,
              lambda: mw_sq.generate(target, x, y, schema=schema, random_state=0).x_adv,
              predict, y)  # fmt: skip

    if autoattack:
        aa = torchattacks.AutoAttack(
            img_module, norm="Linf", eps=eps, version="standard", n_classes=n_classes, seed=0
        )
        bench.run(name, "torchattacks", "AutoAttack standard",
                  lambda: aa(torch.as_tensor(x_img), yt).detach().numpy().reshape(flat), predict, y,
                  repeats=1)  # fmt: skip
    for preset in ("fast", "standard"):

        def run_eval(preset: str = preset) -> np.ndarray:
            ev = evaluate(target, x, y, eps=eps, preset=preset, schema=schema, random_state=0)
            return ev.x_adv

        bench.run(name, "mlwarden", f"evaluate(preset={preset!r})", run_eval, predict, y,
                  repeats=1)  # fmt: skip


def tree_rows(
    bench: Bench,
    name: str,
    hgb: Any,
    lower: np.ndarray,
    upper: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    eps: float,
    queries: int,
) -> None:
    from art.attacks.evasion import SquareAttack as ArtSquare
    from art.estimators.classification import BlackBoxClassifier
    from threadpoolctl import threadpool_limits

    span = upper - lower

    def proba(u: np.ndarray) -> np.ndarray:
        flat = np.asarray(u, dtype=np.float64).reshape(len(u), -1)
        return np.asarray(hgb.predict_proba(lower + flat * span))

    def predict(u: np.ndarray) -> np.ndarray:
        return proba(u).argmax(1)

    shape = image_shape(x.shape[1])
    sq = f"Square ({queries} q)"
    with threadpool_limits(1):
        bb = BlackBoxClassifier(proba, input_shape=shape, nb_classes=2, clip_values=(0.0, 1.0))
        x_img = x.reshape(len(x), *shape).astype(np.float32)

        def art_square() -> np.ndarray:
            # ART's Square needs a neural-network estimator: it refuses black-box models.
            atk = ArtSquare(bb, norm=np.inf, eps=eps, max_iter=queries, batch_size=len(x),
                            verbose=False)  # fmt: skip
            return np.asarray(atk.generate(x_img)).reshape(len(x), -1)

        bench.run(name, "ART", sq, art_square, predict, y)
        target = mlwarden.target(proba, n_features=x.shape[1], n_classes=2,
                                 output="probabilities", name=name)  # fmt: skip
        schema = unit_schema(x.shape[1])
        mw = SquareAttack(eps=eps, n_queries=queries)
        bench.run(name, "mlwarden", sq,
                  lambda: mw.generate(target, x, y, schema=schema, random_state=0).x_adv,
                  predict, y)  # fmt: skip

        # Decision-based: only labels. HopSkipJump minimises the distance without a budget,
        # so a point counts as evaded only when its example lies within eps.
        def within_eps(adv: np.ndarray) -> np.ndarray:
            adv = np.asarray(adv, dtype=np.float64).reshape(len(x), -1)
            inside = np.max(np.abs(adv - x), axis=1) <= eps + 1e-9
            return np.where(inside, predict(adv), y)

        from art.attacks.evasion import HopSkipJump as ArtHSJ

        def art_hsj() -> np.ndarray:
            atk = ArtHSJ(bb, norm=np.inf, max_iter=10, max_eval=1000, init_eval=100,
                         batch_size=len(x), verbose=False)  # fmt: skip
            return np.asarray(atk.generate(x_img)).reshape(len(x), -1)

        bench.run(name, "ART", "HopSkipJump (max_iter 10)", art_hsj, within_eps, y)
        labels = mlwarden.target(lambda u: predict(u), n_features=x.shape[1], n_classes=2,
                                 output="labels", name=name)  # fmt: skip
        hsj = HopSkipJump(eps=eps, max_queries=queries, early_stop=True)
        bench.run(name, "mlwarden", f"HopSkipJump ({queries} q)",
                  lambda: hsj.generate(labels, x, y, schema=schema, random_state=0).x_adv,
                  within_eps, y)  # fmt: skip

    # White-box on trees: read the trees (no peer does this for ensembles). Same box: the
    # raw feature space with each feature's scale set to its span.
    raw_schema = FeatureSchema(
        tuple(Feature(f"f{i}", lower=float(lo), upper=float(hi), scale=float(max(s, 1e-12)))
              for i, (lo, hi, s) in enumerate(zip(lower, upper, span, strict=True)))
    )  # fmt: skip
    raw = mlwarden.target(hgb, name=name)
    x_raw = lower + x * span
    greedy = TreeGreedyAttack(eps=eps)
    bench.run(name, "mlwarden", "TreeGreedy (reads the trees)",
              lambda: (greedy.generate(raw, x_raw, y, schema=raw_schema,
                                       random_state=0).x_adv - lower) / span,
              predict, y)  # fmt: skip


def markdown(rows: list[Row], args: argparse.Namespace) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    lines = [
        f"## Evasion vs peers — {dt.date.today().isoformat()} ({machine})",
        "",
        f"`python benchmarks/evasion_vs_peers.py --n {args.n} --repeats {args.repeats}`; "
        "robust accuracy on the same points (lower = stronger attack); CPU seconds, median.",
        "",
        "| model | tool | attack | robust acc. | CPU s | wall s | note |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.model} | {r.tool} | {r.attack} | {r.robust:.3f} | {r.cpu_s:.3f} | "
        f"{r.wall_s:.3f} | {r.note} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="points per model")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--no-autoattack", action="store_true")
    p.add_argument("--write", action="store_true", help=f"append the table to {RESULTS.name}")
    args = p.parse_args()
    torch.set_num_threads(1)
    bench = Bench(args.repeats)
    aa = not args.no_autoattack
    models, x, y, _ = digits_models(0)
    for name, module in models.items():
        xs, ys = x[: args.n], y[: args.n].astype(np.int64)
        torch_rows(bench, name, module, xs, ys, 0.1, args.steps, args.queries, aa)
    mlp, hgb, u, yf, lower, upper = fraud_models(0)
    u, yf = u[: args.n], yf[: args.n]
    torch_rows(bench, "fraud-mlp [0,1]", mlp, u, yf, 0.05, args.steps, args.queries, aa)
    tree_rows(bench, "fraud-hgb [0,1]", hgb, lower, upper, u, yf, 0.05, args.queries)
    rows = bench.rows
    table = markdown(rows, args)
    print(table)
    if args.write:
        with RESULTS.open("a") as fh:
            fh.write("\n" + table)


if __name__ == "__main__":
    main()
