"""A session logged in through the ``rosetta`` dialect is listed, described and killed through
BlobCity (in both request forms) on the same Rosetta, and its token is rejected afterwards."""

from __future__ import annotations

import httpx

from tests.blobcity.client import normalised, post_form, post_json, post_urlencoded
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD
from tests.support.servers import ServerProcess


def rosetta_login(server: ServerProcess, user: str, password: str) -> tuple[str, str]:
    reply = httpx.post(
        f"{server.url}/rosetta/v1/session.login",
        json={"credentials": {"user": user, "password": password}},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    return body["token"], body["session"]["id"]


def rosetta_ping(server: ServerProcess, token: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/rosetta/v1/session.ping", json={"credentials": {"token": token}}, timeout=30
    )


def test_rosetta_session_is_listed_and_killed_through_blobcity(local_server: ServerProcess) -> None:
    token, session_id = rosetta_login(local_server, "alice", USER_PASSWORD)
    url = local_server.url
    listings = [
        post(url, "admin", ADMIN_PASSWORD, "list-sessions", {"user": "alice"})
        for post in (post_json, post_form, post_urlencoded)
    ]
    for listed in listings:
        assert listed["ack"] == "1"
        mine = [s for s in listed["p"]["sessions"] if s["id"] == session_id]
        assert len(mine) == 1
        assert mine[0]["user"] == "alice" and mine[0]["service"] == "rosetta"
        assert mine[0]["client-address"].startswith("127.0.0.1:")
        assert mine[0]["extras"]["rosetta"]["idle_timeout_seconds"] == 1800
    described = post_form(url, "alice", USER_PASSWORD, "describe-session", {"id": session_id})
    assert described["ack"] == "1" and described["p"]["id"] == session_id

    assert rosetta_ping(local_server, token).status_code == 200
    killed = post_form(url, "admin", ADMIN_PASSWORD, "kill-session", {"id": session_id})
    assert normalised(killed) == {"ack": "1", "time": 0, "rows": 1, "p": {}}

    rejected = rosetta_ping(local_server, token)
    assert rejected.status_code == 401
    assert rejected.json()["error"]["kind"] == "unauthenticated"
    gone = post_json(url, "admin", ADMIN_PASSWORD, "describe-session", {"id": session_id})
    assert gone["ack"] == "0" and gone["code"] == "SESSION_INVALID"


def test_kill_all_through_blobcity_with_a_filter(local_server: ServerProcess) -> None:
    tokens = [rosetta_login(local_server, "alice", USER_PASSWORD)[0] for _ in range(3)]
    admin_token, _ = rosetta_login(local_server, "admin", ADMIN_PASSWORD)
    killed = post_json(
        local_server.url, "alice", USER_PASSWORD, "kill-all-sessions", {"user": "alice"}
    )
    assert killed["ack"] == "1" and killed["rows"] >= 3
    for token in tokens:
        assert rosetta_ping(local_server, token).status_code == 401
    assert rosetta_ping(local_server, admin_token).status_code == 200
