"""The usual JUMP list reply read in one typed pass: it takes the typed path exactly when it is
of the usual shape, and whatever it is, callers get what the general path gives."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.jump.test_records import _FIELDS, CONNECTION, SESSION, _awkward, _sessions, _usual
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    HttpRequest,
    HttpResponse,
    Operation,
    RosettaError,
)
from translators.faircom import FairComTranslator
from translators.jump import JumpTranslator, typed
from translators.jump.records import TypedRows
from translators.session_rows import BRIEF_FIELDS, Brief, SessionRows
from translators.wire import dump_json

JUMP = JumpTranslator({})
LISTING = CanonicalRequest(Operation.LIST, "jump")
HEADER = {
    "map": {
        "currentUser": "admin",
        "sessionTimeout": "1800",
        "serviceHeader": {"map": {"totalCount": "2"}},
    }
}


def _body(sessions: Any, **changes: Any) -> bytes:
    """A list reply as JUMP servers write it, with ``changes`` to its top-level keys
    (``None`` drops a key)."""
    envelope = {
        "sid": "SessionService",
        "oid": "listSessions",
        "svcVersion": "0.1",
        "invId": "",
        "version": "1.0",
        "header": HEADER,
        "error": "",
        "errorCode": "",
        "response": sessions,
    } | changes
    return dump_json({key: value for key, value in envelope.items() if value is not None})


def _general(body: bytes) -> CanonicalResponse | tuple[str, str]:
    """What the translator's general path makes of a 200 reply: its list, or its error."""
    try:
        return JUMP._decode_any(HttpResponse(200, [], body), LISTING)
    except RosettaError as exc:
        return exc.kind.value, exc.message


def _jump_list(response: CanonicalResponse, fields: list[str] | None, result_format: str) -> bytes:
    envelope = {"sid": "SessionService", "oid": "listSessions", "result_format": result_format}
    request = CanonicalRequest(
        Operation.LIST, "jump", fields=fields, extras={"jump": {"envelope": envelope}}
    )
    rendered = JUMP.encode_response(response, request, HttpRequest("POST", "/presto/edge/api"))
    assert rendered.status == 200
    return rendered.body


def _faircom_list(response: CanonicalResponse) -> Any:
    request = CanonicalRequest(Operation.LIST, "faircom", request_id=1)
    rendered = FairComTranslator({}).encode_response(response, request, HttpRequest("POST", "/api"))
    return orjson.loads(rendered.body)


def _caller_sees(response: CanonicalResponse) -> tuple[Any, ...]:
    """What callers get from a decoded list: who the upstream says we are, the total, whole
    records, brief fields, a JUMP list as JSON and as XML (bytes), a FairCom list."""
    sessions = response.sessions
    assert sessions is not None
    return (
        response.caller,
        response.total,
        list(sessions),
        Brief(*BRIEF_FIELDS)(sessions),
        _jump_list(response, None, "json"),
        _jump_list(response, None, "xml"),
        _faircom_list(response),
    )


def _typed(body: bytes) -> CanonicalResponse | None:
    listed = typed.typed_list(body)
    return None if listed is None else JUMP.decode_response(HttpResponse(200, [], body), LISTING)


_texts = st.one_of(st.none(), st.just(""), st.text(max_size=5), _awkward)


@st.composite
def _replies(draw: st.DrawFn) -> bytes:
    """A list reply as servers send it, then perhaps changed anywhere: the sessions (see
    ``test_records._sessions``), the header's values, the error, keys dropped or added."""
    sessions = draw(st.lists(st.one_of(_usual, _sessions()), max_size=5))
    values: dict[str, Any] = {
        "currentUser": draw(st.one_of(st.sampled_from(["admin", "anonymousUser"]), _texts)),
        "sessionTimeout": draw(st.one_of(st.sampled_from(["1800", "12.5", "x"]), _texts)),
        "serviceHeader": {
            "map": {
                "totalCount": draw(
                    st.one_of(st.sampled_from([str(len(sessions)), "7", "\u00b2", "-1"]), _texts)
                )
            }
        },
    }
    for key in draw(st.lists(st.sampled_from([*values, "locale"]), max_size=2)):
        values[key] = draw(_awkward)
    changes: dict[str, Any] = {
        "header": draw(st.sampled_from([{"map": values}, {"map": values}, None])),
    }
    for key in draw(st.lists(st.sampled_from(["error", "errorCode", "appId", "sid", "x"]))):
        changes[key] = draw(st.one_of(_texts, st.just("Failed to handle given request.")))
    return _body(draw(st.sampled_from([sessions, {"sessions": sessions}])), **changes)


@settings(max_examples=400, deadline=None)
@given(_replies())
def test_the_typed_path_reads_what_the_general_path_reads(body: bytes) -> None:
    kept = _typed(body)
    if kept is None:
        return  # the general path answers, as it always did
    general = _general(body)
    assert isinstance(general, CanonicalResponse), general
    assert _caller_sees(kept) == _caller_sees(general)


@settings(max_examples=150, deadline=None)
@given(_replies(), _FIELDS)
def test_a_projected_list_is_the_same_from_typed_rows(
    body: bytes, fields: list[str] | None
) -> None:
    kept = _typed(body)
    general = _general(body)
    if kept is None or not isinstance(general, CanonicalResponse):
        return
    for result_format in ("json", "xml"):
        assert _jump_list(kept, fields, result_format) == _jump_list(general, fields, result_format)


_usual_ints = _usual.filter(lambda data: type(data["idleSeconds"]) is int)


@settings(max_examples=200, deadline=None)
@given(st.lists(_usual_ints, max_size=5), st.booleans())
def test_every_reply_of_the_usual_shape_takes_the_typed_path(
    sessions: list[dict[str, Any]], wrapped: bool
) -> None:
    body = _body({"sessions": sessions} if wrapped else sessions)
    kept = _typed(body)
    assert kept is not None
    general = _general(body)
    assert isinstance(general, CanonicalResponse)
    assert _caller_sees(kept) == _caller_sees(general)


def _timed(session: dict[str, Any], timeout: Any) -> dict[str, Any]:
    """The session with a time-out where JUMP writes it (before ``connections``)."""
    data = {key: value for key, value in session.items() if key != "connections"}
    return data | {"sessionTimeout": timeout, "connections": session["connections"]}


def test_time_outs_connections_and_key_order_take_the_typed_path() -> None:
    with_connections = _timed(SESSION, "1200") | {"connections": [CONNECTION]}
    reordered = dict(reversed(SESSION.items()))
    body = _body([with_connections, reordered])
    kept = _typed(body)
    general = _general(body)
    assert kept is not None and isinstance(general, CanonicalResponse)
    assert _caller_sees(kept) == _caller_sees(general)
    assert kept.sessions is not None
    assert kept.sessions[0].extras == {"jump": {"sessionTimeout": "1200"}}
    assert kept.sessions[0].connections[0].reads == 2197
    assert kept.caller is not None and kept.caller.user == "admin"
    assert kept.total == 2


@pytest.mark.parametrize(
    "session",
    [
        SESSION | {"sessionId": 101},
        SESSION | {"sessionId": ""},
        SESSION | {"idleSeconds": 1.5},
        SESSION | {"idleSeconds": True},
        SESSION | {"user": None},
        SESSION | {"connectedAt": "2016-08-31 03:03:12Z"},
        SESSION | {"connectedAt": 1472612592000},
        SESSION | {"locale": "en"},
        SESSION | {"connections": [CONNECTION | {"port": 3306}]},
        SESSION | {"connections": [CONNECTION | {"reads": None}]},
        _timed(SESSION, 1200),
        {key: value for key, value in SESSION.items() if key != "nodeId"},
    ],
    ids=[
        "integer id",
        "empty id",
        "float idle",
        "bool idle",
        "null text",
        "odd moment",
        "epoch moment",
        "unknown key",
        "connection key",
        "null counter",
        "integer time-out",
        "missing key",
    ],
)
def test_any_other_session_sends_the_reply_down_the_general_path(session: Any) -> None:
    assert typed.typed_list(_body([SESSION, session])) is None
    assert typed.typed_list(_body([SESSION])) is not None


@pytest.mark.parametrize(
    "body",
    [
        _body([SESSION], error="Failed to handle given request. Error = boom"),
        _body([SESSION], sid=None),
        _body([SESSION], sid=7),
        _body([SESSION], response=None),
        _body([SESSION], response={"sessions": [SESSION], "more": True}),
        _body([SESSION], locale="en"),
        _body([SESSION], header={"map": {"currentUser": "admin", "roles": ["a"]}}),
        _body([SESSION], header={"map": {"serviceHeader": {"map": {"totalCount": 1}}}}),
        _body([SESSION]) + b" trailing",
        _body([SESSION | {"user": "\ufffd"}]).replace("\ufffd".encode(), b"\\ud800"),
        _body([SESSION]).replace(b'"jdoe', b'"\xffjdoe'),
        _body([SESSION], appId=[[[[[[[[]]]]]]]]),
        b'{"deep": ' + b"[" * 5000 + b"]" * 5000 + b', "sid": "", "response": []}',
        b"[]",
        b"",
    ],
    ids=[
        "error",
        "no sid",
        "number sid",
        "no response",
        "response extra",
        "top-level extra",
        "header extra",
        "number total",
        "trailing",
        "surrogate",
        "utf-8",
        "nested app id",
        "deeper",
        "list",
        "empty",
    ],
)
def test_odd_bodies_take_the_general_path(body: bytes) -> None:
    assert typed.typed_list(body) is None


def test_an_error_reply_stays_an_error() -> None:
    body = _body([], error="Failed to handle given request. Error = denied", errorCode="JBPS1")
    with pytest.raises(RosettaError) as caught:
        JUMP.decode_response(HttpResponse(200, [], body), LISTING)
    assert caught.value.message == "denied"


def test_a_partly_decoded_list_renders_like_the_rest() -> None:
    """Rows read whole before rendering (a filter, say) are rendered from their records."""
    body = _body([SESSION, SESSION | {"sessionId": "102"}])
    kept, general = _typed(body), _general(body)
    assert kept is not None and isinstance(general, CanonicalResponse)
    assert kept.sessions is not None and kept.sessions[1].id == "102"  # decodes row 1 only
    assert _caller_sees(kept) == _caller_sees(general)


def test_a_caller_whose_invocation_id_is_a_huge_integer_gets_the_same_list() -> None:
    """The JUMP envelope echoes the caller's ``invId`` as given; one beyond 64 bits makes
    the whole reply go through the standard library's writer, typed rows included."""
    body = _body([SESSION, SESSION | {"sessionId": "102"}])
    kept, general = _typed(body), _general(body)
    assert kept is not None and isinstance(general, CanonicalResponse)
    envelope = {"sid": "SessionService", "oid": "listSessions", "inv_id": 2**70}
    request = CanonicalRequest(Operation.LIST, "jump", extras={"jump": {"envelope": envelope}})
    http = HttpRequest("POST", "/presto/edge/api")
    sent = [JUMP.encode_response(r, request, http).body for r in (kept, general)]
    assert sent[0] == sent[1]
    assert orjson.loads(sent[0])["response"][1]["sessionId"] == "102"


def test_the_translator_reads_the_usual_reply_through_the_typed_path() -> None:
    response = JUMP.decode_response(HttpResponse(200, [], _body([SESSION])), LISTING)
    assert type(response.sessions) is SessionRows
    assert type(response.sessions.codec) is TypedRows
    assert response.total == 2 and response.sessions[0].id == "101"
