"""Hostile input at BlobCity's ``POST /rest/bquery``, both the documented JSON form and the
Java adapter's form encoding: every answer is a BlobCity envelope (``ack: "0"`` with a
``code``) meaning ``DBQEX`` (bad request) or ``REQUEST_TOO_LARGE`` for garbage, a caller-side
outcome for near-misses, and the server keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import strategies as st

from tests.conftest import ADMIN_PASSWORD
from tests.hostile.battery import PER_DIALECT, BodyPath, fire_fixed, run_generated, server
from tests.hostile.envelopes import BAD, CLIENT_SIDE
from tests.hostile.harness import TALLY, Case, Firing
from tests.hostile.strategies import (
    content_types,
    encode,
    garbage_bodies,
    mutated,
    query_values,
    with_content_type,
)
from tests.support.servers import ServerProcess

__all__ = ["server"]
PATH = "/rest/bquery"
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}
CREDS = {"username": "admin", "password": ADMIN_PASSWORD}
SEEDS: list[dict[str, Any]] = [
    {**CREDS, "q": "list-sessions", "p": {"user": "jdoe", "limit": 10, "offset": 0}},
    {**CREDS, "q": "describe-session", "p": {"id": "101"}},
    {**CREDS, "q": "list-session-connections", "p": {"id": 101}},
    {**CREDS, "q": "kill-session", "p": {"ids": ["999", 998]}},
    {**CREDS, "q": "kill-all-sessions", "p": {"users": ["nobody"], "node": "nowhere"}},
    {**CREDS, "q": "verify-credentials", "p": None, "ds": "testds"},
    {"q": "ping", "p": None},
    {"key": "wrong-key", "q": "ping"},
]


@pytest.fixture(scope="module")
def firing(server: ServerProcess) -> Iterator[Firing]:
    shot = Firing(server, "blobcity")
    yield shot
    shot.close()


def form(doc: Any, *, raw: bool) -> bytes:
    """The Java adapter's form: credentials as fields and again inside ``q`` (the JSON)."""
    fields: list[tuple[str, str]] = []
    if isinstance(doc, dict):
        for name in ("username", "password", "ds"):
            value = doc.get(name)
            if isinstance(value, str):
                fields.append((name, value))
    q = encode(doc).decode("utf-8", "replace")
    fields.append(("q", q))
    if raw:
        return "&".join(f"{k}={v}" for k, v in fields).encode("utf-8", "replace")
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in fields).encode()


@st.composite
def form_fields(draw: st.DrawFn) -> bytes:
    """Form bodies built field by field: known and unknown names, hostile values."""
    names = st.sampled_from(["username", "password", "ds", "q", "p", "key", "c", "db"])
    pairs = draw(
        st.lists(st.tuples(st.one_of(names, st.text(max_size=6)), query_values), max_size=6)
    )
    encoded = draw(st.booleans())
    parts = [f"{k}={quote(v, safe='') if encoded else v}" for k, v in pairs]
    return "&".join(parts).encode("utf-8", "replace")


def test_garbage_bodies_are_bad_requests(firing: Firing) -> None:
    cases = st.builds(
        lambda body, ctype: Case("POST", PATH, with_content_type({}, ctype), body, BAD, "garbage"),
        garbage_bodies.filter(lambda b: not b.lstrip().startswith(b"{")),
        content_types,
    )
    run_generated(firing, cases, 250)
    assert firing.outcomes["bad_request"] > 0


def test_json_near_misses_get_a_blobcity_answer(firing: Firing) -> None:
    cases = st.builds(
        lambda doc, ctype: Case(
            "POST", PATH, with_content_type({}, ctype), encode(doc), CLIENT_SIDE, "json near-miss"
        ),
        st.sampled_from(SEEDS).flatmap(mutated),
        content_types,
    )
    run_generated(firing, cases, 400)


def test_form_near_misses_get_a_blobcity_answer(firing: Firing) -> None:
    cases = st.builds(
        lambda doc, raw: Case(
            "POST", PATH, FORM, form(doc, raw=raw), CLIENT_SIDE, "form near-miss"
        ),
        st.sampled_from(SEEDS).flatmap(mutated),
        st.booleans(),
    )
    run_generated(firing, cases, 300)


def test_form_fields_get_a_blobcity_answer(firing: Firing) -> None:
    cases = st.builds(
        lambda body, query: Case("POST", PATH + query, FORM, body, CLIENT_SIDE, "form fields"),
        form_fields(),
        st.sampled_from(["", "?q=%7B%22q%22%3A%22ping%22%7D", "?q=%FF", "?q="]),
    )
    run_generated(firing, cases, 150)


def test_wrong_methods_are_405_in_the_envelope(firing: Firing) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        firing.fire(
            Case(method, PATH, {}, b"{}", frozenset({"method_not_allowed"}), "method"),
            source="fixed",
        )
    firing.healthy()


def test_fixed_battery_json(firing: Firing) -> None:
    fire_fixed(
        firing, BodyPath("POST", PATH, JSON, SEEDS[0], ("p", "limit"), label="blobcity json")
    )
    fire_fixed(firing, BodyPath("POST", PATH, JSON, SEEDS[1], ("p", "id"), label="blobcity json"))


def test_fixed_battery_form(firing: Firing) -> None:
    bp = BodyPath(
        "POST",
        PATH,
        FORM,
        SEEDS[0],
        ("p", "user"),
        encode_body=lambda doc: form(doc, raw=False),
        label="blobcity form",
    )
    fire_fixed(firing, bp)


def test_enough_cases_were_sent() -> None:
    assert TALLY["blobcity"]["generated"] >= PER_DIALECT
