"""Encryption at rest for what a session keeps of upstream credentials (passwords, upstream
tokens and cookies): Fernet (AES-128-CBC + HMAC-SHA256, authenticated) under a key derived
with HKDF-SHA256 from ``sessions.encryption_key`` (``ROSETTA_ENCRYPTION_KEY``), or from the
session secret when no encryption key is configured."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"rosetta session-store encryption v1"


class SecretBox:
    """Seals and opens JSON-able values. Opening a value sealed under another key (the key
    was rotated) gives ``None``: the value is treated as gone, never as garbage."""

    def __init__(self, key_material: bytes) -> None:
        if not key_material:
            raise ValueError("the encryption key must not be empty")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            key_material
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    @classmethod
    def from_settings(cls, encryption_key: str | None, session_secret: bytes) -> SecretBox:
        return cls(encryption_key.encode("utf-8") if encryption_key else session_secret)

    def seal(self, value: Any) -> bytes:
        return self._fernet.encrypt(orjson.dumps(value))

    def open(self, sealed: bytes) -> Any:
        try:
            return orjson.loads(self._fernet.decrypt(sealed))
        except (InvalidToken, orjson.JSONDecodeError):
            return None
