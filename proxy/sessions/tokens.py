"""Session tokens: minted from the OS CSPRNG, stored only as a keyed hash (HMAC-SHA256 under
the session secret), compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 48  # 384 bits; 64 URL-safe characters


def mint_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


class TokenHasher:
    """Keyed hash of tokens, so a leaked store does not leak usable tokens."""

    def __init__(self, secret: bytes) -> None:
        # keyed once: each hash copies this state instead of deriving the key pads again
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def hash(self, token: str) -> str:
        keyed = self._keyed.copy()
        keyed.update(token.encode("utf-8"))
        return keyed.hexdigest()

    def matches(self, token: str, expected_hash: str) -> bool:
        return hmac.compare_digest(self.hash(token), expected_hash)
