"""Signing and verification of model files and folders (model-signing, local keys, offline)."""

from __future__ import annotations

import base64
import json
import socket
import stat
from pathlib import Path

import pytest

from mlwarden.exceptions import InvalidParameterError, ModelLoadError
from mlwarden.supplychain.sign import (
    DEFAULT_FOLDER_SIGNATURE,
    default_signature_path,
    generate_key,
    sign,
    signature_finding,
    verify,
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing and verifying with local keys must never open a connection."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access during signing or verification")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("keys")
    out = {
        "private": root / "signing.key",
        "public": root / "signing.pub",
        "other_private": root / "other.key",
        "other_public": root / "other.pub",
    }
    generate_key(out["private"], out["public"])
    generate_key(out["other_private"], out["other_public"])
    return out


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "tokenizer").mkdir(parents=True)
    (root / "weights.bin").write_bytes(bytes(range(64)))
    (root / "config.json").write_text('{"layers": 2}')
    (root / "tokenizer" / "vocab.txt").write_text("a\nb\nc\n")
    return root


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    p = tmp_path / "model.onnx"
    p.write_bytes(b"\x08\x07tiny model bytes")
    return p


def _statement(sig: Path) -> dict:
    bundle = json.loads(sig.read_text())
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


# --------------------------------------------------------------------------- keys
def test_keygen_writes_pem_pair_private_0600(keys):
    priv, pub = keys["private"], keys["public"]
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert priv.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keygen_refuses_to_overwrite(keys, tmp_path):
    before = keys["private"].read_bytes()
    with pytest.raises(InvalidParameterError, match=r"signing\.key: already exists"):
        generate_key(keys["private"], tmp_path / "new.pub")
    assert keys["private"].read_bytes() == before
    assert not (tmp_path / "new.pub").exists()
    with pytest.raises(InvalidParameterError, match=r"signing\.pub: already exists"):
        generate_key(tmp_path / "new.key", keys["public"])
    assert not (tmp_path / "new.key").exists()


def test_keygen_returns_the_fingerprint_verify_reports(keys, tmp_path, model_file):
    fp = generate_key(tmp_path / "k", tmp_path / "k.pub")
    assert fp.startswith("sha256:") and len(fp) == 7 + 64
    sign(model_file, key=tmp_path / "k")
    assert verify(model_file, key=tmp_path / "k.pub").key_fingerprint == fp


def test_encrypted_key_needs_its_password(tmp_path, model_file):
    generate_key(tmp_path / "k", tmp_path / "k.pub", password="s3cret")
    assert b"ENCRYPTED" in (tmp_path / "k").read_bytes()
    with pytest.raises(InvalidParameterError, match="encrypted; give its password"):
        sign(model_file, key=tmp_path / "k")
    with pytest.raises(InvalidParameterError, match="wrong password"):
        sign(model_file, key=tmp_path / "k", password="nope")
    sign(model_file, key=tmp_path / "k", password="s3cret")
    assert verify(model_file, key=tmp_path / "k.pub").ok


# ------------------------------------------------------------------ sign + verify
def test_sign_and_verify_a_file(keys, model_file):
    sig = sign(model_file, key=keys["private"])
    assert sig == model_file.with_name("model.onnx.sig") == default_signature_path(model_file)
    res = verify(model_file, key=keys["public"])
    assert res.ok and res.exit_code == 0 and res.reason == "verified"
    assert res.files_checked == 1
    assert (res.changed, res.added, res.removed) == ([], [], [])
    assert res.signature == sig and res.signed_by == res.key_fingerprint
    assert "verified 1 file" in res.message


def test_sign_and_verify_a_folder(keys, folder):
    sig = sign(folder, key=keys["private"])
    assert sig == folder / DEFAULT_FOLDER_SIGNATURE
    stmt = _statement(sig)
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == "https://model_signing/signature/v1.0"
    names = sorted(r["name"] for r in stmt["predicate"]["resources"])
    assert names == ["config.json", "tokenizer/vocab.txt", "weights.bin"]  # not model.sig
    assert all(r["algorithm"] == "sha256" for r in stmt["predicate"]["resources"])
    res = verify(folder, key=keys["public"])
    assert res.ok and res.files_checked == 3, res.message


def test_signatures_interoperate_with_model_signing(keys, folder):
    import model_signing

    sig = sign(folder, key=keys["private"])
    verifier = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keys["public"])
    verifier.verify(folder, sig)  # raises on failure
    (folder / "weights.bin").write_bytes(b"backdoored")
    with pytest.raises(ValueError, match=r"weights\.bin"):
        verifier.verify(folder, sig)
    assert not verify(folder, key=keys["public"]).ok


def test_signature_outside_the_folder(keys, folder, tmp_path):
    sig = sign(folder, key=keys["private"], signature=tmp_path / "sigs" / "m.sig")
    assert sig.is_file() and not (folder / DEFAULT_FOLDER_SIGNATURE).exists()
    assert verify(folder, key=keys["public"], signature=sig).ok
    assert verify(folder, key=keys["public"]).reason == "missing-signature"


def test_changed_byte_names_the_file(keys, folder):
    sign(folder, key=keys["private"])
    data = bytearray((folder / "weights.bin").read_bytes())
    data[10] ^= 1
    (folder / "weights.bin").write_bytes(bytes(data))
    res = verify(folder, key=keys["public"])
    assert not res.ok and res.exit_code == 1 and res.reason == "modified"
    assert res.changed == ["weights.bin"] and res.added == [] and res.removed == []
    assert "changed: weights.bin" in res.message and res.files_checked == 3


def test_changed_single_file_is_named_by_its_file_name(keys, model_file):
    sign(model_file, key=keys["private"])
    model_file.write_bytes(model_file.read_bytes() + b"\x00")
    res = verify(model_file, key=keys["public"])
    assert not res.ok and res.changed == ["model.onnx"]
    assert "changed: model.onnx" in res.message


def test_added_file_is_named(keys, folder):
    sign(folder, key=keys["private"])
    (folder / "tokenizer" / "evil.pkl").write_bytes(b"\x80\x04N.")
    res = verify(folder, key=keys["public"])
    assert not res.ok and res.added == ["tokenizer/evil.pkl"]
    assert res.changed == [] and res.removed == []
    assert "added (not signed): tokenizer/evil.pkl" in res.message


def test_removed_file_is_named(keys, folder):
    sign(folder, key=keys["private"])
    (folder / "config.json").unlink()
    res = verify(folder, key=keys["public"])
    assert not res.ok and res.removed == ["config.json"]
    assert "removed: config.json" in res.message


def test_git_metadata_is_not_signed_but_other_dotfiles_are(keys, folder):
    (folder / ".gitattributes").write_text("*.bin filter=lfs")
    (folder / ".hidden").write_text("x")
    sign(folder, key=keys["private"])
    names = {r["name"] for r in _statement(folder / "model.sig")["predicate"]["resources"]}
    assert ".hidden" in names and ".gitattributes" not in names
    (folder / ".gitattributes").write_text("changed")
    assert verify(folder, key=keys["public"]).ok


def test_sharded_hashing_still_names_files(keys, folder):
    sign(folder, key=keys["private"], shard_size=16)
    names = [r["name"] for r in _statement(folder / "model.sig")["predicate"]["resources"]]
    assert "weights.bin:0:16" in names and "weights.bin:48:64" in names
    assert verify(folder, key=keys["public"]).ok
    (folder / "weights.bin").write_bytes(bytes(range(64)) + b"more")
    res = verify(folder, key=keys["public"])
    assert res.changed == ["weights.bin"] and res.files_checked == 3


def test_file_signature_on_a_folder_says_so(keys, folder, tmp_path):
    sig = sign(folder / "weights.bin", key=keys["private"], signature=tmp_path / "w.sig")
    res = verify(folder, key=keys["public"], signature=sig)
    assert not res.ok and "signature is for a single file" in res.message


# ----------------------------------------------------------- failures, never raising
def test_wrong_key_fails_cleanly(keys, folder):
    sign(folder, key=keys["private"])
    res = verify(folder, key=keys["other_public"])
    assert not res.ok and res.reason == "invalid-signature"
    assert "signed with another key" in res.message and "other.pub" in res.message
    assert res.signed_by and res.signed_by != res.key_fingerprint
    assert res.changed == res.added == res.removed == []


def test_forged_statement_fails_even_with_matching_key_hint(keys, folder):
    """An attacker rewrites the signed statement (and its hint) to match tampered files."""
    sig = sign(folder, key=keys["private"])
    (folder / "weights.bin").write_bytes(b"backdoored")
    bundle = json.loads(sig.read_text())
    stmt = _statement(sig)
    import hashlib

    digest = hashlib.sha256(b"backdoored").hexdigest()
    for r in stmt["predicate"]["resources"]:
        if r["name"] == "weights.bin":
            r["digest"] = digest
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    sig.write_text(json.dumps(bundle))
    res = verify(folder, key=keys["public"])
    assert not res.ok and res.reason == "invalid-signature"
    assert "not valid for" in res.message


def _flip_signature_byte(text: str) -> str:
    bundle = json.loads(text)
    raw = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[-1] ^= 1
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(bundle)


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s[: len(s) // 2],  # truncated
        lambda s: "not json at all",
        lambda s: "",
        lambda s: json.dumps({"mediaType": "x"}),
        lambda s: _flip_signature_byte(s),
    ],
    ids=["truncated", "garbage", "empty", "wrong-shape", "bad-signature-bytes"],
)
def test_corrupt_signature_fails_cleanly(keys, model_file, damage):
    sig = sign(model_file, key=keys["private"])
    sig.write_text(damage(sig.read_text()))
    res = verify(model_file, key=keys["public"])
    assert not res.ok and res.exit_code == 1 and res.reason == "invalid-signature"
    assert str(sig) in res.message
    assert res.files_checked == 0


def test_missing_signature_fails_cleanly(keys, model_file):
    res = verify(model_file, key=keys["public"])
    assert not res.ok and res.reason == "missing-signature"
    assert "model.onnx.sig: signature file not found" in res.message


def test_symlink_added_to_folder_is_not_verified(keys, folder, tmp_path):
    sign(folder, key=keys["private"])
    (tmp_path / "outside").write_text("x")
    (folder / "link").symlink_to(tmp_path / "outside")
    res = verify(folder, key=keys["public"])
    assert not res.ok and res.reason == "unreadable" and "symlink" in res.message


# ------------------------------------------------------------------- bad input
def test_missing_model_or_key_raise_with_the_path(keys, tmp_path, model_file):
    with pytest.raises(ModelLoadError, match=r"nope\.onnx: no such file"):
        sign(tmp_path / "nope.onnx", key=keys["private"])
    with pytest.raises(ModelLoadError, match=r"nope\.onnx: no such file"):
        verify(tmp_path / "nope.onnx", key=keys["public"])
    with pytest.raises(InvalidParameterError, match=r"absent\.key: private key file not found"):
        sign(model_file, key=tmp_path / "absent.key")
    with pytest.raises(InvalidParameterError, match=r"absent\.pub: public key file not found"):
        verify(model_file, key=tmp_path / "absent.pub")


def test_keys_the_wrong_way_round_are_explained(keys, model_file, tmp_path):
    with pytest.raises(InvalidParameterError, match="this is a public key"):
        sign(model_file, key=keys["public"])
    with pytest.raises(InvalidParameterError, match="this is a private key"):
        verify(model_file, key=keys["private"])
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(InvalidParameterError, match=r"junk\.pem: not a PEM public key"):
        verify(model_file, key=junk)


def test_non_ec_key_is_refused(model_file, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    p = tmp_path / "ed.key"
    p.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(InvalidParameterError, match="unsupported private key"):
        sign(model_file, key=p)


def test_empty_folder_and_self_overwrite_are_refused(keys, tmp_path, model_file):
    (tmp_path / "empty" / ".git").mkdir(parents=True)
    with pytest.raises(ModelLoadError, match="no files to sign"):
        sign(tmp_path / "empty", key=keys["private"])
    with pytest.raises(InvalidParameterError, match="the model file itself"):
        sign(model_file, key=keys["private"], signature=model_file)
    with pytest.raises(InvalidParameterError, match="shard_size"):
        sign(model_file, key=keys["private"], shard_size=0)


# ------------------------------------------------------------------------ finding
def test_signature_finding_passed_and_failed(keys, folder):
    sign(folder, key=keys["private"])
    ok = signature_finding(verify(folder, key=keys["public"]), target="model")
    assert ok.passed and ok.rule_id == "MLW-SUP-010" and ok.check == "supplychain.signature"
    assert ok.evidence["files_checked"] == 3
    assert ok.evidence["key_fingerprint"] in ok.description
    (folder / "weights.bin").write_bytes(b"x")
    bad = signature_finding(verify(folder, key=keys["public"]), target="model")
    assert not bad.passed and bad.severity.value == "critical"
    assert bad.evidence["changed"] == ["weights.bin"] and "weights.bin" in bad.description
    json.dumps(bad.to_dict())


def test_report_provenance_keeps_signatures(keys, model_file):
    from mlwarden.findings.report import Report

    sign(model_file, key=keys["private"])
    res = verify(model_file, key=keys["public"])
    report = Report(signatures=[res.to_dict()])
    doc = report.to_dict(include_timing=False)
    assert doc["provenance"]["signatures"] == [res.to_dict()]
    assert Report.from_dict(doc).signatures == [res.to_dict()]
    assert "signatures" not in Report().to_dict()["provenance"]
