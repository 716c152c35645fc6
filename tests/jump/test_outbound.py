"""The JUMP outbound side without a server: requests it builds, replies it decodes (errors into
canonical kinds, garbage into upstream_error), the expiry rule, and option validation."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    Filters,
    HttpRequest,
    HttpResponse,
    Operation,
    Principal,
    PrincipalKind,
    RosettaError,
    UpstreamCredentials,
)
from translators.jump import JumpTranslator
from translators.jump.translator import _session_expired
from translators.jump.wire import read_cookie, set_cookie_from_reply, to_xml, valid_callback


class Channel:
    """An upstream channel that records what is sent and answers from a script."""

    def __init__(self, replies: list[HttpResponse], creds: UpstreamCredentials) -> None:
        self.replies = replies
        self.sent: list[HttpRequest] = []
        self.state: dict[str, str] = {}
        self._creds = creds

    base_url = "http://upstream.test"
    options: dict[str, Any] = {}
    cache_key = "caller"

    @property
    def credentials(self) -> UpstreamCredentials:
        return self._creds

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        return self.replies.pop(0)

    async def cached(self, name: str) -> str | None:
        return self.state.get(name)

    async def remember(self, name: str, value: str | None) -> None:
        if value is None:
            self.state.pop(name, None)
        else:
            self.state[name] = value


def envelope(
    response: Any = "", *, user: str = "admin", error: str = "", code: str = ""
) -> HttpResponse:
    body = {
        "sid": "SessionService",
        "oid": "x",
        "svcVersion": "0.1",
        "invId": "",
        "version": "1.0",
        "header": {
            "map": {"currentUser": user, "sessionTimeout": "1700", "serviceHeader": {"map": {}}}
        },
        "error": error,
        "errorCode": code,
        "response": response,
    }
    return HttpResponse(200, [("content-type", "application/json")], orjson.dumps(body))


def login_reply(token: str) -> HttpResponse:
    return envelope({"authToken": token, "user": "admin", "sessionId": "9", "session": None})


SESSION = {"sessionId": 5, "user": "jdoe", "idleSeconds": 3, "connectedAt": 1472612592000, "x": 1}


def test_encodes_named_params_and_the_cookie() -> None:
    translator = JumpTranslator({"session_service": "DbSessions", "path": "/mashzone/edge/api"})
    request = CanonicalRequest(
        Operation.LIST, "rosetta", request_id="r1", filters=Filters(users=["jdoe"]), limit=5
    )
    channel = Channel([], UpstreamCredentials(token="tok/en"))
    http = translator.encode_request(request, channel)
    assert http.method == "POST" and http.path == "/mashzone/edge/api"
    assert http.headers["cookie"] == "JSESSIONID=tok/en"
    assert orjson.loads(http.body) == {
        "version": "1.0",
        "sid": "DbSessions",
        "svcVersion": "0.1",
        "oid": "listSessions",
        "params": {"users": ["jdoe"], "limit": 5},
        "header": {"invId": "r1"},
    }
    login = translator.encode_request(
        CanonicalRequest(Operation.LOGIN, "rosetta"), Channel([], UpstreamCredentials("u", "p"))
    )
    assert orjson.loads(login.body)["params"] == ["u", "p"]
    assert "cookie" not in login.headers


def test_decodes_records_and_keeps_unknown_fields() -> None:
    translator = JumpTranslator()
    decoded = translator.decode_response(
        envelope([SESSION]), CanonicalRequest(Operation.LIST, "rosetta")
    )
    assert decoded.sessions is not None and decoded.total == 1
    record = decoded.sessions[0]
    assert record.id == "5" and record.idle_seconds == 3
    assert record.connected_at is not None and record.connected_at.year == 2016
    assert record.extras == {"jump": {"x": 1}}
    assert decoded.caller is not None and decoded.caller.expires_in == 1700


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (HttpResponse(500, [], b"oops"), ErrorKind.UPSTREAM_ERROR),
        (HttpResponse(200, [], b"<html>"), ErrorKind.UPSTREAM_ERROR),
        (HttpResponse(200, [], b'{"a": 1}'), ErrorKind.UPSTREAM_ERROR),
        (HttpResponse(200, [], b"Authentication failed.Userid:bob."), ErrorKind.UNAUTHENTICATED),
        (envelope(error="x", code="RSJE0404"), ErrorKind.NOT_FOUND),
        (envelope(error="x", code="RSJE0400"), ErrorKind.BAD_REQUEST),
        (envelope(error="Session has expired", code="JBP0001"), ErrorKind.UNAUTHENTICATED),
        (envelope(error="disk full", code="JBP0002"), ErrorKind.UPSTREAM_ERROR),
        (envelope(error="Unable to find operation using (x)"), ErrorKind.UNSUPPORTED_OPERATION),
        (envelope({"nope": 1}), ErrorKind.UPSTREAM_ERROR),
    ],
)
def test_decodes_failures_into_canonical_kinds(reply: HttpResponse, kind: ErrorKind) -> None:
    with pytest.raises(RosettaError) as caught:
        JumpTranslator().decode_response(reply, CanonicalRequest(Operation.GET, "rosetta"))
    assert caught.value.kind is kind


def test_native_code_is_kept() -> None:
    with pytest.raises(RosettaError) as caught:
        JumpTranslator().decode_response(
            envelope(error="disk full", code="JBP0002"), CanonicalRequest(Operation.GET, "x")
        )
    assert caught.value.native_code == "JBP0002"


def test_expiry_rule() -> None:
    assert _session_expired(envelope(error="x", code="RSJE0401", user="anonymousUser"))
    assert _session_expired(envelope([], user="anonymousUser"))
    assert not _session_expired(envelope(error="x", code="RSJE0404", user="anonymousUser"))
    assert not _session_expired(envelope([], user="admin"))


def test_logs_in_once_then_again_once_on_expiry() -> None:
    asyncio.run(_logs_in_once_then_again_once_on_expiry())


async def _logs_in_once_then_again_once_on_expiry() -> None:
    translator = JumpTranslator()
    request = CanonicalRequest(
        Operation.GET,
        "rosetta",
        principal=Principal(PrincipalKind.PASSWORD, "admin", "pw"),
        filters=Filters(ids=["5"]),
    )
    channel = Channel(
        [login_reply("t1"), envelope(SESSION), envelope(SESSION)],
        UpstreamCredentials("admin", "pw"),
    )
    await translator.call_upstream(request, channel)
    await translator.call_upstream(request, channel)
    assert [orjson.loads(s.body)["oid"] for s in channel.sent] == [
        "login",
        "getSession",
        "getSession",
    ]
    assert channel.sent[2].headers["cookie"] == "JSESSIONID=t1"

    channel.replies = [
        envelope(error="gone", code="RSJE0401", user="anonymousUser"),
        login_reply("t2"),
        envelope(SESSION),
    ]
    decoded = await translator.call_upstream(request, channel)
    assert decoded.session is not None and decoded.session.id == "5"
    assert channel.sent[-1].headers["cookie"] == "JSESSIONID=t2" and channel.state["cookie"] == "t2"

    channel.replies = [
        envelope(error="gone", code="RSJE0401", user="anonymousUser"),
        login_reply("t3"),
        envelope(error="gone", code="RSJE0401", user="anonymousUser"),
    ]
    with pytest.raises(RosettaError) as caught:  # only one retry
        await translator.call_upstream(request, channel)
    assert caught.value.kind is ErrorKind.UNAUTHENTICATED and not channel.replies


def test_login_token_falls_back_to_the_cookie() -> None:
    reply = envelope({"user": "admin"})
    reply.headers.append(("set-cookie", "other=1, JSESSIONID=abc123; Path=/; HttpOnly"))
    decoded = JumpTranslator().decode_response(reply, CanonicalRequest(Operation.LOGIN, "x"))
    assert decoded.token == "abc123"


@pytest.mark.parametrize(
    "options",
    [
        {"bogus": 1},
        {"session_service": "a b"},
        {"session_service": "UserManagerService"},
        {"cookie_name": "a;b"},
        {"cookie_samesite": "sometimes"},
        {"default_session_timeout": -1},
        {"path": "relative"},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        JumpTranslator(options)


def test_wire_helpers() -> None:
    assert valid_callback("jQuery1_7.cb") and valid_callback("$")
    assert not valid_callback("a(1)") and not valid_callback("a.") and not valid_callback("")
    assert read_cookie("a=1; JSESSIONID=x%2Fy; b=2", "JSESSIONID") == "x/y"
    assert read_cookie("a=1", "JSESSIONID") is None
    assert set_cookie_from_reply("JSESSIONID=; Max-Age=0", "JSESSIONID") is None
    assert to_xml({"a": [1, None, True]}) == (
        '<?xml version="1.0" encoding="UTF-8"?><response><a><item>1</item>'
        '<item null="true" /><item>true</item></a></response>'
    )


def test_https_login_cookie_is_secure() -> None:
    translator = JumpTranslator({"cookie_samesite": "strict", "cookie_name": "PRESTOSID"})
    http = HttpRequest(
        "POST",
        "/presto/edge/api",
        body=b'{"sid":"UserManagerService","oid":"login","params":["a","b"]}',
        scheme="https",
    )
    request = translator.decode_request(http)
    rendered = translator.encode_response(
        CanonicalResponse(Operation.LOGIN, token="t0k"), request, http
    )
    assert (
        rendered.header("set-cookie") == "PRESTOSID=t0k; Path=/; HttpOnly; SameSite=Strict; Secure"
    )
