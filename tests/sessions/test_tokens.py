"""Session tokens: long and random, stored as HMAC-SHA256 under the session secret, so a
store written by one Rosetta (or one worker) is read by every other with the same secret."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from proxy.sessions.tokens import TokenHasher, mint_token


def test_minted_tokens_are_long_url_safe_and_distinct() -> None:
    tokens = {mint_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(token) == 64 for token in tokens)
    assert all(
        set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for token in tokens
    )


@given(st.binary(min_size=1, max_size=80), st.lists(st.text(max_size=90), min_size=1, max_size=5))
def test_the_stored_hash_is_hmac_sha256_of_the_token_under_the_secret(
    secret: bytes, tokens: list[str]
) -> None:
    hasher = TokenHasher(secret)
    for token in tokens:  # one hasher, many tokens: no state carries from one to the next
        expected = hmac.new(secret, token.encode("utf-8"), hashlib.sha256).hexdigest()
        assert hasher.hash(token) == expected
        assert hasher.matches(token, expected)
        assert not hasher.matches(token + "x", expected)
