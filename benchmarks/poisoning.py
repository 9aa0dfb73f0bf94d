"""Poisoning detectors side by side: mlwarden and IBM ART on the same poisoned data.

Run with ``OMP_NUM_THREADS=1 .bench-venv/bin/python benchmarks/poisoning.py`` (the venv
needs ART). Three scenarios, each poisoned once per seed and handed to every detector
as the same arrays:

1. **BadNets 5 % on digits** (scikit-learn's 8x8 digits, 75 % training split): a 3x3
   checkerboard patch in the bottom-right corner, 5 % of the training rows relabelled
   as the attacker's class (class ``seed``). One small torch MLP (standardisation,
   128-64 ReLU, Adam, 40 epochs) is trained on the poisoned rows; mlwarden's detectors
   read its penultimate layer, and ART's ``ActivationDefence`` and
   ``SpectralSignatureDefense`` get the very same network through ART's
   ``PyTorchClassifier``: once as is (ART reads the last layer, here the logits) and once
   cut after the penultimate layer (the representations mlwarden reads). ART's
   spectral defence is told the true poison rate (``expected_pp_poison=0.05``), as is
   mlwarden's (``expected_rate=0.05``).
2. **Label flips 10 % on the fraud data** (``mlwarden.data.bundled.fraud()``, 20,000
   rows, 5 % fraud): random flips across classes. Confident learning with out-of-fold
   probabilities (5 folds, gradient-boosted trees). ART has no label-issue detector.
3. **Tabular trigger on the fraud data**: 1 % of the rows - fraud rows - get the default
   trigger (merchant = gambling, amount = 3342.93) and the label "legitimate". Same
   MLP recipe (10 epochs on 20,000 rows), same detectors as in 1.

For the backdoors the attack success rate (held-out rows not of the attacker's class,
triggered, classified as the attacker's class) is measured for a model trained on the
poisoned data, for one trained on mlwarden's sanitized data (the flagged rows
removed), and for one trained on the training rows before poisoning (what the trigger
does to a model that never saw poison: the floor for the sanitized model).
Precision/recall/F1 are computed against the poisoned rows, which no detector sees.
Times are wall seconds on a shared machine; representations (one MLP training) are
timed apart and shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlwarden.data.bundled import digits, fraud
from mlwarden.data.dataset import Dataset
from mlwarden.models._torch_nets import mlp_classifier, train_classifier
from mlwarden.poisoning import (
    ActivationClustering,
    BadNets,
    ConfidentLearning,
    LabelFlip,
    SpectralSignature,
    TabularBackdoor,
)

RESULTS = Path(__file__).with_name("RESULTS.md")
HIDDEN = (128, 64)


def prf(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = float((flagged & truth).sum())
    p = tp / max(float(flagged.sum()), 1.0)
    r = tp / max(float(truth.sum()), 1.0)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def train_mlp(X: np.ndarray, y: np.ndarray, n_classes: int, epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = mlp_classifier(X, n_classes, hidden=HIDDEN)
    return train_classifier(model, X, y, epochs=epochs, batch_size=64, seed=seed)


def penultimate(model: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model[:-1](torch.as_tensor(X, dtype=torch.float32)).numpy().astype(np.float64)


def predict(model: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(X, dtype=torch.float32)).argmax(1).numpy()


def art_detectors(
    model: nn.Module, X: np.ndarray, y: np.ndarray, n_classes: int, rate: float
) -> dict[str, tuple[np.ndarray, float]]:
    """ART's two defences, on the network as is (ART reads its last layer, the logits) and
    on the same network cut after its penultimate layer (the representations mlwarden
    reads; ``detect_poison`` only uses activations and the given labels)."""
    from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense
    from art.estimators.classification import PyTorchClassifier

    onehot = np.eye(n_classes)[y]
    out: dict[str, tuple[np.ndarray, float]] = {}
    for suffix, net in (("", model), (" (penultimate)", model[:-1])):
        clf = PyTorchClassifier(
            model=net, loss=nn.CrossEntropyLoss(), input_shape=(X.shape[1],),
            nb_classes=n_classes, clip_values=None,
        )  # fmt: skip
        t = time.perf_counter()
        ad = ActivationDefence(clf, X.astype(np.float32), onehot)
        _, clean = ad.detect_poison(nb_clusters=2, nb_dims=10, reduce="PCA")
        out["ART ActivationDefence" + suffix] = (np.asarray(clean) == 0, time.perf_counter() - t)
        t = time.perf_counter()
        ss = SpectralSignatureDefense(clf, X.astype(np.float32), onehot, expected_pp_poison=rate)
        _, clean = ss.detect_poison()
        out["ART SpectralSignatureDefense" + suffix] = (
            np.asarray(clean) == 0,
            time.perf_counter() - t,
        )
    return out


def backdoor_scenario(
    name: str, data: Dataset, attack: Any, epochs: int, seed: int, rate: float
) -> dict[str, Any]:
    train, test = data.split(test_size=0.25, random_state=seed)
    poisoned = attack.poison(train)
    X = poisoned.data.X
    classes, y = np.unique(poisoned.data.labels, return_inverse=True)
    k = len(classes)
    truth = poisoned.mask
    t = time.perf_counter()
    model = train_mlp(X, y, k, epochs, seed)
    reps = penultimate(model, X)
    t_reps = time.perf_counter() - t
    rows: dict[str, Any] = {}
    t = time.perf_counter()
    ac = ActivationClustering(random_state=seed).detect(poisoned.data, representations=reps)
    rows["mlwarden ActivationClustering"] = (ac.flagged, time.perf_counter() - t)
    t = time.perf_counter()
    ss = SpectralSignature(expected_rate=rate, random_state=seed).detect(
        poisoned.data, representations=reps
    )
    rows["mlwarden SpectralSignature"] = (ss.flagged, time.perf_counter() - t)
    rows |= art_detectors(model, X, y, k, rate)
    # attack success rate before and after sanitization
    tgt = int(np.searchsorted(classes, poisoned.target_class))
    y_test = np.searchsorted(classes, test.labels)
    victims = np.flatnonzero(y_test != tgt)
    trig = attack.apply_trigger(test, test.X[victims])
    asr_before = float(np.mean(predict(model, trig) == tgt))
    acc_before = float(np.mean(predict(model, test.X) == y_test))
    keep = ~ac.flagged
    clean_model = train_mlp(X[keep], y[keep], k, epochs, seed)
    asr_after = float(np.mean(predict(clean_model, trig) == tgt))
    # The trigger's effect on a model that never saw poison (the floor for "after").
    y_clean = np.searchsorted(classes, train.labels)
    never = train_mlp(train.X, y_clean, k, epochs, seed)
    asr_clean = float(np.mean(predict(never, trig) == tgt))
    acc_after = float(np.mean(predict(clean_model, test.X) == y_test))
    return {
        "scenario": name, "seed": seed, "n_train": len(X), "n_poison": int(truth.sum()),
        "reps_s": t_reps,
        "methods": {m: (*prf(f, truth), s) for m, (f, s) in rows.items()},
        "asr_before": asr_before, "asr_after": asr_after, "asr_clean": asr_clean,
        "acc_before": acc_before, "acc_after": acc_after,
        "dropped": int(ac.flagged.sum()),
    }  # fmt: skip


def label_flip_scenario(seed: int) -> dict[str, Any]:
    data = fraud(20_000, random_state=seed)
    poisoned = LabelFlip(rate=0.1, random_state=seed).poison(data)
    t = time.perf_counter()
    res = ConfidentLearning(random_state=seed).detect(poisoned.data)
    secs = time.perf_counter() - t
    truth = poisoned.mask
    per_class = {}
    for c in (0, 1):
        flipped_to = truth & (poisoned.data.labels == c)
        flagged_c = res.flagged & (poisoned.data.labels == c)
        per_class[c] = (*prf(flagged_c, flipped_to), int(flipped_to.sum()))
    return {"seed": seed, "all": (*prf(res.flagged, truth), secs), "per_class": per_class,
            "n_flipped": int(truth.sum())}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--patch-size", type=int, default=3, help="BadNets patch side (pixels)")
    ap.add_argument("--scenarios", default="badnets,tabular,flips",
                    help="comma-separated subset of badnets, tabular, flips")  # fmt: skip
    args = ap.parse_args()
    wanted = set(args.scenarios.split(","))
    torch.set_num_threads(1)
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    for seed in args.seeds:
        if "badnets" in wanted:
            d = digits()
            badnets = BadNets(rate=0.05, target_class=seed, patch_size=args.patch_size,
                              random_state=seed)  # fmt: skip
            name = "BadNets 5 % (digits)" + (
                f", {args.patch_size}x{args.patch_size} patch" if args.patch_size != 3 else ""
            )
            results.append(backdoor_scenario(name, d, badnets, epochs=40, seed=seed, rate=0.05))
            print(results[-1]["methods"], results[-1]["asr_before"], results[-1]["asr_after"])
        if "tabular" in wanted:
            f = fraud(20_000, random_state=seed)
            results.append(backdoor_scenario(
                "tabular trigger 1 % (fraud)", f,
                TabularBackdoor(rate=0.01, target_class=0, random_state=seed),
                epochs=10, seed=seed, rate=0.01,
            ))  # fmt: skip
            print(results[-1]["methods"], results[-1]["asr_before"], results[-1]["asr_after"])
    flips = [label_flip_scenario(s) for s in args.seeds] if "flips" in wanted else []
    for fl in flips:
        print(fl)
    text = render(results, flips, args.seeds, time.perf_counter() - started)
    print(text)
    if not args.no_write:
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write("\n" + text)


def _mean(xs: list[float]) -> float:
    return statistics.fmean(xs) if xs else float("nan")


def render(results: list[dict[str, Any]], flips: list[dict[str, Any]], seeds: list[int],
           total: float) -> str:  # fmt: skip
    today = dt.date.today().isoformat()
    machine = f"{platform.machine()}, {os.cpu_count()} cores (shared), {platform.python_version()}"
    lines = [
        f"## Poisoning detectors vs ART — {today} ({machine})",
        "",
        f"`OMP_NUM_THREADS=1 .bench-venv/bin/python benchmarks/poisoning.py`, seeds "
        f"{', '.join(map(str, seeds))}; total {total:.0f} s. Same poisoned arrays and the same "
        "trained network for every detector; precision/recall/F1 against the poisoned rows "
        "(never shown to a detector); mean over seeds, per-seed F1 in brackets.",
        "",
        "| scenario | method | precision | recall | F1 (per seed) | detector s |",
        "|---|---|---:|---:|---|---:|",
    ]
    for scen in dict.fromkeys(r["scenario"] for r in results):
        rs = [r for r in results if r["scenario"] == scen]
        for m in rs[0]["methods"]:
            vals = [r["methods"][m] for r in rs]
            f1s = " / ".join(f"{v[2]:.2f}" for v in vals)
            lines.append(
                f"| {scen} | {m} | {_mean([v[0] for v in vals]):.3f} | "
                f"{_mean([v[1] for v in vals]):.3f} | {_mean([v[2] for v in vals]):.3f} "
                f"({f1s}) | {_mean([v[3] for v in vals]):.2f} |"
            )
    lines += ["", "Attack success rate (triggered held-out inputs → attacker's class), model "
              "trained on the poisoned data vs on mlwarden's sanitized data:", "",
              "| scenario | seed | poisoned rows | ASR poisoned | ASR sanitized | ASR never "
              "poisoned | clean acc poisoned | clean acc sanitized | rows dropped |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        lines.append(
            f"| {r['scenario']} | {r['seed']} | {r['n_poison']} / {r['n_train']} | "
            f"{r['asr_before']:.3f} | {r['asr_after']:.3f} | {r['asr_clean']:.3f} | "
            f"{r['acc_before']:.3f} | "
            f"{r['acc_after']:.3f} | {r['dropped']} |"
        )
    lines += ["", "Label flips 10 % on fraud (20,000 rows), confident learning (5-fold HGB):", "",
              "| seed | flipped | precision | recall | F1 | s | flipped→legit P / R (n) | "
              "flipped→fraud P / R (n) |", "|---:|---:|---:|---:|---:|---:|---|---|"]  # fmt: skip
    for fl in flips:
        p, r, f1, s = fl["all"]
        c0, c1 = fl["per_class"][0], fl["per_class"][1]
        lines.append(
            f"| {fl['seed']} | {fl['n_flipped']} | {p:.3f} | {r:.3f} | {f1:.3f} | {s:.1f} | "
            f"{c0[0]:.2f} / {c0[1]:.2f} ({c0[3]}) | {c1[0]:.2f} / {c1[1]:.2f} ({c1[3]}) |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
