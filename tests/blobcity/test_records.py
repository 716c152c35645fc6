"""BlobCity session objects and canonical records: the fast paths (sessions of the usual shape,
kept list rows sent on unchanged, the time formatter, the encoder) give what the general ones
give, on realistic and awkward input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.blobcity import BlobCityTranslator, records
from translators.codec import format_rfc3339, is_rfc3339_as_written, parse_rfc3339
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    Connection,
    HttpRequest,
    HttpResponse,
    Operation,
    RosettaError,
    SessionRecord,
)
from translators.session_rows import BRIEF_FIELDS, Brief, SessionRows

USUAL_SESSION = {
    "id": "54000",
    "user": "cli",
    "client-address": "10.5.152.246:1448",
    "service": "geminidb",
    "ds": "0",
    "state": "active",
    "connected-at": "2025-12-23T07:36:00Z",
    "idle-seconds": 402397,
    "last-command": "get",
    "node": "8436a91546294036b75931e879882200in06",
    "description": "",
    "connections": [],
    "extras": {"geminidb": {"fd": 1000, "sub": 0, "psub": 0, "multi": -1}},
}


# what ``session_to_json`` / ``connection_to_json`` did before the fast encoder: the reference
def reference_connection_to_json(conn: Connection) -> dict[str, Any]:
    own, others = records._split_extras(conn.extras)
    body: dict[str, Any] = {
        "server": conn.server,
        "state": conn.state,
        "role": conn.role,
        "reads": conn.reads,
        "writes": conn.writes,
    }
    for key, value in own.items():
        body.setdefault(key, value)
    if others:
        body["extras"] = others
    return body


def reference_session_to_json(record: SessionRecord) -> dict[str, Any]:
    own, others = records._split_extras(record.extras)
    body: dict[str, Any] = {"id": record.id}
    for key, attribute in records.SESSION_TEXT_FIELDS[:5]:
        body[key] = getattr(record, attribute)
    body["connected-at"] = format_rfc3339(record.connected_at)
    body["idle-seconds"] = record.idle_seconds
    for key, attribute in records.SESSION_TEXT_FIELDS[5:]:
        body[key] = getattr(record, attribute)
    body["connections"] = [reference_connection_to_json(c) for c in record.connections]
    for key, value in own.items():
        body.setdefault(key, value)
    if others:
        body["extras"] = others
    return body


# strategies ---------------------------------------------------------------------------------
_ZONES = st.sampled_from(
    [None, UTC, timezone(timedelta(0)), timezone(timedelta(hours=5, minutes=30)),
     timezone(timedelta(hours=-8)), timezone(timedelta(seconds=-1))]
)  # fmt: skip
_moments = st.datetimes(timezones=_ZONES)
_utc_moments = st.datetimes(timezones=st.just(UTC))


def _mutated(text: str, position: int, character: str) -> str:
    """``text`` with one character replaced (an almost-right timestamp)."""
    index = position % len(text)
    return text[:index] + character + text[index + 1 :]


_written_times = _utc_moments.map(format_rfc3339)


def _iso_text(moment: datetime, sep: str, spec: str, zulu: bool) -> str:
    """``moment`` as ``isoformat`` writes it, maybe with ``Z`` for ``+00:00``."""
    text = moment.isoformat(sep=sep, timespec=spec)
    return text.replace("+00:00", "Z") if zulu else text


_iso_variants = st.builds(
    _iso_text,
    _moments,
    st.sampled_from(["T", " ", "t", "x"]),
    st.sampled_from(["auto", "hours", "minutes", "seconds", "milliseconds", "microseconds"]),
    st.booleans(),
)
_awkward_times = st.one_of(
    st.none(),
    _written_times,
    _iso_variants,
    st.builds(
        _mutated,
        _written_times,
        st.integers(0, 30),
        st.sampled_from([*"0123456789-:.TZz +W,", "\u0661", "\uff10"]),
    ),
    st.sampled_from(
        [
            "",
            "2025-12-23T07:36:00.000000Z",
            "2025-12-23T07:36:00.5Z",
            "2025-W52-2T07:36:00Z",
            "20251223T073600Z",
            "2025-12-23T07:36Z",
            "2025-12-23T24:00:00Z",
            "2025-02-29T07:36:00Z",
            "2024-02-29T07:36:00Z",
            "2025-12-23T07:36:60Z",
            "2025-12-23T07:36:00ZZ",
            "0000-12-23T07:36:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "2025-12-23T07:36:00,123456Z",
            "2025-12-23T07:36:00+00:00",
            "\uff12025-12-23T07:36:00Z",
        ]
    ),
    st.text(max_size=28),
    st.integers(-(2**63), 2**63 - 1),
)
_texts = st.text(max_size=6)
_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), _texts,
    st.floats(allow_nan=False, allow_infinity=False),
)  # fmt: skip
_json = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_texts, inner, max_size=3)
    ),
    max_leaves=6,
)
_others_extras = st.dictionaries(
    st.sampled_from(["geminidb", "maxscale", "faircom", "x"]), _json, min_size=1, max_size=2
)
_idle = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 0.0, -0.0, 1.5]),
)


@st.composite
def usual_connections(draw: st.DrawFn) -> dict[str, Any]:
    """A connection as ``connection_to_json`` writes one (maybe with others' extras)."""
    row: dict[str, Any] = {key: draw(_texts) for key in records.CONNECTION_TEXT_FIELDS}
    row["reads"] = draw(st.integers(-(2**63), 2**63 - 1))
    row["writes"] = draw(st.integers(0, 2**40))
    if draw(st.booleans()):
        row["extras"] = draw(_others_extras)
    return row


@st.composite
def usual_sessions(draw: st.DrawFn, times: st.SearchStrategy[Any] = _awkward_times) -> Any:
    """A session in the order and with the types ``session_to_json`` writes, with awkward
    times and idle values (some such sessions are not of the usual shape after all)."""
    row: dict[str, Any] = {"id": draw(st.text(min_size=1, max_size=6))}
    for key, _ in records.SESSION_TEXT_FIELDS[:5]:
        row[key] = draw(_texts)
    row["connected-at"] = draw(times)
    row["idle-seconds"] = draw(_idle)
    for key, _ in records.SESSION_TEXT_FIELDS[5:]:
        row[key] = draw(_texts)
    row["connections"] = draw(st.lists(usual_connections(), max_size=2))
    if draw(st.booleans()):
        row["extras"] = draw(_others_extras)
    return row


_connection_values = st.one_of(_json, usual_connections())


@st.composite
def awkward_sessions(draw: st.DrawFn) -> Any:
    """Sessions some way off the usual shape: a key missing, moved or added, a value of
    another JSON type, empty or our own extras, odd connections; or not an object."""
    row = dict(draw(usual_sessions(st.one_of(st.none(), _written_times))))
    keys = list(row)
    change = draw(st.sampled_from(["value", "drop", "move", "swap", "add", "extras", "connection"]))
    if change == "value":
        row[draw(st.sampled_from(keys))] = draw(st.one_of(_json, _awkward_times))
    elif change == "drop":
        del row[draw(st.sampled_from(keys))]
    elif change == "move":
        key = draw(st.sampled_from(keys))
        row[key] = row.pop(key)
    elif change == "swap":  # two keys change places, each keeping its value
        first, second = draw(st.lists(st.sampled_from(keys), min_size=2, max_size=2))
        order = [second if k == first else first if k == second else k for k in keys]
        row = {k: row[k] for k in order}
    elif change == "add":
        row[draw(st.sampled_from(["priority", "id", "Extras", ""]))] = draw(_json)
    elif change == "extras":
        row["extras"] = draw(
            st.one_of(_json, st.fixed_dictionaries({"blobcity": _json}, optional={"x": _json}))
        )
    else:
        connection = draw(usual_connections())
        connection[draw(st.sampled_from(list(connection)))] = draw(_json)
        row["connections"] = [*row["connections"], connection]
    return draw(st.one_of(st.just(row), st.just(row), st.just(row), _json))


_sessions = st.one_of(usual_sessions(), awkward_sessions())


def _wire(value: Any) -> Any:
    """A value as it arrives from an upstream (serialised and parsed again)."""
    return orjson.loads(orjson.dumps(value))


def _is_usual_time(text: Any) -> bool:
    """The time check of a usual BlobCity session."""
    return type(text) is str and is_rfc3339_as_written(text)


def _outcome(decoder: Any, data: Any) -> Any:
    """A decoding's record (with its exact repr: time zones, int or float) or its error."""
    try:
        record = decoder(data)
    except RosettaError as exc:
        return exc.kind, exc.message
    return record, repr(record)


# the time -----------------------------------------------------------------------------------
@settings(max_examples=1000, deadline=None)
@given(_awkward_times)
def test_a_usual_time_reads_and_writes_back_as_the_codec_does(text: Any) -> None:
    if not _is_usual_time(text):
        return
    moment = parse_rfc3339(text)
    assert moment is not None
    fast = datetime.fromisoformat(text)
    assert (fast, repr(fast)) == (moment, repr(moment))
    assert format_rfc3339(moment) == text


@settings(max_examples=300, deadline=None)
@given(_utc_moments)
def test_every_time_the_encoder_writes_is_usual(moment: datetime) -> None:
    assert _is_usual_time(format_rfc3339(moment))


# one session --------------------------------------------------------------------------------
@settings(max_examples=1000, deadline=None)
@given(_sessions)
def test_fast_and_general_decoding_agree(data: Any) -> None:
    assert _outcome(records.session_from_json, data) == _outcome(records._record_of_any_shape, data)


@settings(max_examples=1000, deadline=None)
@given(_sessions)
def test_a_usual_session_renders_back_exactly_as_received(data: Any) -> None:
    """What lets a kept row be sent on unchanged: the same bytes, key order included."""
    if not (type(data) is dict and records.is_usual(data)):
        return
    record = records._record_of_any_shape(data)
    assert orjson.dumps(records.session_to_json(record)) == orjson.dumps(data)
    assert orjson.dumps(reference_session_to_json(record)) == orjson.dumps(data)


@settings(max_examples=300, deadline=None)
@given(
    usual_sessions().filter(
        lambda row: row["connected-at"] is None or _is_usual_time(row["connected-at"])
    )
)
def test_sessions_as_the_encoder_writes_them_are_usual(data: dict[str, Any]) -> None:
    if data["idle-seconds"] == 0 and type(data["idle-seconds"]) is float:
        data["idle-seconds"] = 0  # a record's 0.0 is written as 0.0 but read back as 0
    assert records.is_usual(_wire(data))


def test_sessions_off_the_usual_shape_take_the_general_path() -> None:
    assert records.is_usual(USUAL_SESSION)
    assert records.is_usual({k: v for k, v in USUAL_SESSION.items() if k != "extras"})
    odd = [
        USUAL_SESSION | {"id": 54000},
        USUAL_SESSION | {"idle-seconds": 0.0},
        USUAL_SESSION | {"connected-at": "2025-12-23T07:36:00+00:00"},
        USUAL_SESSION | {"connected-at": "2025-12-23T07:36:00.000000Z"},
        USUAL_SESSION | {"connected-at": "2025-02-30T07:36:00Z"},
        USUAL_SESSION | {"extras": {}},
        USUAL_SESSION | {"extras": {"blobcity": {"priority": "high"}}},
        USUAL_SESSION | {"priority": "high"},
        {"user": "cli"} | USUAL_SESSION,  # same keys, another order
        {"user": "cli"} | {k: v for k, v in USUAL_SESSION.items() if k != "extras"},
        USUAL_SESSION | {"connections": [{"server": "s", "state": "", "role": "", "reads": 1}]},
    ]
    for data in odd:
        assert not records.is_usual(data), data
        assert _outcome(records.session_from_json, data) == _outcome(
            records._record_of_any_shape, data
        )


# the encoder --------------------------------------------------------------------------------
_connections = st.builds(
    Connection, _texts, _texts, _texts, st.integers(0, 2**40), st.integers(0, 2**40),
    st.one_of(st.just({}), _others_extras, st.fixed_dictionaries({"blobcity": _json},
              optional={"geminidb": _json})),
)  # fmt: skip
_records = st.builds(
    SessionRecord,
    id=st.text(min_size=1, max_size=6),
    user=_texts,
    client_address=_texts,
    service=_texts,
    database=_texts,
    state=_texts,
    connected_at=st.one_of(st.none(), _moments.filter(lambda m: m.tzinfo is not None)),
    idle_seconds=_idle,
    last_command=_texts,
    node_id=_texts,
    description=_texts,
    connections=st.lists(_connections, max_size=2),
    extras=st.one_of(
        st.just({}),
        _others_extras,
        st.fixed_dictionaries(
            {"blobcity": st.one_of(_json, st.dictionaries(st.sampled_from(["id", "x"]), _json))},
            optional={"geminidb": _json},
        ),
    ),
)


@settings(max_examples=500, deadline=None)
@given(_records)
def test_the_encoder_writes_what_the_straightforward_rendering_writes(
    record: SessionRecord,
) -> None:
    try:
        expected: Any = orjson.dumps(reference_session_to_json(record))
    except OverflowError:
        expected = OverflowError
    try:
        written: Any = orjson.dumps(records.session_to_json(record))
    except OverflowError:
        written = OverflowError
    assert written == expected


# list replies -------------------------------------------------------------------------------
def _listed(sessions: Any) -> bytes:
    """A BlobCity caller's list reply holding these sessions."""
    response = CanonicalResponse(Operation.LIST, sessions=sessions, total=len(sessions))
    request = CanonicalRequest(Operation.LIST, "blobcity")
    rendered = BlobCityTranslator().encode_response(response, request, HttpRequest("POST", "/"))
    assert rendered.status == 200
    return rendered.body


@settings(max_examples=300, deadline=None)
@given(st.lists(_sessions, max_size=5))
def test_a_list_reply_kept_as_rows_reads_like_the_decoded_list(items: list[Any]) -> None:
    """Sessions of the usual shape are kept undecoded; whatever is read from them (records,
    brief fields, the list sent on to a BlobCity caller) is what decoding them all at once
    gives, and a session that cannot be decoded fails the reply on arrival, as before."""
    items = _wire(items)
    try:
        eager = [records._record_of_any_shape(s) for s in items]
    except RosettaError as exc:
        with pytest.raises(RosettaError) as caught:
            records.reply_rows(items)
        assert (caught.value.kind, caught.value.message) == (exc.kind, exc.message)
        return
    brief = Brief(*BRIEF_FIELDS)
    assert brief(records.reply_rows(items)) == brief(eager)
    assert _listed(records.reply_rows(items)) == _listed(eager)
    kept = records.reply_rows(items)
    assert list(kept) == eager
    assert [repr(r) for r in kept] == [repr(r) for r in eager]
    assert _listed(kept) == _listed(eager)  # now from decoded records


def test_sessions_of_the_usual_shape_are_not_decoded_on_arrival() -> None:
    odd = USUAL_SESSION | {"id": 7}
    rows = records.reply_rows([USUAL_SESSION, odd, USUAL_SESSION | {"id": "8"}])
    assert [record is None for _, _, record in rows.entries()] == [True, False, True]
    assert Brief("id", "database", "node_id")(rows) == [
        ("54000", "0", USUAL_SESSION["node"]),
        ("7", "0", USUAL_SESSION["node"]),
        ("8", "0", USUAL_SESSION["node"]),
    ]
    assert rows[0].connected_at == datetime(2025, 12, 23, 7, 36, tzinfo=UTC)


def _reply(sessions: list[Any]) -> HttpResponse:
    body = {"ack": "1", "time": 3, "rows": len(sessions), "p": {"sessions": sessions}}
    return HttpResponse(200, [("content-type", "application/json")], orjson.dumps(body))


@pytest.mark.parametrize(
    "bad",
    [
        {"id": ""},
        USUAL_SESSION | {"connected-at": "2025-02-30T07:36:00Z"},
        USUAL_SESSION | {"idle-seconds": "5"},
        USUAL_SESSION | {"connections": {"server": "s"}},
        "session",
    ],
)
def test_a_malformed_session_fails_the_reply_on_arrival(bad: Any) -> None:
    translator = BlobCityTranslator()
    request = CanonicalRequest(Operation.LIST, "rosetta")
    with pytest.raises(RosettaError) as caught:
        translator.decode_response(_reply([USUAL_SESSION, bad, USUAL_SESSION]), request)
    assert caught.value.kind.value == "upstream_error"
    assert "malformed blobcity session" in caught.value.message


@settings(max_examples=200, deadline=None)
@given(st.lists(_sessions, max_size=4))
def test_blobcity_to_blobcity_sends_the_list_it_would_render(items: list[Any]) -> None:
    """Through the translator: a BlobCity upstream's list reply, sent on to a BlobCity
    caller, is byte for byte what rendering the eagerly decoded records gives."""
    translator = BlobCityTranslator()
    request = CanonicalRequest(Operation.LIST, "blobcity")
    try:
        decoded = translator.decode_response(_reply(_wire(items)), request)
    except RosettaError:
        return  # fails on arrival (above)
    assert type(decoded.sessions) is SessionRows
    eager = [records._record_of_any_shape(s) for s in _wire(items)]
    http = HttpRequest("POST", "/rest/bquery")
    expected = CanonicalResponse(
        Operation.LIST, sessions=eager, total=decoded.total, extras=decoded.extras
    )
    assert (
        translator.encode_response(decoded, request, http).body
        == translator.encode_response(expected, request, http).body
    )
