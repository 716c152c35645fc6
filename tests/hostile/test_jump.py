"""Hostile input at every JUMP entry: the JSON POST, the ``inputStream`` form POST, the GET
with ``inputStream`` (plain and JSONP), and the REST form ``.../rest/{sid}/{oid}``. Every
answer is a JUMP envelope (HTTP 200, non-empty ``error``, an ``errorCode``, ``response: ""``;
inside JSONP when a valid callback was given) meaning ``RSJE0400`` (bad request) or
``RSJE0413`` for garbage, a caller-side outcome for near-misses, and the server keeps
serving."""

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
    path_segments,
    query_string,
    with_content_type,
)
from tests.support.servers import ServerProcess

__all__ = ["server"]
PATHS = ("/presto/edge/api", "/mashzone/edge/api")
CREDS = {"presto_username": "admin", "presto_password": ADMIN_PASSWORD}
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}
SEEDS: list[dict[str, Any]] = [
    {
        "version": "1.1",
        "sid": "UserManagerService",
        "svcVersion": "0.1",
        "oid": "login",
        "params": ["admin", ADMIN_PASSWORD],
    },
    {
        "version": "1.0",
        "sid": "SessionService",
        "svcVersion": "0.1",
        "oid": "listSessions",
        "params": ["jdoe", 0, 10],
        "header": {"invId": "42", "x-presto-resultFormat": "json"},
    },
    {"sid": "SessionService", "oid": "getSession", "params": {"sessionId": "101"}},
    {"sid": "SessionService", "oid": "getSessionConnections", "params": [101]},
    {"sid": "SessionService", "oid": "killSession", "params": ["999", 998]},
    {"sid": "SessionService", "oid": "pingSession", "params": [], "appId": "a"},
    {"sid": "SessionService", "oid": "alterSession", "params": ["102", {"description": "x"}]},
    {"sid": "UserManagerService", "oid": "logout", "params": []},
]
REST = [
    ("SessionService", "listSessions", ["user", "offset", "limit", "fields", "x-p-method"]),
    ("SessionService", "getSession", ["sessionId", "id", "x-presto-resultFormat"]),
    ("SessionService", "killSession", ["sessionId", "sessionIds"]),
    ("UserManagerService", "login", ["presto_username", "presto_password"]),
    ("SessionService", "alterSession", ["sessionId", "description", "sessionTimeout"]),
]
CALLBACKS = st.one_of(
    st.sampled_from(["cb", "jQuery123_456", "a.b.c", "$x", "_"]),
    st.text(max_size=12),
)


@pytest.fixture(scope="module")
def firing(server: ServerProcess) -> Iterator[Firing]:
    shot = Firing(server, "jump")
    yield shot
    shot.close()


def creds(use: bool) -> dict[str, str]:
    return dict(CREDS) if use else {}


def test_garbage_posts_are_bad_requests(firing: Firing) -> None:
    cases = st.builds(
        lambda path, body, ctype, use: Case(
            "POST", path, with_content_type(creds(use), ctype), body, BAD, "garbage"
        ),
        st.sampled_from(PATHS),
        garbage_bodies,
        content_types,
        st.booleans(),
    )
    run_generated(firing, cases, 250)
    assert firing.outcomes["bad_request"] > 0


def test_garbage_input_streams_are_bad_requests(firing: Firing) -> None:
    def case(path: str, body: bytes, callback: str | None, as_form: bool) -> Case:
        query = "inputStream=" + quote(body, safe="")
        if callback is not None:
            query += "&callback=" + quote(callback, safe="")
        if as_form:
            return Case("POST", path, dict(FORM), query.encode(), BAD, "garbage form")
        return Case("GET", f"{path}?{query}", {}, None, BAD, "garbage inputStream")

    cases = st.builds(
        case,
        st.sampled_from(PATHS),
        garbage_bodies.filter(lambda b: b.strip() != b""),
        st.none() | CALLBACKS,
        st.booleans(),
    )
    run_generated(firing, cases, 200)


def test_near_misses(firing: Firing) -> None:
    def case(path: str, doc: Any, how: str, use: bool, callback: str | None) -> Case:
        body = encode(doc)
        if how == "post":
            return Case("POST", path, {**JSON, **creds(use)}, body, CLIENT_SIDE, "near-miss")
        query = "inputStream=" + quote(body, safe="")
        if callback is not None:
            query += "&callback=" + quote(callback, safe="")
        if how == "form":
            return Case("POST", path, {**FORM, **creds(use)}, query.encode(), CLIENT_SIDE, "form")
        return Case("GET", f"{path}?{query}", creds(use), None, CLIENT_SIDE, "get near-miss")

    cases = st.builds(
        case,
        st.sampled_from(PATHS),
        st.sampled_from(SEEDS).flatmap(mutated),
        st.sampled_from(["post", "form", "get"]),
        st.booleans(),
        st.none() | CALLBACKS,
    )
    run_generated(firing, cases, 400)


def test_rest_forms(firing: Firing) -> None:
    def case(
        entry: tuple[str, str, list[str]], query: str, method: str, segment: str | None, use: bool
    ) -> Case:
        sid, oid, _ = entry
        if segment is not None:
            oid = segment
        target = f"/presto/edge/api/rest/{sid}/{oid}" + (f"?{query}" if query else "")
        body = b'{"params": {"sessionId": "999"}}' if method == "POST" else None
        return Case(method, target, creds(use), body, CLIENT_SIDE, "rest")

    cases = st.sampled_from(REST).flatmap(
        lambda entry: st.builds(
            case,
            st.just(entry),
            query_string(entry[2]),
            st.sampled_from(["GET", "POST"]),
            st.none() | path_segments,
            st.booleans(),
        )
    )
    run_generated(firing, cases, 200)


def test_wrong_methods_are_405_in_the_envelope(firing: Firing) -> None:
    for method in ("PUT", "DELETE"):
        case = Case(method, PATHS[0], {}, b"{}", frozenset({"method_not_allowed"}), "method")
        firing.fire(case, source="fixed")
    firing.healthy()


@pytest.mark.parametrize("seed", [1, 6])
def test_fixed_battery(firing: Firing, seed: int) -> None:
    for slot in (("params",), ("sid",)):
        bp = BodyPath("POST", PATHS[0], {**JSON, **CREDS}, SEEDS[seed], slot, label="jump post")
        fire_fixed(firing, bp)
    form = BodyPath(
        "POST",
        PATHS[1],
        {**FORM, **CREDS},
        SEEDS[seed],
        ("params",),
        encode_body=lambda doc: b"inputStream=" + quote(encode(doc), safe="").encode(),
        label="jump form",
    )
    fire_fixed(firing, form)


def test_enough_cases_were_sent() -> None:
    assert TALLY["jump"]["generated"] >= PER_DIALECT
