"""Benchmark of the stateful theft detectors (PRADA, k-NN probing, OOD rate) on fraud models.

Streams, per model (the bundled fraud data's HistGradientBoosting and torch MLP):

* benign clients: sequential draws of held-out rows (no repeats within a client);
* Papernot-style synthetic extraction: a few seeds, then rounds of Jacobian-based
  augmentation ``x + lambda * sign(grad of a substitute)`` with the substitute
  retrained on the oracle's labels each round;
* uniform random extraction within the schema's feature bounds;
* boundary-walking evasion probes: a binary search between a start row and a row of
  the other class, then HopSkipJump-like rounds of small random perturbations around
  the boundary point (gradient estimation) and a step along the estimate.

Targets (issue 6): synthetic extraction flagged within a median of <= 150 queries,
evasion probing within <= 50, benign clients flagged <= 1 % per 10,000 queries,
detector cost <= 200 us per query. Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/theft_detectors.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from threadpoolctl import threadpool_limits

from mlwarden.data.bundled import fraud
from mlwarden.theft.detectors import PRADA, Detector, KNNProbeDetector, OODRateMonitor

Oracle = Callable[[np.ndarray], np.ndarray]


# ---------------------------------------------------------------- models
def train_models(train_X: np.ndarray, train_y: np.ndarray, seed: int) -> dict[str, Oracle]:
    import torch
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlwarden.models._torch_nets import mlp_classifier, train_classifier

    torch.set_num_threads(1)
    hgb = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.1, class_weight="balanced", random_state=seed
    ).fit(train_X, train_y)
    mlp = train_classifier(
        mlp_classifier(train_X, n_classes=2),
        train_X,
        train_y.astype(np.int64),
        epochs=15,
        balanced=True,
        seed=seed,
    )
    mlp.eval()

    def mlp_predict(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = mlp(torch.as_tensor(np.asarray(X, dtype=np.float32)))
        return out.argmax(dim=1).numpy()

    def hgb_predict(X: np.ndarray) -> np.ndarray:
        return np.asarray(hgb.predict(np.asarray(X, dtype=np.float64)))

    return {"hgb": hgb_predict, "mlp": mlp_predict}


# ---------------------------------------------------------------- attack streams
def papernot_stream(
    oracle: Oracle,
    seeds: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    scale: np.ndarray,
    n_queries: int,
    rng: np.random.Generator,
    lam: float = 0.1,
) -> np.ndarray:
    """Jacobian-based dataset augmentation (Papernot et al. 2017), queries in order."""
    import torch

    from mlwarden.models._torch_nets import mlp_classifier, train_classifier

    queries = [seeds]
    S = seeds.copy()
    y = oracle(S)
    total = len(S)
    round_ = 0
    while total < n_queries:
        labels = y.astype(np.int64)
        sub = train_classifier(
            mlp_classifier(S, n_classes=2, hidden=(32,)),
            S,
            labels,
            epochs=5,
            seed=int(rng.integers(1 << 30)),
        )
        x = torch.tensor(S, dtype=torch.float32, requires_grad=True)
        out = sub(x)
        out.gather(1, torch.as_tensor(labels).view(-1, 1)).sum().backward()
        assert x.grad is not None
        grad = x.grad.numpy().astype(np.float64)
        # lambda alternates sign every few rounds, as in the paper (periodic step size)
        sign = 1.0 if (round_ // 3) % 2 == 0 else -1.0
        new = np.clip(S + sign * lam * scale * np.sign(grad), lower, upper)
        new = new[: n_queries - total]
        queries.append(new)
        y_new = oracle(new)
        S = np.vstack([S, new])
        y = np.concatenate([y, y_new])
        total += len(new)
        round_ += 1
    return np.vstack(queries)[:n_queries]


def uniform_stream(
    lower: np.ndarray, upper: np.ndarray, n_queries: int, rng: np.random.Generator
) -> np.ndarray:
    return rng.uniform(lower, upper, size=(n_queries, len(lower)))


def probing_stream(
    oracle: Oracle,
    start: np.ndarray,
    other: np.ndarray,
    scale: np.ndarray,
    n_queries: int,
    rng: np.random.Generator,
    n_directions: int = 20,
) -> np.ndarray:
    """HopSkipJump-like boundary walk from ``start`` towards ``other``'s class."""
    queries: list[np.ndarray] = []
    y0 = oracle(start[None])[0]

    def ask(x: np.ndarray) -> Any:
        queries.append(x)
        return oracle(x[None])[0]

    lo, hi = start.copy(), other.copy()  # lo: start class, hi: other class
    while len(queries) < n_queries:
        for _ in range(8):  # binary search to the boundary
            mid = (lo + hi) / 2
            if ask(mid) == y0:
                lo = mid
            else:
                hi = mid
        delta = 0.01 * scale
        signs = []
        dirs = rng.standard_normal((n_directions, len(start)))
        for u in dirs:  # gradient-direction estimate around the boundary point
            signs.append(1.0 if ask(hi + delta * u) != y0 else -1.0)
        est = (np.array(signs)[:, None] * dirs).mean(axis=0)
        norm = np.linalg.norm(est)
        if norm > 0:
            # move along the boundary away from the start point, then re-search
            hi = hi + 0.05 * scale * est / norm
        lo = start.copy()
    return np.vstack(queries)[:n_queries]


# ---------------------------------------------------------------- running
def make_detectors(reference: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, Detector]:
    dets: dict[str, Detector] = {
        "prada": PRADA(random_state=seed),
        "knn_probe": KNNProbeDetector(random_state=seed),
        "ood_rate": OODRateMonitor(),
    }
    for det in dets.values():
        det.fit(reference, labels)
    return dets


def feed(
    dets: dict[str, Detector],
    client: str,
    X: np.ndarray,
    labels: np.ndarray,
    timings: dict[str, list[int]] | None = None,
) -> dict[str, int | None]:
    first: dict[str, int | None] = dict.fromkeys(dets)
    clock = time.perf_counter_ns
    for i in range(len(X)):
        x = X[i]
        lab = labels[i].item()
        for name, det in dets.items():
            t0 = clock()
            alert = det.update(client, x, lab)
            if timings is not None:
                timings[name].append(clock() - t0)
            if alert is not None:
                first[name] = alert.query_index
    return first


def _median(values: list[int | None], cap: int) -> float:
    filled = [cap + 1 if v is None else v for v in values]
    return float(np.median(filled))


def run(args: argparse.Namespace) -> dict[str, Any]:
    seed = args.seed
    rng = np.random.default_rng(seed)
    data = fraud(args.n_samples, random_state=seed)
    X, y = data.X, np.asarray(data.labels)
    perm = rng.permutation(len(X))
    n_train, n_ref = args.n_samples // 4, args.n_samples // 8
    tr, ref, pool = perm[:n_train], perm[n_train : n_train + n_ref], perm[n_train + n_ref :]
    lower, upper = data.schema.lower, data.schema.upper
    models = train_models(X[tr], y[tr], seed)
    results: dict[str, Any] = {}
    for model_name, oracle in models.items():
        dets = make_detectors(X[ref], oracle(X[ref]), seed)
        scale = dets["prada"].scale_  # type: ignore[attr-defined]
        timings: dict[str, list[int]] = {n: [] for n in dets}
        # benign
        benign_first: dict[str, list[int | None]] = {n: [] for n in dets}
        benign_any = 0
        for c in range(args.benign_clients):
            rows = X[pool[rng.choice(len(pool), args.benign_queries, replace=False)]]
            first = feed(dets, f"benign{c}", rows, oracle(rows), timings if c < 3 else None)
            for n, v in first.items():
                benign_first[n].append(v)
            benign_any += any(v is not None for v in first.values())
        # attacks
        attacks: dict[str, dict[str, list[int | None]]] = {}
        for kind in ("papernot", "uniform", "probing"):
            per: dict[str, list[int | None]] = {n: [] for n in dets}
            per["any"] = []
            for c in range(args.attack_clients):
                if kind == "papernot":
                    seeds = X[pool[rng.choice(len(pool), args.n_seeds, replace=False)]]
                    Q = papernot_stream(
                        oracle, seeds, lower, upper, scale, args.attack_queries, rng
                    )
                elif kind == "uniform":
                    Q = uniform_stream(lower, upper, args.attack_queries, rng)
                else:
                    cand = X[pool[rng.choice(len(pool), 400, replace=False)]]
                    lab = oracle(cand)
                    start = cand[lab == 1][0] if (lab == 1).any() else cand[0]
                    other = cand[lab != oracle(start[None])[0]][0]
                    Q = probing_stream(oracle, start, other, scale, args.attack_queries, rng)
                first = feed(dets, f"{kind}{c}", Q, oracle(Q))
                for n, v in first.items():
                    per[n].append(v)
                hits = [v for v in first.values() if v is not None]
                per["any"].append(min(hits) if hits else None)
            attacks[kind] = per
        cap = args.attack_queries
        results[model_name] = {
            "thresholds": {
                "prada_delta": dets["prada"].delta_,  # type: ignore[attr-defined]
                "prada_min_benign_w": float(dets["prada"].calibration_w_.min()),  # type: ignore[attr-defined]
                "knn_threshold": dets["knn_probe"].threshold_,  # type: ignore[attr-defined]
                "ood_cutoff": dets["ood_rate"].cutoff_,  # type: ignore[attr-defined]
            },
            "benign_clients": args.benign_clients,
            "benign_queries_per_client": args.benign_queries,
            "benign_flagged": {n: sum(v is not None for v in vs) for n, vs in benign_first.items()},
            "benign_flagged_any": benign_any,
            "attacks": {
                kind: {
                    n: {
                        "median_queries": _median(vs, cap),
                        "detected": sum(v is not None for v in vs),
                        "clients": len(vs),
                    }
                    for n, vs in per.items()
                }
                for kind, per in attacks.items()
            },
            "cost_us": {
                n: {
                    "median": float(np.median(ts)) / 1000,
                    "mean": float(np.mean(ts)) / 1000,
                    "p99": float(np.percentile(ts, 99)) / 1000,
                    "n": len(ts),
                }
                for n, ts in timings.items()
            },
        }
    return results


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = []
    for model, r in results.items():
        lines.append(f"## {model}")
        b = r["benign_clients"]
        lines.append(
            f"benign: {r['benign_flagged_any']}/{b} clients flagged over "
            f"{r['benign_queries_per_client']} queries each "
            f"(per detector: {r['benign_flagged']})"
        )
        for kind, per in r["attacks"].items():
            parts = [
                f"{n}: median {v['median_queries']:g} ({v['detected']}/{v['clients']})"
                for n, v in per.items()
            ]
            lines.append(f"{kind}: " + "; ".join(parts))
        cost = "; ".join(
            f"{n}: median {v['median']:.1f} us, mean {v['mean']:.1f} us, p99 {v['p99']:.1f} us"
            for n, v in r["cost_us"].items()
        )
        lines.append(f"cost per query: {cost}")
        lines.append(f"thresholds: {r['thresholds']}")
    lines.append(
        f"(medians count an undetected client as {args.attack_queries + 1} queries; "
        f"{platform.processor() or platform.machine()}, python {sys.version.split()[0]})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-samples", type=int, default=80_000)
    p.add_argument("--benign-clients", type=int, default=30)
    p.add_argument("--benign-queries", type=int, default=10_000)
    p.add_argument("--attack-clients", type=int, default=20)
    p.add_argument("--attack-queries", type=int, default=400)
    p.add_argument("--n-seeds", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="Small run (a smoke test).")
    p.add_argument("--json", help="Write the results as JSON to this file.")
    args = p.parse_args(argv)
    if args.quick:
        args.n_samples, args.benign_clients, args.benign_queries = 20_000, 3, 2000
        args.attack_clients = 5
    with threadpool_limits(1):
        t0 = time.perf_counter()
        results = run(args)
        elapsed = time.perf_counter() - t0
    print(render(results, args))
    print(f"elapsed {elapsed:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
