"""GeminiDB session objects to canonical records: the fast path for the shape real servers
send and the general path agree on every input, and both keep what the dialect carries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    HttpRequest,
    Operation,
    RosettaError,
    SessionRecord,
)
from translators.geminidb import sessions
from translators.geminidb.sessions import session_from_wire
from translators.geminidb.translator import GeminiDbTranslator
from translators.session_rows import BRIEF_FIELDS, Brief

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SEED_SESSION = {
    "addr": "192.168.0.218:52414",
    "id": 42,
    "name": "app-web",
    "cmd": "info",
    "age": 8888581,
    "idle": 8888581,
    "db": 0,
    "fd": 1311,
    "sub": 0,
    "psub": 0,
    "multi": -1,
}

_ints = st.integers(min_value=-(2**70), max_value=2**70)
_value = st.one_of(
    _ints,
    _ints.map(str),
    st.text(max_size=8),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=1e9),
)
_server_shaped = st.fixed_dictionaries(  # what real servers send: every field, integers
    {name: st.text(max_size=12) for name in ("addr", "name", "cmd")}
    | {name: _ints for name in ("id", "idle", "db", "age", "fd", "sub", "psub", "multi")}
)
_wire_sessions = st.one_of(
    _server_shaped,
    st.fixed_dictionaries({name: _value for name in sessions.FIELDS}),
    st.fixed_dictionaries(
        {},
        optional={name: _value for name in sessions.FIELDS}
        | {"extra": _value, "flags": st.text(max_size=4)},
    ),
)


def _decode(decoder: Any, data: dict[str, Any]) -> Any:
    try:
        return decoder(data, "node-1", NOW)
    except RosettaError as exc:
        return exc.kind, exc.message


@settings(max_examples=400, deadline=None)
@given(_wire_sessions)
def test_fast_and_general_paths_agree(data: dict[str, Any]) -> None:
    assert _decode(session_from_wire, data) == _decode(sessions._record_of_any_shape, data)


@pytest.mark.parametrize("swap", [None, "id", "idle", "db", "age"])
def test_a_full_record_decodes_the_same_whatever_the_field_types(swap: str | None) -> None:
    """GeminiDB documents strings and answers integers: both give the same record."""
    data = dict(SEED_SESSION)
    if swap is not None:
        data[swap] = str(data[swap])
    record = session_from_wire(data, "node-1", NOW)
    assert record == sessions._record_of_any_shape(data, "node-1", NOW)
    assert (record.id, record.client_address, record.description) == (
        "42",
        "192.168.0.218:52414",
        "app-web",
    )
    assert (record.last_command, record.database, record.idle_seconds) == ("info", "0", 8888581)
    assert record.node_id == "node-1"
    assert record.connected_at == NOW - timedelta(seconds=8888581)
    carried = record.extras["geminidb"]
    assert carried["fd"] == 1311 and carried["multi"] == -1
    expected_ints = [f for f in ("id", "idle", "db") if f != swap]
    assert carried["int_fields"] == expected_ints


@pytest.mark.parametrize("age", [2**62, 1e300, "inf", "nan"])
def test_an_age_beyond_the_calendar_is_an_upstream_error(age: object) -> None:
    with pytest.raises(RosettaError) as caught:
        session_from_wire(SEED_SESSION | {"age": age}, "", NOW)
    assert caught.value.kind.value == "upstream_error"
    assert "'age'" in caught.value.message


def test_unknown_keys_are_kept_even_when_eleven_fields_arrive() -> None:
    data = dict(SEED_SESSION)
    del data["multi"]
    data["lib-name"] = "redis-py"
    record = session_from_wire(data, "", NOW)
    assert record.extras["geminidb"]["more"] == {"lib-name": "redis-py"}
    assert "multi" not in record.extras["geminidb"]


_groups = st.lists(
    st.tuples(st.sampled_from(["node-1", "node-2", ""]), st.lists(_wire_sessions, max_size=4)),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(_groups)
def test_a_list_reply_kept_as_rows_reads_like_the_decoded_list(
    groups: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    """Sessions of the usual shape are kept undecoded; whatever is read from them (whole
    records, or brief fields without decoding) is what decoding them all at once gives, and a
    session that cannot be decoded fails the reply when it arrives, as before."""
    try:
        eager = [session_from_wire(s, node, NOW) for node, group in groups for s in group]
    except RosettaError as exc:
        reply = sessions.ReplyRows(NOW)
        with pytest.raises(RosettaError) as caught:
            for node, group in groups:
                reply.add(group, node)
        assert (caught.value.kind, caught.value.message) == (exc.kind, exc.message)
        return
    reply = sessions.ReplyRows(NOW)
    for node, group in groups:
        reply.add(group, node)
    rows = reply.result()
    brief = Brief(*BRIEF_FIELDS)
    assert brief(rows) == brief(eager)
    assert list(rows) == eager


def test_sessions_of_the_usual_shape_are_not_decoded_on_arrival() -> None:
    odd = SEED_SESSION | {"id": "43"}  # a string id: decoded at once
    reply = sessions.ReplyRows(NOW)
    reply.add([SEED_SESSION, odd, SEED_SESSION | {"id": 44}], "node-1")
    assert reply.records[0] is None and reply.records[2] is None
    assert reply.records[1] == session_from_wire(odd, "node-1", NOW)
    assert Brief("id", "description", "node_id")(reply.result()) == [
        ("42", "app-web", "node-1"),
        ("43", "app-web", "node-1"),
        ("44", "app-web", "node-1"),
    ]


@settings(max_examples=200, deadline=None)
@given(_groups)
def test_a_geminidb_caller_gets_the_same_list_from_kept_rows(
    groups: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    """Same dialect on both sides: sessions kept as the upstream sent them are sent on as
    they came, which is what rendering their records gives."""
    reply = sessions.ReplyRows(NOW)
    try:
        for node, group in groups:
            reply.add(group, node)
    except RosettaError:
        return  # the reply fails on arrival (see above)
    eager = [session_from_wire(s, node, NOW) for node, group in groups for s in group]
    translator = GeminiDbTranslator({})
    request = CanonicalRequest(
        Operation.LIST, "geminidb", extras={"geminidb": {"view": "instance"}}
    )
    http = HttpRequest("GET", "/v3/p/instances/i/sessions")

    def listed(records: Sequence[SessionRecord]) -> Any:
        response = CanonicalResponse(Operation.LIST, sessions=records, total=len(records))
        rendered = translator.encode_response(response, request, http)
        assert rendered.status == 200
        return orjson.loads(rendered.body)

    assert listed(reply.result()) == listed(eager)
