"""Hostile input at FairCom's ``POST /api`` and ``POST /api/<anything>``: every answer is a
FairCom envelope (HTTP 200, non-zero ``errorCode``, non-empty ``errorMessage``) meaning a bad
request (12100) or a payload too large (12105) for garbage, a caller-side outcome for
near-misses, and the server keeps serving."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
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
    with_content_type,
)
from tests.support.servers import ServerProcess

__all__ = ["server"]
PATHS = ("/api", "/api/db", "/api/admin/x")


@pytest.fixture(scope="module")
def firing(server: ServerProcess) -> Iterator[Firing]:
    shot = Firing(server, "faircom")
    yield shot
    shot.close()


@pytest.fixture(scope="module")
def token(server: ServerProcess) -> str:
    body = {
        "api": "admin",
        "action": "createSession",
        "params": {"username": "admin", "password": ADMIN_PASSWORD},
    }
    reply = httpx.post(server.url + "/api", json=body, timeout=30).json()
    assert reply["errorCode"] == 0, reply
    return str(reply["authToken"])


def seeds(token: str) -> list[dict[str, object]]:
    return [
        {
            "api": "admin",
            "action": "createSession",
            "params": {"username": "admin", "password": ADMIN_PASSWORD, "description": "d"},
            "requestId": "1",
        },
        {"api": "admin", "action": "pingSession", "authToken": token, "requestId": 7},
        {"api": "db", "action": "pingSession", "authToken": "dead", "debug": "max"},
        {
            "api": "admin",
            "action": "listSessions",
            "params": {"usernameFilter": "admin"},
            "authToken": token,
        },
        {
            "api": "admin",
            "action": "describeSessions",
            "params": {"authTokens": ["session:101", token]},
            "authToken": token,
            "responseOptions": {},
        },
        {
            "api": "admin",
            "action": "alterSession",
            "params": {"authToken": "session:102", "idleConnectionTimeoutSeconds": 60},
            "authToken": token,
        },
        {
            "api": "admin",
            "action": "deleteSession",
            "params": {"authToken": "session:999"},
            "authToken": token,
            "apiVersion": "1.0",
        },
    ]


def test_garbage_bodies_are_bad_requests(firing: Firing) -> None:
    cases = st.builds(
        lambda path, body, ctype: Case(
            "POST", path, with_content_type({}, ctype), body, BAD, "garbage"
        ),
        st.sampled_from(PATHS),
        garbage_bodies,
        content_types,
    )
    run_generated(firing, cases, 350)
    assert firing.outcomes["bad_request"] > 0


def test_near_misses_get_a_faircom_answer(firing: Firing, token: str) -> None:
    cases = st.builds(
        lambda path, doc, ctype: Case(
            "POST", path, with_content_type({}, ctype), encode(doc), CLIENT_SIDE, "near-miss"
        ),
        st.sampled_from(PATHS),
        st.sampled_from(seeds(token)).flatmap(mutated),
        content_types,
    )
    run_generated(firing, cases, 700)


def test_wrong_methods_are_405_in_the_envelope(firing: Firing) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        case = Case(method, "/api", {}, b"{}", frozenset({"method_not_allowed"}), "method")
        firing.fire(case, source="fixed")
    firing.healthy()


@pytest.mark.parametrize("path", PATHS[:2])
def test_fixed_battery(firing: Firing, token: str, path: str) -> None:
    seed = seeds(token)[3]
    bp = BodyPath(
        "POST",
        path,
        {"content-type": "application/json"},
        seed,
        ("params", "usernameFilter"),
        label=f"faircom {path}",
    )
    fire_fixed(firing, bp)
    bp = BodyPath(
        "POST",
        path,
        {"content-type": "application/json"},
        seed,
        ("requestId",),
        label=f"faircom {path}",
    )
    fire_fixed(firing, bp)


def test_enough_cases_were_sent() -> None:
    assert TALLY["faircom"]["generated"] >= PER_DIALECT
