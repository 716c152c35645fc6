"""Scripted JUMP flows over real HTTP: login -> list -> ping -> kill another session -> logout,
by POST and by GET/JSONP, against the local backend and through Rosetta to a JUMP emulator
(``rosetta emulate jump``); sessions shared with the rosetta dialect; and the outbound side's
single upstream login per caller, with one re-login when the upstream session is gone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, base_config, sample_sessions
from tests.jump.client import JumpClient, current_user, failed, ok, session_timeout
from tests.support.servers import ServerProcess, emulate, serve

UPSTREAM_PASSWORD = "upstream-test-password-0d5e"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A JUMP backend with the sample sessions preloaded; its admin has the same password as
    the local config's admin, so bridged logins work."""
    server = emulate(
        tmp_path_factory.mktemp("jump-emulator"),
        "jump",
        sessions=sample_sessions(),
        users=[f"admin:{ADMIN_PASSWORD}"],
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bridge(
    tmp_path_factory: pytest.TempPathFactory, emulator: ServerProcess
) -> Iterator[ServerProcess]:
    """Rosetta whose every dialect is answered by the JUMP emulator."""
    config = base_config(
        backends={"jump": {"type": "upstream", "dialect": "jump", "url": emulator.url}},
        default_backend="jump",
    )
    server = serve(tmp_path_factory.mktemp("jump-bridge"), config)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rosetta_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Rosetta whose backend is a ``rosetta emulate rosetta`` upstream (a non-JUMP dialect)."""
    tmp = tmp_path_factory.mktemp("rosetta-bridge")
    upstream = emulate(tmp, "rosetta", users=[f"admin:{ADMIN_PASSWORD}"])
    config = base_config(
        backends={"up": {"type": "upstream", "dialect": "rosetta", "url": upstream.url}},
        default_backend="up",
    )
    server = serve(tmp, config)
    yield server
    server.stop()
    upstream.stop()


def _server(name: str, request: pytest.FixtureRequest) -> ServerProcess:
    server: ServerProcess = request.getfixturevalue(name)
    return server


def _record(body: dict[str, Any]) -> dict[str, Any]:
    record = ok(body)
    assert isinstance(record, dict)
    return record


@pytest.mark.parametrize("mode", ["post", "jsonp"])
@pytest.mark.parametrize("where", ["local_server", "bridge", "rosetta_bridge"])
def test_login_list_ping_kill_logout(where: str, mode: str, request: pytest.FixtureRequest) -> None:
    url = _server(where, request).url
    alice, other = JumpClient(url, mode), JumpClient(url, mode)

    login = alice.login("admin", ADMIN_PASSWORD)
    data = ok(login)
    assert current_user(login) == "admin"
    assert abs(session_timeout(login) - 1800) <= 2
    assert data["authToken"] and alice.cookie == data["authToken"]
    assert alice.last is not None
    cookie_header = alice.last.headers["set-cookie"]
    assert "HttpOnly" in cookie_header and "SameSite=Lax" in cookie_header
    assert "Secure" not in cookie_header  # plain http
    my_id = data["sessionId"]
    other_id = ok(other.login("admin", ADMIN_PASSWORD))["sessionId"]
    assert other_id != my_id

    listed = alice.session("listSessions", [])
    ids = {s["sessionId"] for s in ok(listed)}
    assert {my_id, other_id} <= ids
    assert listed["header"]["map"]["serviceHeader"]["map"]["totalCount"] == str(len(ids))
    assert current_user(listed) == "admin"

    # the idle clock runs while alice is quiet (seen by the other session) ...
    time.sleep(2.5)
    before = int(_record(other.session("getSession", [my_id]))["sessionTimeout"])
    assert before <= 1798
    # ... and a ping puts it back up, in alice's own header and in her record
    ping = alice.session("pingSession", [])
    assert ok(ping)["alive"] is True and current_user(ping) == "admin"
    assert session_timeout(ping) > before
    after = int(_record(other.session("getSession", [my_id]))["sessionTimeout"])
    assert after > before

    killed = alice.session("killSession", [other_id])
    assert ok(killed) == {"killed": 1}
    rejected = other.session("pingSession", [])
    failed(rejected, "RSJE0401")
    assert current_user(rejected) == "anonymousUser"
    assert other.cookie is None  # the dead session cookie is cleared

    bye = alice.logout()
    assert ok(bye) == "JBPSASCE0741 - Logout Success"
    assert current_user(bye) == "anonymousUser"
    assert alice.cookie is None
    after_logout = alice.session("listSessions", [])
    failed(after_logout, "RSJE0401")
    assert current_user(after_logout) == "anonymousUser"


def _rosetta(server: ServerProcess, operation: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/rosetta/v1/{operation}", json=body, timeout=20)


def test_session_killed_through_jump_is_rejected_by_rosetta(local_server: ServerProcess) -> None:
    login = _rosetta(
        local_server,
        "session.login",
        {"credentials": {"user": "alice", "password": USER_PASSWORD}},
    ).json()
    token, session_id = login["token"], login["session"]["id"]
    assert (
        _rosetta(local_server, "session.ping", {"credentials": {"token": token}}).status_code == 200
    )

    jump = JumpClient(local_server.url)
    jump.login("admin", ADMIN_PASSWORD)
    listed = {s["sessionId"]: s for s in ok(jump.session("listSessions", {"user": "alice"}))}
    assert listed[session_id]["service"] == "rosetta"
    assert ok(jump.session("killSession", {"sessionId": int(session_id)})) == {"killed": 1}

    after = _rosetta(local_server, "session.ping", {"credentials": {"token": token}})
    assert after.status_code == 401 and after.json()["error"]["kind"] == "unauthenticated"


def test_session_killed_through_rosetta_is_rejected_by_jump(local_server: ServerProcess) -> None:
    jump = JumpClient(local_server.url, "jsonp")
    session_id = ok(jump.login("alice", USER_PASSWORD))["sessionId"]
    assert current_user(jump.session("pingSession", [])) == "alice"

    admin = _rosetta(
        local_server,
        "session.login",
        {"credentials": {"user": "admin", "password": ADMIN_PASSWORD}},
    ).json()["token"]
    killed = _rosetta(
        local_server,
        "session.kill",
        {"credentials": {"token": admin}, "filters": {"ids": [session_id]}},
    )
    assert killed.status_code == 200 and killed.json()["affected"] == 1

    rejected = jump.session("pingSession", [])
    failed(rejected, "RSJE0401")
    assert current_user(rejected) == "anonymousUser"


def _upstream_logins(emulator: ServerProcess) -> int:
    return sum(
        1
        for line in emulator.logs().splitlines()
        if '"operation":"session.login"' in line and '"outcome":"ok"' in line
    )


def test_bridged_credentials_log_in_once_and_again_after_expiry(
    bridge: ServerProcess, emulator: ServerProcess
) -> None:
    creds = {"credentials": {"user": "admin", "password": ADMIN_PASSWORD}}
    start = _upstream_logins(emulator)
    first = _rosetta(bridge, "session.list", creds)
    assert first.status_code == 200, first.text
    assert _upstream_logins(emulator) == start + 1
    second = _rosetta(bridge, "session.list", creds)
    assert second.status_code == 200
    assert _upstream_logins(emulator) == start + 1  # the upstream cookie was kept

    # end Rosetta's upstream session behind its back, directly on the emulator
    direct = JumpClient(emulator.url)
    direct.login("admin", ADMIN_PASSWORD)
    mine = {s["sessionId"] for s in ok(direct.session("listSessions", {"user": "admin"}))}
    mine.discard(ok(direct.session("pingSession", []))["session"]["sessionId"])
    assert mine  # Rosetta's upstream session is among them
    assert ok(direct.session("killSession", sorted(mine)))["killed"] == len(mine)
    logins = _upstream_logins(emulator)

    third = _rosetta(bridge, "session.list", creds)
    assert third.status_code == 200, third.text
    assert _upstream_logins(emulator) == logins + 1  # logged in again, once

    wrong = _rosetta(
        bridge, "session.list", {"credentials": {"user": "admin", "password": "wrong"}}
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["kind"] == "unauthenticated"
    assert wrong.json()["error"]["native_code"] == "RSJE0401"


def test_configured_upstream_credentials_serve_anonymous_callers(
    tmp_path: Path, emulator: ServerProcess
) -> None:
    config = base_config(
        backends={
            "jump": {
                "type": "upstream",
                "dialect": "jump",
                "url": emulator.url,
                "allow_anonymous": True,
                "auth": {"mode": "static", "user": "admin", "password": ADMIN_PASSWORD},
            }
        },
        default_backend="jump",
    )
    server = serve(tmp_path, config)
    try:
        guest = JumpClient(server.url)
        body = guest.session("listSessions", {"user": "jdoe"}, headers={"x-p-anonymous": "true"})
        assert sorted(s["sessionId"] for s in ok(body)) == ["101", "103"]
        assert current_user(body) == "admin"  # the upstream's view of the configured user
        again = guest.session("getSession", ["101"], headers={"x-p-anonymous": "true"})
        record = ok(again)
        assert record["clientAddress"] == "192.168.0.200:50412"
        assert [c["server"] for c in record["connections"]] == ["db-serv-01", "db-serv-02"]
    finally:
        server.stop()


def test_emulator_serves_preloaded_sessions_faithfully(emulator: ServerProcess) -> None:
    client = JumpClient(emulator.url, path="/mashzone/edge/api")
    client.login("admin", ADMIN_PASSWORD)
    record = ok(client.session("getSession", {"sessionId": 101}))
    assert record == {
        "sessionId": "101",
        "user": "jdoe",
        "clientAddress": "192.168.0.200:50412",
        "service": "my-service",
        "database": "0",
        "state": "Session ready for routing",
        "connectedAt": "2016-08-31T03:03:12Z",
        "idleSeconds": 260,
        "lastCommand": "get",
        "nodeId": "node-a",
        "description": "reporting job",
        "connections": [
            {
                "server": "db-serv-01",
                "state": "DCB in the polling loop",
                "role": "Backend Request Handler",
                "reads": 2197,
                "writes": 1562,
            },
            {
                "server": "db-serv-02",
                "state": "DCB in the polling loop",
                "role": "Backend Request Handler",
                "reads": 0,
                "writes": 0,
            },
        ],
    }
    conns = ok(client.session("getSessionConnections", ["101"]))
    assert [c["reads"] for c in conns] == [2197, 0]
