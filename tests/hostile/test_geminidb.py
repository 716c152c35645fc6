"""Hostile input at GeminiDB's ``/v3`` paths, authenticated with ``X-Auth-Token``, with a valid
SDK-HMAC-SHA256 signature (over the hostile request itself), and with a broken signature:
query parameters, path segments and close bodies. Every answer is ``{"error_code",
"error_msg"}`` with a 4xx status (``DBS.200001`` for a bad request, ``APIGW.0201`` for a body
too large), and the server keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import strategies as st

from tests.conftest import ACCESS_KEY, SECRET_KEY, STATIC_TOKEN
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
)
from tests.support.servers import ServerProcess
from translators.geminidb import signing

__all__ = ["server"]
TOKEN = {"x-auth-token": STATIC_TOKEN, "content-type": "application/json"}
INSTANCE = "/v3/proj/instances/inst/sessions"
NODE = "/v3/proj/redis/nodes/rosetta-node-1/sessions"
STATS = "/v3/proj/redis/nodes/node-a/session-statistics"
QUERIES = [
    ("GET", INSTANCE, ["node_id"]),
    ("DELETE", "/v3/proj/instances/inst/sessions?node_id=no-such-node", ["node_id"]),
    ("GET", NODE, ["offset", "limit", "addr_prefix"]),
    ("GET", STATS, ["node_id"]),
]
TEMPLATES = [
    ("GET", "/v3/{}/instances/inst/sessions"),
    ("GET", "/v3/proj/instances/{}/sessions"),
    ("GET", "/v3/proj/redis/nodes/{}/sessions"),
    ("GET", "/v3/proj/redis/nodes/{}/session-statistics"),
    ("DELETE", "/v3/proj/redis/nodes/{}/sessions"),
    ("GET", "/v3/proj/{}"),
    ("POST", "/v3/proj/instances/inst/{}"),
]
CLOSE_SEEDS: list[dict[str, Any]] = [
    {"is_all": False, "session_ids": ["999", 998]},
    {"is_all": True},
]


@pytest.fixture(scope="module")
def firing(server: ServerProcess) -> Iterator[Firing]:
    shot = Firing(server, "geminidb")
    yield shot
    shot.close()


def signed(case: Case, port: int, *, broken: bool) -> Case:
    """``case`` signed with the test AK/SK as the SDK signs (optionally with one hex digit of
    the signature flipped)."""
    path, _, query = case.target.partition("?")
    headers = {k: v for k, v in case.headers.items() if k != "x-auth-token"}
    headers["host"] = f"127.0.0.1:{port}"
    headers = signing.sign(
        method=case.method,
        path=unquote(path),
        pairs=signing.query_pairs(query),
        headers=headers,
        body=case.body or b"",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        now=datetime.now(UTC),
    )
    if broken:
        value = headers["authorization"]
        flipped = "0" if value[-1] != "0" else "1"
        headers["authorization"] = value[:-1] + flipped
    headers.pop("host")
    allowed = case.allowed | {"unauthenticated"} if broken else case.allowed
    return Case(
        case.method,
        case.target,
        headers,
        case.body,
        allowed,
        f"{case.label} ({'broken' if broken else 'signed'})",
    )


def authenticated(cases: st.SearchStrategy[Case], port: int) -> st.SearchStrategy[Case]:
    """Each case as is (token), signed, or with a broken signature."""
    return st.builds(
        lambda case, how: case if how == "token" else signed(case, port, broken=how == "broken"),
        cases,
        st.sampled_from(["token", "token", "signed", "broken"]),
    )


def _query_case(entry: tuple[str, str, list[str]], query: str) -> Case:
    method, path, _ = entry
    sep = "&" if "?" in path else "?"
    return Case(
        method, f"{path}{sep}{query}" if query else path, dict(TOKEN), None, CLIENT_SIDE, "query"
    )


def test_query_parameters(firing: Firing, server: ServerProcess) -> None:
    cases = st.sampled_from(QUERIES).flatmap(
        lambda entry: st.builds(lambda q: _query_case(entry, q), query_string(entry[2]))
    )
    run_generated(firing, authenticated(cases, server.port), 350)


def test_path_segments(firing: Firing, server: ServerProcess) -> None:
    cases = st.builds(
        lambda entry, segment: Case(
            entry[0],
            entry[1].format(segment),
            dict(TOKEN),
            b'{"is_all":false,"session_ids":["999"]}' if entry[0] == "DELETE" else None,
            CLIENT_SIDE,
            "path",
        ),
        st.sampled_from(TEMPLATES),
        path_segments,
    )
    run_generated(firing, authenticated(cases, server.port), 200)


def test_garbage_close_bodies_are_bad_requests(firing: Firing, server: ServerProcess) -> None:
    cases = st.builds(
        lambda body, ctype: Case(
            "DELETE",
            NODE,
            {**TOKEN, "content-type": ctype or "application/json"},
            body,
            BAD,
            "garbage",
        ),
        garbage_bodies,
        content_types,
    )
    run_generated(firing, authenticated(cases, server.port), 250)
    assert firing.outcomes["bad_request"] > 0


def test_close_near_misses(firing: Firing, server: ServerProcess) -> None:
    cases = st.builds(
        lambda doc: Case(
            "DELETE",
            NODE.replace("rosetta-node-1", "node-z"),
            dict(TOKEN),
            encode(doc),
            CLIENT_SIDE,
            "near-miss",
        ),
        st.sampled_from(CLOSE_SEEDS).flatmap(mutated),
    )
    run_generated(firing, authenticated(cases, server.port), 250)


def test_wrong_methods_are_answered_as_the_gateway_would(firing: Firing) -> None:
    for method in ("PUT", "PATCH", "POST"):
        case = Case(
            method, INSTANCE, dict(TOKEN), b"{}", frozenset({"method_not_allowed"}), "method"
        )
        firing.fire(case, source="fixed")
    firing.healthy()


def test_fixed_battery(firing: Firing) -> None:
    node = NODE.replace("rosetta-node-1", "node-z")
    for slot in ("session_ids", "is_all"):
        # GeminiDB reads JSON as RFC 7159 allows (UTF-16 and UTF-32 detected), as Python does
        close = BodyPath(
            "DELETE",
            node,
            TOKEN,
            CLOSE_SEEDS[0],
            (slot,),
            utf16_allowed=CLIENT_SIDE,
            label="geminidb close",
        )
        fire_fixed(firing, close)
    get = BodyPath(
        "GET", INSTANCE, TOKEN, {}, ("x",), garbage_allowed=CLIENT_SIDE, label="geminidb get"
    )
    fire_fixed(firing, get)


def test_enough_cases_were_sent() -> None:
    assert TALLY["geminidb"]["generated"] >= PER_DIALECT
