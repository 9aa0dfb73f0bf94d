"""The flagship demo: card-fraud models, trained, hardened, saved in safe formats and audited.

``mlwarden demo`` calls :func:`run_demo`: it generates the bundled fraud data, trains a
HistGradientBoosting model (scikit-learn) and an MLP (torch), hardens a copy of the MLP
with adversarial training in the audit's threat model, trains a differentially private
MLP (DP-SGD through Opacus, epsilon 8), saves them as ``.skops`` and
TorchScript ``.pt`` next to the data and its schema, loads them back from those files
(the way a user would audit them) and audits all four with every available check.
It then signs the model files and verifies them as a consumer would, and plants a
tampered model (a pickle that would run a shell command) next to them to show the
scanner catching it — the file is written, scanned, and never loaded.
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
        },
        random_state=random_state,
        progress=progress,
        title="mlwarden demo: card-fraud models",
    )
    notes += _supply_chain(out, targets, report)
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
