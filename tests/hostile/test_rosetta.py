"""Hostile input at the canonical dialect's ``POST /rosetta/v1/<operation>``: bodies, operation
names and ``Authorization`` headers. Every answer is ``{"error": {"kind", "message"}}`` with
the kind's status (400 / 413 for garbage), and the server keeps serving."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import strategies as st

from tests.conftest import ADMIN_PASSWORD, STATIC_TOKEN
from tests.hostile.battery import PER_DIALECT, BodyPath, fire_fixed, run_generated, server
from tests.hostile.envelopes import BAD, CLIENT_SIDE
from tests.hostile.harness import TALLY, Case, Firing
from tests.hostile.strategies import (
    content_types,
    encode,
    garbage_bodies,
    mutated,
    with_content_type,
)
from tests.support.servers import ServerProcess

__all__ = ["server"]
CREDS = {"user": "admin", "password": ADMIN_PASSWORD}
OPERATIONS = [
    "session.list",
    "session.get",
    "session.connections",
    "session.kill",
    "session.kill_all",
    "session.ping",
    "session.login",
    "session.logout",
    "session.alter",
]
SEEDS: list[tuple[str, dict[str, Any]]] = [
    (
        "session.list",
        {
            "credentials": CREDS,
            "filters": {"users": ["jdoe"], "node_id": "node-a", "address_prefix": "192."},
            "offset": 0,
            "limit": 10,
            "fields": ["id", "user"],
            "request_id": "r1",
        },
    ),
    ("session.get", {"credentials": {"token": STATIC_TOKEN}, "filters": {"ids": ["101"]}}),
    ("session.connections", {"credentials": CREDS, "filters": {"ids": ["101"]}}),
    ("session.kill", {"credentials": CREDS, "filters": {"ids": ["999"]}}),
    ("session.kill_all", {"credentials": CREDS, "filters": {"users": ["nobody"]}}),
    (
        "session.login",
        {"credentials": CREDS, "settings": {"description": "d", "idle_timeout_seconds": 60}},
    ),
    (
        "session.alter",
        {
            "credentials": CREDS,
            "filters": {"ids": ["102"]},
            "settings": {"description": "x"},
            "extras": {"x": 1},
        },
    ),
    ("session.ping", {}),
]


@pytest.fixture(scope="module")
def firing(server: ServerProcess) -> Iterator[Firing]:
    shot = Firing(server, "rosetta")
    yield shot
    shot.close()


def test_garbage_bodies_are_bad_requests(firing: Firing) -> None:
    cases = st.builds(
        lambda op, body, ctype: Case(
            "POST", f"/rosetta/v1/{op}", with_content_type({}, ctype), body, BAD, "garbage"
        ),
        st.sampled_from(OPERATIONS),
        garbage_bodies.filter(lambda b: b.strip() != b""),  # an empty body is {}
        content_types,
    )
    run_generated(firing, cases, 300)
    assert firing.outcomes["bad_request"] > 0


def test_near_misses(firing: Firing) -> None:
    cases = st.sampled_from(SEEDS).flatmap(
        lambda seed: st.builds(
            lambda doc, ctype: Case(
                "POST",
                f"/rosetta/v1/{seed[0]}",
                with_content_type({}, ctype),
                encode(doc),
                CLIENT_SIDE,
                "near-miss",
            ),
            mutated(seed[1]),
            content_types,
        )
    )
    run_generated(firing, cases, 550)


def _authorization(kind: str, text: str) -> dict[str, str]:
    if kind == "basic":
        return {"authorization": ("Basic " + base64.b64encode(text.encode()).decode()).strip()}
    return {"authorization": (f"{kind} {text}").strip()}


def test_operations_and_authorization(firing: Firing) -> None:
    printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
    cases = st.builds(
        lambda op, kind, text: Case(
            "POST", f"/rosetta/v1/{op}", _authorization(kind, text), b"{}", CLIENT_SIDE, "op/auth"
        ),
        st.one_of(
            st.sampled_from(OPERATIONS),
            st.text(min_size=1, max_size=20).map(lambda s: quote(s, safe="")),
        ),
        st.sampled_from(["basic", "Basic", "Bearer", "Digest", ""]),
        printable,
    )
    run_generated(firing, cases, 200)


def test_wrong_methods(firing: Firing) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        case = Case(
            method,
            "/rosetta/v1/session.list",
            {},
            b"{}",
            frozenset({"method_not_allowed"}),
            "method",
        )
        firing.fire(case, source="fixed")
    firing.healthy()


@pytest.mark.parametrize("slot", [("limit",), ("filters", "ids"), ("request_id",), ("settings",)])
def test_fixed_battery(firing: Firing, slot: tuple[str, ...]) -> None:
    op, seed = SEEDS[0]
    json = {"content-type": "application/json"}
    bp = BodyPath("POST", f"/rosetta/v1/{op}", json, seed, slot, label="rosetta")
    # an empty body is the canonical "no arguments": a ping or a refusal, never garbage
    bp.garbage_allowed = BAD | {"unauthenticated"}
    fire_fixed(firing, bp)


def test_enough_cases_were_sent() -> None:
    assert TALLY["rosetta"]["generated"] >= PER_DIALECT
