"""AES-256-GCM for secret values (spec §2.8, §12).

Stored form: 12-byte nonce ‖ ciphertext ‖ 16-byte tag, with ``encryption_version`` 1.
Version 0 rows hold plaintext bytes; the original platform wrote them while encryption was
disabled, and they stay readable so imported data keeps working.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from molecule_site.env import EnvError

NONCE_BYTES = 12
PLAINTEXT_VERSION = 0
AES_GCM_VERSION = 1


class DecryptionError(Exception):
    """The stored value cannot be decrypted with the configured key."""


def parse_key(raw: str | None, *, variable: str = "SECRETS_ENCRYPTION_KEY") -> bytes:
    """Accept standard base64 of 32 bytes, or a raw 32-character string."""
    if not raw:
        raise EnvError(f"{variable} is not set")
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == 32:
        return decoded
    encoded = raw.encode()
    if len(encoded) == 32:
        return encoded
    raise EnvError(f"{variable} must be base64 of 32 bytes or a 32-character string")


def _key() -> bytes:
    from django.conf import settings

    return settings.SECRETS_KEY_BYTES


def encrypt(plaintext: str, key: bytes | None = None) -> tuple[bytes, int]:
    """Return ``(stored_bytes, encryption_version)`` for a plaintext value."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key or _key()).encrypt(nonce, plaintext.encode(), None)
    return nonce + sealed, AES_GCM_VERSION


def decrypt(stored: bytes, version: int, key: bytes | None = None) -> str:
    """Inverse of :func:`encrypt`; raises :class:`DecryptionError` on a wrong key or tampering."""
    stored = bytes(stored)
    if version == PLAINTEXT_VERSION:
        return stored.decode()
    if len(stored) <= NONCE_BYTES:
        raise DecryptionError("ciphertext too short")
    try:
        return AESGCM(key or _key()).decrypt(stored[:NONCE_BYTES], stored[NONCE_BYTES:], None).decode()
    except Exception as exc:  # InvalidTag, or bytes that are not UTF-8
        raise DecryptionError("cannot decrypt secret") from exc
