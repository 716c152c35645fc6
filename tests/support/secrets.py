"""Scan response bodies for secrets. A token may come back only to its owner, in the fields
whose protocol carries it (a login's answer, FairCom's own-session listing and its 12031 echo
of the offending token): ``scrub_own_tokens`` removes exactly those fields, so whatever is left
must hold no token, password or secret key at all."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson


def scrub_own_tokens(body: str) -> str:
    """``body`` without the fields in which a dialect hands a caller its own token."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(data, dict):
        return body
    data.pop("authToken", None)  # FairCom: createSession's token, 12031's echo
    data.pop("token", None)  # rosetta: session.login
    result = data.get("result")
    if isinstance(result, dict):
        result.pop("authToken", None)  # FairCom createSession
        for entry in result.get("sessions") or []:
            # FairCom lists the caller's own session under its token, others as session:<id>
            if isinstance(entry, dict) and not str(entry.get("authToken", "")).startswith(
                "session:"
            ):
                entry.pop("authToken", None)
    response = data.get("response")
    if isinstance(response, dict):
        response.pop("authToken", None)  # JUMP login
    meta = data.get("meta")
    if isinstance(meta, dict):
        meta.pop("token", None)  # MaxScale /v1/auth
    return orjson.dumps(data).decode()


def leaks(secrets: Iterable[str], bodies: Iterable[str]) -> list[str]:
    """``what: body prefix`` for every secret found in a scrubbed body (masked in the report)."""
    scrubbed = [scrub_own_tokens(body) for body in bodies]
    found = []
    for secret in secrets:
        for body in scrubbed:
            if secret and secret in body:
                found.append(f"{secret[:4]}...: {body.replace(secret, '<SECRET>')[:200]}")
    return found
