"""The supply-chain rules: what a model-file scan can find.

Every issue maps to MITRE ATLAS AML.T0010.003 (AI supply chain compromise: model) and
AML.T0011.000 (user execution: unsafe AI artifacts) and to OWASP ML06 (AI supply
chain attacks). Each rule has a page in ``docs/findings/<id>.md``.
"""

from __future__ import annotations

from mlwarden.findings.taxonomy import Rule, Severity, ThreatFamily, register_rule

__all__ = [
    "RULE_BAD_SIGNATURE",
    "RULE_DANGEROUS_GLOBAL",
    "RULE_EMBEDDED_PICKLE",
    "RULE_GGUF_TEMPLATE",
    "RULE_HIDDEN_IMPORT",
    "RULE_KERAS_CODE",
    "RULE_MALFORMED",
    "RULE_ONNX",
    "RULE_SKOPS_UNTRUSTED",
    "RULE_UNKNOWN_GLOBAL",
]

_ATLAS = ("AML.T0010.003", "AML.T0011.000")
_OWASP = ("ML06",)
_FIX_PICKLE = (
    "Do not load the file. Ask its publisher for the model in a format that cannot run "
    "code (safetensors for tensors, skops for scikit-learn, ONNX), or re-export it "
    "yourself from a trusted copy. If a flagged global is a class you trust, review it "
    "and allow it explicitly with --allow MODULE.NAME or in a --policy file."
)

RULE_DANGEROUS_GLOBAL = register_rule(
    Rule(
        id="MLW-SUP-001",
        title="Model file imports a callable that can run commands or code when loaded",
        family=ThreatFamily.SUPPLY_CHAIN,
        severity=Severity.CRITICAL,
        atlas=_ATLAS,
        owasp=_OWASP,
        description=(
            "A pickle in the file imports a callable known to execute code, run commands, "
            "open network connections or touch files (os.system, subprocess.*, "
            "builtins.eval/exec, runpy, socket, shutil ...). Unpickling the file calls it."
        ),
        remediation=_FIX_PICKLE,
    )
)

RULE_UNKNOWN_GLOBAL = register_rule(
    Rule(
        id="MLW-SUP-002",
        title="Model file imports a callable that is not on the allowlist",
        family=ThreatFamily.SUPPLY_CHAIN,
        severity=Severity.HIGH,
        atlas=_ATLAS,
        owasp=_OWASP,
        description=(
            "A pickle in the file imports a global that is not on mlwarden's versioned "
            "allowlist of known-safe callables (plain data, NumPy, SciPy, scikit-learn, "
            "pandas, torch tensors). Unpickling imports its module and may call it, which "
            "runs whatever code that module and callable contain."
        ),
        remediation=_FIX_PICKLE,
    )
)

RULE_HIDDEN_IMPORT = register_rule(
    Rule(
        id="MLW-SUP-003",
        title="Model file hides what it imports or calls",
        family=ThreatFamily.SUPPLY_CHAIN,
        severity=Severity.CRITICAL,
        atlas=_ATLAS,
        owasp=_OWASP,
        description=(
            "A pickle computes the name of a global at load time (from the memo or from the "
            "result of a call), uses a dotted attribute path in GLOBAL/STACK_GLOBAL "
            "(``builtins.getattr`` chains such as ``os.path.os.system``), or calls a value "
            "produced at run time. No static scanner can tell what such a file does, and "
            "benign libraries never write them: they are obfuscation."
        ),
        remediation=_FIX_PICKLE,
    )
)

RULE_EMBEDDED_PICKLE = register_rule(
    Rule(
        id="MLW-SUP-004",
        title="Model file carries a pickle inside data that is deserialised on load",
        family=ThreatFamily.SUPPLY_CHAIN,
        severity=Severity.CRITICAL,
        atlas=_ATLAS,
        owasp=_OWASP,
        description=(
            "The file embeds a second pickle that is unpickled when the file is loaded: "
            "an object-dtype NumPy array (.npy/.npz, joblib frames) or a byte string passed "
            "to pickle.loads / numpy.load. mlwarden scans the embedded pickle too and "
            "reports what it contains."
        ),
        remediation=(
            "Save arrays with a numeric dtype (never dtype=object) and load them with "
            "numpy.load(..., allow_pickle=False). " + _FIX_PICKLE
        ),
    )
)

RULE_KERAS_CODE = register_rule(
    Rule(
        id="MLW-SUP-005",
        title="Keras model runs code of its own when loaded or called",
        family=ThreatFamily.SUPPLY_CHAIN,
        severity=Severity.CRITICAL,
        atlas=_ATLAS,
        owasp=_OWASP,
        description=(
            "The Keras model (.keras or .h5) contains a Lambda layer (serialised Python "
            "bytecode) at some depth, or a layer whose ``module``/``class_name`` points "
            "outside Keras, so loading or calling the model runs code the file chose."
        ),
        remediation=(
            "Load Keras models with safe_mode=True (the default in Keras 3), replace Lambda "
            "layers with registered custom layers whose code you ship yourself, and "
            "re-export the model."
        ),
    )
)

RULE_ONNX = register_rule(
    Rule(
        id="MLW-SUP-006",
        title="ONNX model reads files outside its folder or needs custom operators",
        family=ThreatFamily.SUPPLY_CHAIN,
        severity=Severity.HIGH,
        atlas=_ATLAS,
        owasp=_OWASP,
        description=(
            "An initializer's external-data location is absolute or escapes the model's "
            "folder (``../``), so loading the model reads an arbitrary file from the host; "
            "or a node uses an operator domain other than the standard ONNX ones, which "
            "needs a custom-op library (native code) to run."
        ),
        remediation=(
            "Keep external data next to the model with relative paths inside its folder, "
            "and only load custom-op libraries you build or trust."
        ),
    )
)

RULE_GGUF_TEMPLATE = register_rule(
    Rule(
        id="MLW-SUP-007",
        title="GGUF chat template reaches Python internals (template injection)",
        family=ThreatFamily.SUPPLY_CHAIN,
        severity=Severity.CRITICAL,
        atlas=_ATLAS,
        owasp=_OWASP,
        description=(
            "A chat template in the GGUF metadata accesses dunder attributes "
            "(``__class__``, ``__globals__``, ``__subclasses__``, ``__builtins__`` ...) or "
            "imports, the known path from a Jinja2 template to running commands when a "
            "runtime renders the template outside a sandbox."
        ),
        remediation=(
            "Replace the chat template with the publisher's original, and render templates "
            "only in Jinja2's SandboxedEnvironment."
        ),
    )
)

RULE_MALFORMED = register_rule(
    Rule(
        id="MLW-SUP-008",
        title="Model file is malformed in a way loaders tolerate but scanners may not",
        family=ThreatFamily.SUPPLY_CHAIN,
        severity=Severity.MEDIUM,
        atlas=_ATLAS,
        owasp=_OWASP,
        description=(
            "The file is damaged or crafted: zip members whose CRC does not match (torch "
            "ignores CRCs), a safetensors header that is invalid or overlaps, data after "
            "the end of a pickle, members that hide behind duplicate names. Such files are "
            "a known way to slip payloads past scanners; mlwarden still scans what it can."
        ),
        remediation="Obtain the file again from a trusted source and verify its signature.",
    )
)

RULE_SKOPS_UNTRUSTED = register_rule(
    Rule(
        id="MLW-SUP-009",
        title="skops file needs types that are not on the allowlist",
        family=ThreatFamily.SUPPLY_CHAIN,
        severity=Severity.HIGH,
        atlas=_ATLAS,
        owasp=_OWASP,
        description=(
            "The skops archive's schema names types outside the allowlist; skops would "
            "have to import and construct them to load the file."
        ),
        remediation=_FIX_PICKLE,
    )
)

RULE_BAD_SIGNATURE = register_rule(
    Rule(
        id="MLW-SUP-010",
        title="Model files do not match their signature",
        family=ThreatFamily.SUPPLY_CHAIN,
        severity=Severity.CRITICAL,
        atlas=_ATLAS,
        owasp=_OWASP,
        description=(
            "Signature verification failed: the signature is not valid for the given key, "
            "or a file was changed, added or removed since the model was signed."
        ),
        remediation=(
            "Do not use the model. Fetch it again from its publisher, and verify it with "
            "the publisher's public key before loading it."
        ),
    )
)
