"""JUMP session objects to canonical records: the fast paths for the shape servers send (one
session, and a whole list kept as rows) agree with the general path on every input, and a
session kept as received renders back to exactly what came in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.codec import format_rfc3339
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    HttpRequest,
    Operation,
    RosettaError,
    SessionRecord,
)
from translators.jump import JumpTranslator, records
from translators.jump.records import session_from_jump, session_rows, session_to_jump
from translators.session_rows import BRIEF_FIELDS, Brief, SessionRows
from translators.wire import dump_json

SESSION = {
    "sessionId": "101",
    "user": "jdoe",
    "clientAddress": "192.168.0.200:50412",
    "service": "my-service",
    "database": "0",
    "state": "Session ready for routing",
    "connectedAt": "2016-08-31T03:03:12Z",
    "idleSeconds": 260,
    "lastCommand": "get",
    "nodeId": "node-a",
    "description": "reporting job",
    "connections": [],
}
CONNECTION = {
    "server": "db-serv-01",
    "state": "DCB in the polling loop",
    "role": "Backend Request Handler",
    "reads": 2197,
    "writes": 1562,
}
TEXT_KEYS = ("user", "clientAddress", "service", "database", "state", "lastCommand", "nodeId")

_moments = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)
_written = st.one_of(
    _moments.map(lambda moment: format_rfc3339(moment.replace(microsecond=0))),
    _moments.map(format_rfc3339),
)


@st.composite
def _mangled(draw: st.DrawFn) -> str:
    """A written timestamp with one character replaced, or cut short."""
    text = draw(_written)
    at = draw(st.integers(0, len(text) - 1))
    if draw(st.booleans()):
        return text[:at]
    char = draw(st.one_of(st.sampled_from("0123456789-T:Z.+ W,"), st.characters()))
    return text[:at] + char + text[at + 1 :]


_awkward_moments = st.one_of(
    _mangled(),
    st.sampled_from(
        [
            "",
            "2024-02-30T00:00:00Z",
            "2025-12-23T24:00:00Z",
            "2025-12-23T07:36:60Z",
            "0000-01-01T00:00:00Z",
            "2025-W52-2T07:36:00Z",
            "2025-12-23T073600.5Z",
            "2025-12-23 07:36:00Z",
            "2025-12-23t07:36:00Z",
            "2025-12-23T07:36:00+00:00",
            "2025-12-23T07:36:00.000000Z",
            "2025-12-23T07:36:00.000001Z",
            "2025-12-23T07:36:00.5Z",
            "2025-12-2\u0663T07:36:00Z",
        ]
    ),
    st.integers(-(2**40), 2**40),
    st.none(),
)
_awkward = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.just(""),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_usual_connection = st.fixed_dictionaries(
    {key: st.text(max_size=8) for key in ("server", "state", "role")}
    | {key: st.integers(0, 2**40) for key in ("reads", "writes")}
).map(lambda data: {key: data[key] for key in records.CONNECTION_KEYS})


@st.composite
def _connection(draw: st.DrawFn) -> Any:
    """A connection as servers send it, then perhaps a value swapped or a key added."""
    data = dict(draw(_usual_connection))
    if draw(st.booleans()):
        data[draw(st.sampled_from(records.CONNECTION_KEYS))] = draw(_awkward)
    if draw(st.integers(0, 5)) == 0:
        data[draw(st.sampled_from(["port", "server"]))] = draw(_awkward)
    return data if draw(st.integers(0, 10)) else draw(_awkward)


_connections = st.lists(_connection(), max_size=3)
_usual = st.fixed_dictionaries(  # what servers send: every key, in the order JUMP writes them
    {"sessionId": st.text(min_size=1, max_size=8)}
    | {key: st.text(max_size=12) for key in TEXT_KEYS[:5]}
    | {"connectedAt": st.one_of(_written, st.none())}
    | {"idleSeconds": st.one_of(st.integers(0, 2**63), st.floats(0, 1e9))}
    | {key: st.text(max_size=12) for key in (*TEXT_KEYS[5:], "description")}
    | {"connections": st.just([])}
).map(lambda data: {key: data[key] for key in records._USUAL_KEYS})


@st.composite
def _sessions(draw: st.DrawFn) -> Any:
    """A session as servers send it, then perhaps changed: values swapped for awkward ones,
    keys dropped, added or reordered, a time-out, connections."""
    data: dict[str, Any] = dict(draw(_usual))
    for key in draw(st.lists(st.sampled_from(list(data)), max_size=3)):
        data[key] = draw(_awkward_moments if key == "connectedAt" else _awkward)
    if draw(st.booleans()):
        data["connections"] = draw(_connections)
    if draw(st.integers(0, 4)) == 0:
        data.pop(draw(st.sampled_from(list(data))))
    if draw(st.integers(0, 4)) == 0:
        extra = draw(st.sampled_from(["id", "locale", "sessionTimeout", "connections"]))
        data.pop(extra, None)
        data[extra] = draw(_awkward)
    if draw(st.integers(0, 4)) == 0:  # the time-out where JUMP writes it
        connections = data.pop("connections", [])
        data["sessionTimeout"] = draw(st.text(max_size=4))
        data["connections"] = connections
    if draw(st.integers(0, 6)) == 0:
        keys = draw(st.permutations(list(data)))
        data = {key: data[key] for key in keys}
    return data if draw(st.integers(0, 30)) else draw(_awkward)


def _decoded(decoder: Any, data: Any) -> Any:
    try:
        return decoder(data)
    except RosettaError as exc:
        return exc.kind, exc.message


@settings(max_examples=400, deadline=None)
@given(_sessions())
def test_fast_and_general_paths_agree(data: Any) -> None:
    assert _decoded(session_from_jump, data) == _decoded(records._record_of_any_shape, data)


@settings(max_examples=400, deadline=None)
@given(_sessions())
def test_a_usual_session_renders_back_to_what_came_in(data: Any) -> None:
    """What lets a JUMP caller be sent a kept session as it came: its record renders to the
    same keys, in the same order, with the same values."""
    if not (type(data) is dict and records.is_usual(data)):
        return
    rendered = session_to_jump(records._record_of_any_shape(data))
    assert list(rendered.items()) == list(data.items())
    assert dump_json(rendered) == dump_json(data)


@pytest.mark.parametrize(
    ("moment", "usual"),
    [
        ("2016-08-31T03:03:12Z", True),
        ("2016-08-31T03:03:12.000001Z", True),
        (None, True),
        ("2016-08-31T03:03:12.000000Z", False),  # written without the fraction
        ("2016-08-31T03:03:12.5Z", False),
        ("2016-08-31T03:03:12+00:00", False),
        ("2016-08-31 03:03:12Z", False),
        ("2016-02-30T03:03:12Z", False),
        ("2016-08-31T24:00:00Z", False),
        ("2016-W35-3T03:03:12Z", False),
        ("2016-08-31T030312.5Z", False),
        ("", False),
        (1472612592000, False),
    ],
)
def test_timestamps_the_fast_path_takes(moment: Any, usual: bool) -> None:
    data = SESSION | {"connectedAt": moment}
    assert records.is_usual(data) is usual
    assert records._all_plain([data]) is (usual and moment is not None and len(moment) == 20)
    assert _decoded(session_from_jump, data) == _decoded(records._record_of_any_shape, data)


def test_a_usual_session_with_a_time_out_and_connections() -> None:
    data = {key: value for key, value in SESSION.items() if key != "connections"}
    data["sessionTimeout"] = "1200"
    data["connections"] = [CONNECTION, dict(CONNECTION)]
    assert records.is_usual(data)
    record = session_from_jump(data)
    assert record == records._record_of_any_shape(data)
    assert record.extras == {"jump": {"sessionTimeout": "1200"}}
    assert record.connections[1].reads == 2197
    assert session_to_jump(record) == data


_lists = st.lists(st.one_of(_usual, _sessions()), max_size=6)
_plain = _usual.filter(lambda data: type(data["idleSeconds"]) is int).filter(
    lambda data: data["connectedAt"] is not None and len(data["connectedAt"]) == 20
)


@st.composite
def _nearly_plain(draw: st.DrawFn) -> list[Any]:
    """Sessions in the commonest form, one of them with a value swapped or a key dropped."""
    items = [dict(item) for item in draw(st.lists(_plain, min_size=1, max_size=4))]
    odd = items[draw(st.integers(0, len(items) - 1))]
    key = draw(st.sampled_from(list(odd)))
    if draw(st.integers(0, 5)):
        odd[key] = draw(_awkward_moments if key == "connectedAt" else _awkward)
    else:
        del odd[key]
    return items


@settings(max_examples=300, deadline=None)
@given(_lists)
def test_a_list_kept_as_rows_reads_like_the_decoded_list(items: list[Any]) -> None:
    """Sessions of the usual shape are kept undecoded; whatever is read from them (whole
    records, or brief fields without decoding) is what decoding them all gives, and a session
    that cannot be decoded fails the reply when it arrives, as before."""
    try:
        eager = [records._record_of_any_shape(item) for item in items]
    except RosettaError as exc:
        with pytest.raises(RosettaError) as caught:
            session_rows(items)
        assert (caught.value.kind, caught.value.message) == (exc.kind, exc.message)
        return
    rows = session_rows(items)
    brief = Brief(*BRIEF_FIELDS)
    assert brief(rows) == brief(eager)
    assert list(rows) == eager


@settings(max_examples=400, deadline=None)
@given(st.one_of(_nearly_plain(), st.lists(st.one_of(_usual, _sessions()), max_size=6)))
def test_a_list_is_plain_only_when_every_session_is_usual(items: list[Any]) -> None:
    if records._all_plain(items):
        assert all(type(item) is dict and records.is_usual(item) for item in items)


@settings(max_examples=100, deadline=None)
@given(st.lists(_usual, min_size=1, max_size=6))
def test_lists_of_the_commonest_form_are_checked_in_one_go(items: list[Any]) -> None:
    assert all(records.is_usual(item) for item in items)
    plain = [item for item in items if item["connectedAt"] is not None]
    plain = [item | {"idleSeconds": int(item["idleSeconds"])} for item in plain]
    if plain and all(len(item["connectedAt"]) == 20 for item in plain):
        assert records._all_plain(plain)


def test_usual_sessions_are_not_decoded_on_arrival() -> None:
    odd = SESSION | {"sessionId": 7}  # an integer id: decoded at once
    rows = session_rows([SESSION, odd, SESSION | {"sessionId": "102"}])
    assert [record is None for _, _, record in rows.entries()] == [True, False, True]
    assert Brief("id", "user", "node_id")(rows) == [
        ("101", "jdoe", "node-a"),
        ("7", "jdoe", "node-a"),
        ("102", "jdoe", "node-a"),
    ]


_FIELDS = st.one_of(st.none(), st.lists(st.sampled_from(["user", "nodeId", "connections"])))


@settings(max_examples=200, deadline=None)
@given(_lists, _FIELDS, st.sampled_from(["json", "xml"]))
def test_a_jump_caller_gets_the_same_list_from_kept_rows(
    items: list[Any], fields: list[str] | None, result_format: str
) -> None:
    """Same dialect on both sides: sessions kept as the upstream sent them are sent on as
    they came, which is what rendering their records gives, byte for byte."""
    try:
        rows = session_rows(items)
    except RosettaError:
        return  # the reply fails on arrival (see above)
    eager = [records._record_of_any_shape(item) for item in items]
    translator = JumpTranslator({})
    envelope = {"sid": "SessionService", "oid": "listSessions", "result_format": result_format}
    request = CanonicalRequest(
        Operation.LIST, "jump", fields=fields, extras={"jump": {"envelope": envelope}}
    )
    http = HttpRequest("POST", "/presto/edge/api")

    def listed(sessions: Sequence[SessionRecord]) -> bytes:
        response = CanonicalResponse(Operation.LIST, sessions=sessions, total=len(sessions))
        rendered = translator.encode_response(response, request, http)
        assert rendered.status == 200
        return rendered.body

    assert isinstance(rows, SessionRows)
    assert listed(rows) == listed(eager)
    assert orjson.loads(listed(rows))["errorCode"] == ""
