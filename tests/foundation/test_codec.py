"""Canonical sessions to and from JSON: the fast path for sessions exactly as
``session_to_json`` writes them and the general path agree on every input, a canonical list
kept as rows reads like the decoded list, and kept rows are sent on byte for byte as
rendering their records would send them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators import codec
from translators.codec import (
    format_rfc3339,
    is_rfc3339_as_written,
    is_usual_session,
    parse_rfc3339,
    response_from_json,
    response_to_json,
    session_from_json,
    session_to_json,
)
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    Connection,
    ErrorKind,
    HttpRequest,
    HttpResponse,
    Operation,
    RosettaError,
    SessionRecord,
)
from translators.rosetta import RosettaTranslator
from translators.session_rows import BRIEF_FIELDS, Brief, SessionRows
from translators.wire import dump_json

HOUR = timedelta(hours=1)
SEED = {
    "id": "54000",
    "user": "app-web",
    "client_address": "10.1.2.3:50000",
    "service": "geminidb",
    "database": "3",
    "state": "active",
    "connected_at": "2025-10-01T12:30:00Z",
    "idle_seconds": 12,
    "last_command": "get",
    "node_id": "node-1",
    "description": "",
    "connections": [],
    "extras": {"geminidb": {"fd": 1000, "sub": 0, "psub": 0, "multi": -1}},
}

_moments = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
) | st.datetimes(  # other offsets, away from the calendar's ends
    min_value=datetime(2, 1, 1),
    max_value=datetime(9998, 12, 31),
    timezones=st.sampled_from([timezone(timedelta(hours=5, minutes=30)), timezone(-HOUR)]),
)
_digits = st.text("0123456789", min_size=1, max_size=4)
# strings near the written form: each part valid or not, other separators and suffixes
_timestamp_like = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, zone: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{zone}",
    st.sampled_from(["0000", "0001", "1999", "2024", "2025", "9999", "99999", "٢٠٢٤", "+2024"])
    | _digits,
    st.sampled_from(["01", "02", "04", "12", "13", "00", "1"]),
    st.sampled_from(["01", "09", "28", "29", "30", "31", "32", "00", "1"]),
    st.sampled_from(["T", "t", " "]),
    st.sampled_from(["00", "09", "23", "24", "7"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["00", "59", "60", "61"]),
    st.sampled_from(["", ".000000", ".000001", ".5", ".123", ".123456", ".1234567", "."]),
    st.sampled_from(["Z", "z", "+00:00", "+01:00", "-05:30", "", "ZZ", "Z "]),
)
_timestamps = st.one_of(
    _moments.map(format_rfc3339), _timestamp_like, st.text(max_size=30), st.none()
)
_text = st.text(max_size=10)
_connections = st.builds(
    Connection,
    server=_text,
    state=_text,
    role=_text,
    reads=st.integers(0, 2**40),
    writes=st.integers(0, 2**40),
    extras=st.dictionaries(_text, st.integers() | _text, max_size=2),
)
_records = st.builds(  # what a canonical server sends: session_to_json of a record
    SessionRecord,
    id=st.text(min_size=1, max_size=10),
    user=_text,
    client_address=_text,
    service=_text,
    database=_text,
    state=_text,
    connected_at=st.none() | _moments,
    idle_seconds=st.integers(0, 2**70) | st.floats(0, 1e12),
    last_command=_text,
    node_id=_text,
    description=_text,
    connections=st.lists(_connections, max_size=2),
    extras=st.dictionaries(_text, st.integers() | _text | st.none(), max_size=2),
)
_written = _records.map(session_to_json)
_json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
_any_value = st.one_of(
    _json_scalar,
    st.lists(_json_scalar, max_size=2),
    st.dictionaries(_text, _json_scalar, max_size=2),
)
# values that each field's type check must tell apart (bool from int, float from int, ...)
_confusable = st.sampled_from([None, True, False, 0, 7, 1.5, "", "x", "7", [], {}, {"a": 1}])
_field_values = {name: _text | _confusable | _any_value for name in codec.SESSION_KEYS} | {
    # each field: values of its own type, and any other
    "connected_at": _timestamps | _confusable | _any_value,
    "idle_seconds": st.integers() | st.floats(allow_nan=False) | _confusable | _any_value,
    "connections": st.lists(_connections.map(codec.connection_to_json), max_size=2)
    | st.lists(_confusable | _any_value, max_size=2)
    | _confusable,
    "extras": st.dictionaries(_text, _json_scalar, max_size=2) | _confusable,
}


def _reordered(data: dict[str, Any], first: str, second: str) -> dict[str, Any]:
    """The same dict with the places of two keys exchanged."""
    keys = list(data)
    if first in data and second in data:
        i, j = keys.index(first), keys.index(second)
        keys[i], keys[j] = keys[j], keys[i]
    return {key: data[key] for key in keys}


@st.composite
def _awkward_connection(draw: st.DrawFn) -> Any:
    """A written connection with fields changed, dropped, added or moved; or not an object."""
    connection = codec.connection_to_json(draw(_connections))
    connection[draw(st.sampled_from(codec.CONNECTION_KEYS))] = draw(_confusable)
    for name in draw(st.lists(st.sampled_from(codec.CONNECTION_KEYS), max_size=2)):
        action = draw(st.sampled_from(["change", "drop", "swap"]))
        if action == "change":
            connection[name] = draw(_confusable | _any_value)
        elif action == "drop":
            connection.pop(name, None)
        elif action == "swap":
            connection = _reordered(connection, name, draw(st.sampled_from(codec.CONNECTION_KEYS)))
    if draw(st.integers(0, 5)) == 0:
        connection["extra"] = draw(_confusable)
    return connection if draw(st.integers(0, 10)) else draw(_confusable)


@st.composite
def _awkward(draw: st.DrawFn) -> Any:
    """A written session with some fields changed, dropped, added or moved; or not an object."""
    session = dict(draw(_written))
    for name in draw(st.lists(st.sampled_from(codec.SESSION_KEYS), max_size=3)):
        action = draw(st.sampled_from(["change", "drop", "move", "swap", "connection"]))
        if action == "change":
            session[name] = draw(_field_values[name])
        elif action == "drop":
            session.pop(name, None)
        elif action == "move" and name in session:
            session[name] = session.pop(name)  # now last: same content, other key order
        elif action == "swap":  # another key order, the same value types in each place
            session = _reordered(session, name, draw(st.sampled_from(codec.SESSION_KEYS)))
        elif action == "connection":
            session["connections"] = draw(st.lists(_connection_shapes, max_size=3))
    if draw(st.integers(0, 3)) == 0:
        session[draw(st.sampled_from(["role", "extra", "id"]))] = draw(_any_value)
    return session if draw(st.integers(0, 20)) else draw(_any_value)


_sessions = st.one_of(_written, _awkward())


def _outcome(decode: Any, data: Any) -> Any:
    try:
        return decode(data)
    except (RosettaError, TypeError) as exc:
        return type(exc), getattr(exc, "kind", None), str(exc)


@settings(max_examples=600, deadline=None)
@given(_sessions)
def test_fast_and_general_paths_agree(data: Any) -> None:
    fast, general = _outcome(session_from_json, data), _outcome(codec._session_of_any_shape, data)
    assert fast == general
    if isinstance(fast, SessionRecord) and fast.connected_at is not None:
        assert fast.connected_at.tzinfo is general.connected_at.tzinfo


@settings(max_examples=300, deadline=None)
@given(_written)
def test_sessions_as_written_are_usual_and_render_back_byte_for_byte(data: dict[str, Any]) -> None:
    assert is_usual_session(data)
    record = session_from_json(data)
    assert record == codec._session_of_any_shape(data)
    assert dump_json(session_to_json(record)) == dump_json(data)


def _renders_back(decode: Any, render: Any, data: Any) -> bool:
    """Whether the general path decodes ``data`` and renders it back byte for byte."""
    try:
        return bool(dump_json(render(decode(data))) == dump_json(data))
    except (RosettaError, TypeError):
        return False


@settings(max_examples=500, deadline=None)
@given(_awkward())
def test_usual_sessions_are_exactly_those_that_render_back_as_they_came(data: Any) -> None:
    """What the fast path and the pass-through of kept rows rely on; and every session a
    canonical server writes is usual."""
    general = _renders_back(codec._session_of_any_shape, session_to_json, data)
    assert is_usual_session(data) is general


_connection_shapes = st.builds(codec.connection_to_json, _connections) | _awkward_connection()


@settings(max_examples=500, deadline=None)
@given(_connection_shapes)
def test_usual_connections_decode_as_the_general_path_does(data: Any) -> None:
    general = _outcome(codec.connection_from_json, data)
    usual = codec.is_usual_connection(data)
    assert usual is _renders_back(codec.connection_from_json, codec.connection_to_json, data)
    if usual:
        assert codec._connection_of_usual(data) == general


def _reads_back(text: str) -> bool:
    """Whether ``parse_rfc3339`` reads ``text`` and ``format_rfc3339`` writes it back."""
    try:
        moment = parse_rfc3339(text)
    except RosettaError:
        return False
    return moment is not None and format_rfc3339(moment) == text


def _check_timestamp(text: str) -> None:
    assert is_rfc3339_as_written(text) is _reads_back(text), text
    if is_rfc3339_as_written(text):
        fast = datetime.fromisoformat(text)
        assert fast == parse_rfc3339(text) and fast.tzinfo is UTC


@settings(max_examples=600, deadline=None)
@given(_timestamps.filter(lambda t: t is not None) | _moments.map(format_rfc3339))
def test_timestamps_as_written_are_exactly_those_that_read_back_the_same(text: str) -> None:
    _check_timestamp(text)


@pytest.mark.parametrize("written", ["2024-02-29T23:59:59Z", "0001-12-31T09:05:07.000100Z"])
def test_every_one_character_change_of_a_written_timestamp(written: str) -> None:
    """Each character replaced (by digits, separators, letters, a non-ASCII digit),
    dropped, or doubled."""
    for at in range(len(written)):
        for char in "0123456789-:T.Z +,tz\u0663":
            _check_timestamp(written[:at] + char + written[at + 1 :])
        _check_timestamp(written[:at] + written[at + 1 :])
        _check_timestamp(written[:at] + written[at] + written[at:])


@settings(max_examples=300, deadline=None)
@given(_moments)
def test_every_written_timestamp_is_recognised(moment: datetime) -> None:
    assert is_rfc3339_as_written(format_rfc3339(moment) or "")


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("2024-02-29T00:00:00Z", True),
        ("2023-02-29T00:00:00Z", False),
        ("2024-04-31T00:00:00Z", False),
        ("2024-12-31T23:59:59.000001Z", True),
        ("2024-12-31T23:59:59.000000Z", False),
        ("0000-01-01T00:00:00Z", False),
        ("0001-01-01T00:00:00Z", True),
        ("2024-01-01T24:00:00Z", False),
        ("2024-01-01T00:00:00+00:00", False),
        ("2024-01-01 00:00:00Z", False),
    ],
)
def test_timestamps_near_the_written_form(text: str, written: bool) -> None:
    assert is_rfc3339_as_written(text) is written


_OTHER_TYPES = [None, True, False, 0, 7, 1.5, "", "x", "7", [], [{}], {}, {"a": 1}]
_MISSING = object()
_CONNECTION = {"server": "s1", "state": "open", "role": "r", "reads": 3, "writes": 0, "extras": {}}


def _agree(data: Any) -> None:
    """The fast and general paths decode ``data`` alike, and it is usual exactly when the
    general path renders it back byte for byte."""
    assert _outcome(session_from_json, data) == _outcome(codec._session_of_any_shape, data)
    assert is_usual_session(data) is _renders_back(
        codec._session_of_any_shape, session_to_json, data
    )


def _with(data: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    changed = dict(data)
    if value is _MISSING:
        del changed[name]
    else:
        changed[name] = value
    return changed


@pytest.mark.parametrize("name", codec.SESSION_KEYS)
def test_each_session_field_of_another_type_or_missing(name: str) -> None:
    for value in [*_OTHER_TYPES, _MISSING]:
        _agree(_with(SEED | {"connections": [_CONNECTION]}, name, value))


@pytest.mark.parametrize("name", codec.CONNECTION_KEYS)
def test_each_connection_field_of_another_type_or_missing(name: str) -> None:
    for value in [*_OTHER_TYPES, _MISSING]:
        _agree(SEED | {"connections": [_CONNECTION, _with(_CONNECTION, name, value)]})


def _eager(rows: Any) -> list[SessionRecord]:
    """The sessions of a canonical list decoded the general way, each at once."""
    try:
        return [codec._session_of_any_shape(s) for s in rows]
    except (RosettaError, TypeError) as exc:
        raise RosettaError(
            ErrorKind.UPSTREAM_ERROR, f"malformed canonical response: {exc}"
        ) from exc


def _kept(rows: Any) -> Sequence[SessionRecord]:
    sessions = response_from_json({"sessions": rows}, Operation.LIST).sessions
    assert sessions is not None
    return sessions


_lists = st.lists(_sessions, max_size=5) | _any_value.filter(lambda v: v is not None)


@settings(max_examples=400, deadline=None)
@given(_lists)
def test_a_list_kept_as_rows_reads_like_the_decoded_list(rows: Any) -> None:
    """Usual sessions are kept undecoded; what is read from them (whole records, or brief
    fields without decoding) is what decoding them all at once gives, and a session that
    cannot be decoded fails the list when it arrives, with the same error."""
    eager, kept = _outcome(_eager, rows), _outcome(_kept, rows)
    if not isinstance(eager, list):
        assert kept == eager
        return
    brief = Brief(*BRIEF_FIELDS)
    assert brief(kept) == brief(eager)
    assert list(kept) == eager


@settings(max_examples=400, deadline=None)
@given(st.lists(_sessions, max_size=5), st.sets(st.integers(0, 4)))
def test_kept_rows_are_sent_on_as_their_records_render(rows: Any, read: set[int]) -> None:
    """A canonical list rendered from kept rows is, byte for byte, the list rendered from
    the decoded records, also when some records were read (and changed) in between."""
    try:
        kept = response_from_json({"sessions": rows}, Operation.LIST)
    except RosettaError:
        return  # refused on arrival (see above)
    assert kept.sessions is not None
    for index in sorted(i for i in read if i < len(kept.sessions)):
        kept.sessions[index].user += "!"
    sent = dump_json(response_to_json(kept))  # before the next line decodes every row
    eager = CanonicalResponse(Operation.LIST, sessions=list(kept.sessions))
    assert sent == dump_json(response_to_json(eager))


def test_usual_sessions_are_not_decoded_on_arrival() -> None:
    odd = SEED | {"connected_at": ""}
    moved = {key: SEED[key] for key in reversed(codec.SESSION_KEYS)}
    response = response_from_json({"sessions": [SEED, odd, moved]}, Operation.LIST)
    rows = response.sessions
    assert type(rows) is SessionRows
    assert [record is None for _, _, record in rows.entries()] == [True, False, False]
    assert Brief("id", "user", "node_id")(rows) == [("54000", "app-web", "node-1")] * 3


def test_a_non_list_of_sessions_is_decoded_as_before() -> None:
    response = response_from_json({"sessions": {}}, Operation.LIST)
    assert response.sessions == []
    with pytest.raises(RosettaError) as caught:
        response_from_json({"sessions": "ab"}, Operation.LIST)
    assert caught.value.kind is ErrorKind.UPSTREAM_ERROR


def _translated(rows: Sequence[Any]) -> tuple[RosettaTranslator, CanonicalResponse]:
    translator = RosettaTranslator({})
    body = orjson.dumps({"operation": "session.list", "sessions": rows, "total": len(rows)})
    request = CanonicalRequest(Operation.LIST, "rosetta")
    return translator, translator.decode_response(HttpResponse(200, [], body), request)


def test_the_rosetta_dialect_sends_a_list_on_byte_for_byte() -> None:
    rows = [
        SEED | {"id": str(n), "connected_at": f"2025-10-{n:02d}T12:30:00.250000Z"} for n in (1, 2)
    ]
    rows.append(SEED | {"id": 3})  # an integer id: decoded at once, rendered as a string
    translator, decoded = _translated(rows)
    http = HttpRequest("POST", "/rosetta/v1/session.list")
    request = CanonicalRequest(Operation.LIST, "rosetta")
    sent = translator.encode_response(decoded, request, http)
    assert decoded.sessions is not None
    eager = CanonicalResponse(Operation.LIST, sessions=list(decoded.sessions), total=3)
    assert sent.body == translator.encode_response(eager, request, http).body
    assert orjson.loads(sent.body)["sessions"][2]["id"] == "3"
    assert decoded.sessions[1].connected_at == datetime(2025, 10, 2, 12, 30, 0, 250000, UTC)


@pytest.mark.parametrize(
    "row", [SEED | {"idle_seconds": True}, SEED | {"connected_at": "2025-02-30T00:00:00Z"}]
)
def test_a_malformed_session_fails_the_reply_on_arrival(row: dict[str, Any]) -> None:
    with pytest.raises(RosettaError) as caught:
        _translated([SEED, row])
    assert caught.value.kind is ErrorKind.UPSTREAM_ERROR
    assert "malformed canonical response" in caught.value.message


def test_a_session_as_written_keeps_its_values() -> None:
    record = session_from_json(SEED | {"connections": [codec.connection_to_json(Connection())]})
    assert record.connected_at == datetime(2025, 10, 1, 12, 30, tzinfo=UTC)
    assert record.connected_at.tzinfo is UTC
    assert record.connections == [Connection()]
    assert record.extras is SEED["extras"]
    empty = SEED | {"extras": {}}
    assert session_from_json(empty).extras is not empty["extras"]  # a record of its own
    assert record.connected_at - timedelta(days=1) == parse_rfc3339("2025-09-30T12:30:00Z")


@pytest.mark.parametrize(
    "field",
    [
        {"token": 5},
        {"total": "100"},
        {"total": True},
        {"affected": 1.5},
        {"elapsed_ms": "12"},
        {"elapsed_ms": [1]},
        {"extras": ["x"]},
        {"caller": {"user": "ann", "session_id": 7}},
        {"caller": {"user": "ann", "expires_in": "soon"}},
    ],
)
def test_a_reply_field_of_the_wrong_type_is_an_upstream_error(field: dict[str, Any]) -> None:
    """Every top-level field of an upstream's canonical reply is checked on arrival, so a
    wrong type is the upstream's error, never an internal one later."""
    with pytest.raises(RosettaError) as caught:
        response_from_json({"sessions": [], **field}, Operation.LIST)
    assert caught.value.kind is ErrorKind.UPSTREAM_ERROR
    assert "malformed canonical response" in caught.value.message


def test_reply_fields_of_the_right_types_are_kept() -> None:
    data = {
        "token": "t-1",
        "total": 3,
        "affected": 0,
        "elapsed_ms": 1.25,
        "caller": {"user": "ann", "session_id": "9", "expires_in": 30},
        "extras": {"x": 1},
    }
    response = response_from_json(data, Operation.LIST)
    assert (response.token, response.total, response.affected) == ("t-1", 3, 0)
    assert response.elapsed_ms == 1.25 and response.extras == {"x": 1}
    assert response.caller is not None and response.caller.session_id == "9"
    assert response.caller.expires_in == 30


_any_zone_moments = (
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3)), timezone(HOUR)]))
    | st.datetimes()
)


@settings(max_examples=500, deadline=None)
@given(_any_zone_moments)
def test_the_time_formatter_writes_what_isoformat_writes(moment: datetime) -> None:
    """``format_rfc3339`` writes UTC times field by field: the same text as ``isoformat``."""
    try:
        expected: Any = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError) as exc:
        expected = type(exc)
    try:
        written: Any = format_rfc3339(moment)
    except (OverflowError, ValueError, OSError) as exc:
        written = type(exc)
    assert written == expected


_twenty = (_timestamps | _moments.map(format_rfc3339)).filter(
    lambda t: isinstance(t, str) and len(t) == 20
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_twenty | _moments.map(format_rfc3339).map(str), min_size=1, max_size=5))
def test_whole_seconds_of_a_list_are_checked_as_each_timestamp_is(moments: list[str]) -> None:
    """``all_whole_seconds`` answers for a list what ``is_rfc3339_as_written`` answers for
    each of its 20-character timestamps (and no for any other length)."""
    expected = all(len(m) == 20 and is_rfc3339_as_written(m) for m in moments)
    assert codec.all_whole_seconds(moments) is expected
