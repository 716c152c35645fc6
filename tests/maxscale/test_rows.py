"""MaxScale JSON:API list replies kept as rows: the fast paths for resources of the usual shape
(``translators.maxscale.rows``) give what the general decoding and rendering give, on the
resources Rosetta renders and on awkward ones; the hand-rolled HTTP-date parser and formatter
agree with the standard library; a malformed resource still fails the reply on arrival."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from translators.maxscale import documents, rows, translator
from translators.maxscale.documents import jsonapi_session, session_from_jsonapi
from translators.maxscale.translator import MaxScaleTranslator
from translators.session_rows import BRIEF_FIELDS, Brief, SessionRows
from translators.wire import format_http_date, parse_http_date

BASE = "http://maxscale.example:8989"
NOW = 1_767_322_800.25  # 2026-01-02, with a fraction of a second

_moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))
_hosts = st.one_of(
    st.sampled_from(["10.0.0.1", "db.example", "::1", "fe80::1%eth0", ""]),
    st.sampled_from(["[x", "a]b", "[::1]", "a:b:", "a]:b", "::1]"]),
    st.text(max_size=6),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=6),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
_attribute_names = st.sampled_from([*rows._ATTRIBUTES_WITH_USER, "extra", "memory"])


@st.composite
def _records(draw: st.DrawFn) -> SessionRecord:
    """Canonical records of any origin, as a MaxScale caller's list could carry."""
    host, port = draw(_hosts), draw(st.integers(min_value=0, max_value=70000))
    if draw(st.integers(0, 9)) == 7:
        port = None
    extras: dict[str, Any] = {}
    if draw(st.booleans()):
        extras["parameters"] = draw(
            st.dictionaries(st.sampled_from(["log_info", "log_debug", "x"]), _scalars)
        )
    if draw(st.booleans()):
        extras["filters"] = draw(st.lists(st.text(max_size=4), max_size=2))
    if draw(st.integers(0, 9)) == 7:
        extras["attributes"] = draw(st.dictionaries(_attribute_names, _values, max_size=4))
    connections = [
        Connection(server=server, extras={"maxscale": {"connection_id": cid, "cipher": ""}})
        for server, cid in draw(
            st.lists(st.tuples(st.text(max_size=4), st.none() | st.integers(0, 99)), max_size=2)
        )
    ]
    return SessionRecord(
        id=draw(st.text(min_size=1, max_size=6)),
        user=draw(st.sampled_from(["", "admin", "app"])),
        client_address=documents.join_address(host, port),
        service=draw(st.sampled_from(["", "rw-service", "ro"])),
        state=draw(st.sampled_from(["", "Session ready for routing"])),
        connected_at=None if draw(st.integers(0, 9)) == 7 else draw(_moments),
        idle_seconds=draw(st.integers(0, 10**6) | st.floats(0, 1e6)),
        connections=connections,
        extras={"maxscale": extras} if extras else {},
    )


def _as_received(record: SessionRecord) -> dict[str, Any]:
    """The resource Rosetta renders for a record, as a MaxScale upstream's reply carries it."""
    rendered: dict[str, Any] = json.loads(json.dumps(jsonapi_session(record, BASE, NOW)))
    return rendered


def _date_texts(moment: datetime) -> st.SearchStrategy[str]:
    """An HTTP-date as written, and ways an upstream could write it otherwise."""
    text = format_http_date(moment)
    return st.sampled_from(
        [
            text,
            text.lower(),
            text.replace(text[:3], "Mon" if text[:3] != "Mon" else "Tue"),  # wrong weekday
            text.replace(" 0", "  ", 1),
            text[:-4],
            text + " ",
            moment.strftime("%a %b %d %H:%M:%S %Y"),  # asctime
            "Sun, 31 Feb 2016 03:03:12 GMT",
            "Wed, 31 Aug 2016 24:03:12 GMT",
            "",
            "yesterday",
        ]
    )


_same_kind: dict[str, st.SearchStrategy[Any]] = {
    "idle": st.integers(min_value=-(2**70), max_value=2**70),
    "user": st.just(""),
    "remote": _hosts,
    "port": st.integers(min_value=-3, max_value=70000) | st.booleans(),
    "memory": _values,
    "parameters": st.dictionaries(st.sampled_from(["log_info", "log_debug", "x"]), _values),
    "connections": st.lists(
        st.dictionaries(st.sampled_from(["server", "connection_id", "cipher", "x"]), _values),
        max_size=2,
    ),
}
"""Other values of attributes that a usual resource may have."""
_identifiers = st.lists(
    st.fixed_dictionaries({"id": st.sampled_from(["", "a", "b"]), "type": st.just("x")}),
    max_size=3,
)
_plain_relationships = st.fixed_dictionaries(
    {"services": st.fixed_dictionaries({"data": _identifiers})},
    optional={
        "filters": st.fixed_dictionaries({"data": _identifiers}),
        "other": st.fixed_dictionaries({"data": _identifiers}),
    },
)
"""Relationships a usual resource may have (and, with ``other``, one it may not)."""


def _change(draw: st.DrawFn, resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with one thing changed the way another server might change it."""
    attributes = dict(resource["attributes"])
    changed = dict(resource, attributes=attributes)
    kind = draw(
        st.sampled_from(["same", "same", "links", "value", "drop", "order", "date", "id", "odd"])
    )
    if kind == "same":
        name = draw(st.sampled_from(sorted(_same_kind)))
        attributes[name] = draw(_same_kind[name])
    elif kind == "links":
        changed["relationships"] = draw(_plain_relationships)
    elif kind == "value":
        attributes[draw(_attribute_names)] = draw(_values)
    elif kind == "drop":
        attributes.pop(draw(_attribute_names), None)
    elif kind == "order":
        names = draw(st.permutations(list(attributes)))
        changed["attributes"] = {name: attributes[name] for name in names}
    elif kind == "date":
        attributes["connected"] = draw(_moments.flatmap(_date_texts))
    elif kind == "id":
        changed["id"] = draw(_scalars)
    else:
        identifiers = st.fixed_dictionaries({"id": _scalars, "type": st.just("services")})
        changed["relationships"] = draw(
            st.dictionaries(
                st.sampled_from(["services", "filters", "other"]),
                st.fixed_dictionaries({"data": st.lists(identifiers, max_size=2)}) | _values,
                max_size=3,
            )
            | _values
        )
    return changed


@st.composite
def _awkward(draw: st.DrawFn, resource: dict[str, Any]) -> dict[str, Any]:
    """A received resource with one to three things changed."""
    for _ in range(draw(st.integers(1, 3))):
        resource = _change(draw, resource)
    return resource


_resources = _records().map(_as_received).flatmap(lambda r: st.just(r) | _awkward(r))


def _outcome(action: Callable[[], Any]) -> str:
    """What an action gives, spelled so that key order and int/float show: its ``repr``, or
    the error it raises."""
    try:
        return repr(action())
    except RosettaError as exc:
        return f"RosettaError({exc.kind}, {exc.message!r})"
    except (TypeError, ValueError, OverflowError) as exc:
        return f"{type(exc).__name__}"


@settings(max_examples=1000, deadline=None)
@given(_resources)
def test_the_fast_paths_give_what_the_general_ones_give(resource: dict[str, Any]) -> None:
    _assert_fast_paths_agree(resource)


def _assert_fast_paths_agree(resource: dict[str, Any]) -> None:
    moment = rows.usual_moment(resource)
    if moment is None:
        return  # decoded by the general path on arrival
    record = session_from_jsonapi(resource)  # a usual resource decodes without error
    assert repr(rows.record_of_usual(resource, moment)) == repr(record)
    assert rows.record_of_usual(resource, moment) == record
    assert _outcome(lambda: rows.resource_of_usual(resource, moment, BASE, NOW)) == _outcome(
        lambda: jsonapi_session(record, BASE, NOW)
    )


@settings(max_examples=200, deadline=None)
@given(_records())
def test_resources_rosetta_renders_are_usual_when_their_date_is_known(
    record: SessionRecord,
) -> None:
    """What a Rosetta in front of MaxScale sends takes the fast path, unless it has nothing
    to keep it apart from another shape (no connection time, odd attributes, an address the
    general path rewrites)."""
    resource = _as_received(record)
    host, port = documents.split_address(record.client_address)
    plain = (
        record.connected_at is not None
        and port is not None
        and "[" not in host
        and "]" not in host
        and not documents.extras_of(record).get("attributes")
    )
    if plain:
        assert rows.usual_moment(resource) == (
            record.connected_at,
            record.connected_at.timestamp(),  # type: ignore[union-attr]
        )


def _reply(resources: list[Any]) -> HttpResponse:
    body = json.dumps({"links": {"self": f"{BASE}/v1/sessions/"}, "data": resources})
    return HttpResponse(200, [("content-type", "application/json")], body.encode())


_LIST = CanonicalRequest(Operation.LIST, "maxscale")


@settings(max_examples=300, deadline=None)
@given(st.lists(_resources, max_size=5))
def test_a_list_reply_kept_as_rows_reads_like_the_decoded_list(
    resources: list[dict[str, Any]],
) -> None:
    """Whatever is read from the kept rows (records, brief fields) is what decoding every
    resource at once gives; a resource that cannot be decoded fails the reply on arrival."""
    maxscale, reply = MaxScaleTranslator({}), _reply(resources)
    try:
        eager = [session_from_jsonapi(r) for r in translator._upstream_json(reply)["data"]]
    except RosettaError as exc:
        with pytest.raises(RosettaError) as caught:
            maxscale.decode_response(reply, _LIST)
        assert (caught.value.kind, caught.value.message) == (exc.kind, exc.message)
        return
    decoded = maxscale.decode_response(reply, _LIST).sessions
    assert type(decoded) is SessionRows
    brief = Brief(*BRIEF_FIELDS)
    assert repr(brief(decoded)) == repr(brief(eager))
    assert repr(list(decoded)) == repr(eager)


_QUERIES = [
    "",
    "fields[sessions]=state,memory/total,services",
    "page[size]=2&page[number]=1",
    "filter=/attributes/user=%22admin%22",
    "filter[id]=ne(%22x%22)&page[size]=1",
]


@settings(max_examples=200, deadline=None)
@given(st.lists(_resources, max_size=5), st.sampled_from(_QUERIES))
def test_a_maxscale_caller_gets_the_same_list_from_kept_rows(
    resources: list[dict[str, Any]], query: str
) -> None:
    """Same dialect on both sides: the list rendered from kept rows is, byte for byte, the
    list rendered from the decoded records, whatever the caller's fields, pages and filters."""
    maxscale = MaxScaleTranslator({})
    try:
        decoded = maxscale.decode_response(_reply(resources), _LIST).sessions
    except RosettaError:
        return  # the reply fails on arrival (see above)
    assert decoded is not None
    headers = {"authorization": "Basic YTpi", "host": "maxscale.example:8989"}
    http = HttpRequest("GET", "/v1/sessions", query_string=query, headers=headers)
    request = maxscale.decode_request(http)

    def listed(records: Sequence[SessionRecord]) -> bytes:
        response = CanonicalResponse(Operation.LIST, sessions=records, total=len(records))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(translator.time, "time", lambda: NOW)
            return maxscale.encode_response(response, request, http).body

    assert listed(decoded) == listed(list(decoded))


_USUAL = _as_received(
    SessionRecord(
        "7", "app", "10.0.0.1:3306", "rw", state="ok", connected_at=datetime(2024, 1, 5, tzinfo=UTC)
    )
)


@pytest.mark.parametrize(
    ("attributes", "relationships", "usual"),
    [
        ({}, None, True),
        ({"user": ""}, None, True),
        ({"idle": 3}, None, True),
        ({"idle": 10**400}, None, True),
        ({"remote": "::1"}, None, True),
        ({"remote": "a]b"}, None, False),  # usual would be safe, but rare
        ({"remote": "a]:b"}, None, False),
        ({"remote": "[::1]"}, None, False),
        ({"port": -1}, None, False),
        ({"port": True}, None, False),
        ({"port": None}, None, False),
        ({"parameters": {"log_info": True}}, None, True),
        ({"parameters": {"x": 1, "log_debug": None}}, None, True),
        ({"connections": [{"server": 5, "x": 1}, {}]}, None, True),
        ({"connections": [1]}, None, False),
        ({"state": 5}, None, False),
        ({"connected": "Mon, 05 Jan 2024 00:00:00 GMT"}, None, False),
        ({}, {"services": {"data": [{"id": "a"}, {"id": "b"}]}}, True),
        ({}, {"services": {"data": []}, "filters": {"data": [{"id": "f"}]}}, True),
        ({}, {"services": {"data": [{"id": ""}]}, "filters": {"data": []}}, True),
        ({}, {"services": {"data": []}, "other": {"data": []}}, False),
        ({}, {"services": {"data": [{"id": 5}]}}, False),
        ({}, {"filters": {"data": []}}, False),
    ],
)
def test_resources_at_the_edge_of_the_usual_shape(
    attributes: dict[str, Any], relationships: dict[str, Any] | None, usual: bool
) -> None:
    resource = dict(_USUAL, attributes=_USUAL["attributes"] | attributes)
    if relationships is not None:
        resource["relationships"] = relationships
    assert (rows.usual_moment(resource) is not None) is usual
    _assert_fast_paths_agree(resource)
    if usual:
        brief = Brief(*BRIEF_FIELDS)
        kept = rows.reply_rows([resource])
        assert next(kept.entries())[2] is None
        assert brief(kept) == brief([session_from_jsonapi(resource)])


def test_usual_resources_are_kept_and_others_decoded_on_arrival() -> None:
    record = SessionRecord(
        "7", "app", "10.0.0.1:3306", "rw", state="ok", connected_at=datetime(2024, 1, 5, tzinfo=UTC)
    )
    usual = _as_received(record)
    shuffled = dict(usual, attributes=dict(reversed(usual["attributes"].items())))
    decoded = MaxScaleTranslator({}).decode_response(_reply([usual, shuffled]), _LIST)
    kept = decoded.sessions
    assert type(kept) is SessionRows
    assert [entry[2] is None for entry in kept.entries()] == [True, False]
    assert Brief("id", "client_address", "service")(kept) == [("7", "10.0.0.1:3306", "rw")] * 2


@pytest.mark.parametrize(
    "change",
    [
        {"idle": "soon"},
        {"connected": "yesterday"},
        {"connections": [1]},
    ],
)
def test_a_malformed_resource_fails_the_reply_on_arrival(change: dict[str, Any]) -> None:
    usual = _USUAL
    bad = dict(usual, attributes=usual["attributes"] | change)
    with pytest.raises(RosettaError) as caught:
        MaxScaleTranslator({}).decode_response(_reply([usual, bad]), _LIST)
    assert caught.value.kind.value == "upstream_error"


_zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)


@settings(max_examples=400, deadline=None)
@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=_zones)
)
def test_http_dates_are_written_and_read_as_the_standard_library_does(moment: datetime) -> None:
    text = documents.http_date(moment)
    assert text == format_http_date(moment)
    parsed = documents.canonical_moment(text)
    assert parsed is not None
    assert parsed == (parse_http_date(text), parse_http_date(text).timestamp())
    assert parsed[0] == moment.replace(microsecond=0)


@settings(max_examples=400, deadline=None)
@given(_moments.flatmap(_date_texts) | st.text(max_size=30))
def test_an_http_date_read_by_hand_is_the_one_strptime_reads(text: str) -> None:
    parsed = documents.canonical_moment(text)
    if parsed is not None:
        assert parsed[0] == parse_http_date(text)
        assert documents.http_date(parsed[0]) == text


def test_the_date_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "_PARSED_DATES", {})
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for hour in range(documents._PARSED_DATES_KEPT + 10):
        documents.canonical_moment(documents.http_date(start + timedelta(hours=hour)))
    assert 0 < len(documents._PARSED_DATES) <= documents._PARSED_DATES_KEPT
