"""Dataset manifests at scale: sign and verify a 1,000,000-row table.

Run outside the test suite (a few minutes, about 2 GB of memory)::

    .venv/bin/python benchmarks/data_manifest.py [--rows 1000000] [--repeats 3] [--write]

The table is the bundled fraud generator (16 numeric features and the label) plus two
text columns (a customer id and a country code), 19 columns, written as CSV and as
Parquet. Timed, wall clock, in one process unless said otherwise:

* ``sign``: read the CSV, hash every row, build the Merkle tree, sign, write the manifest;
* ``verify`` of the unchanged CSV (median of ``--repeats``), of the Parquet copy against
  the CSV's manifest, and of a CSV with one changed, one inserted and one deleted row
  (the rows must be named);
* the command line ``mlwarden data verify`` on the CSV (a fresh interpreter, imports
  included).

Target (issue 7): verification of 1,000,000 rows in at most 10 s. ``--write`` appends a
dated section to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from mlwarden.data import fraud
from mlwarden.data.manifest import generate_data_key, sign_dataset, verify_dataset

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 10.0


def make_table(rows: int) -> pd.DataFrame:
    data = fraud(rows, random_state=0)
    frame = pd.DataFrame(data.X, columns=data.feature_names)
    for j, feat in enumerate(data.schema.features):
        if feat.kind.value != "continuous":
            frame[feat.name] = data.X[:, j].astype(np.int64)
    rng = np.random.default_rng(1)
    frame.insert(0, "customer_id", [f"C{v:08d}" for v in rng.integers(0, 10**8, rows)])
    frame["country"] = rng.choice(["NL", "DE", "FR", "GB", "US", "ES", "IT"], rows)
    frame["is_fraud"] = data.y
    return frame


def timed(fn, *args, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="append the results to RESULTS.md")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        key, pub = tmp / "k.pem", tmp / "k.pub"
        generate_data_key(key, pub)
        t_gen, frame = timed(make_table, args.rows)
        csv, pq = tmp / "data.csv", tmp / "data.parquet"
        frame.to_csv(csv, index=False)
        frame.to_parquet(pq, index=False)
        size_mb = csv.stat().st_size / 1e6
        print(f"table: {args.rows} rows x {frame.shape[1]} cols, CSV {size_mb:.0f} MB "
              f"(generated in {t_gen:.1f} s)")  # fmt: skip

        t_sign, signed = timed(sign_dataset, csv, key=key)
        manifest_mb = signed.manifest.stat().st_size / 1e6
        print(f"sign: {t_sign:.2f} s, manifest {manifest_mb:.1f} MB")

        verify_times = []
        for _ in range(args.repeats):
            t, res = timed(verify_dataset, csv, key=pub)
            assert res.ok, res.message
            verify_times.append(t)
        t_verify = statistics.median(verify_times)
        print(f"verify CSV: median {t_verify:.2f} s of {[round(v, 2) for v in verify_times]}")

        t_pq, res = timed(verify_dataset, pq, manifest=signed.manifest, key=pub)
        assert res.ok, res.message
        print(f"verify Parquet against the CSV's manifest: {t_pq:.2f} s")

        cli_env = dict(os.environ)
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "mlwarden", "data", "verify", str(csv), "--key", str(pub)],
            capture_output=True,
            text=True,
            env=cli_env,
            check=False,
        )
        t_cli = time.perf_counter() - t
        assert proc.returncode == 0, proc.stdout + proc.stderr
        print(f"mlwarden data verify (CLI, fresh interpreter): {t_cli:.2f} s")

        n = args.rows
        tampered = frame.copy()
        tampered.loc[n // 3, "amount"] += 0.01
        tampered = tampered.drop(index=2 * n // 3)
        extra = tampered.iloc[[10]].assign(customer_id="C99999999")
        tampered = pd.concat([tampered.iloc[: n // 2], extra, tampered.iloc[n // 2 :]])
        tampered.to_csv(csv, index=False)
        t_tamper, res = timed(verify_dataset, csv, manifest=signed.manifest, key=pub)
        d = res.diff
        assert not res.ok
        assert d.changed == [(n // 3, n // 3)], d.changed
        assert d.inserted == [n // 2] and d.removed == [2 * n // 3], (d.inserted, d.removed)
        print(f"verify with 1 changed, 1 inserted, 1 removed row (all named): {t_tamper:.2f} s")

    machine = f"{platform.machine()}, {os.cpu_count()} cores (shared), {platform.python_version()}"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    met = "yes" if t_verify <= TARGET_S else "**no**"
    result = f"{t_verify:.2f} s in-process, {t_cli:.2f} s from the command line"
    section = f"""
## Dataset manifests — {date.today().isoformat()} ({machine})

`benchmarks/data_manifest.py --rows {args.rows} --repeats {args.repeats}`: the fraud generator's
16 features and label plus two text columns ({frame.shape[1]} columns), CSV {size_mb:.0f} MB.
Wall clock in one process, pyarrow CSV reader, SHA-256 per row, RFC 6962 Merkle tree over
chunks of 1024 rows, Ed25519 signature. The machine's 2 cores were shared with other jobs
(load average at the end of the run: {load}).

| step | seconds |
|---|---:|
| sign (read, hash, Merkle tree, sign, write {manifest_mb:.1f} MB manifest) | {t_sign:.2f} |
| verify unchanged CSV (median of {args.repeats}) | {t_verify:.2f} |
| verify the Parquet copy against the CSV's manifest | {t_pq:.2f} |
| `mlwarden data verify` on the CSV (fresh interpreter) | {t_cli:.2f} |
| verify with 1 changed, 1 inserted, 1 removed row, all three named | {t_tamper:.2f} |

| target | result | met? |
|---|---|---|
| verification of {args.rows:,} rows ≤ 10 s | {result} | {met} |
"""
    print(section)
    if args.write:
        with (ROOT / "benchmarks" / "RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write(section)


if __name__ == "__main__":
    main()
