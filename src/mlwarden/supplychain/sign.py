"""Sign model files and folders with a local key, and verify them before they are loaded.

Threat model
------------
A model is a file (or a folder of files: weights, config, tokenizer) that travels from
whoever trained it to whoever runs it, through registries, buckets, caches and CI
artefacts. An attacker who can write anywhere on that path swaps the weights for
backdoored ones, adds a pickle that runs code when loaded, or edits the config — MITRE
ATLAS AML.T0010.003 (AI supply chain compromise: model), OWASP ML06. Scanning the file
(:mod:`mlwarden.supplychain`) finds code in it; a signature proves that the bytes are
exactly the ones the publisher signed, which also catches a poisoned model that carries
no code at all.

The publisher signs with a private key; the consumer verifies with the matching public
key before anything opens the model. Verification fails — and names the file — when a
file was changed, added or removed since signing, when the signature was made with
another key, and when the signature file is missing, truncated or altered.

Not covered: a stolen private key (it signs anything), a model that was already
malicious when it was signed, and deciding *which* public key to trust (that is key
distribution: ship the public key out of band, pin its fingerprint).

Format
------
This module is a thin layer over the OpenSSF ``model-signing`` library (Sigstore's
model-transparency project, Apache-2.0), so signatures interoperate with its
``model_signing verify key`` command:

* the model is hashed file by file (SHA-256; files larger than ``shard_size`` can be
  hashed in parallel shards) into an in-toto Statement v1 whose predicate
  (``https://model_signing/signature/v1.0``) lists every file and its digest under
  ``predicate.resources``, and whose subject digest is the SHA-256 over those digests;
* the statement is the payload of a DSSE envelope signed with ECDSA (P-256 by default);
* the envelope is stored in a Sigstore bundle (JSON, media type
  ``application/vnd.dev.sigstore.bundle.v0.3+json``) whose verification material is the
  SHA-256 of the public key. Keys are local: nothing here touches the network, Sigstore's
  transparency log or an OIDC provider.

Where the signature goes (``signature=None``): ``<file>.sig`` next to a single file, and
``<folder>/model.sig`` for a folder — the file name ``model-signing``'s CLI uses by
default (it writes it to the current directory; mlwarden puts it in the folder). A
signature inside the signed folder is excluded from the digests (the statement records
it under ``ignore_paths``), as are git metadata (``.git``, ``.gitattributes``,
``.github``, ``.gitignore``), which ``model-signing`` leaves out by default.

References
----------
* OpenSSF AI/ML Working Group, *Model Signing specification v1.0* (2025),
  https://github.com/ossf/model-signing-spec
* Sigstore, *model-transparency* / ``model-signing`` library,
  https://github.com/sigstore/model-transparency
* in-toto Attestation Framework, Statement v1,
  https://github.com/in-toto/attestation/tree/main/spec/v1
* DSSE: Dead Simple Signing Envelope, https://github.com/secure-systems-lab/dsse
* Sigstore bundle format, https://docs.sigstore.dev/about/bundle/
* MITRE ATLAS AML.T0010.003, https://atlas.mitre.org/techniques/AML.T0010.003

::

    from mlwarden.supplychain.sign import generate_key, sign, verify
    generate_key("signing.key", "signing.pub")       # private key written 0600
    sign("model/", key="signing.key")                # -> model/model.sig
    result = verify("model/", key="signing.pub")
    result.ok, result.changed, result.added, result.removed
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwarden._keys import write_new_key_file
from mlwarden.exceptions import InvalidParameterError, ModelLoadError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from mlwarden.findings.finding import Finding

__all__ = [
    "DEFAULT_FOLDER_SIGNATURE",
    "SIGNATURE_SUFFIX",
    "VerifyResult",
    "default_signature_path",
    "generate_key",
    "key_fingerprint",
    "sign",
    "signature_finding",
    "verify",
]

DEFAULT_FOLDER_SIGNATURE = "model.sig"
"""File name of a folder's signature, inside the folder (``model-signing``'s default name)."""
SIGNATURE_SUFFIX = ".sig"
"""Suffix added to a single file's name for its signature (``model.onnx.sig``)."""

_GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
_CURVES = {"secp256r1", "secp384r1", "secp521r1"}
_KEYGEN_HINT = "create a key pair with 'mlwarden keygen' (ECDSA P-256)"
_CHECK = "supplychain.signature"


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`.

    Parameters
    ----------
    ok : bool
        True only when the signature is valid for the key *and* every signed file is
        present and unchanged *and* no file was added.
    path : Path
        The model file or folder that was verified.
    signature : Path
        The signature file.
    files_checked : int
        Files the signature covers (0 when it could not be read or authenticated).
    changed, added, removed : list of str
        Files (relative to the folder; the file name for a single file) whose content
        differs from the signed digest, that are present but were not signed, and that
        were signed but are missing. Only filled once the signature itself is valid.
    message : str
        One or more sentences for a person, naming the files or the problem.
    reason : str
        ``verified``, ``modified`` (files changed, added or removed),
        ``invalid-signature`` (wrong key, altered or corrupt signature),
        ``missing-signature``, or ``unreadable`` (a model file could not be hashed).
    key_fingerprint : str
        ``sha256:<hex>`` of the public key used (SHA-256 of its PEM
        SubjectPublicKeyInfo, the value the signature records as its key hint).
    signed_by : str or None
        The key fingerprint recorded in the signature, when it could be read.
    """

    ok: bool
    path: Path
    signature: Path
    files_checked: int = 0
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    message: str = ""
    reason: str = "verified"
    key_fingerprint: str = ""
    signed_by: str | None = None

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 0 verified, 1 not verified."""
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``mlwarden verify --format json``, report provenance)."""
        return {
            "ok": self.ok,
            "reason": self.reason,
            "path": str(self.path),
            "signature": str(self.signature),
            "key_fingerprint": self.key_fingerprint,
            "signed_by": self.signed_by,
            "files_checked": self.files_checked,
            "changed": list(self.changed),
            "added": list(self.added),
            "removed": list(self.removed),
            "message": self.message,
        }


# ------------------------------------------------------------------------- keys
def key_fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """``sha256:<hex>`` of the key's PEM SubjectPublicKeyInfo.

    This is the key hint ``model-signing`` writes into the signature's verification
    material, so a signature and a key can be matched by eye.
    """
    from mlwarden._keys import fingerprint

    return fingerprint(public_key)


def generate_key(
    private_path: str | Path, public_path: str | Path, *, password: str | None = None
) -> str:
    """Create an ECDSA P-256 key pair as PEM files.

    Parameters
    ----------
    private_path : str or Path
        Where to write the private key (PKCS #8 PEM), created with mode ``0600``.
        Keep it secret: whoever holds it can sign models in your name.
    public_path : str or Path
        Where to write the public key (SubjectPublicKeyInfo PEM), mode ``0644``.
        Publish it, out of band from the models, to whoever verifies them.
    password : str or None, default=None
        Encrypt the private key with this password (best available PKCS #8
        encryption); :func:`sign` then needs it too.

    Returns
    -------
    str
        The public key's fingerprint (see :func:`key_fingerprint`).

    Raises
    ------
    InvalidParameterError
        If either file already exists (keys are never overwritten), the two paths are
        the same, or a file cannot be written.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    priv, pub = Path(private_path), Path(public_path)
    if priv.resolve() == pub.resolve():
        raise InvalidParameterError(f"{priv}: the private and public key paths are the same")
    for p in (priv, pub):
        if p.exists() or p.is_symlink():
            raise InvalidParameterError(f"{p}: already exists; refusing to overwrite a key")
    if password == "":
        raise InvalidParameterError("keygen: the password is empty")
    key = ec.generate_private_key(ec.SECP256R1())
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password is not None
        else serialization.NoEncryption()
    )
    priv_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    pub_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_new_key_file(priv, priv_pem, 0o600)
    try:
        write_new_key_file(pub, pub_pem, 0o644)
    except InvalidParameterError:
        priv.unlink(missing_ok=True)
        raise
    return key_fingerprint(key.public_key())


def _check_curve(path: Path, key: Any, what: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    ok_type = isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey)
    if not ok_type or key.curve.name not in _CURVES:
        kind = key.curve.name if ok_type else type(key).__name__.lstrip("_")
        raise InvalidParameterError(
            f"{path}: unsupported {what} ({kind}); model signatures use ECDSA keys on "
            f"P-256, P-384 or P-521; {_KEYGEN_HINT}"
        )


def _load_private_key(path: Path, password: str | None) -> ec.EllipticCurvePrivateKey:
    from mlwarden._keys import load_pem_private

    key = load_pem_private(path, password, _KEYGEN_HINT)
    _check_curve(path, key, "private key")
    return key  # type: ignore[no-any-return]


def _load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    from mlwarden._keys import load_pem_public

    key = load_pem_public(path, _KEYGEN_HINT)
    _check_curve(path, key, "public key")
    return key  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- signing
def default_signature_path(path: str | Path) -> Path:
    """Where :func:`sign` writes, and :func:`verify` looks for, the signature of ``path``.

    ``<folder>/model.sig`` for a folder, ``<file>.sig`` next to a file.
    """
    p = Path(path)
    if p.is_dir():
        return p / DEFAULT_FOLDER_SIGNATURE
    return p.with_name(p.name + SIGNATURE_SUFFIX)


def _check_model_path(path: Path) -> None:
    if not path.exists() and not path.is_symlink():
        raise ModelLoadError(f"{path}: no such file or folder")
    if not (path.is_file() or path.is_dir()):
        raise ModelLoadError(f"{path}: not a regular file or folder")


def _inside(path: Path, folder: Path) -> Path | None:
    """``path`` relative to ``folder`` when it lies inside it, else None."""
    try:
        return path.resolve().relative_to(folder.resolve())
    except ValueError:
        return None


def _walk(folder: Path, ignored: Sequence[Path]) -> Iterator[Path]:
    """Regular files under ``folder`` (relative), skipping ``ignored`` relative paths."""
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(rel.is_relative_to(i) for i in ignored):
            continue
        if p.is_file():
            yield rel


def sign(
    path: str | Path,
    *,
    key: str | Path,
    signature: str | Path | None = None,
    password: str | None = None,
    shard_size: int | None = None,
    allow_symlinks: bool = False,
) -> Path:
    """Sign a model file or folder with a local private key.

    Parameters
    ----------
    path : str or Path
        The model: one file, or a folder (every file under it is signed, except the
        signature itself and git metadata).
    key : str or Path
        The ECDSA private key (PEM), e.g. from :func:`generate_key`.
    signature : str, Path or None, default=None
        Where to write the signature (a Sigstore bundle, JSON); by default
        ``<folder>/model.sig`` or ``<file>.sig`` (see :func:`default_signature_path`).
        An existing signature there is replaced.
    password : str or None, default=None
        The private key's password, if it is encrypted.
    shard_size : int or None, default=None
        Hash files in shards of this many bytes, in parallel (worth it for files of
        several GB); the signature then lists one digest per shard. ``None`` hashes
        each file whole (one digest per file).
    allow_symlinks : bool, default=False
        Follow symbolic links inside the folder (e.g. a Hugging Face cache snapshot);
        otherwise a symlink is an error.

    Returns
    -------
    Path
        The signature file.

    Raises
    ------
    ModelLoadError
        If ``path`` does not exist, is an empty folder, contains a symlink (without
        ``allow_symlinks``) or a file that cannot be read.
    InvalidParameterError
        If the key is missing, unreadable, encrypted without a password, not an ECDSA
        private key, or ``signature`` would overwrite the model itself.
    """
    model = Path(path)
    _check_model_path(model)
    sig = Path(signature) if signature is not None else default_signature_path(model)
    if shard_size is not None and (
        not isinstance(shard_size, int) or isinstance(shard_size, bool) or shard_size < 1
    ):
        raise InvalidParameterError(
            f"sign: shard_size must be a positive integer, got {shard_size!r}"
        )
    _load_private_key(Path(key), password)  # clear errors before any hashing
    ignored: list[Path] = []
    if model.is_dir():
        rel = _inside(sig, model)
        if rel is not None:
            if rel == Path("."):
                raise InvalidParameterError(f"{sig}: the signature path is the model folder")
            ignored.append(rel)
        if not any(_walk(model, [*ignored, *map(Path, _GIT_PATHS)])):
            raise ModelLoadError(f"{model}: the folder has no files to sign")
    elif sig.resolve() == model.resolve():
        raise InvalidParameterError(f"{sig}: the signature path is the model file itself")

    import model_signing

    hashing = model_signing.hashing.Config()  # type: ignore[no-untyped-call]
    if shard_size is not None:
        hashing.use_shard_serialization(shard_size=shard_size)
    hashing.set_ignored_paths(paths=ignored, ignore_git_paths=True)
    hashing.set_allow_symlinks(allow_symlinks)
    config = model_signing.signing.Config()  # type: ignore[no-untyped-call]
    config.set_hashing_config(hashing)
    try:
        sig.parent.mkdir(parents=True, exist_ok=True)
        with _quiet():
            # The key was validated above; the library reads it again from the file.
            _use_key(config, Path(key), password)
            config.sign(model, sig)
    except ValueError as exc:  # a symlink or special file in the model
        raise ModelLoadError(f"{model}: cannot sign: {exc}") from None
    except OSError as exc:
        where = exc.filename or model
        raise ModelLoadError(f"{where}: cannot sign: {exc.strerror or exc}") from None
    return sig


def _use_key(config: Any, key: Path, password: str | None) -> None:
    """``config.use_elliptic_key_signer`` with the password as the library can take it.

    model-signing 1.1 hands the password to ``cryptography`` as given, which needs bytes
    (its type hint says str); a fixed release may encode a str itself.
    """
    if password is None:
        config.use_elliptic_key_signer(private_key=key)
        return
    try:
        config.use_elliptic_key_signer(private_key=key, password=password.encode())
    except (TypeError, AttributeError):
        config.use_elliptic_key_signer(private_key=key, password=password)


# ----------------------------------------------------------------- verification
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow what the library prints (a library never prints)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _file_of(identifier: str, method: str) -> str:
    """The file a manifest identifier (``path`` or ``path:start:end``) belongs to."""
    return identifier.rsplit(":", 2)[0] if method == "shards" else identifier


def _by_file(manifest: Any, method: str, single_name: str | None) -> dict[str, list[str]]:
    """``{file: [identifier=digest, ...]}`` of a manifest; ``.`` becomes ``single_name``."""
    out: dict[str, list[str]] = {}
    for rd in manifest.resource_descriptors():
        name = _file_of(rd.identifier, method)
        if name == "." and single_name is not None:
            name = single_name
        out.setdefault(name, []).append(
            f"{rd.identifier}={rd.digest.algorithm}:{rd.digest.digest_hex}"
        )
    return {k: sorted(v) for k, v in out.items()}


def _hashing_for(args: dict[str, Any], extra_ignored: Sequence[Path]) -> Any:
    """The hashing configuration a signed statement's ``serialization`` describes."""
    import model_signing

    method = args.get("method")
    ignored = [Path(p) for p in args.get("ignore_paths", ())] + list(extra_ignored)
    symlinks = args.get("allow_symlinks", False) in (True, "true", "True")
    config = model_signing.hashing.Config()  # type: ignore[no-untyped-call]
    if method == "files":
        config.use_file_serialization(hashing_algorithm=args["hash_type"])
    elif method == "shards":
        config.use_shard_serialization(
            hashing_algorithm=args["hash_type"], shard_size=int(args["shard_size"])
        )
    else:
        raise ValueError(f"unsupported serialization method {method!r}")
    # Only what the signer chose to leave out (recorded in the signed statement) and
    # the signature file itself are skipped: git metadata is checked unless recorded.
    config.set_ignored_paths(paths=ignored, ignore_git_paths=False)
    config.set_allow_symlinks(symlinks)
    return config


def verify(
    path: str | Path, *, key: str | Path, signature: str | Path | None = None
) -> VerifyResult:
    """Verify a model file or folder against its signature and a public key.

    The signature is authenticated first (ECDSA over the DSSE envelope, with the given
    public key); only then are the model's files hashed again and compared, file by
    file, with the digests in the signed in-toto statement.

    Parameters
    ----------
    path : str or Path
        The model file or folder.
    key : str or Path
        The signer's ECDSA public key (PEM).
    signature : str, Path or None, default=None
        The signature; by default ``<folder>/model.sig`` or ``<file>.sig``.

    Returns
    -------
    VerifyResult
        ``ok`` is false — never an exception — when the signature is missing, corrupt,
        made with another key, or when files were changed, added or removed; the result
        names them.

    Raises
    ------
    ModelLoadError
        If ``path`` does not exist.
    InvalidParameterError
        If the key file is missing, unreadable or not an ECDSA public key.
    """
    model = Path(path)
    _check_model_path(model)
    sig = Path(signature) if signature is not None else default_signature_path(model)
    key_path = Path(key)
    fingerprint = key_fingerprint(_load_public_key(key_path))

    def fail(reason: str, message: str, **kw: Any) -> VerifyResult:
        return VerifyResult(
            ok=False, path=model, signature=sig, message=message, reason=reason,
            key_fingerprint=fingerprint, **kw,
        )  # fmt: skip

    if not sig.is_file():
        what = "not found" if not sig.exists() else "is not a file"
        return fail(
            "missing-signature",
            f"{sig}: signature file {what}; {model} cannot be verified (sign it with "
            "'mlwarden sign', or give the signature's path)",
        )

    from model_signing._signing import sign_ec_key, sign_sigstore_pb

    # 1. Read the bundle (no trust yet).
    try:
        bundle = sign_sigstore_pb.Signature.read(sig)
        key_id = bundle.bundle.verification_material.public_key
        hint = key_id.hint if key_id is not None else None
    except Exception as exc:  # JSON, missing fields, schema validation, encoding
        return fail(
            "invalid-signature",
            f"{sig}: not a readable model signature (truncated or corrupt Sigstore "
            f"bundle): {_short(exc)}",
        )
    signed_by = f"sha256:{hint}" if hint else None
    if signed_by is not None and signed_by != fingerprint:
        return fail(
            "invalid-signature",
            f"{sig}: signed with another key ({signed_by}), not {key_path} "
            f"({fingerprint}); {model} is not verified",
            signed_by=signed_by,
        )

    # 2. Authenticate: ECDSA over the DSSE envelope, then parse the signed statement.
    try:
        with _quiet():
            expected = sign_ec_key.Verifier(key_path).verify(bundle)
    except Exception as exc:  # InvalidSignature, payload or statement errors
        return fail(
            "invalid-signature",
            f"{sig}: the signature is not valid for {key_path} ({fingerprint}): the "
            f"signature or the signed statement was altered, or another key made it "
            f"({_short(exc) or type(exc).__name__}); {model} is not verified",
            signed_by=signed_by,
        )
    args = dict(expected.serialization_type)
    method = str(args.get("method"))
    is_dir = model.is_dir()
    signed_file = set(_by_file(expected, method, None)) == {"."}
    # A single file is named by its file name (the signed one, or the one on disk).
    want = _by_file(expected, method, expected.model_name if is_dir else model.name)
    if not want:
        return fail(
            "invalid-signature", f"{sig}: the signature covers no files", signed_by=signed_by
        )

    # 3. Hash the model as the signed statement says, and compare file by file.
    extra = []
    if is_dir and (rel := _inside(sig, model)) is not None:
        extra.append(rel)
    try:
        hashing = _hashing_for(args, extra)
        with _quiet():
            actual = hashing.hash(model)
    except OSError as exc:
        where = exc.filename or model
        return fail(
            "unreadable",
            f"{where}: cannot read the model file ({exc.strerror or exc}); not verified",
            signed_by=signed_by, files_checked=len(want),
        )  # fmt: skip
    except ValueError as exc:  # a symlink or special file, or an unknown hash type
        return fail(
            "unreadable",
            f"{model}: cannot hash the model: {_short(exc)}; not verified",
            signed_by=signed_by, files_checked=len(want),
        )  # fmt: skip
    have = _by_file(actual, method, model.name)
    changed = sorted(f for f in want.keys() & have.keys() if want[f] != have[f])
    added = sorted(have.keys() - want.keys())
    removed = sorted(want.keys() - have.keys())
    if changed or added or removed:
        parts = []
        if changed:
            parts.append(f"changed: {', '.join(changed)}")
        if added:
            parts.append(f"added (not signed): {', '.join(added)}")
        if removed:
            parts.append(f"removed: {', '.join(removed)}")
        hint_kind = ""
        if signed_file and is_dir:
            hint_kind = " (the signature is for a single file, but this is a folder)"
        elif not signed_file and not is_dir:
            hint_kind = " (the signature is for a folder, but this is a single file)"
        return VerifyResult(
            ok=False, path=model, signature=sig, files_checked=len(want),
            changed=changed, added=added, removed=removed,
            message=f"{model} does not match its signature {sig}{hint_kind}: "
            + "; ".join(parts),
            reason="modified", key_fingerprint=fingerprint, signed_by=signed_by,
        )  # fmt: skip
    n = len(want)
    return VerifyResult(
        ok=True, path=model, signature=sig, files_checked=n,
        message=f"{model}: verified {n} file{'s' if n != 1 else ''} against {sig} "
        f"with key {fingerprint}",
        reason="verified", key_fingerprint=fingerprint, signed_by=signed_by,
    )  # fmt: skip


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------ audit
def signature_finding(result: VerifyResult, *, target: str) -> Finding:
    """The MLW-SUP-010 finding for one verification (passed or failed).

    Parameters
    ----------
    result : VerifyResult
        What :func:`verify` returned.
    target : str
        The model's name in the report.

    Returns
    -------
    Finding
        Metric ``signature_verified``: 1 when verified, 0 otherwise (threshold 1).
        The evidence holds the key fingerprint, the number of files and the changed,
        added and removed files.
    """
    from mlwarden.findings.finding import Finding
    from mlwarden.supplychain.rules import RULE_BAD_SIGNATURE

    evidence = result.to_dict()
    if result.ok:
        description = (
            f"The signature {result.signature} is valid for the key "
            f"{result.key_fingerprint} and covers {result.files_checked} file(s), all "
            "present and unchanged; nothing was added."
        )
    else:
        description = f"{RULE_BAD_SIGNATURE.description} {result.message}"
    return Finding.from_rule(
        RULE_BAD_SIGNATURE,
        target=target,
        check=_CHECK,
        metric="signature_verified",
        value=1.0 if result.ok else 0.0,
        threshold=1.0,
        description=description,
        evidence=evidence,
        location=str(result.path),
    )
