"""The usual FairCom ``listSessions`` reply read in one typed pass: it takes the typed path
exactly when it is of the usual shape, and whatever it is, callers get what the general path
gives."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.faircom.test_records import OWN_TOKEN, _listed_entries, _odd, _owns, _session_lists
from translators import faircom
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    HttpRequest,
    HttpResponse,
    Operation,
    Principal,
    PrincipalKind,
    RosettaError,
)
from translators.faircom import FairComTranslator, TypedListedRows, typed_rows
from translators.jump import JumpTranslator
from translators.session_rows import BRIEF_FIELDS, Brief, SessionRows
from translators.wire import dump_json

FAIRCOM = FairComTranslator()
ENTRY = {"authToken": "session:101", "username": "jdoe", "description": "reporting job"}


def _body(sessions: Any, **changes: Any) -> bytes:
    """A listSessions reply as FairCom servers write it, with ``changes`` to its top-level
    keys (``None`` drops a key)."""
    reply = {"requestId": 1, "result": {"sessions": sessions}, "errorCode": 0, "errorMessage": ""}
    reply |= changes
    return dump_json({key: value for key, value in reply.items() if value is not None})


def _listing(own: str | None) -> CanonicalRequest:
    principal = Principal(PrincipalKind.SESSION, token=own) if own else Principal()
    return CanonicalRequest(Operation.LIST, "faircom", principal=principal)


def _general(body: bytes, own: str | None) -> CanonicalResponse | tuple[str, str]:
    """What the translator's general path makes of a reply: its list, or its error."""
    try:
        result = FAIRCOM.result_of(HttpResponse(200, [], body))
        rows, keys = FAIRCOM.reply_rows(result)
    except RosettaError as exc:
        return exc.kind.value, exc.message
    response = CanonicalResponse(Operation.LIST, sessions=rows, total=len(rows))
    response.caller = faircom._caller_by_key(rows, keys, own)
    return response


def _typed(body: bytes, own: str | None) -> CanonicalResponse | None:
    if typed_rows(body) is None:
        return None
    response = FAIRCOM.decode_response(HttpResponse(200, [], body), _listing(own))
    assert type(response.sessions) is SessionRows
    assert type(response.sessions.codec) is TypedListedRows
    return response


def _faircom_list(response: CanonicalResponse, own: str | None, request_id: Any) -> bytes:
    body: dict[str, Any] = {"api": "admin", "action": "listSessions", "requestId": request_id}
    if own:
        body["authToken"] = own
    http = HttpRequest("POST", "/api", body=dump_json(body))
    rendered = FAIRCOM.encode_response(response, FAIRCOM.decode_request(http), http)
    assert rendered.status == 200
    return rendered.body


def _jump_list(response: CanonicalResponse) -> bytes:
    jump = JumpTranslator({})
    request = CanonicalRequest(Operation.LIST, "jump")
    return jump.encode_response(response, request, HttpRequest("POST", "/presto/edge/api")).body


def _caller_sees(response: CanonicalResponse, own: str | None) -> tuple[Any, ...]:
    """What callers get from a decoded list: the caller found, the total, whole records,
    brief fields, a FairCom listSessions body (bytes) and a JUMP list."""
    sessions = response.sessions
    assert sessions is not None
    return (
        response.caller,
        response.total,
        list(sessions),
        Brief(*BRIEF_FIELDS)(sessions),
        _faircom_list(response, own, 7),
        _jump_list(response),
    )


_request_ids = st.one_of(st.none(), st.integers(-(2**70), 2**70), st.text(max_size=3), _odd)


@st.composite
def _replies(draw: st.DrawFn) -> bytes:
    """A listSessions reply as servers send it, then perhaps changed anywhere: the sessions
    (see ``test_records._session_lists``), the envelope's keys and values."""
    sessions = draw(st.one_of(st.lists(_listed_entries(), max_size=5), _session_lists))
    changes: dict[str, Any] = {"requestId": draw(_request_ids)}
    for key in draw(st.lists(st.sampled_from(["errorCode", "errorMessage", "authToken", "x"]))):
        changes[key] = draw(st.one_of(st.sampled_from([0, 12031, "", "m", OWN_TOKEN]), _odd))
    if draw(st.integers(0, 5)) == 0:
        changes["debugInfo"] = {"warnings": [{"code": 12031, "message": "m"}]}
    if draw(st.integers(0, 5)) == 0:
        changes["result"] = draw(
            st.sampled_from([{}, {"sessions": sessions, "more": 1}, None, [sessions]])
        )
    return _body(sessions, **changes)


@settings(max_examples=400, deadline=None)
@given(_replies(), _owns)
def test_the_typed_path_reads_what_the_general_path_reads(body: bytes, own: str | None) -> None:
    kept = _typed(body, own)
    if kept is None:
        return  # the general path answers, as it always did
    general = _general(body, own)
    assert isinstance(general, CanonicalResponse), general
    assert _caller_sees(kept, own) == _caller_sees(general, own)


@settings(max_examples=200, deadline=None)
@given(st.lists(_listed_entries(), max_size=5), st.one_of(st.none(), st.integers(), st.text()))
def test_every_reply_of_the_usual_shape_takes_the_typed_path(
    entries: list[dict[str, Any]], request_id: Any
) -> None:
    body = _body(entries, requestId=request_id)
    kept = _typed(body, OWN_TOKEN)
    assert kept is not None
    general = _general(body, OWN_TOKEN)
    assert isinstance(general, CanonicalResponse)
    assert _caller_sees(kept, OWN_TOKEN) == _caller_sees(general, OWN_TOKEN)


def test_the_callers_own_session_shows_its_token() -> None:
    own_id = faircom.token_id(OWN_TOKEN)
    body = _body([ENTRY, ENTRY | {"authToken": "session:" + own_id, "username": "admin"}])
    kept = _typed(body, OWN_TOKEN)
    assert kept is not None and kept.caller is not None
    assert (kept.caller.user, kept.caller.session_id) == ("admin", own_id)
    listed = orjson.loads(_faircom_list(kept, OWN_TOKEN, 7))["result"]["sessions"]
    assert [entry["authToken"] for entry in listed] == ["session:101", OWN_TOKEN]


@pytest.mark.parametrize(
    "entry",
    [
        ENTRY | {"authToken": OWN_TOKEN},
        ENTRY | {"authToken": "Session:101"},
        ENTRY | {"username": None},
        ENTRY | {"description": 5},
        ENTRY | {"defaultDatabaseName": "ctreeSQL"},
        {"authToken": "session:101", "username": "jdoe"},
    ],
    ids=["live token", "other prefix", "null user", "number", "describe field", "missing key"],
)
def test_any_other_entry_sends_the_reply_down_the_general_path(entry: Any) -> None:
    assert typed_rows(_body([ENTRY, entry])) is None
    assert typed_rows(_body([ENTRY])) is not None


@pytest.mark.parametrize(
    "body",
    [
        _body([ENTRY], errorCode=12031, errorMessage="no such session"),
        _body([ENTRY], errorCode=None),
        _body([ENTRY], errorCode=False),
        _body([ENTRY], requestId=1.5),
        _body([ENTRY], requestId={"n": 1}),
        _body([ENTRY], debugInfo={"warnings": []}),
        _body([ENTRY], result={"sessions": [ENTRY], "total": 1}),
        _body([ENTRY], result={}),
        _body([ENTRY]) + b" trailing",
        _body([ENTRY]).replace(b'"jdoe', b'"\xffjdoe'),
        b'{"deep": ' + b"[" * 5000 + b"]" * 5000 + b', "errorCode": 0}',
        b"[]",
        b"",
    ],
    ids=[
        "error",
        "no code",
        "bool code",
        "float id",
        "object id",
        "debug info",
        "result extra",
        "no sessions",
        "trailing",
        "utf-8",
        "deeper",
        "list",
        "empty",
    ],
)
def test_odd_bodies_take_the_general_path(body: bytes) -> None:
    assert typed_rows(body) is None


def test_an_error_reply_stays_an_error() -> None:
    body = _body([], errorCode=12031, errorMessage="'authToken' does not match")
    with pytest.raises(RosettaError) as caught:
        FAIRCOM.decode_response(HttpResponse(200, [], body), _listing(None))
    assert caught.value.kind.value == "unauthenticated"


def test_a_caller_whose_request_id_is_a_huge_integer_gets_the_same_list() -> None:
    """FairCom echoes the caller's ``requestId`` as given; one beyond 64 bits makes the whole
    reply go through the standard library's writer, typed rows included."""
    body = _body([ENTRY, ENTRY | {"authToken": "session:102"}])
    kept, general = _typed(body, None), _general(body, None)
    assert kept is not None and isinstance(general, CanonicalResponse)
    sent = _faircom_list(kept, None, 2**70)
    assert sent == _faircom_list(general, None, 2**70)
    assert orjson.loads(sent)["result"]["sessions"][1]["authToken"] == "session:102"
