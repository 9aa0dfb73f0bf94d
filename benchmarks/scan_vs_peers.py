"""Model-file scanners side by side: mlwarden vs modelscan, picklescan and fickling.

Run in the benchmark environment (``make bench-scan``), never in the test suite::

    .bench-venv/bin/python benchmarks/scan_vs_peers.py [--repeats 3] [--gb 1.0] [--write]

Every tool sees the same generated corpus (``tests/supplychain_corpus.py``: benign files
from real libraries, one crafted malicious file per technique with a harmless payload,
and broken edge files). Per tool and file the verdict a CI gate would act on is
recorded — ``unsafe`` (flagged), ``safe`` (passes the gate) or ``error`` (the tool says
it could not scan it, or scanned nothing) — and the table counts:

* malicious files caught, and missed (passed as safe, or only "could not scan");
* benign files flagged (false positives) and benign files it could not scan;
* wall time over the whole corpus in one process (median of ``--repeats``), and the
  command-line run over the corpus directory;
* the time to scan a ``--gb`` GB PyTorch checkpoint, and ``mlwarden scan`` start-up.

No tool ever loads a corpus file: the corpus payloads only create a marker file, and
the run fails loudly if the marker appears.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).with_name("RESULTS.md")
BIN = Path(sys.executable).parent

from tests.supplychain_corpus import MARKER, CorpusEntry, build_corpus  # noqa: E402

Verdict = str  # "safe" | "unsafe" | "error"


# ------------------------------------------------------------------ the scanners
def mlwarden_verdict(path: Path) -> Verdict:
    from mlwarden.supplychain import scan_file

    return scan_file(path).verdict.value


def mlwarden_folder(folder: Path) -> dict[Path, Verdict]:
    """mlwarden scans a folder as its CLI does: files are judged together with their
    siblings (an ONNX model's external-data file is known as such). The default skips
    (README and other repository text files) are off, so that the corpus's plain-text
    edge file is judged like the other tools judge it."""
    from mlwarden.supplychain import scan

    return {Path(f.path): f.verdict.value for f in scan(folder, default_skips=False).files}


def picklescan_verdict(path: Path) -> Verdict:
    from picklescan.scanner import scan_file_path

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        r = scan_file_path(str(path))
    if r.infected_files or r.issues_count:
        return "unsafe"
    if r.scan_err or not r.scanned_files:
        return "error"  # picklescan's own exit code is 0 when it scanned nothing
    return "safe"


def modelscan_verdict(path: Path) -> Verdict:
    from modelscan.modelscan import ModelScan

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        r = ModelScan().scan(path)
    if r.get("issues"):
        return "unsafe"
    scanned = r.get("summary", {}).get("scanned", {}).get("total_scanned", 0)
    if r.get("errors") or not scanned:
        return "error"
    return "safe"


def fickling_verdict(path: Path) -> Verdict:
    import fickling

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        r = fickling.scan_file(str(path), graceful=True)
    if not r.is_safe:
        return "unsafe"
    if r.errors:
        return "error"
    return "safe"


def crash_is_error(fn: Callable[[Path], Verdict]) -> Callable[[Path], Verdict]:
    """A peer that raises on a file has not scanned it (mlwarden is not wrapped: an
    exception from ``scan_file`` would be a bug, and must stop the benchmark)."""

    def wrapped(path: Path) -> Verdict:
        try:
            return fn(path)
        except Exception:
            return "error"

    return wrapped


TOOLS: dict[str, Callable[[Path], Verdict]] = {
    "mlwarden": mlwarden_verdict,
    "modelscan": crash_is_error(modelscan_verdict),
    "picklescan": crash_is_error(picklescan_verdict),
    "fickling": crash_is_error(fickling_verdict),
}


def cli(tool: str, target: Path) -> list[str]:
    return {
        "mlwarden": [str(BIN / "mlwarden"), "scan", str(target), "--format", "json"],
        "modelscan": [str(BIN / "modelscan"), "-p", str(target), "-r", "json"],
        "picklescan": [str(BIN / "picklescan"), "-p", str(target)],
        "fickling": [str(BIN / "fickling"), "--check-safety", str(target)],
    }[tool]


# -------------------------------------------------------------------- tallies
@dataclass
class Tally:
    tool: str
    caught: int = 0
    missed_safe: list[str] = field(default_factory=list)
    missed_error: list[str] = field(default_factory=list)
    false_positive: list[str] = field(default_factory=list)
    benign_error: list[str] = field(default_factory=list)
    edge_handled: int = 0
    edge_total: int = 0
    seconds: float = float("nan")
    cli_seconds: float = float("nan")
    big_seconds: float = float("nan")
    big_verdict: str = ""


def tally(tool: str, entries: list[CorpusEntry], verdicts: dict[Path, Verdict]) -> Tally:
    t = Tally(tool)
    for e in entries:
        v = verdicts[e.path]
        name = e.technique
        if e.expected == "unsafe":
            if v == "unsafe":
                t.caught += 1
            elif v == "safe":
                t.missed_safe.append(name)
            else:
                t.missed_error.append(name)
        elif e.expected == "safe":
            if v == "unsafe":
                t.false_positive.append(name)
            elif v == "error":
                t.benign_error.append(name)
        else:  # edge files: any verdict but "safe" is a correct fail-closed answer
            t.edge_total += 1
            t.edge_handled += v != "safe"
    return t


def timed(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def big_checkpoint(root: Path, gb: float) -> Path:
    """A ``torch.save`` checkpoint of about ``gb`` GB (a state_dict of float32 tensors)."""
    import torch

    path = root / "big" / "checkpoint.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    per = 64 * 1024 * 1024  # 256 MiB float32 tensors
    n = max(1, round(gb * 1024**3 / (per * 4)))
    state = {f"layer{i}.weight": torch.zeros(per) for i in range(n)}
    torch.save(state, path)
    return path


def real_models(root: Path) -> list[Path]:
    """Model files of realistic size, benign: where a scanner's cost per byte shows."""
    import pickle

    import joblib
    import numpy as np
    import torch
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.neural_network import MLPClassifier

    folder = root / "real"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 20))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    hgb = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(X, y)
    mlp = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=20, random_state=0).fit(X, y)
    paths = [folder / "forest.pkl", folder / "hgb.joblib", folder / "mlp.pkl"]
    paths[0].write_bytes(pickle.dumps(forest, protocol=5))
    joblib.dump(hgb, paths[1])
    paths[2].write_bytes(pickle.dumps(mlp, protocol=4))
    net = torch.nn.Sequential(*[torch.nn.Linear(512, 512) for _ in range(40)])
    opt = torch.optim.Adam(net.parameters())
    net(torch.zeros(2, 512)).sum().backward()
    opt.step()
    checkpoint = folder / "checkpoint.pt"
    torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, checkpoint)
    full = folder / "full_model.pt"
    torch.save(net, full)
    return [*paths, checkpoint, full]


def startup_ms(target: Path, runs: int = 10) -> float:
    """Median wall time of ``mlwarden scan FILE``, with the package's bytecode compiled
    as an installed wheel has it (pip compiles ``.pyc`` files at install time; this
    checkout is an editable install)."""
    import compileall

    import mlwarden

    compileall.compile_dir(Path(mlwarden.__file__).parent, quiet=1)
    cmd = [str(BIN / "mlwarden"), "scan", str(target)]
    subprocess.run(cmd, capture_output=True, check=False)  # warm the page cache
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


# ----------------------------------------------------------------------- main
def markdown(tallies: list[Tally], entries: list[CorpusEntry], args: argparse.Namespace,
             startup: float, gb: float) -> str:  # fmt: skip
    n_bad = sum(e.expected == "unsafe" for e in entries)
    n_good = sum(e.expected == "safe" for e in entries)
    n_edge = len(entries) - n_bad - n_good
    lines = [
        f"## Model-file scanners — {date.today().isoformat()} "
        f"({platform.machine()}, {shutil.os.cpu_count()} cores, {platform.python_version()})",
        "",
        f"`python benchmarks/scan_vs_peers.py --repeats {args.repeats} --gb {args.gb}`; corpus "
        f"of {len(entries)} files: {n_bad} malicious (one per technique), {n_good} benign "
        f"from real libraries, {n_edge} broken edge files. Verdicts as a CI gate sees them.",
        "",
        f"| tool | malicious caught (of {n_bad}) | missed: passed as safe | missed: "
        f"could not scan | benign flagged (of {n_good}) | benign not scanned | edge files "
        f"failed closed (of {n_edge}) | corpus, in-process s | corpus, CLI s | "
        f"{gb:g} GB torch checkpoint s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in tallies:
        big = f"{t.big_seconds:.3f} ({t.big_verdict})" if t.big_verdict else "n/a"
        lines.append(
            f"| {t.tool} | {t.caught} | {len(t.missed_safe)} | {len(t.missed_error)} | "
            f"{len(t.false_positive)} | {len(t.benign_error)} | {t.edge_handled} | "
            f"{t.seconds:.3f} | {t.cli_seconds:.2f} | {big} |"
        )
    lines += ["", f"`mlwarden scan` start-up and scan of a small benign pickle: {startup:.0f} ms "
              "(median of 10 runs, wall, bytecode compiled as in an installed wheel)."]  # fmt: skip
    lines += ["", "What each peer missed or flagged:", ""]
    for t in tallies:
        if not (t.missed_safe or t.missed_error or t.false_positive or t.benign_error):
            lines.append(f"- {t.tool}: nothing missed, nothing benign flagged or unscanned.")
            continue
        parts = []
        if t.missed_safe:
            parts.append(f"passed as safe: {', '.join(sorted(t.missed_safe))}")
        if t.missed_error:
            parts.append(f"could not scan: {', '.join(sorted(t.missed_error))}")
        if t.false_positive:
            parts.append(f"benign flagged: {', '.join(sorted(t.false_positive))}")
        if t.benign_error:
            parts.append(f"benign not scanned: {', '.join(sorted(t.benign_error))}")
        lines.append(f"- {t.tool}: " + "; ".join(parts))
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--gb", type=float, default=1.0, help="size of the big torch checkpoint")
    p.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset")
    p.add_argument("--write", action="store_true", help=f"append the table to {RESULTS.name}")
    args = p.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    with tempfile.TemporaryDirectory(prefix="mlw-scan-bench-") as tmp:
        root = Path(tmp)
        corpus_dir = root / "corpus"
        entries = build_corpus(corpus_dir)
        print(f"corpus: {len(entries)} files in {corpus_dir}")
        tallies = []
        for tool in tools:
            fn = TOOLS[tool]
            if tool == "mlwarden":
                found = mlwarden_folder(corpus_dir)  # warm-up and verdicts
                verdicts = {e.path: found[e.path] for e in entries}
                t = tally(tool, entries, verdicts)
                t.seconds = timed(lambda: mlwarden_folder(corpus_dir), args.repeats)
            else:
                verdicts = {e.path: fn(e.path) for e in entries}  # warm-up and verdicts
                t = tally(tool, entries, verdicts)
                t.seconds = timed(lambda fn=fn: [fn(e.path) for e in entries], args.repeats)
            t0 = time.perf_counter()
            subprocess.run(cli(tool, corpus_dir), capture_output=True, check=False)
            t.cli_seconds = time.perf_counter() - t0
            tallies.append(t)
            print(f"{tool:>11}: caught {t.caught}, missed {len(t.missed_safe)}+"
                  f"{len(t.missed_error)}, false positives {len(t.false_positive)}, "
                  f"{t.seconds:.2f} s in-process, {t.cli_seconds:.2f} s CLI")  # fmt: skip
        if (corpus_dir / MARKER).exists():
            raise SystemExit("a payload ran during the benchmark: the marker file exists")
        big = big_checkpoint(root, args.gb)
        gb = big.stat().st_size / 1024**3
        for t in tallies:
            fn = TOOLS[t.tool]
            t.big_verdict = fn(big)
            t.big_seconds = timed(lambda fn=fn: fn(big), max(1, args.repeats))
            print(f"{t.tool:>11}: {gb:.2f} GB checkpoint {t.big_seconds:.2f} s ({t.big_verdict})")
        real = real_models(root)
        real_mb = sum(p.stat().st_size for p in real) / 1e6
        real_times = {}
        for t in tallies:
            fn = TOOLS[t.tool]
            real_verdicts = [fn(p) for p in real]
            real_times[t.tool] = (
                timed(lambda fn=fn: [fn(p) for p in real], args.repeats),
                real_verdicts,
            )
            print(f"{t.tool:>11}: real models {real_times[t.tool][0]:.3f} s {real_verdicts}")
        benign = next(e.path for e in entries if e.expected == "safe" and e.path.suffix == ".pkl")
        startup = startup_ms(benign)
    table = markdown(tallies, entries, args, startup, gb)
    table += (
        f"\nBenign model files of realistic size ({len(real)} files, {real_mb:.1f} MB: a 100-tree "
        "random forest (pickle), a 200-iteration HistGradientBoosting (joblib), an MLP "
        "(pickle), a 40-layer torch checkpoint with Adam state and the same net saved whole), "
        f"median of {args.repeats}:\n\n| tool | seconds | verdicts |\n|---|---:|---|\n"
        + "".join(
            f"| {tool} | {sec:.3f} | {', '.join(v)} |\n" for tool, (sec, v) in real_times.items()
        )
    )
    print(table)
    if args.write:
        with RESULTS.open("a") as fh:
            fh.write("\n" + table)


if __name__ == "__main__":
    main()
