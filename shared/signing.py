"""Ed25519 signing and verification (PyNaCl lives only here).

The tracker signs manifests and tickets; clients and seeders pin its public
key and verify offline. Keys and signatures travel as unpadded base64url text.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import nacl.exceptions
import nacl.signing

from shared.durable import sync_directory
from shared.rawfile import open_fd
from shared.errors import SignatureError

KEY_SIZE = 32  # Ed25519 seeds and public keys
# What a manifest's digest signature signs, before the digest's hex: nothing else the tracker signs (manifests,
# tickets, payloads: all JSON or base64) starts with it, so such a signature vouches for nothing but a manifest.
MANIFEST_DIGEST = b"mist manifest sha256 "


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"not valid base64url: {text[:40]!r}") from exc


class Signer:
    """The tracker's private key. Only the tracker process holds one."""

    def __init__(self, key: nacl.signing.SigningKey) -> None:
        self._key = key
        self.public_key = b64e(bytes(key.verify_key))

    def __repr__(self) -> str:
        return f"Signer(public_key={self.public_key!r})"

    @classmethod
    def generate(cls) -> "Signer":
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def load(cls, path: Path) -> "Signer":
        """The key saved at `path`; SignatureError if the file is not a key (a truncated write, another file)."""
        raw = path.read_bytes()
        if len(raw) != KEY_SIZE:
            raise SignatureError(f"{path} is not an Ed25519 signing key ({len(raw)} bytes, expected 32)")
        return cls(nacl.signing.SigningKey(raw))

    @classmethod
    def load_or_create(cls, path: Path) -> "Signer":
        """Load the key at `path`, creating it (mode 0600) on first start."""
        if path.exists():
            return cls.load(path)
        signer = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_fd(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(signer._key))
        return signer

    def save(self, path: Path) -> None:
        """Write the key to `path` (mode 0600) so that a crash leaves the old file or the whole new one."""
        tmp = path.with_name(path.name + ".tmp")
        fd = open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(self._key))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        sync_directory(path.parent)

    def sign(self, data: bytes) -> str:
        return b64e(self._key.sign(data).signature)


def fingerprint(public_key: str) -> str:
    """A short form of a public key to compare by eye or read out over the phone (128 bits of its SHA-256)."""
    digest = hashlib.sha256(b64d(public_key)).hexdigest()[:32]
    return "-".join(digest[i : i + 4] for i in range(0, 32, 4))


def manifest_digest(digest: str) -> bytes:
    """What the tracker signs to vouch for the manifest whose SHA-256 is `digest` (hex).

    Verifying a signature over the manifest itself takes the whole manifest in memory, and PyNaCl copies it
    twice more (a 100 GB build's 124 MB manifest: +372 MB and 0.55 CPU s); a friend hashes the bytes (0.1 s,
    and a delta's result is hashed anyway) and verifies this short message instead."""
    return MANIFEST_DIGEST + digest.encode("ascii")


def verify(public_key: str, data: bytes, signature: str) -> None:
    """Raise SignatureError unless `signature` is `public_key`'s signature of `data`."""
    try:
        key = nacl.signing.VerifyKey(b64d(public_key))
        key.verify(data, b64d(signature))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError) as exc:
        raise SignatureError(
            "signature does not verify with the tracker's pinned key; the data was forged or altered in transit"
        ) from exc
