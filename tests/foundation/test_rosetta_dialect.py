"""The canonical ``rosetta`` dialect over real HTTP against a real server: every operation
on the local backend, and every failure in the canonical error envelope."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, STATIC_TOKEN, USER_PASSWORD
from tests.support.servers import ServerProcess


def call(server: ServerProcess, operation: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/rosetta/v1/{operation}", json=body, timeout=10, **kw)


def login(server: ServerProcess, user: str = "admin", password: str = ADMIN_PASSWORD) -> str:
    reply = call(server, "session.login", {"credentials": {"user": user, "password": password}})
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["token"]
    return token


def test_login_issues_a_long_random_token_and_a_session(local_server: ServerProcess) -> None:
    reply = call(
        local_server,
        "session.login",
        {"credentials": {"user": "admin", "password": ADMIN_PASSWORD}, "request_id": 41},
    )
    body = reply.json()
    assert reply.status_code == 200
    assert body["request_id"] == 41
    assert len(body["token"]) >= 43  # >= 256 bits, URL-safe base64
    assert body["session"]["user"] == "admin"
    assert body["session"]["service"] == "rosetta"
    assert body["session"]["client_address"].startswith("127.0.0.1:")
    assert body["caller"]["expires_in"] == pytest.approx(1800, abs=5)
    assert login(local_server) != body["token"]


def test_session_is_listed_fetched_pinged_and_killed(local_server: ServerProcess) -> None:
    token = login(local_server)
    creds = {"credentials": {"token": token}}
    listed = call(local_server, "session.list", creds).json()
    mine = [s for s in listed["sessions"] if s["id"] == listed["caller"]["session_id"]]
    assert len(mine) == 1 and listed["total"] == len(listed["sessions"])
    session_id = mine[0]["id"]

    got = call(local_server, "session.get", {**creds, "filters": {"ids": [session_id]}}).json()
    assert got["session"]["id"] == session_id
    conns = call(local_server, "session.connections", {**creds, "filters": {"ids": [session_id]}})
    assert conns.json()["connections"][0]["reads"] >= 3

    assert call(local_server, "session.ping", creds).status_code == 200
    killer = login(local_server)
    killed = call(
        local_server,
        "session.kill",
        {"credentials": {"token": killer}, "filters": {"ids": [session_id]}},
    )
    assert killed.status_code == 200 and killed.json()["affected"] == 1
    after = call(local_server, "session.ping", creds)
    assert after.status_code == 401
    assert after.json()["error"]["kind"] == "unauthenticated"


def test_unprivileged_user_sees_only_own_sessions(local_server: ServerProcess) -> None:
    admin_token = login(local_server)
    alice = login(local_server, "alice", USER_PASSWORD)
    listed = call(local_server, "session.list", {"credentials": {"token": alice}}).json()
    assert {s["user"] for s in listed["sessions"]} == {"alice"}
    admin_sessions = call(local_server, "session.list", {"credentials": {"token": admin_token}})
    admin_id = admin_sessions.json()["caller"]["session_id"]
    hidden = call(
        local_server,
        "session.kill",
        {"credentials": {"token": alice}, "filters": {"ids": [admin_id]}},
    )
    assert hidden.status_code == 404


def test_basic_and_static_bearer_credentials(local_server: ServerProcess) -> None:
    basic = call(local_server, "session.list", {}, auth=("admin", ADMIN_PASSWORD))
    assert basic.status_code == 200
    bearer = call(
        local_server, "session.list", {}, headers={"authorization": f"Bearer {STATIC_TOKEN}"}
    )
    assert bearer.status_code == 200
    wrong = call(local_server, "session.list", {}, auth=("admin", "nope"))
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("operation", "body", "status", "kind"),
    [
        ("session.list", b"{not json", 400, "bad_request"),
        ("session.list", b"[1,2]", 400, "bad_request"),
        ("session.nope", b"{}", 400, "bad_request"),
        ("session.list", b"{}", 401, "unauthenticated"),
        ("session.list", b'{"limit": -1}', 400, "bad_request"),
    ],
)
def test_failures_use_the_canonical_envelope(
    local_server: ServerProcess, operation: str, body: bytes, status: int, kind: str
) -> None:
    reply = httpx.post(f"{local_server.url}/rosetta/v1/{operation}", content=body)
    assert reply.status_code == status
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"]["kind"] == kind


def test_oversized_body_is_payload_too_large(local_server: ServerProcess) -> None:
    reply = httpx.post(
        f"{local_server.url}/rosetta/v1/session.list", content=b" " * (1024 * 1024 + 1)
    )
    assert reply.status_code == 413
    assert reply.json()["error"]["kind"] == "payload_too_large"


def test_unknown_get_of_missing_session_is_not_found(local_server: ServerProcess) -> None:
    token = login(local_server)
    reply = call(
        local_server,
        "session.get",
        {"credentials": {"token": token}, "filters": {"ids": ["999999"]}},
    )
    assert reply.status_code == 404 and reply.json()["error"]["kind"] == "not_found"


def test_request_id_header_is_returned_or_generated(local_server: ServerProcess) -> None:
    mine = httpx.get(f"{local_server.url}/nowhere", headers={"x-request-id": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    assert mine.status_code == 404 and mine.json()["error"]["kind"] == "not_found"
    generated = httpx.get(f"{local_server.url}/nowhere")
    assert len(generated.headers["x-request-id"]) == 32


def test_health_endpoints(local_server: ServerProcess) -> None:
    health = httpx.get(f"{local_server.url}/healthz").json()
    assert health == {"status": "ok", "pid": local_server.process.pid}
    assert httpx.get(f"{local_server.url}/readyz").json() == {"status": "ready"}
