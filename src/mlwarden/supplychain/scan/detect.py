"""Format detection by content, never by file name.

Every model format mlwarden scans starts with a signature or a structure that can be
checked in the first bytes: magic numbers (``\\x93NUMPY``, ``PK\\x03\\x04``, ``GGUF``,
``\\x89HDF``, ``ZF0x``, compressor headers), the pickle ``PROTO`` opcode, a
safetensors length prefix followed by a JSON object, a tar header, or a protobuf
``ModelProto`` whose first fields parse. Extensions lie (a ``.bin`` is often a
pickle, a ``.pt`` a zip, a ``.h5`` anything), so they are not consulted.

Threat model: an attacker names a pickle ``model.safetensors`` or ``weights.npy`` so
that a scanner that trusts extensions waves it through, while the loader the victim
calls (``torch.load``, ``joblib.load``) sniffs the content and unpickles it.
"""

from __future__ import annotations

import pickletools
import struct
from dataclasses import dataclass

__all__ = ["SUPPORTED", "Detected", "detect", "looks_like_pickle"]

SUPPORTED = (
    "pickle, joblib (incl. joblib<0.10 ZF files), PyTorch (zip, legacy and tar "
    "checkpoints, TorchScript), NumPy .npy/.npz, safetensors, ONNX, Keras (.keras, .h5), "
    "GGUF, skops, JSON configs and tokenizer files, Jinja chat templates (.jinja), and "
    "gzip/bz2/xz/lzma/zlib-compressed "
    "pickle or joblib files"
)
"""The formats :func:`detect` recognises, for "unknown format" messages."""

COMPRESSED_MAGIC: tuple[tuple[str, bytes], ...] = (
    ("gzip", b"\x1f\x8b\x08"),
    ("xz", b"\xfd7zXZ\x00"),
    ("lz4", b"\x04\x22\x4d\x18"),
)
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
HDF5_OFFSETS = (0, 512, 1024, 2048, 4096, 8192)
"""HDF5 superblock positions (after a user block of 0, 512, 1024 ... bytes)."""

_PICKLE_FIRST_OPS = frozenset(b"(c]})NILFSVKJMGXUTBq\x80\x8c\x88\x89hjgp0")


@dataclass(frozen=True)
class Detected:
    """What :func:`detect` found.

    Parameters
    ----------
    kind : str
        ``empty``, ``numpy``, ``zip``, ``hdf5``, ``gguf``, ``joblib-zf``,
        ``compressed``, ``pickle``, ``safetensors``, ``tar``, ``onnx``, ``json`` or
        ``unknown``.
    detail : str
        The codec for ``compressed``; a description of the first bytes for ``unknown``.
    """

    kind: str
    detail: str = ""


def detect(data: memoryview) -> Detected:
    """Detect a file's format from its bytes (only the first few KiB are read)."""
    size = len(data)
    if size == 0:
        return Detected("empty")
    head = bytes(data[:64])
    if head.startswith(b"\x93NUMPY"):
        return Detected("numpy")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return Detected("zip")
    if any(bytes(data[o : o + 8]) == HDF5_MAGIC for o in HDF5_OFFSETS):
        return Detected("hdf5")
    if head.startswith(b"GGUF"):
        return Detected("gguf")
    if head.startswith(b"ZF0x"):
        return Detected("joblib-zf")
    if _safetensors_strict(data):
        return Detected("safetensors")
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return Detected("pickle")
    codec = compression(head)
    if codec is not None:
        # A zlib header is two bytes with a checksum; "(S" (MARK, STRING: a protocol-0
        # pickle) and a few other opcode pairs pass it. A stream whose opcodes parse is
        # a pickle: pickle.load reads it as one, and zlib-reading loaders (joblib) only
        # take the 0x78 header, which is no pickle opcode.
        if codec == "zlib" and looks_like_pickle(bytes(data[: 1 << 16])):
            return Detected("pickle")
        return Detected("compressed", codec)
    if bytes(data[257:262]) == b"ustar":
        return Detected("tar")
    if looks_like_pickle(bytes(data[: 1 << 16])):
        return Detected("pickle")
    from mlwarden.supplychain.scan.jsonfile import looks_like_json
    from mlwarden.supplychain.scan.onnx import looks_like_onnx

    if looks_like_onnx(data):
        return Detected("onnx")
    if looks_like_json(bytes(data[:4096])):
        return Detected("json")
    if size >= 9 and head[8:9] == b"{":
        return Detected("safetensors")  # invalid (e.g. huge) header: the scanner says why
    return Detected("unknown", _describe(head))


def compression(head: bytes) -> str | None:
    """The compressor whose header ``head`` starts with, or None."""
    for name, magic in COMPRESSED_MAGIC:
        if head.startswith(magic):
            return name
    if head.startswith(b"BZh") and len(head) >= 4 and 0x31 <= head[3] <= 0x39:
        return "bz2"
    # lzma "alone" format (joblib's 'lzma'): properties byte, dictionary size.
    if len(head) >= 13 and head[0] == 0x5D and head[1:3] == b"\x00\x00":
        return "lzma"
    # zlib: deflate with a 512 B..32 KiB window and a valid header checksum (0x08, a
    # 256-byte window, is never used in practice and is how ONNX files start).
    if (
        len(head) >= 2
        and head[0] in b"\x18\x28\x38\x48\x58\x68\x78"
        and (head[0] * 256 + head[1]) % 31 == 0
        and not head[1] & 0x20  # no preset dictionary
    ):
        return "zlib"
    return None


def looks_like_pickle(head: bytes) -> bool:
    """True for data that starts like a pickle of any protocol.

    Protocols 2 to 5 start with ``PROTO``; protocols 0 and 1 have no header, so the
    prefix must parse as a run of pickle opcodes (up to ``STOP``, or 16 opcodes).
    """
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if not head or head[0] not in _PICKLE_FIRST_OPS:
        return False
    n_ops = 0
    try:
        for op, _arg, _pos in pickletools.genops(head):
            n_ops += 1
            if op.name == "STOP":
                return n_ops >= 2
            if n_ops >= 16:
                return True
    except Exception:  # genops raises several types on junk and at the end of ``head``
        return False
    return False


def _safetensors_strict(data: memoryview) -> bool:
    """A safetensors length prefix whose header fits the file and is a JSON object."""
    if len(data) < 10 or bytes(data[8:9]) != b"{":
        return False
    (n,) = struct.unpack("<Q", data[:8])
    if n < 2 or 8 + n > len(data):
        return False
    end = 8 + n
    while end > 9:  # the header may be padded with spaces: find its last other byte
        window = bytes(data[max(9, end - 4096) : end]).rstrip(b" ")
        if window:
            return window.endswith(b"}")
        end -= 4096
    return False


def _describe(head: bytes) -> str:
    if head.startswith(b"version https://git-lfs"):
        return (
            "a Git LFS pointer file: the model itself was never downloaded "
            "(run git lfs pull, then scan again)"
        )
    sample = head[:16]
    if sample and all(32 <= b < 127 or b in b"\t\r\n" for b in sample):
        text = sample.decode("ascii").split("\n", 1)[0]
        return f"a text file starting with {text!r}"
    return f"the file starts with bytes {sample.hex(' ')}"
