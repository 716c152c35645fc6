"""The usual GeminiDB list reply read in one typed pass: it takes the typed path exactly when
it is of the usual shape, and whatever it is, callers get what the general path gives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.geminidb.test_records import SEED_SESSION, _server_shaped, _wire_sessions
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    HttpRequest,
    HttpResponse,
    Operation,
    RosettaError,
)
from translators.faircom import FairComTranslator
from translators.geminidb import typed
from translators.geminidb.sessions import AGE_LIMIT
from translators.geminidb.translator import GeminiDbTranslator
from translators.session_rows import BRIEF_FIELDS, Brief, SessionRows
from translators.wire import dump_json

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
GEMINIDB = GeminiDbTranslator({})
LISTING = CanonicalRequest(Operation.LIST, "geminidb")


def _body(groups: list[tuple[Any, list[Any]]], **top: Any) -> bytes:
    return dump_json(  # integers beyond 64 bits too
        {
            "node_sessions": [
                {"node_id": node, "total_count": len(group), "sessions": group}
                for node, group in groups
            ],
            **top,
        }
    )


def _general(body: bytes) -> SessionRows | tuple[str, str]:
    """What the translator's general path makes of a 200 reply: its rows, or its error."""
    try:
        return GEMINIDB._upstream_sessions(
            GEMINIDB._upstream_body(HttpResponse(200, [], body)), NOW
        )
    except RosettaError as exc:
        return exc.kind.value, exc.message


def _caller_sees(rows: SessionRows) -> tuple[Any, Any, Any]:
    """What callers get from these rows: whole records, brief fields, a GeminiDB list."""
    request = CanonicalRequest(
        Operation.LIST, "geminidb", extras={"geminidb": {"view": "instance"}}
    )
    response = CanonicalResponse(Operation.LIST, sessions=rows, total=len(rows))
    http = HttpRequest("GET", "/v3/p/instances/i/sessions")
    rendered = GEMINIDB.encode_response(response, request, http)
    return list(rows), Brief(*BRIEF_FIELDS)(rows), orjson.loads(rendered.body)


_nodes = st.one_of(st.sampled_from(["node-1", "node-2", ""]), st.none(), st.integers())
_groups = st.lists(
    st.tuples(_nodes, st.lists(st.one_of(_wire_sessions, st.integers()), max_size=4)),
    max_size=3,
)


@settings(max_examples=400, deadline=None)
@given(_groups)
def test_the_typed_path_reads_what_the_general_path_reads(
    groups: list[tuple[Any, list[Any]]],
) -> None:
    body = _body(groups)
    kept = typed.typed_rows(body, NOW)
    general = _general(body)
    if kept is None:
        return  # the general path answers, as it always did
    assert isinstance(general, SessionRows), general
    assert _caller_sees(kept) == _caller_sees(general)


_usual_groups = st.lists(
    st.tuples(st.text(max_size=6), st.lists(_server_shaped, max_size=4)), max_size=3
)


@settings(max_examples=200, deadline=None)
@given(_usual_groups)
def test_every_reply_of_the_usual_shape_takes_the_typed_path(
    groups: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    body = _body(groups)
    kept = typed.typed_rows(body, NOW)
    ages = [s["age"] for _, group in groups for s in group]
    if any(not -AGE_LIMIT < age < AGE_LIMIT for age in ages):
        assert kept is None
        return
    assert kept is not None
    general = _general(body)
    assert isinstance(general, SessionRows)
    assert _caller_sees(kept) == _caller_sees(general)


@pytest.mark.parametrize(
    "session",
    [
        SEED_SESSION | {"id": "42"},
        SEED_SESSION | {"db": True},
        SEED_SESSION | {"idle": 1.5},
        SEED_SESSION | {"fd": None},
        SEED_SESSION | {"age": AGE_LIMIT},
        SEED_SESSION | {"lib-name": "redis-py"},
        {k: v for k, v in SEED_SESSION.items() if k != "multi"},
    ],
    ids=["string id", "bool db", "float idle", "null fd", "age", "unknown key", "missing"],
)
def test_any_other_session_sends_the_reply_down_the_general_path(session: Any) -> None:
    body = _body([("node-1", [SEED_SESSION, session])])
    assert typed.typed_rows(body, NOW) is None
    assert typed.typed_rows(_body([("node-1", [SEED_SESSION])]), NOW) is not None


@pytest.mark.parametrize(
    "body",
    [
        _body([(None, [SEED_SESSION])]),
        orjson.dumps({"sessions": [SEED_SESSION]}),
        _body([("node-1", [SEED_SESSION])], request_id="r-1"),
        _body([("node-1", [SEED_SESSION])]).replace(b'"total_count":1', b'"total_count":[1]'),
        b'{"node_sessions": []} trailing',
        _body([("node-1", [SEED_SESSION])]).replace(b'"app-web', b'"\xffapp'),
        _body([("node-1", [SEED_SESSION | {"name": "\ufffd"}])]).replace(
            "\ufffd".encode(), b"\\ud800"
        ),
        b'{"deep": ' + b"[" * 200 + b"]" * 200 + b', "node_sessions": []}',
        b'{"deep": ' + b"[" * 5000 + b"]" * 5000 + b', "node_sessions": []}',
        b"[]",
        b"",
    ],
    ids=[
        "no node id",
        "no groups",
        "top-level extra",
        "group extra",
        "trailing",
        "utf-8",
        "surrogate",
        "deep",
        "deeper",
        "list",
        "empty",
    ],
)
def test_odd_bodies_take_the_general_path(body: bytes) -> None:
    assert typed.typed_rows(body, NOW) is None


def test_nesting_too_deep_stays_an_upstream_error() -> None:
    body = b'{"deep": ' + b"[" * 200 + b"]" * 200 + b', "node_sessions": []}'
    with pytest.raises(RosettaError) as caught:
        GEMINIDB.decode_response(HttpResponse(200, [], body), LISTING)
    assert caught.value.kind.value == "upstream_error"


def test_a_partly_decoded_list_renders_like_the_rest() -> None:
    """Rows read whole before rendering (a filter, say) are rendered from their records."""
    body = _body([("node-1", [SEED_SESSION, SEED_SESSION | {"id": 43}])])
    kept = typed.typed_rows(body, NOW)
    general = _general(body)
    assert kept is not None and isinstance(general, SessionRows)
    assert kept[1].id == "43"  # decodes row 1 only
    assert _caller_sees(kept) == _caller_sees(general)


def test_a_faircom_caller_gets_the_same_sessions_from_typed_rows() -> None:
    faircom = FairComTranslator({})
    body = _body([("node-1", [SEED_SESSION]), ("node-2", [SEED_SESSION | {"id": 7}])])
    kept = typed.typed_rows(body, NOW)
    general = _general(body)
    assert kept is not None and isinstance(general, SessionRows)
    request = CanonicalRequest(Operation.LIST, "faircom", request_id=1)
    http = HttpRequest("POST", "/api")

    def listed(rows: SessionRows) -> Any:
        response = CanonicalResponse(Operation.LIST, sessions=rows, total=len(rows))
        return orjson.loads(faircom.encode_response(response, request, http).body)

    assert listed(kept) == listed(general)
    tokens = [s["authToken"] for s in listed(kept)["result"]["sessions"]]
    assert [t.rsplit(":", 1)[-1] for t in tokens] == ["42", "7"]


def test_the_translator_reads_the_usual_reply_through_the_typed_path() -> None:
    body = _body([("node-1", [SEED_SESSION])])
    response = GEMINIDB.decode_response(HttpResponse(200, [], body), LISTING)
    assert type(response.sessions) is SessionRows
    assert type(response.sessions.codec) is typed.TypedRows
    assert response.total == 1 and response.sessions[0].id == "42"
