"""The flagship demo: card-fraud models, trained, hardened, saved in safe formats and audited.

``mlwarden demo`` calls :func:`run_demo`: it generates the bundled fraud data, trains a
HistGradientBoosting model (scikit-learn) and an MLP (torch), hardens a copy of the MLP
with adversarial training in the audit's threat model, trains a differentially private
MLP (DP-SGD through Opacus, epsilon 8), saves them as ``.skops`` and
TorchScript ``.pt`` next to the data and its schema, loads them back from those files
(the way a user would audit them) and audits all four with every available check.
It then signs the model files and verifies them as a consumer would, and plants a
tampered model (a pickle that would run a shell command) next to them to show the
scanner catching it — the file is written, scanned, and never loaded. The data are
signed too (a Merkle-tree manifest): the audit verifies the test set, a tampered copy
of the training set fails with its changed rows named, and a customer export is
flagged for personal data. The audit also retrains the HistGradientBoosting model on
poisoned data, looks for poison in the training rows, and measures how cheaply each
model can be copied; finally a simulated API query log is replayed through the
stateful theft detectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlwarden._progress import ProgressCallback, report_progress
from mlwarden.audit.runner import audit
from mlwarden.findings.report import Report

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    """What the demo produced: the audit report, the files it wrote and notes to show."""

    report: Report
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def run_demo(
    out_dir: str | Path,
    *,
    random_state: int = 0,
    n_samples: int = 20_000,
    progress: ProgressCallback | None = None,
) -> DemoResult:
    """Generate data, train, harden and save the fraud models, and audit them.

    Parameters
    ----------
    out_dir : path
        Directory for ``models/``, ``data/`` (and the report, written by the caller).
    random_state : int
        Seed for data, training and the audit.
    n_samples : int
        Number of transactions to generate.
    progress : callable, optional
        ``progress(task, done, total)``.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlwarden.data import fraud, write_table
    from mlwarden.models import load_model, save_skops
    from mlwarden.models._torch_nets import mlp_classifier, train_classifier
    from mlwarden.models.torch import save_torchscript

    out = Path(out_dir)
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(parents=True, exist_ok=True)
    steps = 5
    report_progress(progress, "demo", 0, steps)
    data = fraud(n_samples, random_state=random_state)
    train, test = data.split(test_size=0.25, random_state=random_state)
    files = {
        "train_data": out / "data" / "fraud_train.csv",
        "test_data": out / "data" / "fraud_test.csv",
        "schema": out / "data" / "fraud.schema.json",
        "hgb": out / "models" / "fraud_hgb.skops",
        "mlp": out / "models" / "fraud_mlp.pt",
        "mlp_hardened": out / "models" / "fraud_mlp_hardened.pt",
        "mlp_dp": out / "models" / "fraud_mlp_dp.pt",
    }
    write_table(train, files["train_data"], label="is_fraud")
    write_table(test, files["test_data"], label="is_fraud")
    data.schema.save(files["schema"])
    # The test set is signed and read back from its file, as `mlwarden audit --data
    # test.csv --data-key demo-data.pub` would: the data checks verify it and scan it.
    from mlwarden.data import load_dataset, sign_dataset

    data_key, data_pub = _data_keys(out)
    sign_dataset(files["test_data"], key=data_key)
    test = load_dataset(
        files["test_data"], label="is_fraud", schema=files["schema"], positive_label=1
    )
    report_progress(progress, "demo", 1, steps)

    # Both models weight the rare fraud class up, as fraud teams do, so that they catch
    # most frauds before any attack.
    hgb = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.1, class_weight="balanced", random_state=random_state
    )
    hgb.fit(train.X, train.labels)
    save_skops(hgb, files["hgb"])
    report_progress(progress, "demo", 2, steps)

    y_train = np.asarray(train.labels, dtype=np.int64)
    mlp = train_classifier(
        mlp_classifier(train.X, n_classes=2),
        train.X,
        y_train,
        epochs=15,
        balanced=True,
        seed=random_state,
    )
    save_torchscript(
        mlp,
        files["mlp"],
        classes=[0, 1],
        lower=data.schema.lower,
        upper=data.schema.upper,
        feature_names=data.feature_names,
    )
    # The defense: adversarial training of the MLP in the audit's own threat model
    # (fraudster-controlled features only, at the audit's policy budget).
    from mlwarden.evasion.defenses import adversarial_training

    hardened = adversarial_training(
        mlp, train, eps=0.5, epochs=10, class_weight="balanced", random_state=random_state
    )
    save_torchscript(
        hardened, files["mlp_hardened"], classes=[0, 1], lower=data.schema.lower,
        upper=data.schema.upper, feature_names=data.feature_names,
        input_shape=(data.n_features,),
    )  # fmt: skip
    # The privacy defense: the same architecture trained from scratch with DP-SGD
    # (Opacus), its guarantee recorded in the file for the privacy.dp check.
    from mlwarden.privacy.dp import train_private

    private = train_private(
        mlp_classifier(train.X, n_classes=2), train, epsilon=8.0, epochs=5, batch_size=256,
        lr=1e-2, max_grad_norm=1.0, class_weight="balanced", random_state=random_state,
    )  # fmt: skip
    save_torchscript(
        private.model, files["mlp_dp"], classes=[0, 1], lower=data.schema.lower,
        upper=data.schema.upper, feature_names=data.feature_names,
        input_shape=(data.n_features,),
        training={"differential_privacy": private.provenance(n_samples=train.n_samples)},
    )  # fmt: skip
    report_progress(progress, "demo", 3, steps)

    # Audit the saved files, exactly as `mlwarden audit --model ...` would.
    targets = [
        load_model(files["hgb"], name="fraud-hgb"),
        load_model(files["mlp"], name="fraud-mlp"),
        load_model(files["mlp_hardened"], name="fraud-mlp-hardened"),
        load_model(files["mlp_dp"], name="fraud-mlp-dp"),
    ]
    notes = [f"Fraud data: {data.n_samples} transactions, {int(np.sum(data.labels == 1))} frauds."]
    y_test = np.asarray(test.labels)
    for t in targets:
        proba = t.predict_proba(test.X)[:, 1]
        recall = float(np.mean(proba[y_test == 1] >= 0.5))
        notes.append(
            f"{t.name}: test ROC AUC {_auc(y_test, proba):.3f}, frauds caught {recall:.1%} "
            f"(saved to {t.source})"
        )
    report_progress(progress, "demo", 4, steps)
    report = audit(
        targets,
        test,
        checks=None,
        # The training rows let the privacy checks run: membership on the scikit-learn
        # model, which it can retrain (it says why it skips the TorchScript files), and
        # attribute inference of the customer's distance from home on every model.
        check_params={
            "privacy.membership": {"members": train},
            "privacy.attribute": {"members": train, "attribute": "distance_from_home_km"},
            "data.manifest": {"key": str(data_pub)},
            # Poisoning: retrain the scikit-learn model on poisoned copies of its training
            # rows (a planted trigger, flipped labels) and measure what the poison buys.
            "poisoning.backdoor": {"members": train},
            "poisoning.label-flip": {"members": train},
            # ... and look for poison in the training rows themselves (data check).
            "poisoning.training-data": {"members": train},
        },
        random_state=random_state,
        progress=progress,
        title="mlwarden demo: card-fraud models",
    )
    notes += _supply_chain(out, targets, report)
    notes += _data_security(out, files, report, random_state)
    notes += _theft_detection(out, train, test, targets[0], report, random_state)
    report_progress(progress, "demo", steps, steps)
    return DemoResult(report=report, files=files, notes=notes)


def _supply_chain(out: Path, targets: list[Any], report: Report) -> list[str]:
    """Sign the model files and verify them as a consumer would; plant a tampered model
    next to them and show the scanner catching it. Adds the findings to ``report``."""
    import os
    import pickle

    from mlwarden.supplychain.checks import file_findings
    from mlwarden.supplychain.scanner import scan_file
    from mlwarden.supplychain.sign import generate_key, sign, signature_finding, verify

    keys = out / "keys"
    private, public = keys / "demo-signing.key", keys / "demo-signing.pub"
    if not (private.exists() and public.exists()):
        keys.mkdir(parents=True, exist_ok=True)
        private.unlink(missing_ok=True)
        public.unlink(missing_ok=True)
        generate_key(private, public)
    for t in targets:
        sign(t.source, key=private)
        result = verify(t.source, key=public)
        report.findings.append(signature_finding(result, target=t.name))
        report.signatures.append({"target": t.name, **result.to_dict()})

    class _Tampered:
        """A model file an attacker swapped in: loading it would run a shell command."""

        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, ("echo mlwarden demo: this model file just ran a command",))

    planted = out / "models" / "untrusted" / "fraud_hgb_from_vendor.pkl"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(pickle.dumps({"model": "fraud-hgb", "weights": _Tampered()}, protocol=4))
    scanned = scan_file(planted)
    report.findings.extend(
        file_findings(scanned, target="fraud_hgb_from_vendor.pkl", check="supplychain.model-file")
    )
    return [
        f"Model files signed with {public.name} and verified: "
        + ", ".join(t.name for t in targets),
        f"Planted a tampered model at {planted} (never loaded): the scanner says "
        f"{scanned.verdict.value} ({', '.join(sorted({i.construct for i in scanned.issues}))})",
    ]


def _luhn_complete(digits: list[int]) -> str:
    """``digits`` plus the Luhn check digit (a number that passes a card-number check)."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    return "".join(map(str, [*digits, (10 - total % 10) % 10]))


def _iban_de(rng: np.random.Generator) -> str:
    """A German-format IBAN whose mod-97 check digits are right (an invented account)."""
    bban = "".join(map(str, rng.integers(0, 10, 18)))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + "DE00")) % 97
    return f"DE{check:02d}{bban}"


def _customer_export(path: Path, rng: np.random.Generator, n: int = 300) -> Path:
    """A CRM export someone dropped next to the training data: invented people, with the
    kinds of identifiers (emails, card numbers, IBANs, phones, birth dates) that must
    never reach a training set unreviewed."""
    import pandas as pd

    first = ["Ana", "Ben", "Chloé", "Dev", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Jana"]
    last = ["Novak", "Schmidt", "Rossi", "Dubois", "Garcia", "Jansen", "Kowalski", "Silva"]
    names = [f"{rng.choice(first)} {rng.choice(last)}" for _ in range(n)]
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(100_000, 100_000 + n),
            "full_name": names,
            "email": [f"{nm.split()[0].lower()}.{i}@example.com" for i, nm in enumerate(names)],
            "phone": [f"+49 30 {rng.integers(1_000_000, 9_999_999)}" for _ in range(n)],
            "card_number": [
                _luhn_complete([4, *rng.integers(0, 10, 14).tolist()]) for _ in range(n)
            ],
            "iban": [_iban_de(rng) for _ in range(n)],
            "date_of_birth": [
                f"{rng.integers(1940, 2004)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
                for _ in range(n)
            ],
            "monthly_spend": rng.gamma(2.0, 400.0, n).round(2),
        }
    )
    frame.to_csv(path, index=False)
    return path


def _data_security(
    out: Path, files: dict[str, Path], report: Report, random_state: int
) -> list[str]:
    """Sign the training data, catch a tampered copy (rows named), and flag personal
    data in a customer export. Adds the findings to ``report``."""
    import pandas as pd

    from mlwarden.data.manifest import manifest_finding, sign_dataset, verify_dataset
    from mlwarden.data.pii import pii_findings, scan_pii

    private, public = _data_keys(out)
    signed = sign_dataset(files["train_data"], key=private)
    untrusted = out / "data" / "untrusted"
    untrusted.mkdir(parents=True, exist_ok=True)
    # Someone "fixes" the training set after it was approved: one fraud relabelled as
    # legitimate (a poisoning step) and one row deleted.
    frame = pd.read_csv(files["train_data"])
    fraud_rows = np.flatnonzero(frame["is_fraud"].to_numpy() == 1)
    flipped = int(fraud_rows[len(fraud_rows) // 2])
    frame.loc[flipped, "is_fraud"] = 0
    deleted = flipped + 100
    frame = frame.drop(index=deleted)
    tampered = untrusted / "fraud_train_tampered.csv"
    frame.to_csv(tampered, index=False)
    ok = verify_dataset(files["train_data"], manifest=signed.manifest, key=public)
    bad = verify_dataset(tampered, manifest=signed.manifest, key=public)
    report.findings.append(manifest_finding(ok, target=files["train_data"].name))
    report.findings.append(manifest_finding(bad, target=tampered.name))

    export = _customer_export(
        untrusted / "customers_export.csv", np.random.default_rng(random_state)
    )
    pii = scan_pii(export, random_state=random_state)
    report.findings.extend(pii_findings(pii, target=export.name))
    return [
        f"Training data signed ({signed.rows} rows, Merkle root {signed.merkle_root[:16]}…): "
        f"verified {'OK' if ok.ok else 'FAILED'}; a tampered copy (row {flipped} relabelled, "
        f"row {deleted} deleted) {'passes?!' if bad.ok else 'fails'}: {bad.message}",
        f"Personal data in {export.name}: "
        + ", ".join(f"{c.column} ({c.detector})" for c in pii.found),
    ]


def _data_keys(out: Path) -> tuple[Path, Path]:
    """The demo's Ed25519 key pair for data manifests (created once)."""
    from mlwarden.data.manifest import generate_data_key

    keys = out / "keys"
    private, public = keys / "demo-data.key", keys / "demo-data.pub"
    if not (private.exists() and public.exists()):
        keys.mkdir(parents=True, exist_ok=True)
        private.unlink(missing_ok=True)
        public.unlink(missing_ok=True)
        generate_data_key(private, public)
    return private, public


def _theft_detection(
    out: Path, train: Any, test: Any, target: Any, report: Report, random_state: int
) -> list[str]:
    """Simulate an API's traffic to the fraud model — honest clients, a model thief, a
    fraudster probing the decision boundary — write it as a query log and replay it
    through the stateful detectors. Adds MLW-THF-003/004 findings to ``report``."""
    from mlwarden.theft import (
        PRADA,
        KNNProbeDetector,
        OODRateMonitor,
        alert_findings,
        replay,
        write_query_log,
    )

    rng = np.random.default_rng(random_state)
    schema = test.schema
    lower, upper, scale = schema.lower, schema.upper, schema.scale
    queries: list[tuple[str, Any]] = []
    # Honest clients: 20 merchants' terminals, 100 real transactions each.
    rows = rng.permutation(len(test.X))[:2000]
    for i, r in enumerate(rows):
        queries.append((f"terminal-{i % 20:02d}", test.X[r]))
    # A thief: uniform random transactions within the schema's bounds (Tramèr et al.).
    span = np.where(np.isfinite(upper - lower), upper - lower, 10 * scale)
    for _ in range(300):
        queries.append(("api-key-7f3a", lower + rng.random(len(lower)) * span))
    # A fraudster walking one declined transaction towards the decision boundary in
    # small steps of the amount and the hour (HopSkipJump-like probing).
    fraud_rows = test.X[np.asarray(test.labels) == 1]
    x = fraud_rows[0].copy()
    mutable = np.flatnonzero(schema.mutable & (scale > 0))[:2]
    for _ in range(150):
        x = x.copy()
        x[mutable] += rng.normal(0.0, 0.01, len(mutable)) * scale[mutable]
        queries.append(("api-key-c01d", np.clip(x, lower, upper)))
    order = rng.permutation(len(queries))  # interleaved, as they would arrive
    queries = [queries[i] for i in order]
    xs = np.array([q for _, q in queries])
    labels = target.predict(xs)
    stream = [(c, q, int(lab)) for (c, q), lab in zip(queries, labels, strict=True)]
    log = write_query_log(out / "data" / "queries.jsonl", stream)
    detectors = [
        PRADA(random_state=random_state),
        KNNProbeDetector(random_state=random_state),
        OODRateMonitor(),
    ]
    train_labels = target.predict(train.X)
    for det in detectors:
        det.fit(train.X, train_labels)
    result = replay(detectors, stream)
    report.findings.extend(alert_findings(result, target=f"{target.name} API (simulated)"))
    flagged = result.flagged_clients
    summary = ", ".join(
        f"{client} ({alerts[0].threat}, {alerts[0].detector}, after "
        f"{alerts[0].query_index} queries)"
        for client, alerts in flagged.items()
    )
    honest = sum(1 for c in flagged if c.startswith("terminal-"))
    return [
        f"Query log of {result.n_queries} queries from {len(result.queries_per_client)} "
        f"clients written to {log}; flagged: {summary or 'nobody'}; honest terminals "
        f"flagged: {honest} of 20 (replay it: mlwarden theft detect --log {log} --data "
        f"{out / 'data' / 'fraud_train.csv'} --label is_fraud)"
    ]
