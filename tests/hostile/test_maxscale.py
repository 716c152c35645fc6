"""Hostile input at MaxScale's draft paths (``/sessions...``) and released JSON:API paths
(``/v1/...``): query parameters, path ids, ``Authorization`` headers and PATCH bodies. Every
answer is the format's own error body (draft ``{"error","description"}``, JSON:API
``{"errors":[{"detail"}]}``) with a documented 4xx status (501 for what MaxScale cannot do),
and the server keeps serving."""

from __future__ import annotations

import base64
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
BASIC = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
AUTH = {"authorization": BASIC}
PATCH_DRAFT = {**AUTH, "content-type": "application/json-patch+json"}
PATCH_V1 = {**AUTH, "content-type": "application/json"}
GETS = [
    ("GET", "/sessions", ["fields", "range"]),
    ("GET", "/sessions/101", ["fields"]),
    ("GET", "/sessions/101/connections", ["fields", "range"]),
    ("GET", "/v1/", ["pretty"]),
    ("GET", "/v1/maxscale", ["pretty", "fields[maxscale]"]),
    ("GET", "/v1/auth", ["max-age", "persist"]),
    (
        "GET",
        "/v1/sessions",
        [
            "fields[sessions]",
            "page[size]",
            "page[number]",
            "filter",
            "filter[/id]",
            "pretty",
            "rdns",
        ],
    ),
    ("GET", "/v1/sessions/101", ["fields[sessions]", "pretty"]),
    ("DELETE", "/v1/sessions/9999", ["ttl"]),
    ("DELETE", "/sessions/9999", []),
    ("POST", "/v1/sessions/restart", []),
    ("POST", "/v1/sessions/9999/restart", []),
]
ID_PATHS = [
    "/sessions/{}",
    "/sessions/{}/connections",
    "/v1/sessions/{}",
    "/v1/sessions/{}/restart",
]
DRAFT_PATCHES: list[Any] = [
    [{"op": "replace", "path": "/parameters/log_info", "value": True}],
    [
        {"op": "test", "path": "/parameters/log_debug", "value": False},
        {"op": "add", "path": "/filters/-", "value": "f1"},
        {"op": "move", "from": "/filters/0", "path": "/filters/1"},
    ],
]
V1_PATCHES: list[Any] = [
    {"data": {"attributes": {"parameters": {"log_info": True, "log_debug": False}}}},
    {"data": {"relationships": {"filters": {"data": [{"id": "f1", "type": "filters"}]}}}},
]


@pytest.fixture(scope="module")
def firing(server: ServerProcess) -> Iterator[Firing]:
    shot = Firing(server, "maxscale")
    yield shot
    shot.close()


def _query_case(entry: tuple[str, str, list[str]], query: str) -> Case:
    method, path, _ = entry
    return Case(
        method, f"{path}?{query}" if query else path, dict(AUTH), None, CLIENT_SIDE, "query"
    )


def test_query_parameters(firing: Firing) -> None:
    cases = st.sampled_from(GETS).flatmap(
        lambda entry: st.builds(lambda q: _query_case(entry, q), query_string(entry[2]))
    )
    run_generated(firing, cases, 350)


def test_path_ids_and_methods(firing: Firing) -> None:
    cases = st.builds(
        lambda template, segment, method: Case(
            method, template.format(segment), dict(AUTH), None, CLIENT_SIDE, "path id"
        ),
        st.sampled_from(ID_PATHS),
        path_segments.filter(lambda s: s not in ("101", "102", "103", "104")),
        st.sampled_from(["GET", "DELETE", "PATCH", "POST", "PUT", "HEAD", "OPTIONS"]),
    ).filter(lambda c: c.method != "HEAD")
    run_generated(firing, cases, 200)


def _authorization(kind: str, text: str) -> dict[str, str]:
    if kind == "basic":
        value = "Basic " + base64.b64encode(text.encode()).decode()
    elif kind == "basic-raw":
        value = "Basic " + text
    elif kind == "bearer":
        value = "Bearer " + text
    else:
        value = text
    return {"authorization": value.strip()}


def test_authorization_headers(firing: Firing) -> None:
    cases = st.builds(
        lambda path, kind, text: Case(
            "GET", path, _authorization(kind, text), None, CLIENT_SIDE, "authorization"
        ),
        st.sampled_from(["/sessions", "/v1/sessions", "/v1/auth", "/v1/sessions/101"]),
        st.sampled_from(["basic", "basic-raw", "bearer", "other"]),
        st.one_of(
            # what an HTTP client can put in a header: visible Latin-1 (control characters are
            # refused by the HTTP parser, before any dialect sees the request)
            st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
            st.sampled_from(["admin:", ":", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "admin"]),
        ),
    )
    run_generated(firing, cases, 100)


def test_garbage_patch_bodies_are_bad_requests(firing: Firing) -> None:
    cases = st.builds(
        lambda path, body, headers: Case("PATCH", path, headers, body, BAD, "garbage patch"),
        st.sampled_from(["/sessions/101", "/v1/sessions/101"]),
        garbage_bodies.filter(lambda b: b.strip() != b"[]"),  # an empty JSON Patch is valid
        st.sampled_from([PATCH_DRAFT, PATCH_V1]),
    )
    run_generated(firing, cases, 200)
    assert firing.outcomes["bad_request"] > 0


def test_patch_near_misses(firing: Firing) -> None:
    draft = st.builds(
        lambda doc, ctype: Case(
            "PATCH",
            "/sessions/102",
            with_content_type(dict(AUTH), ctype or "application/json-patch"),
            encode(doc),
            CLIENT_SIDE,
            "draft patch near-miss",
        ),
        st.sampled_from(DRAFT_PATCHES).flatmap(mutated),
        content_types,
    )
    jsonapi = st.builds(
        lambda doc, ctype: Case(
            "PATCH",
            "/v1/sessions/102",
            with_content_type(dict(AUTH), ctype),
            encode(doc),
            CLIENT_SIDE,
            "json:api patch near-miss",
        ),
        st.sampled_from(V1_PATCHES).flatmap(mutated),
        content_types,
    )
    run_generated(firing, st.one_of(draft, jsonapi), 250)


def test_fixed_battery(firing: Firing) -> None:
    fire_fixed(
        firing,
        BodyPath(
            "PATCH",
            "/v1/sessions/103",
            PATCH_V1,
            V1_PATCHES[0],
            ("data", "attributes", "parameters", "log_info"),
            label="maxscale /v1 patch",
        ),
    )
    fire_fixed(
        firing,
        BodyPath(
            "PATCH",
            "/sessions/103",
            PATCH_DRAFT,
            {"ops": DRAFT_PATCHES[0]},
            ("ops",),
            label="maxscale draft patch",
        ),
    )
    # a GET's body means nothing (so anything but an oversized one is answered), but is read
    for path in ("/v1/sessions", "/sessions"):
        get = BodyPath("GET", path, AUTH, {}, ("x",), garbage_allowed=CLIENT_SIDE, label="get")
        fire_fixed(firing, get)


def test_deep_json_in_a_filter_is_a_bad_request(firing: Firing) -> None:
    for depth in (1100, 4000):  # past what the json module can read
        value = quote("[" * depth + "]" * depth, safe="")
        nested = quote("not(" * depth + "eq(1)" + ")" * depth, safe="")
        for target in (
            f"/v1/sessions?filter=/id={value}",
            f"/v1/sessions?filter[/id]=eq({value})",
            f"/v1/sessions?filter[/id]={nested}",
        ):
            firing.fire(Case("GET", target, dict(AUTH), None, BAD, "deep filter"), source="fixed")
    firing.healthy()


def test_enough_cases_were_sent() -> None:
    assert TALLY["maxscale"]["generated"] >= PER_DIALECT
