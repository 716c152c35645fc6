"""Rosetta in front of a FairCom upstream (``rosetta emulate faircom``): a FairCom client gets
the same answers through Rosetta as from the emulator directly; a ``rosetta`` dialect caller
is logged in upstream once, re-logged in after a 12031, and gets composed operations; upstream
failures come back as FairCom envelopes with their own codes."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from json_action_client import JsonActionApiError, JsonActionClient

from tests.conftest import base_config, sample_sessions
from tests.faircom.support import TOKEN_MESSAGE, call, login, normalise
from tests.support.servers import ServerProcess, emulate, free_port, serve

EMU_PASSWORD = "emulator-admin-pw-3c1d"
VICTIM_PASSWORD = "emulator-victim-pw-77aa"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = emulate(
        tmp_path_factory.mktemp("faircom-emulator"),
        "faircom",
        sessions=sample_sessions(),
        users=[f"admin:{EMU_PASSWORD}", f"victim:{VICTIM_PASSWORD}"],
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def front(
    tmp_path_factory: pytest.TempPathFactory, emulator: ServerProcess
) -> Iterator[ServerProcess]:
    config = base_config(
        backends={"fc": {"type": "upstream", "dialect": "faircom", "url": emulator.url}},
        default_backend="fc",
    )
    proc = serve(tmp_path_factory.mktemp("faircom-front"), config)
    yield proc
    proc.stop()


def _flow(server: ServerProcess, emulator: ServerProcess) -> list[Any]:
    """A FairCom client's session life against ``server``; the replies, normalised."""
    victim = login(emulator, "victim", VICTIM_PASSWORD, description="victim")
    replies: list[Any] = []
    created = call(
        server,
        {
            "api": "admin",
            "action": "createSession",
            "params": {
                "username": "admin",
                "password": EMU_PASSWORD,
                "idleConnectionTimeoutSeconds": 300,
                "description": "same results",
                "defaultDatabaseName": "ctreeSQL",
            },
            "debug": "max",
            "requestId": 1,
        },
    )
    token = created["authToken"]
    replies.append(created)

    def step(action: str, params: dict[str, Any] | None = None, **extra: Any) -> None:
        body: dict[str, Any] = {"api": "admin", "action": action, "authToken": token, **extra}
        if params is not None:
            body["params"] = params
        replies.append(call(server, body))

    step("listSessions", {}, requestId="2")
    step("describeSessions")
    step("describeSessions", {"authTokens": [token, "session:101"]}, debug="max")
    step("pingSession", requestId=3)
    step("alterSession", {"description": "altered", "idleConnectionTimeoutSeconds": 600})
    step("listSessions", {"usernameFilter": ["jdoe", "victim"]})
    replies.append(
        call(
            server, {"api": "admin", "action": "pingSession", "authToken": "bogus", "debug": "max"}
        )
    )
    victim_id = next(
        s["authToken"] for s in replies[-2]["result"]["sessions"] if s["description"] == "victim"
    )
    step("deleteSession", {"authToken": victim_id})
    step("listSessions", {"usernameFilter": ["victim"]})
    step("closeSession", {})
    step("pingSession")
    replies.append(call(server, {"api": "db", "action": "listDatabases", "authToken": token}))
    assert (
        call(emulator, {"api": "admin", "action": "pingSession", "authToken": victim})["errorCode"]
        == 12031
    )
    return [normalise(r, {token: "<token>", victim: "<victim>"}) for r in replies]


def test_faircom_client_gets_the_same_results_through_rosetta(
    front: ServerProcess, emulator: ServerProcess
) -> None:
    direct = _flow(emulator, emulator)
    proxied = _flow(front, emulator)
    assert proxied == direct
    # and the answers are the ones a FairCom client expects
    assert direct[0]["result"]["authToken"] == "<token>" == direct[0]["authToken"]
    assert direct[0]["result"]["defaultDatabaseName"] == "ctreeSQL"
    assert {s["authToken"] for s in direct[1]["result"]["sessions"]} >= {"<token>", "session:101"}
    assert direct[5]["result"]["description"] == "altered"
    assert direct[5]["result"]["idleConnectionTimeoutSeconds"] == 600
    assert direct[7]["errorCode"] == 12031 and direct[7]["errorMessage"] == TOKEN_MESSAGE
    assert direct[9]["result"]["sessions"] == []
    assert direct[11]["errorCode"] == 12031 and direct[11]["authToken"] == "<token>"
    assert direct[12]["errorCode"] == 12104


def test_json_action_client_through_rosetta(front: ServerProcess) -> None:
    client = JsonActionClient(f"{front.url}/api", description="via rosetta", http_timeout=30)
    client.login("admin", EMU_PASSWORD)
    token = client.auth_token
    with client:
        listed = client.post_json(client.build_basic_request("admin", "listSessions"))
        assert {"authToken": token, "username": "admin", "description": "via rosetta"} in listed[
            "result"
        ]["sessions"]
        assert (
            client.post_json(client.build_basic_request("admin", "pingSession"))["errorCode"] == 0
        )
    with pytest.raises(JsonActionApiError) as caught:
        client.auth_token = token
        client.post_json(client.build_basic_request("admin", "pingSession"))
    assert caught.value.error_code == 12031
    with pytest.raises(JsonActionApiError) as bad:
        JsonActionClient(f"{front.url}/api", http_timeout=30).login("admin", "wrong")
    assert bad.value.error_code == 12101


def _rosetta(front: ServerProcess, operation: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{front.url}/rosetta/v1/{operation}",
        json=body,
        auth=("admin", EMU_PASSWORD),
        timeout=30,
    )


def _admin_sessions(emulator: ServerProcess, token: str) -> list[dict[str, Any]]:
    listed = call(
        emulator,
        {
            "api": "admin",
            "action": "listSessions",
            "params": {"usernameFilter": ["admin"]},
            "authToken": token,
        },
    )
    sessions: list[dict[str, Any]] = listed["result"]["sessions"]
    return sessions


def test_rosetta_caller_logs_in_upstream_once_and_again_after_12031(
    front: ServerProcess, emulator: ServerProcess
) -> None:
    watcher = login(emulator, "admin", EMU_PASSWORD, description="watcher")
    first = _rosetta(front, "session.list", {})
    assert first.status_code == 200, first.text
    body = first.json()
    ids = {s["id"] for s in body["sessions"]}
    assert {"101", "102", "103", "104"} <= ids
    assert body["total"] == len(body["sessions"])
    cached = [s for s in _admin_sessions(emulator, watcher) if s["description"] == ""]
    assert len(cached) == 1  # the upstream session Rosetta opened for this caller
    assert _rosetta(front, "session.list", {}).status_code == 200
    assert [s for s in _admin_sessions(emulator, watcher) if s["description"] == ""] == cached
    # end Rosetta's upstream session behind its back: the next call logs in again, once
    ended = call(
        emulator,
        {
            "api": "admin",
            "action": "deleteSession",
            "params": {"authToken": cached[0]["authToken"]},
            "authToken": watcher,
        },
    )
    assert ended["errorCode"] == 0
    again = _rosetta(front, "session.list", {"filters": {"users": ["jdoe"]}, "limit": 1})
    assert again.status_code == 200, again.text
    assert again.json()["total"] == 2 and len(again.json()["sessions"]) == 1
    renewed = [s for s in _admin_sessions(emulator, watcher) if s["description"] == ""]
    assert len(renewed) == 1 and renewed != cached


def test_rosetta_caller_gets_composed_operations(
    front: ServerProcess, emulator: ServerProcess
) -> None:
    got = _rosetta(front, "session.get", {"filters": {"ids": ["101"]}}).json()
    assert got["session"]["user"] == "jdoe"
    assert got["session"]["description"] == "reporting job"
    assert got["session"]["connected_at"] == "2016-08-31T03:03:12Z"
    missing = _rosetta(front, "session.get", {"filters": {"ids": ["999"]}})
    assert missing.status_code == 404
    conns = _rosetta(front, "session.connections", {"filters": {"ids": ["101"]}})
    assert conns.status_code == 501
    victims = [login(emulator, "victim", VICTIM_PASSWORD) for _ in range(2)]
    listed = _rosetta(front, "session.list", {"filters": {"users": ["victim"]}}).json()
    assert listed["total"] == 2
    one = listed["sessions"][0]["id"]
    killed = _rosetta(front, "session.kill", {"filters": {"ids": [one]}})
    assert killed.status_code == 200 and killed.json()["affected"] == 1
    all_gone = _rosetta(front, "session.kill_all", {"filters": {"users": ["victim"]}})
    assert all_gone.status_code == 200 and all_gone.json()["affected"] == 1
    for token in victims:
        pinged = call(emulator, {"api": "admin", "action": "pingSession", "authToken": token})
        assert pinged["errorCode"] == 12031
    altered = _rosetta(
        front, "session.alter", {"filters": {"ids": ["103"]}, "settings": {"description": "x"}}
    )
    assert altered.status_code == 200 and altered.json()["session"]["description"] == "x"


class _FakeUpstream:
    """A TCP listener that, by mode, never answers or answers garbage."""

    def __init__(self, port: int, mode: str) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.mode = mode
        self.open: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(conn)
            if self.mode == "garbage":
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!")

    def close(self) -> None:
        for conn in self.open:
            conn.close()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def test_upstream_failures_are_faircom_envelopes(tmp_path_factory: pytest.TempPathFactory) -> None:
    port = free_port()
    config = base_config(
        backends={
            "fc": {
                "type": "upstream",
                "dialect": "faircom",
                "url": f"http://127.0.0.1:{port}",
                "timeouts": {"connect": 2.0, "read": 1.0, "total": 2.0},
            }
        },
        default_backend="fc",
    )
    proc = serve(tmp_path_factory.mktemp("faircom-faults"), config)
    ping = {"api": "admin", "action": "pingSession", "requestId": "f"}
    try:
        down = call(proc, ping)
        assert down["errorCode"] == 12106 and down["requestId"] == "f" and down["result"] == {}
        fake = _FakeUpstream(port, "silent")
        try:
            for mode, code in (("silent", 12107), ("garbage", 12108)):
                fake.mode = mode
                reply = call(proc, ping)
                assert reply["errorCode"] == code, reply
                assert reply["errorMessage"] and reply["result"] == {}
        finally:
            fake.close()
    finally:
        proc.stop()
