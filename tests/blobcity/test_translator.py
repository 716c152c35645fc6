"""The BlobCity translator without a server: option validation, configurable query codes, the
lenient form parser, the outbound request bytes (JSON and form) and how upstream replies map to
canonical responses and error kinds."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.blobcity import BlobCityTranslator
from translators.blobcity.form import decode_value, parse_form
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


class Channel:
    """Just enough of an upstream channel to build requests."""

    def __init__(self, options: Mapping[str, Any], credentials: UpstreamCredentials) -> None:
        self._options = options
        self._credentials = credentials

    @property
    def base_url(self) -> str:
        return "http://blobcity.invalid"

    @property
    def options(self) -> Mapping[str, Any]:
        return self._options

    @property
    def credentials(self) -> UpstreamCredentials:
        return self._credentials

    @property
    def cache_key(self) -> str:
        return "test"

    async def send(self, request: HttpRequest) -> HttpResponse:
        raise AssertionError("not sent")

    async def cached(self, name: str) -> str | None:
        return None

    async def remember(self, name: str, value: str | None) -> None:
        return None


def decode(translator: BlobCityTranslator, body: dict[str, Any]) -> CanonicalRequest:
    return translator.decode_request(HttpRequest("POST", "/rest/bquery", body=orjson.dumps(body)))


def bq(code: str, p: Any = None) -> dict[str, Any]:
    return {"username": "u", "password": "pw", "q": code, "p": p}


# options --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        {"query_codes": "list"},
        {"query_codes": {"session.login": "login"}},
        {"query_codes": {"session.list": ""}},
        {"query_codes": {"session.list": []}},
        {"query_codes": {"session.list": "ping"}},  # collides with session.ping's default
        {"query_codes": {"session.list": "a", "session.get": "A"}},
        {"form": "yes"},
        {"anonymous_ping": 1},
        {"colour": "blue"},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BlobCityTranslator(options)


def test_configured_query_codes_replace_the_defaults() -> None:
    translator = BlobCityTranslator(
        {
            "query_codes": {
                "session.list": ["LIST-CONNECTED", "who"],
                "verify_credentials": "check-login",
                "session.kill": "drop-session",
            }
        }
    )
    assert decode(translator, bq("list_connected")).operation is Operation.LIST
    assert decode(translator, bq("WHO")).operation is Operation.LIST
    assert decode(translator, bq("Check_Login")).operation is Operation.PING
    assert decode(translator, bq("drop-session", {"id": 5})).filters.ids == ["5"]
    for old in ("list-sessions", "verify-credentials", "kill-session"):
        with pytest.raises(RosettaError) as caught:
            decode(translator, bq(old))
        assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert decode(translator, bq("describe-session", {"id": "1"})).operation is Operation.GET
    request = CanonicalRequest(Operation.LIST, "rosetta")
    built = translator.encode_request(request, Channel({}, UpstreamCredentials("u", "pw")))
    assert orjson.loads(built.body)["q"] == "LIST-CONNECTED"


def test_payload_maps_to_filters_and_paging() -> None:
    request = decode(
        BlobCityTranslator(),
        bq(
            "list-sessions",
            {
                "ids": ["1", 2],
                "id": "3",
                "users": ["a"],
                "user": "b",
                "node": "n",
                "address_prefix": "10.",
                "offset": 2,
                "limit": 5,
            },
        ),
    )
    assert request.filters == Filters(
        ids=["3", "1", "2"], users=["b", "a"], node_id="n", address_prefix="10."
    )
    assert (request.offset, request.limit) == (2, 5)
    assert request.principal.kind is PrincipalKind.PASSWORD
    assert request.extras == {"blobcity": {"query": "list-sessions"}}


def test_api_key_is_a_bearer_principal_and_failure_says_invalid_api_key() -> None:
    translator = BlobCityTranslator()
    http = HttpRequest("POST", "/rest/bquery", body=b'{"key":"k-1","q":"list-sessions"}')
    request = translator.decode_request(http)
    assert request.principal == Principal(PrincipalKind.BEARER, token="k-1")
    error = RosettaError(ErrorKind.UNAUTHENTICATED, "unknown or expired token")
    reply = translator.encode_response(
        CanonicalResponse(Operation.LIST, error=error), request, http
    )
    assert orjson.loads(reply.body)["code"] == "INVALID_API_KEY"


def test_anonymous_ping_can_be_refused_by_option() -> None:
    body = {"q": "ping"}
    assert decode(BlobCityTranslator(), body).principal.kind is PrincipalKind.ANONYMOUS
    with pytest.raises(RosettaError) as caught:
        decode(BlobCityTranslator({"anonymous_ping": False}), body)
    assert caught.value.kind is ErrorKind.UNAUTHENTICATED


def test_every_error_kind_renders_with_a_documented_code() -> None:
    translator = BlobCityTranslator()
    http = HttpRequest("POST", "/rest/bquery")
    codes = set()
    for kind in ErrorKind:
        response = CanonicalResponse(Operation.PING, error=RosettaError(kind, "detail"))
        reply = translator.encode_response(response, None, http)
        body = orjson.loads(reply.body)
        assert reply.status == 200 and body["ack"] == "0"
        assert body["code"] == translator.error_table[kind][1]
        assert body["message"] == "detail"
        codes.add(body["code"])
    assert len(codes) == len(ErrorKind)


# form parser ----------------------------------------------------------------------------------
def test_form_parser_keeps_unencoded_values_whole() -> None:
    fields = parse_form('username=ro&ot&password=a+b%zz&q={"q":"ping","password":"x&y=1"}&ds=d')
    assert fields["username"].decoded == "ro&ot"
    assert fields["password"].readings() == ("a+b%zz",)
    assert fields["q"].raw == '{"q":"ping","password":"x&y=1"}'
    assert fields["ds"].decoded == "d"
    assert fields.agrees("password", "a+b%zz")


def test_form_parser_decodes_encoded_values() -> None:
    fields = parse_form("username=a%20b&password=c+d&q=%7B%7D")
    assert fields["username"].decoded == "a b"
    assert fields["password"].readings() == ("c d", "c+d")
    assert fields["q"].decoded == "{}"
    assert decode_value("%ff") == "%ff"  # not UTF-8: kept as sent


def test_form_parser_refuses_ambiguity() -> None:
    for text in ("q=1&q=2", "garbage", "%%%&&&==="):
        with pytest.raises(RosettaError):
            parse_form(text)


# outbound -------------------------------------------------------------------------------------
def test_outbound_json_request() -> None:
    translator = BlobCityTranslator()
    request = CanonicalRequest(
        Operation.LIST,
        "maxscale",
        filters=Filters(users=["jdoe"], node_id="node-a", address_prefix="10."),
        offset=1,
        limit=2,
    )
    built = translator.encode_request(request, Channel({}, UpstreamCredentials("root", "pw")))
    assert (built.method, built.path) == ("POST", "/rest/bquery")
    assert built.headers == {"content-type": "application/json"}
    assert orjson.loads(built.body) == {
        "username": "root",
        "password": "pw",
        "q": "list-sessions",
        "p": {"user": "jdoe", "node": "node-a", "address-prefix": "10.", "offset": 1, "limit": 2},
    }


def test_outbound_form_request_repeats_credentials_in_q() -> None:
    translator = BlobCityTranslator({"form": True})
    request = CanonicalRequest(Operation.KILL, "faircom", filters=Filters(ids=["7"]))
    channel = Channel({"form": True}, UpstreamCredentials("ro&ot", "p+w d"))
    built = translator.encode_request(request, channel)
    assert built.headers == {"content-type": "application/x-www-form-urlencoded"}
    fields = parse_qs(built.body.decode(), strict_parsing=True)
    assert fields["username"] == ["ro&ot"] and fields["password"] == ["p+w d"]
    assert orjson.loads(fields["q"][0]) == {
        "q": "kill-session",
        "username": "ro&ot",
        "password": "p+w d",
        "p": {"id": "7"},
    }
    ping = translator.encode_request(
        CanonicalRequest(Operation.PING, "faircom"), Channel({}, UpstreamCredentials())
    )
    assert orjson.loads(parse_qs(ping.body.decode())["q"][0]) == {"q": "ping", "p": None}


def test_outbound_token_goes_as_key_and_verify_is_kept() -> None:
    translator = BlobCityTranslator()
    inbound = decode(translator, bq("VERIFY_CREDENTIALS"))
    built = translator.encode_request(inbound, Channel({}, UpstreamCredentials(token="t")))
    assert orjson.loads(built.body) == {"key": "t", "q": "verify-credentials", "p": {}}


@pytest.mark.parametrize("operation", [Operation.LOGIN, Operation.LOGOUT, Operation.ALTER])
def test_outbound_login_logout_alter_are_unsupported(operation: Operation) -> None:
    with pytest.raises(RosettaError) as caught:
        BlobCityTranslator().encode_request(
            CanonicalRequest(operation, "rosetta"), Channel({}, UpstreamCredentials("u", "p"))
        )
    assert caught.value.kind is ErrorKind.UNSUPPORTED_OPERATION


def reply(body: Any, status: int = 200) -> HttpResponse:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return HttpResponse(status, [("content-type", "application/json")], raw)


def test_upstream_success_with_integer_ack_and_time_kept() -> None:
    translator = BlobCityTranslator()
    request = CanonicalRequest(Operation.KILL_ALL, "rosetta")
    decoded = translator.decode_response(reply({"ack": 1, "time": 1234, "rows": 3}), request)
    assert decoded.affected == 3 and decoded.elapsed_ms == 1234.0
    rendered = translator.encode_response(decoded, request, HttpRequest("POST", "/rest/bquery"))
    assert orjson.loads(rendered.body) == {"ack": "1", "time": 1234, "rows": 3, "p": {}}


def test_upstream_session_round_trip_keeps_unknown_fields() -> None:
    translator = BlobCityTranslator()
    session = {
        "id": 9,
        "user": "u",
        "client-address": "1.2.3.4:5",
        "connected-at": "2024-01-05T07:24:06Z",
        "idle-seconds": 1.5,
        "connections": [{"server": "s", "reads": 1, "writes": 2, "tls": True}],
        "priority": "high",
    }
    request = CanonicalRequest(Operation.GET, "blobcity", filters=Filters(ids=["9"]))
    decoded = translator.decode_response(reply({"ack": "1", "time": 0, "p": session}), request)
    assert decoded.session is not None and decoded.session.id == "9"
    assert decoded.session.extras == {"blobcity": {"priority": "high"}}
    rendered = orjson.loads(
        translator.encode_response(decoded, request, HttpRequest("POST", "/rest/bquery")).body
    )
    assert rendered["p"]["priority"] == "high"
    assert rendered["p"]["connections"][0]["tls"] is True


@pytest.mark.parametrize(
    ("body", "kind", "native"),
    [
        (
            {"ack": "0", "code": "APP003", "cause": "Invalid credentials"},
            "unauthenticated",
            "APP003",
        ),
        ({"ack": 0, "code": "DBQEX", "message": "bad query"}, "bad_request", "DBQEX"),
        ({"ack": "0", "code": "DATASTORE_INVALID", "cause": "x"}, "not_found", "DATASTORE_INVALID"),
        ({"ack": "0", "code": "DB001", "cause": "x"}, "not_found", "DB001"),
        ({"ack": "0", "code": "NOT AUTHORISED", "cause": "x"}, "forbidden", "NOT AUTHORISED"),
        (
            {"ack": "0", "code": "INVALID_API_KEY", "cause": "x"},
            "unauthenticated",
            "INVALID_API_KEY",
        ),
        ({"ack": "0", "code": "UNKNOWN_ERROR", "cause": "x"}, "upstream_error", "UNKNOWN_ERROR"),
        ({"ack": "0", "code": "WHATEVER", "cause": "x"}, "upstream_error", "WHATEVER"),
        ({"ack": "0", "cause": "Invalid credentials"}, "unauthenticated", None),
        ({"ack": "0", "cause": "Invalid query format"}, "bad_request", None),
        ({"ack": "0"}, "upstream_error", None),
        ({"ack": "2"}, "upstream_error", None),
        ({"result": "ok"}, "upstream_error", None),
        ([1], "upstream_error", None),
        (b"<html>502</html>", "upstream_error", None),
        ({"ack": "1", "p": "not-a-list"}, "upstream_error", None),
        ({"ack": "1", "p": {"sessions": [{"id": True}]}}, "upstream_error", None),
    ],
)
def test_upstream_failures_map_to_canonical_kinds(body: Any, kind: str, native: str | None) -> None:
    request = CanonicalRequest(Operation.LIST, "rosetta")
    with pytest.raises(RosettaError) as caught:
        BlobCityTranslator().decode_response(reply(body), request)
    assert caught.value.kind.value == kind
    assert caught.value.native_code == native


def test_native_code_survives_a_blobcity_to_blobcity_hop() -> None:
    translator = BlobCityTranslator()
    request = decode(translator, bq("list-sessions"))
    with pytest.raises(RosettaError) as caught:
        translator.decode_response(
            reply({"ack": "0", "code": "DATASTORE_INVALID", "cause": "no ds"}), request
        )
    response = CanonicalResponse(Operation.LIST, error=caught.value)
    rendered = translator.encode_response(response, request, HttpRequest("POST", "/rest/bquery"))
    assert orjson.loads(rendered.body) == {
        "ack": "0",
        "code": "DATASTORE_INVALID",
        "cause": "no ds",
        "message": "no ds",
    }


def test_call_upstream_is_one_round_trip() -> None:
    class Replying(Channel):
        sent: list[HttpRequest] = []

        async def send(self, request: HttpRequest) -> HttpResponse:
            self.sent.append(request)
            return reply({"ack": "1", "time": 2, "rows": 0, "p": {"user": "u"}})

    channel = Replying({}, UpstreamCredentials("u", "pw"))
    response = asyncio.run(
        BlobCityTranslator().call_upstream(CanonicalRequest(Operation.PING, "rosetta"), channel)
    )
    assert len(channel.sent) == 1
    assert response.caller is not None and response.caller.user == "u"


# robustness -----------------------------------------------------------------------------------
_FRAGMENTS = st.sampled_from(
    [
        b"q=",
        b"username=",
        b"&",
        b"=",
        b"{",
        b"}",
        b'"q"',
        b":",
        b"%",
        b"%7B",
        b"+",
        b"null",
        b'{"q":"list-sessions","p":',
        b'"p":{"id":',
        b"[",
        b"]",
        b"\xff",
        b" ",
        b'"ping"',
        b",",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.lists(_FRAGMENTS, max_size=30).map(b"".join)))
def test_any_body_decodes_or_fails_as_a_rosetta_error(body: bytes) -> None:
    translator = BlobCityTranslator()
    http = HttpRequest("POST", "/rest/bquery", body=body)
    try:
        request: CanonicalRequest | None = translator.decode_request(http)
    except RosettaError as error:
        request = None
        response = CanonicalResponse(Operation.PING, error=error)
    else:
        response = CanonicalResponse(request.operation)
    rendered = translator.encode_response(response, request, http)
    assert rendered.status == 200
    assert orjson.loads(rendered.body)["ack"] in ("0", "1")
