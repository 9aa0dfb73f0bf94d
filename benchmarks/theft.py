"""Model theft on the fraud models: extraction curves per strategy, and each output defense's
cost to honest users and to the attacker.

Run with ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/theft.py [--write]``. Sections run
in order (``--sections extraction,hardening``); a later section (the stateful detectors)
appends itself to :data:`SECTIONS`.

Setup: ``mlwarden.data.bundled.fraud(20_000, random_state=0)``, split once into the
victim's training rows (50 %), the attacker's pool of unlabelled rows (37.5 %) and held-out
rows (12.5 %) on which every copy is measured. The victims are built as in ``mlwarden
demo``: a HistGradientBoosting classifier (200 iterations, balanced class weights) and a
torch MLP (standardisation layer, 64-32 hidden units, 15 epochs, balanced). The attacker's
surrogate is mlwarden's default (HistGradientBoosting, 100 iterations), trained on the
victim's probabilities when it returns them.

Fidelity is the copy's label agreement with the victim on the held-out rows. Fraud is 5 %
of the rows, so a constant "legitimate" agrees about 95 % of the time: the tables show
that baseline, and *balanced* fidelity (agreement averaged over the victim's two answers,
0.5 for a constant) beside plain fidelity.

Attacker cost: the knockoff extraction runs against the undefended and the defended
victim with the same seed at budgets 100 ... 5,000; the level to reach is the balanced
fidelity the undefended attack reaches at 1,000 queries, and the multiplier is the ratio of
the first budgets at which each run reaches it (a lower bound, marked ≥, when the defended
run never does within 5,000). Honest cost: ROC AUC and accuracy of the answers honest users
get, on the held-out rows (a label is a 0/1 score).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # HGB single-row predictions under OpenMP

import argparse
import datetime as dt
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from mlwarden.data import Dataset
from mlwarden.data.bundled import fraud
from mlwarden.models import Target, target
from mlwarden.theft import (
    ActiveStrategy,
    AttackerCost,
    JacobianStrategy,
    KnockoffStrategy,
    UniformStrategy,
    extract,
    harden_outputs,
    honest_cost,
)

RESULTS = Path(__file__).with_name("RESULTS.md")
BUDGETS = (250, 500, 1000, 2000, 5000)
COST_BUDGETS = (250, 500, 750, 1000, 1500, 2000, 3000, 5000)
DEFENSES: list[tuple[str, dict[str, Any]]] = [
    ("label-only", {}),
    ("top-k", {"k": 1}),
    ("rounding", {"decimals": 1}),
    ("rounding", {"decimals": 2}),
    ("noise", {"scale": 0.05}),
    ("reverse-sigmoid", {"beta": 0.5, "gamma": 0.2}),
]


@dataclass
class Setup:
    """The data split and the victims, built once and shared by every section."""

    train: Dataset
    pool: Dataset
    test: Dataset
    victims: dict[str, Target]
    seed: int
    quick: bool


@dataclass
class Section:
    """One part of the benchmark: a title, markdown lines and target verdicts."""

    title: str
    lines: list[str] = field(default_factory=list)
    targets: list[tuple[str, str, str]] = field(default_factory=list)


def build(seed: int, quick: bool) -> Setup:
    """Data and the two fraud victims (as ``mlwarden demo`` trains them)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlwarden.models._torch_nets import mlp_classifier, train_classifier
    from mlwarden.models.torch import TorchTarget

    data = fraud(8_000 if quick else 20_000, random_state=seed)
    train, rest = data.split(test_size=0.5, random_state=seed)
    pool, test = rest.split(test_size=0.25, random_state=seed + 1)
    hgb = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.1, class_weight="balanced", random_state=seed
    ).fit(train.X, train.labels)
    y = np.asarray(train.labels, dtype=np.int64)
    net = train_classifier(
        mlp_classifier(train.X, n_classes=2), train.X, y, epochs=15, balanced=True, seed=seed
    )
    mlp = TorchTarget(
        net, classes=[0, 1], lower=data.schema.lower, upper=data.schema.upper, name="fraud-mlp"
    )
    return Setup(train, pool, test, {"fraud-hgb": target(hgb, name="fraud-hgb"),
                                     "fraud-mlp": mlp}, seed, quick)  # fmt: skip


def _fmt(v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


# ---------------------------------------------------------------------- sections
def section_extraction(s: Setup) -> Section:
    """Fidelity-vs-queries curves of each strategy on each victim."""
    sec = Section("Extraction: fidelity vs queries (knockoff = pool of natural rows)")
    budgets = (250, 500, 1000) if s.quick else BUDGETS
    strategies: list[tuple[str, Any, Any]] = [
        ("uniform", UniformStrategy(), "auto"),
        ("jacobian", JacobianStrategy(n_seeds=250), "auto"),
        ("knockoff", KnockoffStrategy(), "auto"),
        ("knockoff (labels only)", KnockoffStrategy(), False),
        ("active", ActiveStrategy(n_rounds=6), "auto"),
    ]
    header = " | ".join(f"{b}" for b in budgets)
    sec.lines += [
        "Each cell: fidelity / balanced fidelity on the held-out rows after that many "
        "queries (a constant guess: fidelity = the victim's share of its majority answer, "
        "balanced 0.5).",
        "",
        f"| victim | strategy | soft labels | {header} | accuracy at {budgets[-1]} | s |",
        "|---|---|---|" + "---:|" * len(budgets) + "---:|---:|",
    ]
    reached: dict[str, int | None] = {}
    for vname, victim in s.victims.items():
        baseline = None
        for label, strat, use_scores in strategies:
            t0 = time.perf_counter()
            res = extract(
                victim, budget=budgets[-1], budgets=list(budgets), strategy=strat,
                pool=s.pool, test=s.test, use_scores=use_scores, random_state=s.seed,
            )  # fmt: skip
            secs = time.perf_counter() - t0
            baseline = res.baseline_fidelity
            cells = " | ".join(f"{p.fidelity:.3f} / {p.balanced_fidelity:.3f}" for p in res.curve)
            sec.lines.append(
                f"| {vname} | {label} | {'yes' if res.used_scores else 'no'} | {cells} | "
                f"{_fmt(res.accuracy)} | {secs:.1f} |"
            )
            if label == "knockoff":
                reached[vname] = res.queries_to(0.95)
        sec.lines.append(f"| {vname} | constant guess | | fidelity {_fmt(baseline)} | | | |")
    for vname, q in reached.items():
        sec.targets.append((
            "pool strategy reaches fidelity ≥ 0.95 within 5,000 queries (undefended)",
            vname,
            ("yes" if q is not None else "**no**")
            + f" (first at {q} queries; a constant guess agrees "
            "at the share of the majority answer, see the table)" if q else "**no**",
        ))  # fmt: skip
    return sec


def section_hardening(s: Setup) -> Section:
    """Each defense's honest-user cost and attacker-cost multiplier."""
    sec = Section("Output hardening: honest-user cost and attacker cost")
    budgets = (100, 200, 500, 1000, 2000) if s.quick else COST_BUDGETS
    level_at = 500 if s.quick else 1000
    sec.lines += [
        f"Level = balanced fidelity the undefended knockoff attack reaches at {level_at} "
        "queries; queries = first budget at which each run reaches it.",
        "",
        "| victim | defense | AUC before | AUC after | AUC loss (points) | accuracy loss | "
        "level | queries undefended | queries defended | attacker-cost multiplier | "
        "defended balanced fidelity at max budget |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for vname, victim in s.victims.items():
        plain = extract(
            victim, budget=budgets[-1], budgets=list(budgets), pool=s.pool, test=s.test,
            random_state=s.seed,
        )  # fmt: skip
        level = next(p.balanced_fidelity for p in plain.curve if p.queries == level_at)
        q_plain = plain.queries_to(level, balanced=True)
        for name, params in DEFENSES:
            hard = harden_outputs(victim, name, random_state=s.seed, **params)
            hc = honest_cost(victim, hard, s.test)
            # attacker_cost(victim, hard, ...) reruns the undefended extraction; with many
            # defenses the benchmark runs it once and compares by hand, the same way.
            defended = extract(
                hard, budget=budgets[-1], budgets=list(budgets), pool=s.pool, test=s.test,
                random_state=s.seed,
            )  # fmt: skip
            ac = AttackerCost(
                fidelity=level, balanced=True, queries_undefended=q_plain,
                queries_defended=defended.queries_to(level, balanced=True),
                max_budget=budgets[-1], curve_undefended=[p.to_dict() for p in plain.curve],
                curve_defended=[p.to_dict() for p in defended.curve],
            )  # fmt: skip
            label = name + "".join(f" {k}={v}" for k, v in params.items())
            mult = ac.multiplier
            mult_s = ("≥ " if not ac.reached else "") + f"{mult:.2f}×"
            final = ac.curve_defended[-1]["balanced_fidelity"]
            sec.lines.append(
                f"| {vname} | {label} | {hc.auc_before:.4f} | {hc.auc_after:.4f} | "
                f"{100 * hc.auc_loss:.2f} | {100 * hc.accuracy_loss:.2f} | {level:.3f} | "
                f"{ac.queries_undefended} | {ac.queries_defended or '> ' + str(budgets[-1])} | "
                f"{mult_s} | {final:.3f} |"
            )
            if name == "label-only":
                ok = mult >= 2 and hc.auc_loss <= 0.01
                got = ac.queries_defended or f"> {budgets[-1]}"
                sec.targets.append((
                    "label-only at least doubles the queries for the same fidelity at ≤ 1 "
                    "point of honest AUC loss",
                    vname,
                    f"{'yes' if ok else '**no**'}: {mult_s} queries "
                    f"({ac.queries_undefended} → {got}), "
                    f"AUC loss {100 * hc.auc_loss:.2f} points (accuracy loss "
                    f"{100 * hc.accuracy_loss:.2f}; labels unchanged)",
                ))  # fmt: skip
    return sec


def section_transfer(s: Setup) -> Section:
    """Evasion examples crafted on a knockoff copy, replayed on the victim."""
    sec = Section("Transferability of evasion examples crafted on the copy")
    budget = 1000 if s.quick else 5000
    sec.lines += [
        f"Copy: knockoff, {budget} queries. Rows: held-out frauds the victim and the copy "
        "both flag; the fraudster moves only the features it controls (fraud schema), "
        "eps = 0.5 feature-scale units.",
        "",
        "| victim | attack on the copy | rows | fool the copy | of those, fool the victim | "
        "victim fooled (all rows) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    frauds = s.test.X[np.asarray(s.test.labels) == 1]
    for vname, victim in s.victims.items():
        res = extract(victim, budget=budget, pool=s.pool, test=s.test, random_state=s.seed)
        tr = res.transferability(frauds, schema=s.test.schema, eps=0.5, max_rows=150,
                                 random_state=s.seed)  # fmt: skip
        sec.lines.append(
            f"| {vname} | {tr.attack} | {tr.n_rows} | {_fmt(tr.surrogate_success)} | "
            f"{_fmt(tr.transfer_rate)} | {_fmt(tr.victim_fooled)} |"
        )
    return sec


SECTIONS: dict[str, Callable[[Setup], Section]] = {
    "extraction": section_extraction,
    "hardening": section_hardening,
    "transfer": section_transfer,
}
"""Benchmark sections, in run order; another module may add its own."""


def markdown(sections: list[Section], s: Setup, seconds: float) -> str:
    """The results as a RESULTS.md section."""
    today = dt.date.today().isoformat()
    out = [
        f"## Model theft: extraction and output hardening ({today})",
        "",
        f"Machine: 2 cores, shared with other jobs ({platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}); OMP_NUM_THREADS=1; seed {s.seed}; "
        f"fraud data {s.train.n_samples + s.pool.n_samples + s.test.n_samples} rows "
        f"(victim train {s.train.n_samples}, attacker pool {s.pool.n_samples}, held-out "
        f"{s.test.n_samples}); total {seconds / 60:.1f} min. "
        "Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/theft.py --write`.",
        "",
    ]
    for sec in sections:
        out += [f"### {sec.title}", "", *sec.lines, ""]
    targets = [t for sec in sections for t in sec.targets]
    if targets:
        out += ["Against the targets:", "", "| target | victim | result |", "|---|---|---|"]
        out += [f"| {a} | {b} | {c} |" for a, b, c in targets]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--sections", default=",".join(SECTIONS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smaller data and budgets")
    p.add_argument("--write", action="store_true", help=f"append the tables to {RESULTS.name}")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    with threadpool_limits(1):
        setup = build(args.seed, args.quick)
        done = [SECTIONS[name](setup) for name in args.sections.split(",") if name]
    text = markdown(done, setup, time.perf_counter() - start)
    print(text)
    if args.write:
        with RESULTS.open("a") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
