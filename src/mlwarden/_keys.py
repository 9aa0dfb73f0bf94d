"""Reading PEM key files, shared by model signing (ECDSA) and dataset manifests (Ed25519).

Each caller checks the key's type itself; these helpers turn every way a key file can be
wrong - missing, unreadable, the other half of the pair, encrypted without a password,
a wrong password, not PEM at all - into one :class:`InvalidParameterError` naming the
file and, where it helps, how to create a key (``hint``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from mlwarden.exceptions import InvalidParameterError

__all__ = [
    "fingerprint",
    "load_pem_private",
    "load_pem_public",
    "read_key_file",
    "write_new_key_file",
]


def read_key_file(path: Path, what: str, hint: str) -> bytes:
    """The bytes of a key file, or a clear error naming it."""
    if not path.exists():
        raise InvalidParameterError(f"{path}: {what} file not found; {hint}")
    if not path.is_file():
        raise InvalidParameterError(f"{path}: {what} is not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidParameterError(f"{path}: cannot read the {what} ({exc.strerror})") from None


def load_pem_private(path: Path, password: str | None, hint: str) -> Any:
    """A PEM private key (any algorithm ``cryptography`` reads)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    data = read_key_file(path, "private key", hint)
    try:
        return serialization.load_pem_private_key(
            data, None if password is None else password.encode()
        )
    except UnsupportedAlgorithm as exc:
        raise InvalidParameterError(f"{path}: unsupported private key ({exc})") from None
    except TypeError:
        if password is None:
            raise InvalidParameterError(
                f"{path}: the private key is encrypted; give its password"
            ) from None
        raise InvalidParameterError(
            f"{path}: the private key is not encrypted; give no password"
        ) from None
    except ValueError:
        if b"PUBLIC KEY" in data:
            raise InvalidParameterError(
                f"{path}: this is a public key; signing needs the private key"
            ) from None
        if b"ENCRYPTED" in data and password is not None:
            raise InvalidParameterError(
                f"{path}: wrong password for the private key, or the key is corrupt"
            ) from None
        raise InvalidParameterError(f"{path}: not a PEM private key; {hint}") from None


def load_pem_public(path: Path, hint: str) -> Any:
    """A PEM public key (any algorithm ``cryptography`` reads)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    data = read_key_file(path, "public key", hint)
    try:
        return serialization.load_pem_public_key(data)
    except UnsupportedAlgorithm as exc:
        raise InvalidParameterError(f"{path}: unsupported public key ({exc})") from None
    except ValueError:
        if b"PRIVATE KEY" in data:
            raise InvalidParameterError(
                f"{path}: this is a private key; verify with the public key "
                "(and keep the private key secret)"
            ) from None
        raise InvalidParameterError(f"{path}: not a PEM public key; {hint}") from None


def fingerprint(public_key: Any) -> str:
    """``sha256:<hex>`` of a public key's PEM SubjectPublicKeyInfo."""
    from cryptography.hazmat.primitives import serialization

    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(pem).hexdigest()


def write_new_key_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (never following or replacing an existing file)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise InvalidParameterError(
            f"{path}: already exists; refusing to overwrite a key"
        ) from None
    except OSError as exc:
        raise InvalidParameterError(f"{path}: cannot write the key ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)  # the umask may have narrowed it; never widen the private key
