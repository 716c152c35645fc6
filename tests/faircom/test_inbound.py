"""FairCom callers on the local backend over real HTTP: idle timers, visibility, requestId
types, masking, HTTP-level failures, and the same sessions seen and killed from the
``rosetta`` dialect."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD
from tests.faircom.support import TOKEN_MESSAGE, call, faircom_config, login, post
from tests.support.servers import ServerProcess, serve
from translators.contract import (
    CanonicalResponse,
    ErrorKind,
    HttpRequest,
    Operation,
    RosettaError,
)
from translators.faircom import FairComTranslator


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = serve(tmp_path_factory.mktemp("faircom-inbound"), faircom_config())
    yield proc
    proc.stop()


def _describe(server: ServerProcess, token: str, target: str) -> dict[str, Any]:
    body = call(
        server,
        {
            "api": "admin",
            "action": "describeSessions",
            "params": {"authTokens": [target]},
            "authToken": token,
        },
    )
    [session] = body["result"]["sessions"]
    return dict(session)


def _rosetta(server: ServerProcess, operation: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/rosetta/v1/{operation}",
        json=body,
        auth=("admin", ADMIN_PASSWORD),
        timeout=30,
    )


def _own_id(server: ServerProcess, token: str) -> str:
    reply = httpx.post(
        f"{server.url}/rosetta/v1/session.list", json={"credentials": {"token": token}}, timeout=30
    )
    session_id: str = reply.json()["caller"]["session_id"]
    return session_id


def test_ping_restarts_the_idle_timer(server: ServerProcess) -> None:
    watched = login(server, "alice", USER_PASSWORD, description="watched")
    admin = login(server, "admin", ADMIN_PASSWORD)
    target = "session:" + _own_id(server, watched)
    time.sleep(1.2)
    before = _describe(server, admin, target)["sessionLastAccessedTimestamp"]
    assert (
        call(server, {"api": "admin", "action": "pingSession", "authToken": watched})["errorCode"]
        == 0
    )
    time.sleep(1.2)
    after = _describe(server, admin, target)
    assert after["sessionLastAccessedTimestamp"] > before
    assert after["sessionLastAccessedTimestamp"] >= after["sessionStartTimestamp"]


def test_idle_timeout_expires_and_zero_never_does(server: ServerProcess) -> None:
    short = login(server, "alice", USER_PASSWORD, idleConnectionTimeoutSeconds=1)
    forever = login(server, "alice", USER_PASSWORD, idleConnectionTimeoutSeconds=0)
    assert _describe(server, forever, forever)["idleConnectionTimeoutSeconds"] == 0
    time.sleep(2.5)
    expired = call(server, {"api": "admin", "action": "pingSession", "authToken": short})
    assert expired["errorCode"] == 12031 and expired["errorMessage"] == TOKEN_MESSAGE
    assert expired["authToken"] == short
    alive = call(server, {"api": "admin", "action": "pingSession", "authToken": forever})
    assert alive["errorCode"] == 0
    got = _rosetta(server, "session.get", {"filters": {"ids": [_own_id(server, forever)]}}).json()
    assert got["session"]["extras"]["rosetta"]["idle_timeout_seconds"] == 0


def test_other_users_tokens_are_never_listed(server: ServerProcess) -> None:
    alice = login(server, "alice", USER_PASSWORD, description="secret holder")
    admin = login(server, "admin", ADMIN_PASSWORD)
    for action in ("listSessions", "describeSessions"):
        reply = post(server, {"api": "admin", "action": action, "authToken": admin})
        assert alice not in reply.text
        listed = reply.json()["result"]["sessions"]
        entry = next(s for s in listed if s["description"] == "secret holder")
        assert entry["authToken"] == "session:" + _own_id(server, alice)
        assert any(s["authToken"] == admin for s in listed)
    # alice sees only her own sessions, and cannot describe another user's session
    own = call(server, {"api": "admin", "action": "listSessions", "authToken": alice})
    assert {s["username"] for s in own["result"]["sessions"]} == {"alice"}
    assert admin not in str(own)
    other = call(
        server,
        {
            "api": "admin",
            "action": "describeSessions",
            "params": {"authTokens": ["session:101"]},
            "authToken": alice,
        },
    )
    assert other["errorCode"] == 0 and other["result"]["sessions"] == []


def test_request_id_keeps_its_json_type(server: ServerProcess) -> None:
    for request_id in (7, "7", "00000047", None, {"n": 1}, [1, "a"], 2.5, True):
        for action in ("pingSession", "noSuchAction"):
            body = call(server, {"api": "admin", "action": action, "requestId": request_id})
            assert "requestId" in body and body["requestId"] == request_id
            assert type(body["requestId"]) is type(request_id)
    assert "requestId" not in call(server, {"api": "admin", "action": "pingSession"})


def test_debug_max_masks_secrets(server: ServerProcess) -> None:
    reply = post(
        server,
        {
            "api": "admin",
            "action": "createSession",
            "params": {"username": "admin", "password": ADMIN_PASSWORD},
            "debug": "max",
        },
    )
    body = reply.json()
    token = body["authToken"]
    assert ADMIN_PASSWORD not in reply.text
    assert body["debugInfo"]["request"]["params"]["password"] == "********"
    described = post(
        server,
        {
            "api": "admin",
            "action": "describeSessions",
            "params": {"authTokens": [token, "session:101"]},
            "authToken": token,
            "debug": "max",
        },
    ).json()
    shown = described["debugInfo"]["request"]
    assert shown["authToken"] == "********"
    assert shown["params"]["authTokens"] == ["********", "session:101"]


def test_any_api_path_and_http_level_failures(server: ServerProcess) -> None:
    for path in ("/api", "/api/db", "/api/hub/v2"):
        assert call(server, {"api": "admin", "action": "pingSession"}, path)["errorCode"] == 0
    wrong_method = httpx.get(f"{server.url}/api", timeout=30)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["errorCode"] == 12100
    big = b'{"api": "admin", "action": "pingSession", "pad": "' + b"x" * 1_100_000 + b'"}'
    too_large = post(server, big)
    assert too_large.status_code == 200
    assert too_large.json() == {
        "result": {},
        "errorCode": 12105,
        "errorMessage": "request body larger than 1048576 bytes",
    }
    empty = post(server, b"")
    assert empty.status_code == 200 and empty.json()["errorCode"] == 12100


def test_every_error_is_a_complete_envelope(server: ServerProcess) -> None:
    bodies: list[Any] = [
        b"garbage",
        b"42",
        {"action": "pingSession"},
        {"api": "admin"},
        {"api": "admin", "action": 5},
        {"api": 3, "action": "pingSession"},
        {"api": "admin", "action": "pingSession", "authToken": 12},
        {"api": "admin", "action": "pingSession", "debug": 1},
        {"api": "admin", "action": "listSessions", "params": {"usernameFilter": "jdoe"}},
        {"api": "admin", "action": "describeSessions", "params": {"authTokens": "x"}},
        {"api": "admin", "action": "createSession", "params": {"username": 1, "password": "x"}},
        {"api": "admin", "action": "createSession", "params": {"username": "a", "password": "b"}},
        {"api": "admin", "action": "createSession"},
        {"api": "admin", "action": "alterSession", "params": {"description": 4}, "authToken": "x"},
        {"api": "admin", "action": "listSessions"},
        {"api": "admin", "action": "getRecordsUsingSQL"},
    ]
    for body in bodies:
        reply = post(server, body if isinstance(body, bytes) else orjson.dumps(body))
        assert reply.status_code == 200
        data = reply.json()
        assert data["result"] == {}
        assert isinstance(data["errorCode"], int) and data["errorCode"] != 0
        assert isinstance(data["errorMessage"], str) and data["errorMessage"]


def test_admin_alters_and_ends_another_session_by_id(server: ServerProcess) -> None:
    alice = login(server, "alice", USER_PASSWORD, description="before")
    admin = login(server, "admin", ADMIN_PASSWORD)
    target = "session:" + _own_id(server, alice)
    altered = call(
        server,
        {
            "api": "admin",
            "action": "alterSession",
            "params": {"authToken": target, "description": "after"},
            "authToken": admin,
        },
    )
    assert altered["errorCode"] == 0
    assert altered["result"]["authToken"] == target and altered["result"]["description"] == "after"
    assert alice not in str(altered)
    ended = call(
        server,
        {
            "api": "admin",
            "action": "deleteSession",
            "params": {"authToken": target},
            "authToken": admin,
        },
    )
    assert ended["errorCode"] == 0
    assert (
        call(server, {"api": "admin", "action": "pingSession", "authToken": alice})["errorCode"]
        == 12031
    )
    assert (
        call(server, {"api": "admin", "action": "pingSession", "authToken": admin})["errorCode"]
        == 0
    )


def test_cross_dialect_faircom_session_killed_from_rosetta(server: ServerProcess) -> None:
    token = login(server, "alice", USER_PASSWORD, description="cross-dialect")
    listed = _rosetta(server, "session.list", {"filters": {"users": ["alice"]}}).json()
    [session] = [s for s in listed["sessions"] if s["description"] == "cross-dialect"]
    assert session["service"] == "faircom"
    assert session["extras"]["rosetta"]["requests"] >= 1
    killed = _rosetta(server, "session.kill", {"filters": {"ids": [session["id"]]}})
    assert killed.status_code == 200 and killed.json()["affected"] == 1
    dead = call(server, {"api": "admin", "action": "pingSession", "authToken": token})
    assert dead == {
        "result": {},
        "errorCode": 12031,
        "errorMessage": TOKEN_MESSAGE,
        "authToken": token,
    }


def test_legacy_db_auth_error_option_gives_the_seed_reply() -> None:
    translator = FairComTranslator({"legacy_db_auth_error": True})
    raw = (
        b'{"requestId": "2", "authToken": "12345678901234567890fakeAuthToken64bytes1234567890'
        b'12345678901234", "api": "db", "apiVersion": "1.0", "action": "pingSession", '
        b'"params": {}}'
    )
    http = HttpRequest("POST", "/api", body=raw)
    request = translator.decode_request(http)
    error = RosettaError(ErrorKind.UNAUTHENTICATED, "unknown or expired token")
    reply = translator.encode_response(
        CanonicalResponse(Operation.PING, "2", error=error), request, http
    )
    assert orjson.loads(reply.body) == {
        "schema": "faircom.com/schemas/db",
        "requestId": "2",
        "authToken": "12345678901234567890fakeAuthToken64bytes123456789012345678901234",
        "api": "db",
        "apiVersion": "1.0",
        "action": "pingSession",
        "params": {},
        "result": {},
        "debugInfo": {},
        "errorCode": -1,
        "errorMessage": "authToken invalid or expired.",
    }


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown faircom option"):
        FairComTranslator({"nope": 1})
    with pytest.raises(ValueError, match="legacy_db_auth_error"):
        FairComTranslator({"legacy_db_auth_error": "yes"})


def test_server_log_holds_no_password_or_token(server: ServerProcess) -> None:
    token = login(server, "admin", ADMIN_PASSWORD, description="log check")
    call(server, {"api": "admin", "action": "pingSession", "authToken": token, "debug": "max"})
    call(server, {"api": "admin", "action": "deleteSession", "authToken": token})
    call(server, {"api": "admin", "action": "pingSession", "authToken": token})
    logs = server.logs()
    assert ADMIN_PASSWORD not in logs and USER_PASSWORD not in logs
    assert token not in logs
