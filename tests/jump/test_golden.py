"""Golden tests: the seed's two response examples and the sheet's login/logout examples, both
as Rosetta serves them over real HTTP and as the outbound side decodes them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.jump.client import JumpClient
from tests.support.servers import ServerProcess
from translators.contract import (
    CanonicalRequest,
    ErrorKind,
    HttpResponse,
    Operation,
    RosettaError,
)
from translators.jump import JumpTranslator

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str) -> Any:
    return orjson.loads((GOLDEN / name).read_bytes())


def anonymous_header() -> dict[str, Any]:
    return {
        "map": {
            "currentUser": "anonymousUser",
            "sessionTimeout": "1800",
            "serviceHeader": {"map": {}},
        }
    }


@pytest.mark.parametrize("mode", ["post", "jsonp"])
def test_seed_error_example_is_reproduced_exactly(local_server: ServerProcess, mode: str) -> None:
    client = JumpClient(local_server.url, mode)
    body = client.call("HelloWorldService", "sayHello1", appId="")
    expected = golden("seed_error.json")
    # the seed's error example, key for key and in its order, plus the session header
    assert {k: v for k, v in body.items() if k != "header"} == expected
    assert [k for k in body if k != "header"] == list(expected)
    assert body["header"] == anonymous_header()


def test_seed_success_envelope_has_the_seed_layout(local_server: ServerProcess) -> None:
    client = JumpClient(local_server.url)
    client.login("admin", ADMIN_PASSWORD)
    body = client.session("pingSession", [])
    expected = golden("seed_success.json")
    assert list(body) == list(expected)
    assert body["sid"] == "SessionService" and body["oid"] == "pingSession"
    assert abs(int(body["header"]["map"]["sessionTimeout"]) - 1800) <= 2
    normalised = {
        **body,
        "sid": expected["sid"],
        "oid": expected["oid"],
        "response": expected["response"],
        "header": {"map": {**body["header"]["map"], "sessionTimeout": "1800"}},
    }
    assert normalised == expected


def _normalise_login(body: dict[str, Any]) -> dict[str, Any]:
    text = orjson.dumps(body).decode()
    token = body["response"]["authToken"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token)
    text = text.replace(token, "<token>")
    text = re.sub(r'"sessionId":"\d+"', '"sessionId":"<id>"', text)
    text = re.sub(r'"clientAddress":"127\.0\.0\.1:\d+"', '"clientAddress":"<address>"', text)
    text = re.sub(r'"connectedAt":"[^"]+"', '"connectedAt":"<time>"', text)
    return orjson.loads(text)  # type: ignore[no-any-return]


def test_sheet_login_and_logout_examples(local_server: ServerProcess) -> None:
    client = JumpClient(local_server.url)
    login = client.login("admin", ADMIN_PASSWORD)
    assert _normalise_login(login) == golden("sheet_login.json")
    assert client.cookie == login["response"]["authToken"]
    assert client.logout() == golden("sheet_logout.json")
    assert client.cookie is None


def test_outbound_decodes_the_seed_success_example() -> None:
    raw = (GOLDEN / "seed_success.json").read_bytes()
    decoded = JumpTranslator().decode_response(
        HttpResponse(200, [("content-type", "application/json")], raw),
        CanonicalRequest(Operation.PING, "rosetta", request_id=7),
    )
    assert decoded.error is None and decoded.request_id == 7
    assert decoded.caller is not None
    assert decoded.caller.user == "admin" and decoded.caller.expires_in == 1800


def test_outbound_decodes_the_seed_error_example() -> None:
    raw = (GOLDEN / "seed_error.json").read_bytes()
    with pytest.raises(RosettaError) as caught:
        JumpTranslator().decode_response(
            HttpResponse(200, [], raw), CanonicalRequest(Operation.LIST, "rosetta")
        )
    assert caught.value.kind is ErrorKind.UNSUPPORTED_OPERATION
    assert caught.value.message == "Unable to find service using (HelloWorldService)"
    assert caught.value.native_code is None
