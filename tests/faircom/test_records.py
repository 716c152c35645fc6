"""FairCom session objects to canonical records and back: the fast path for the listed shape
(what ``listSessions`` answers) and the general path agree on every input, a list reply kept
as received reads like the decoded list, and a FairCom caller gets the same answer from it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    SessionRecord,
)
from translators.faircom import FairComTranslator, is_listed, listed_tokens
from translators.session_rows import BRIEF_FIELDS, Brief, SessionRows
from translators.wire import dump_json

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
OWN_TOKEN = "own-live-token-3f9a"
TRANSLATOR = FairComTranslator()

_ids = st.one_of(
    st.sampled_from(["101", "", "54000", faircom.token_id(OWN_TOKEN)]), st.text(max_size=6)
)
_texts = st.one_of(st.sampled_from(["", "jdoe", "reporting job"]), st.text(max_size=8))
_tokens = st.one_of(
    _ids.map(lambda i: faircom.SESSION_ID_PREFIX + i),
    st.sampled_from([OWN_TOKEN, "", "session", "Session:1", " session:1"]),
    st.text(max_size=10),
)
_odd = st.one_of(st.none(), st.integers(), st.booleans(), st.lists(st.text(max_size=2), max_size=2))
_timestamps = st.one_of(
    st.sampled_from(
        ["2016-08-31T03:03:12", "2026-01-02T03:00:00Z", "2026-01-02T04:00:00+01:00", "", "x"]
    ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)).map(
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%S")
    ),
)
_KEYS = ("authToken", "username", "description")


@st.composite
def _listed_entries(draw: st.DrawFn) -> dict[str, Any]:
    """What listSessions answers for another caller's session, keys in any order."""
    values = {
        "authToken": faircom.SESSION_ID_PREFIX + draw(_ids),
        "username": draw(_texts),
        "description": draw(_texts),
    }
    order = draw(st.permutations(_KEYS))
    return {key: values[key] for key in order}


_awkward = st.fixed_dictionaries(
    {},
    optional={
        "authToken": st.one_of(_tokens, _odd),
        "username": st.one_of(_texts, _odd),
        "description": st.one_of(_texts, _odd),
        "defaultDatabaseName": st.one_of(_texts, _odd),
        "sessionStartTimestamp": st.one_of(_timestamps, _odd),
        "sessionLastAccessedTimestamp": st.one_of(_timestamps, _odd),
        "idleConnectionTimeoutSeconds": st.integers(min_value=0, max_value=10**6),
        "password": _texts,
        "custom": st.one_of(_texts, _odd),
    },
)
_objects = st.one_of(
    _listed_entries(),
    _listed_entries(),
    _awkward,
    st.fixed_dictionaries({key: st.one_of(_tokens, _texts, _odd) for key in _KEYS}),
    st.fixed_dictionaries(
        {"authToken": _tokens, "username": _texts, "custom": st.one_of(_texts, _odd)}
    ),
)
_session_lists = st.lists(st.one_of(_objects, _objects, _objects, _odd), max_size=6)


def _outcome(action: Any) -> Any:
    """What an action returns, or the error it raises (for comparing two paths)."""
    try:
        return "ok", action()
    except RosettaError as exc:
        return "error", exc.kind, exc.message
    except Exception as exc:  # a failure of another kind must be the same too
        return "error", type(exc), str(exc)


def _eager(sessions: list[Any]) -> list[SessionRecord]:
    """The general path: every session decoded at once, as before the rows were kept."""
    result = {"sessions": sessions}
    return [TRANSLATOR.record_of(obj, None, NOW) for obj in TRANSLATOR.sessions_of(result)]


@settings(max_examples=500, deadline=None)
@given(_objects)
def test_fast_and_general_paths_agree(obj: dict[str, Any]) -> None:
    if is_listed(obj):
        assert faircom._record_of_listed(obj) == TRANSLATOR.record_of(obj, None, NOW)
        assert faircom.ListedRows().decode(obj, None) == TRANSLATOR.record_of(obj, None)


@settings(max_examples=300, deadline=None)
@given(_session_lists)
def test_the_one_pass_check_agrees_with_is_listed(sessions: list[Any]) -> None:
    expected = [obj["authToken"] if is_listed(obj) else None for obj in sessions]
    assert listed_tokens(sessions) == expected


def test_the_listed_shape() -> None:
    entry = {"authToken": "session:101", "username": "jdoe", "description": ""}
    assert is_listed(entry)
    assert is_listed({"description": "", "authToken": "session:", "username": ""})
    assert not is_listed(entry | {"authToken": OWN_TOKEN})  # a live token: hashed at once
    assert not is_listed(entry | {"username": None})
    assert not is_listed(entry | {"defaultDatabaseName": "ctreeSQL"})
    assert not is_listed({"authToken": "session:1", "username": "a", "other": "b"})
    assert not is_listed(list(entry))


@settings(max_examples=400, deadline=None)
@given(_session_lists)
def test_a_list_reply_kept_as_rows_reads_like_the_decoded_list(sessions: list[Any]) -> None:
    """Objects of the listed shape are kept undecoded; whatever is read from them (whole
    records, brief fields, the key of each) is what decoding them all at once gives, and an
    object that cannot be decoded fails the reply when it arrives, as before."""
    eager_outcome = _outcome(lambda: _eager(sessions))
    kept = _outcome(lambda: TRANSLATOR.reply_rows({"sessions": sessions}, NOW))
    if eager_outcome[0] == "error":
        assert kept == eager_outcome
        return
    eager = eager_outcome[1]
    rows, keys = kept[1]
    assert type(rows) is SessionRows
    brief = Brief(*BRIEF_FIELDS)
    assert brief(rows) == brief(eager)
    assert list(rows) == eager
    assert keys == [faircom.SESSION_ID_PREFIX + record.id for record in eager]


def test_listed_objects_are_not_decoded_on_arrival() -> None:
    listed = {"authToken": "session:101", "username": "jdoe", "description": "job"}
    own = {"authToken": OWN_TOKEN, "username": "admin", "description": ""}
    rows, keys = TRANSLATOR.reply_rows({"sessions": [listed, own]}, NOW)
    decoded = [record for _, _, record in rows.entries()]
    assert decoded[0] is None and decoded[1] == TRANSLATOR.record_of(own, None, NOW)
    assert keys == ["session:101", "session:" + faircom.token_id(OWN_TOKEN)]
    assert Brief("id", "user", "description")(rows) == [
        ("101", "jdoe", "job"),
        (faircom.token_id(OWN_TOKEN), "admin", ""),
    ]


@pytest.mark.parametrize(
    ("sessions", "message"),
    [
        ([{"authToken": "session:1", "username": "a", "description": ""}, 5], "not a list"),
        ([{"authToken": "session:1", "username": "a", "description": ""}, {}], "authToken"),
        ({"authToken": "session:1"}, "not a list"),
    ],
)
def test_a_malformed_reply_fails_on_arrival(sessions: Any, message: str) -> None:
    reply = HttpResponse(200, [], dump_json({"result": {"sessions": sessions}, "errorCode": 0}))
    request = CanonicalRequest(Operation.LIST, "faircom")
    with pytest.raises(RosettaError) as caught:
        TRANSLATOR.decode_response(reply, request)
    assert caught.value.kind.value == "upstream_error"
    assert message in caught.value.message


def _decoded(sessions: list[Any], own: str | None) -> CanonicalResponse:
    reply = HttpResponse(200, [], dump_json({"result": {"sessions": sessions}, "errorCode": 0}))
    principal = Principal(PrincipalKind.SESSION, token=own) if own else Principal()
    request = CanonicalRequest(Operation.LIST, "faircom", principal=principal)
    return TRANSLATOR.decode_response(reply, request)


_owns = st.one_of(st.none(), st.just(OWN_TOKEN), _ids.map(lambda i: faircom.SESSION_ID_PREFIX + i))


@settings(max_examples=300, deadline=None)
@given(_session_lists, _owns)
def test_decoding_finds_the_callers_session_as_before(sessions: list[Any], own: str | None) -> None:
    try:
        eager = _eager(sessions)
    except RosettaError:
        return  # the reply fails on arrival (see above)
    decoded = _decoded(sessions, own)
    assert decoded.caller == faircom._caller_from(eager, own)
    assert decoded.total == len(eager)


@pytest.mark.parametrize(
    ("own", "user"),
    [("session:102", "b"), (OWN_TOKEN, "admin"), ("session:999", None), (None, None)],
)
def test_the_callers_session_is_found_kept_or_decoded(own: str | None, user: str | None) -> None:
    sessions = [
        {"authToken": "session:101", "username": "a", "description": ""},
        {"authToken": "session:102", "username": "b", "description": ""},
        {"authToken": OWN_TOKEN, "username": "admin", "description": ""},
        {"authToken": "session:102", "username": "c", "description": ""},
    ]
    caller = _decoded(sessions, own).caller
    assert (caller.user if caller else None) == user
    assert caller == faircom._caller_from(_eager(sessions), own)


def _encoded(records: Sequence[SessionRecord], action: str, own: str | None, caller_of: Any) -> Any:
    body: dict[str, Any] = {"api": "admin", "action": action, "requestId": 7}
    if own:
        body["authToken"] = own
    if action == "describeSessions":
        body["params"] = {"authTokens": ["session:101", "session:", own or "x"]}
    http = HttpRequest("POST", "/api", body=orjson.dumps(body))
    request = TRANSLATOR.decode_request(http)
    response = CanonicalResponse(Operation.LIST, sessions=records, total=len(records))
    response.caller = caller_of
    rendered = TRANSLATOR.encode_response(response, request, http)
    assert rendered.status == 200
    return rendered.body


def _without_last_access(body: bytes) -> Any:
    """A describeSessions reply without the field derived from the clock at encoding."""
    value = orjson.loads(body)
    for obj in value["result"].get("sessions", []):
        obj.pop("sessionLastAccessedTimestamp", None)
    return value


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_listed_entries(), _objects), max_size=6), _owns)
def test_a_faircom_caller_gets_the_same_list_from_kept_rows(
    sessions: list[Any], own: str | None
) -> None:
    """Same dialect on both sides: listed objects kept as the upstream sent them are sent on
    as they came, which is what rendering their records gives (the caller's own session
    still shows its token)."""
    try:
        eager = _eager(sessions)
    except RosettaError:
        return
    rows = _decoded(sessions, own)
    assert type(rows.sessions) is SessionRows
    caller = rows.caller
    listed = _encoded(rows.sessions, "listSessions", own, caller)
    assert orjson.loads(listed) == orjson.loads(_encoded(eager, "listSessions", own, caller))
    if all(tuple(obj) == _KEYS for obj in sessions if is_listed(obj)):
        assert listed == _encoded(eager, "listSessions", own, caller)  # byte for byte
    described = _encoded(rows.sessions, "describeSessions", own, caller)
    assert _without_last_access(described) == _without_last_access(
        _encoded(eager, "describeSessions", own, caller)
    )
