"""Huawei Cloud API-gateway request signing (``SDK-HMAC-SHA256``), as the official SDK
(``huaweicloudsdkcore.signer.signer.Signer``) computes it. One implementation serves both
directions: the inbound side rebuilds the string to sign from what arrived and hands it to
``proxy.auth`` (which holds the secret keys); the outbound side signs requests to a GeminiDB
upstream with a configured AK/SK.

Canonical request (lines joined with ``\\n``)::

    METHOD
    canonical URI     each path segment percent-encoded (only ``~`` kept), trailing ``/`` added
    canonical query   sorted ``key=value`` pairs, both percent-encoded, joined with ``&``
    canonical headers ``name:value`` for each signed header (lower-case name, trimmed value)
                      followed by an empty line
    signed headers    the signed header names, lower case, sorted, joined with ``;``
    payload hash      hex SHA-256 of the body (of ``b""`` when there is none)

String to sign: ``SDK-HMAC-SHA256\\n<X-Sdk-Date>\\n<hex SHA-256 of the canonical request>``;
signature: hex HMAC-SHA256(secret key, string to sign); header::

    Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b;c>, Signature=<hex>
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "x-sdk-date"
CONTENT_HASH_HEADER = "x-sdk-content-sha256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_DATE = re.compile(r"^\d{8}T\d{6}Z$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_HEADER_NAME = re.compile(r"^[a-z0-9!#$%&'*+.^`|~-]+$")
_PARAMS = re.compile(r"\s*(Access|SignedHeaders|Signature)=([^,\s]*)\s*(?:,|$)")


class SignatureFormatError(ValueError):
    """The Authorization header or the signed headers are not usable for verification."""


@dataclass(frozen=True, slots=True)
class AuthorizationHeader:
    access_key: str
    signed_headers: tuple[str, ...]
    signature: str


def encode(text: str) -> str:
    """Percent-encode everything but unreserved letters, digits, ``-._~`` (the SDK's
    ``quote(s, safe='~')``)."""
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """``path`` is the decoded path (``/v3/p/instances/i/sessions``)."""
    encoded = "/".join(encode(segment) for segment in path.split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """The decoded ``(key, value)`` pairs of a raw query string, as a signer saw them."""
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(pairs))


def canonical_headers(headers: Mapping[str, str], signed: Iterable[str]) -> str:
    """``headers`` has lower-case names; a signed header that is missing is an error."""
    lines = []
    for name in signed:
        value = headers.get(name)
        if value is None:
            raise SignatureFormatError(f"signed header {name!r} is missing")
        lines.append(f"{name}:{value.strip()}")
    return "\n".join(lines) + "\n"


def payload_hash(body: bytes, headers: Mapping[str, str]) -> str:
    """The SDK hashes the body, unless it is empty or the caller declared the hash in
    ``X-Sdk-Content-Sha256``. A declared hash must match the body; ``UNSIGNED-PAYLOAD`` is
    refused for a non-empty body, since Rosetta acts on what the body says."""
    if not body:
        return EMPTY_SHA256
    actual = hashlib.sha256(body).hexdigest()
    declared = headers.get(CONTENT_HASH_HEADER)
    if declared is None:
        return actual
    if declared == UNSIGNED_PAYLOAD:
        raise SignatureFormatError("unsigned payloads are not accepted")
    if declared.lower() != actual:
        raise SignatureFormatError("X-Sdk-Content-Sha256 does not match the body")
    return declared


def canonical_request(
    method: str,
    path: str,
    pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed: Iterable[str],
    body_hash: str,
) -> str:
    signed = list(signed)
    return "\n".join(
        (
            method.upper(),
            canonical_uri(path),
            canonical_query(pairs),
            canonical_headers(headers, signed),
            ";".join(signed),
            body_hash,
        )
    )


def string_to_sign(canonical: str, date_text: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{date_text}\n{digest}"


def signature(secret_key: str, to_sign: str) -> str:
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def format_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def parse_date(text: str) -> datetime:
    if not _DATE.match(text):
        raise SignatureFormatError("X-Sdk-Date must look like 20260102T030405Z")
    try:
        return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureFormatError("X-Sdk-Date is not a valid date") from None


def parse_authorization(value: str) -> AuthorizationHeader:
    """Parse ``SDK-HMAC-SHA256 Access=.., SignedHeaders=.., Signature=..``."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme != ALGORITHM:
        raise SignatureFormatError(f"unsupported signing algorithm {scheme[:40]!r}")
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        found = _PARAMS.match(rest, position)
        if found is None or found.end() == position:
            raise SignatureFormatError("malformed Authorization header")
        params[found.group(1)] = found.group(2)
        position = found.end()
    access_key = params.get("Access", "")
    signed = tuple(params.get("SignedHeaders", "").split(";"))
    sig = params.get("Signature", "")
    if not access_key or not _HEX64.match(sig) or not all(_HEADER_NAME.match(h) for h in signed):
        raise SignatureFormatError("malformed Authorization header")
    if list(signed) != sorted(set(signed)):
        raise SignatureFormatError("SignedHeaders must be sorted and unique")
    return AuthorizationHeader(access_key, signed, sig.lower())


def authorization_value(access_key: str, signed: Iterable[str], sig: str) -> str:
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(signed)}, Signature={sig}"


def sign(
    *,
    method: str,
    path: str,
    pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    now: datetime,
) -> dict[str, str]:
    """``headers`` (which must include ``host``) plus ``x-sdk-date`` and ``authorization``,
    signed over every header whose name has no ``_`` (as the SDK does)."""
    signed_headers = {k.lower(): str(v).strip() for k, v in headers.items()}
    signed_headers[DATE_HEADER] = format_date(now)
    names = sorted(k for k in signed_headers if "_" not in k)
    canonical = canonical_request(
        method, path, pairs, signed_headers, names, payload_hash(body, signed_headers)
    )
    to_sign = string_to_sign(canonical, signed_headers[DATE_HEADER])
    signed_headers["authorization"] = authorization_value(
        access_key, names, signature(secret_key, to_sign)
    )
    return signed_headers
