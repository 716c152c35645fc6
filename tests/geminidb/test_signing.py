"""The SDK-HMAC-SHA256 signer against the official Huawei SDK's own ``Signer``: the same
request must give the same Authorization header, and a request signed either way must
verify on the inbound side (the string to sign the translator rebuilds from the wire)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.contract import ErrorKind, HttpRequest, PrincipalKind, RosettaError
from translators.geminidb import GeminiDbTranslator, signing

AK, SK = "HPUAEXAMPLEAK0000001", "example-secret-key-0123456789"
WHEN = datetime(2026, 11, 23, 9, 4, 52, tzinfo=UTC)
DATE = "20261123T090452Z"


def sdk_sign(
    method: str,
    resource_path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes | None,
) -> dict[str, str]:
    """What the SDK sends: its header_params after ``Signer.sign``."""
    request = SdkRequest(
        method=method,
        schema="http",
        host="127.0.0.1:8080",
        resource_path=resource_path,
        query_params=list(query),
        header_params={**headers, "X-Sdk-Date": DATE},
        body=body,
    )
    signed = Signer(BasicCredentials(AK, SK, "proj")).sign(request)
    return {k.lower(): v for k, v in signed.header_params.items()}


def ours(
    method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: bytes
) -> dict[str, str]:
    return signing.sign(
        method=method,
        path=path,
        pairs=query,
        headers={**headers, "Host": "127.0.0.1:8080"},
        body=body,
        access_key=AK,
        secret_key=SK,
        now=WHEN,
    )


def raw_query(query: list[tuple[str, str]]) -> str:
    return signing.canonical_query(query)


def decoded_principal_signature(
    method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: bytes
) -> str:
    """The inbound side: rebuild the string to sign from the request as it arrives."""
    translator = GeminiDbTranslator()
    http = HttpRequest(
        method,
        path,
        query_string=raw_query(query),
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
        path_params={"project_id": "proj", "instance_id": "inst"},
    )
    principal = translator.decode_request(http).principal
    assert principal.kind is PrincipalKind.SIGNATURE and principal.signature is not None
    assert principal.signature.access_key == AK
    assert principal.signature.signed_at == WHEN
    expected = hmac.new(
        SK.encode(), principal.signature.string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    assert expected == principal.signature.signature
    return principal.signature.string_to_sign


SDK_HEADERS = {
    "Content-Type": "application/json",
    "User-Agent": "huaweicloud-usdk-python/3.0",
    "X-Project-Id": "0549b5e0aa80d4f22f0ec01b4d9a9c8f",
}
CASES = [
    ("GET", "/v3/proj/instances/inst/sessions", [], None),
    ("GET", "/v3/proj/instances/inst/sessions", [("node_id", "n1")], None),
    (
        "GET",
        "/v3/proj/redis/nodes/n1/sessions",
        [("offset", "2"), ("limit", "10"), ("addr_prefix", "10.0.0.1:")],
        None,
    ),
    ("DELETE", "/v3/proj/instances/inst/sessions", [], None),
    ("DELETE", "/v3/proj/redis/nodes/n1/sessions", [], b'{"is_all":false,"session_ids":["1"]}'),
    ("GET", "/v3/proj/redis/nodes/n%20~x/sessions", [("a b", "c/d+e~f"), ("a b", "0")], None),
]


@pytest.mark.parametrize(("method", "resource_path", "query", "body"), CASES)
def test_our_signature_is_the_sdk_signature(
    method: str, resource_path: str, query: list[tuple[str, str]], body: bytes | None
) -> None:
    sdk = sdk_sign(method, resource_path, query, SDK_HEADERS, body)
    from urllib.parse import unquote

    mine = ours(method, unquote(resource_path), query, SDK_HEADERS, body or b"")
    assert mine["authorization"] == sdk["authorization"]
    assert mine["x-sdk-date"] == DATE
    assert sdk["authorization"].startswith(f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=")


@pytest.mark.parametrize(("method", "resource_path", "query", "body"), CASES)
def test_sdk_signed_requests_verify_inbound(
    method: str, resource_path: str, query: list[tuple[str, str]], body: bytes | None
) -> None:
    from urllib.parse import unquote

    sent = sdk_sign(method, resource_path, query, SDK_HEADERS, body)
    decoded_principal_signature(method, unquote(resource_path), query, sent, body or b"")


@settings(max_examples=60, deadline=None)
@given(
    segment=st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s),
    query=st.lists(
        st.tuples(st.text(min_size=1, max_size=6), st.text(max_size=8)), max_size=4, unique=True
    ),
    body=st.binary(max_size=40),
)
def test_signatures_agree_with_the_sdk_for_any_path_query_and_body(
    segment: str, query: list[tuple[str, str]], body: bytes
) -> None:
    resource_path = f"/v3/proj/redis/nodes/{quote(segment, safe='')}/sessions"
    sdk = sdk_sign("DELETE", resource_path, query, SDK_HEADERS, body or None)
    mine = ours("DELETE", f"/v3/proj/redis/nodes/{segment}/sessions", query, SDK_HEADERS, body)
    assert mine["authorization"] == sdk["authorization"]


def test_a_tampered_request_no_longer_verifies() -> None:
    sent = sdk_sign(
        "GET", "/v3/proj/instances/inst/sessions", [("node_id", "a")], SDK_HEADERS, None
    )
    good = decoded_principal_signature(
        "GET", "/v3/proj/instances/inst/sessions", [("node_id", "a")], sent, b""
    )
    translator = GeminiDbTranslator()
    http = HttpRequest(
        "GET",
        "/v3/proj/instances/inst/sessions",
        query_string="node_id=b",
        headers=sent,
        path_params={"project_id": "proj", "instance_id": "inst"},
    )
    signature = translator.decode_request(http).principal.signature
    assert signature is not None and signature.string_to_sign != good


@pytest.mark.parametrize(
    "authorization",
    [
        "SDK-HMAC-SM3 Access=AK, SignedHeaders=host;x-sdk-date, Signature=" + "a" * 64,
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature=nothex",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=" + "a" * 64,
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=x-sdk-date;host, Signature=" + "a" * 64,
        "SDK-HMAC-SHA256 garbage",
    ],
)
def test_malformed_signatures_are_unauthenticated(authorization: str) -> None:
    http = HttpRequest(
        "GET",
        "/v3/proj/instances/inst/sessions",
        headers={"authorization": authorization, "x-sdk-date": DATE, "host": "h"},
        path_params={"project_id": "proj", "instance_id": "inst"},
    )
    with pytest.raises(RosettaError) as caught:
        GeminiDbTranslator().decode_request(http)
    assert caught.value.kind is ErrorKind.UNAUTHENTICATED


def test_unsigned_payloads_and_wrong_declared_hashes_are_refused() -> None:
    body = b'{"is_all":true}'
    with pytest.raises(signing.SignatureFormatError):
        signing.payload_hash(body, {"x-sdk-content-sha256": "UNSIGNED-PAYLOAD"})
    with pytest.raises(signing.SignatureFormatError):
        signing.payload_hash(body, {"x-sdk-content-sha256": "0" * 64})
    digest = hashlib.sha256(body).hexdigest()
    assert signing.payload_hash(body, {"x-sdk-content-sha256": digest}) == digest
    assert signing.payload_hash(b"", {}) == signing.EMPTY_SHA256
