"""Whatever an upstream answers to a list, and whoever asked: decoding the reply either gives
a list or fails as a ``RosettaError`` (which every dialect renders with its own code), never
as another exception, and a list that decodes can be rendered for a caller of every dialect.

The replies are each dialect's usual list reply (what its servers send) with one value
anywhere in it swapped for an awkward one, cut short, or with a byte changed, and arbitrary
JSON; at HTTP 200 and at other statuses."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import payloads
from bench.translators_micro import list_request
from translators.codec import session_from_json
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    HttpRequest,
    HttpResponse,
    Operation,
    RosettaError,
    Translator,
)
from translators.registry import available
from translators.wire import dump_json

DIALECTS = sorted(available())


@cache
def _translator(name: str) -> Translator:
    return available()[name]({})


@cache
def _list_request(name: str) -> tuple[HttpRequest, CanonicalRequest]:
    """A caller's list request in the dialect, as its translator decodes it."""
    return list_request(available()[name], _translator(name))


@cache
def _usual_reply(name: str) -> bytes:
    """The dialect's list reply of three sessions, as its servers (and Rosetta) write it."""
    sessions = [session_from_json(s) for s in payloads.canonical_sessions(3)]
    http, request = _list_request(name)
    response = CanonicalResponse(Operation.LIST, sessions=sessions, total=len(sessions))
    rendered = _translator(name).encode_response(response, request, http)
    assert rendered.status == 200
    return rendered.body


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, as the keys and indexes that lead there."""
    found = [at]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*at, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*at, index))
    return found


def _swapped(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: _swapped(v, rest, new) if k == head else v for k, v in value.items()}
    return [_swapped(v, rest, new) if i == head else v for i, v in enumerate(value)]


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.sampled_from(["", "session:", "2025-12-23T07:36:00Z", "Tue, 23 Dec 2025 07:36:00 GMT"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@st.composite
def _replies(draw: st.DrawFn, name: str) -> bytes:
    usual = _usual_reply(name)
    how = draw(st.sampled_from(["swap", "swap", "swap", "cut", "byte", "json"]))
    if how == "json":
        return dump_json(draw(_json))
    if how == "cut":
        return usual[: draw(st.integers(0, len(usual) - 1))]
    if how == "byte":
        at = draw(st.integers(0, len(usual) - 1))
        return usual[:at] + bytes([draw(st.integers(0, 255))]) + usual[at + 1 :]
    value = orjson.loads(usual)
    path = draw(st.sampled_from(_paths(value)))
    deep = st.integers(1, 300).map(lambda n: orjson.loads(b"[" * n + b"]" * n))
    return dump_json(_swapped(value, path, draw(st.one_of(_json, deep))))


@pytest.mark.parametrize("upstream", DIALECTS)
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_any_list_reply_decodes_or_fails_as_a_rosetta_error(upstream: str, data: Any) -> None:
    body = data.draw(_replies(upstream), label="body")
    status = data.draw(st.sampled_from([200, 200, 200, 201, 400, 401, 404, 500, 502]))
    headers = [("content-type", "application/json")]
    _, request = _list_request(upstream)
    try:
        decoded = _translator(upstream).decode_response(
            HttpResponse(status, headers, body), request
        )
    except RosettaError:
        return  # rendered in the caller's envelope with its code (tests/faults)
    sessions = list(decoded.sessions or [])  # every kept row read as a whole record
    assert all(session.id for session in sessions)
    for caller in DIALECTS:
        http, caller_request = _list_request(caller)
        rendered = _translator(caller).encode_response(decoded, caller_request, http)
        assert isinstance(rendered.body, bytes) and 200 <= rendered.status < 600


@pytest.mark.parametrize("upstream", DIALECTS)
def test_the_usual_reply_decodes_to_its_sessions(upstream: str) -> None:
    """The replies above start from something that works: each dialect's own list."""
    _, request = _list_request(upstream)
    decoded = _translator(upstream).decode_response(
        HttpResponse(200, [("content-type", "application/json")], _usual_reply(upstream)),
        request,
    )
    assert sorted(s.id for s in decoded.sessions or []) == ["54000", "54001", "54002"]
