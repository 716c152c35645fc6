"""Two real Rosetta processes sharing one real ``redis-server``, spoken to in all five vendor
dialects over raw HTTP (and the Huawei SDK for AK/SK): a FairCom session created on one replica
is pinged, listed in every dialect and killed on the other, and the kill is seen at once on the
first; FairCom and JUMP logins idle out as seen from both; stopping Redis gives each dialect's
own upstream_unavailable envelope on both replicas, and both recover when Redis returns. No
token, password or secret key in Redis, the logs, or any error body. The outage test stops the
module's Redis, so it runs after the others; the secret scan runs last."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkgaussdbfornosql.v3 import ListInstanceSessionsRequest
from huaweicloudsdkgaussdbfornosql.v3.gaussdbfornosql_client import GaussDBforNoSQLClient

from tests.conftest import (
    ACCESS_KEY,
    ADMIN_PASSWORD,
    SECRET_KEY,
    SESSION_SECRET,
    STATIC_TOKEN,
    USER_PASSWORD,
    base_config,
)
from tests.support.redis import RedisServer, dump_redis
from tests.support.secrets import leaks
from tests.support.servers import ServerProcess, serve
from translators.geminidb import signing

DEADLINE_SECONDS = 30.0
PROJECT, INSTANCE = "0549b5e0a1", "e73893efin12"
ADMIN = ("admin", ADMIN_PASSWORD)
JUMP_PATH = "/presto/edge/api"


@dataclass
class Pair:
    redis: RedisServer
    a: ServerProcess
    b: ServerProcess
    replies: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    def keep(self, reply: httpx.Response) -> httpx.Response:
        self.replies.append(reply.text)
        return reply

    # FairCom ----------------------------------------------------------------------------
    def faircom(self, server: ServerProcess, action: str, **body: Any) -> dict[str, Any]:
        reply = self.keep(
            httpx.post(
                f"{server.url}/api", json={"api": "admin", "action": action, **body}, timeout=15
            )
        )
        assert reply.status_code == 200, reply.text
        answer: dict[str, Any] = reply.json()
        return answer

    def faircom_login(self, server: ServerProcess, user: str, **params: Any) -> str:
        password = ADMIN_PASSWORD if user == "admin" else USER_PASSWORD
        answer = self.faircom(
            server,
            "createSession",
            params={"username": user, "password": password, **params},
        )
        assert answer["errorCode"] == 0, answer
        token: str = answer["authToken"]
        self.issued.append(token)
        return token

    def ping(self, server: ServerProcess, token: str) -> int:
        code: int = self.faircom(server, "pingSession", authToken=token)["errorCode"]
        return code

    # JUMP -------------------------------------------------------------------------------
    def jump(
        self,
        server: ServerProcess,
        sid: str,
        oid: str,
        params: Any,
        *,
        cookie: str | None = None,
        presto: bool = False,
    ) -> dict[str, Any]:
        message = {"version": "1.0", "sid": sid, "svcVersion": "0.1", "oid": oid}
        headers = {"content-type": "application/json"}
        if presto:
            headers |= {"presto_username": "admin", "presto_password": ADMIN_PASSWORD}
        cookies = {"JSESSIONID": cookie} if cookie else None
        with httpx.Client(cookies=cookies, timeout=15) as client:
            reply = self.keep(
                client.post(
                    server.url + JUMP_PATH,
                    headers=headers,
                    content=orjson.dumps({**message, "params": params}),
                )
            )
        assert reply.status_code == 200, reply.text
        answer: dict[str, Any] = reply.json()
        return answer


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    directory = tmp_path_factory.mktemp("replicas-dialects")
    redis_server = RedisServer(directory).start()
    config = base_config(
        sessions={"store": redis_server.url, "secret": SESSION_SECRET, "idle_timeout_seconds": 600}
    )
    started: list[ServerProcess] = []
    try:
        started.append(serve(directory, config, name="a"))
        started.append(serve(directory, config, name="b"))
    except Exception:
        for process in started:
            process.stop()
        redis_server.stop()
        raise
    yield Pair(redis_server, started[0], started[1])
    for process in started:
        process.stop()
    redis_server.stop()


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {DEADLINE_SECONDS}s: {what}")


def signed_get(server: ServerProcess, path: str) -> httpx.Response:
    """A GeminiDB GET signed with AK/SK exactly as the Huawei SDK signs it."""
    headers = signing.sign(
        method="GET",
        path=path,
        pairs=[],
        headers={
            "host": urlsplit(server.url).netloc,
            "content-type": "application/json",
            "x-project-id": PROJECT,
        },
        body=b"",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        now=datetime.now(UTC),
    )
    return httpx.get(server.url + path, headers=headers, timeout=15)


def sdk_ids(server: ServerProcess) -> dict[str, str]:
    """id -> name of every session, listed by the official SDK signing with AK/SK."""
    client = (
        GaussDBforNoSQLClient.new_builder()
        .with_credentials(BasicCredentials(ACCESS_KEY, SECRET_KEY, PROJECT))
        .with_endpoints([server.url])
        .build()
    )
    response = client.list_instance_sessions(ListInstanceSessionsRequest(instance_id=INSTANCE))
    return {str(s.id): s.name for group in response.node_sessions for s in group.sessions}


def views(pair: Pair, server: ServerProcess, admin_token: str) -> dict[str, dict[str, str]]:
    """Every session as each dialect lists it on ``server``: view -> {id: user or name}."""
    seen: dict[str, dict[str, str]] = {}
    listed = pair.faircom(server, "listSessions", authToken=admin_token)
    assert listed["errorCode"] == 0, listed
    seen["faircom"] = {
        entry["authToken"].removeprefix("session:"): entry["username"]
        for entry in listed["result"]["sessions"]
        if entry["authToken"].startswith("session:")
    }
    blob = pair.keep(
        httpx.post(
            f"{server.url}/rest/bquery",
            json={"username": "admin", "password": ADMIN_PASSWORD, "q": "list-sessions"},
            timeout=15,
        )
    ).json()
    assert blob["ack"] == "1", blob
    seen["blobcity"] = {s["id"]: s["user"] for s in blob["p"]["sessions"]}
    v1 = pair.keep(httpx.get(f"{server.url}/v1/sessions", auth=ADMIN, timeout=15))
    assert v1.status_code == 200, v1.text
    seen["maxscale-v1"] = {s["id"]: s["attributes"].get("user", "") for s in v1.json()["data"]}
    draft = pair.keep(httpx.get(f"{server.url}/sessions", auth=ADMIN, timeout=15))
    assert draft.status_code == 200, draft.text
    seen["maxscale-draft"] = {str(s["id"]): s["user"] for s in draft.json()}
    path = f"/v3/{PROJECT}/instances/{INSTANCE}/sessions"
    token_view = pair.keep(
        httpx.get(server.url + path, headers={"X-Auth-Token": STATIC_TOKEN}, timeout=15)
    )
    assert token_view.status_code == 200, token_view.text
    seen["geminidb-token"] = {
        str(s["id"]): s["name"]
        for group in token_view.json()["node_sessions"]
        for s in group["sessions"]
    }
    seen["geminidb-aksk"] = sdk_ids(server)
    jump = pair.jump(server, "SessionService", "listSessions", [], presto=True)
    assert jump["errorCode"] == "", jump
    seen["jump"] = {s["sessionId"]: s["user"] for s in jump["response"]}
    return seen


def find(seen: dict[str, dict[str, str]], marker: str) -> str:
    """The id of the one session the GeminiDB view names ``marker`` (its description)."""
    ids = [i for i, name in seen["geminidb-token"].items() if name == marker]
    assert len(ids) == 1, seen
    return ids[0]


# a session across replicas and dialects -------------------------------------------------------
def test_a_faircom_session_from_one_replica_is_pinged_listed_and_killed_on_the_other(
    pair: Pair,
) -> None:
    marker = f"replica-{uuid.uuid4().hex[:8]}"
    token = pair.faircom_login(pair.a, "alice", description=marker)
    assert pair.ping(pair.b, token) == 0

    admin_b = pair.faircom_login(pair.b, "admin")
    seen = views(pair, pair.b, admin_b)
    session_id = find(seen, marker)
    assert seen["geminidb-aksk"][session_id] == marker
    for view in ("faircom", "blobcity", "maxscale-v1", "maxscale-draft", "jump"):
        assert seen[view].get(session_id) == "alice", (view, seen[view])
    # alice sees herself through FairCom on the other replica, under her own token
    own = pair.faircom(pair.b, "listSessions", authToken=token)["result"]["sessions"]
    assert [(s["authToken"], s["username"], s["description"]) for s in own] == [
        (token, "alice", marker)
    ]

    killed = pair.keep(
        httpx.delete(f"{pair.b.url}/v1/sessions/{session_id}", auth=ADMIN, timeout=15)
    )
    assert killed.status_code == 200, killed.text
    # seen at once on the first replica: no waiting
    dead = pair.faircom(pair.a, "pingSession", authToken=token)
    assert dead["errorCode"] == 12031 and dead["authToken"] == token
    admin_a = pair.faircom_login(pair.a, "admin")
    after = views(pair, pair.a, admin_a)
    for view, sessions in after.items():
        assert session_id not in sessions, view


def test_a_jump_session_from_one_replica_is_killed_in_faircom_on_the_other(pair: Pair) -> None:
    login = pair.jump(
        pair.b, "UserManagerService", "login", {"username": "alice", "password": USER_PASSWORD}
    )
    assert login["errorCode"] == "", login
    cookie, session_id = login["response"]["authToken"], str(login["response"]["sessionId"])
    pair.issued.append(cookie)
    admin_a = pair.faircom_login(pair.a, "admin")
    assert session_id in views(pair, pair.a, admin_a)["jump"]
    ended = pair.faircom(
        pair.a, "deleteSession", authToken=admin_a, params={"authToken": f"session:{session_id}"}
    )
    assert ended["errorCode"] == 0, ended
    after = pair.jump(pair.b, "SessionService", "pingSession", [], cookie=cookie)
    assert after["errorCode"] == "RSJE0401", after


def test_idle_expiry_works_from_both_replicas(pair: Pair) -> None:
    marker = f"idle-{uuid.uuid4().hex[:8]}"
    faircom_token = pair.faircom_login(
        pair.a, "alice", description=marker, idleConnectionTimeoutSeconds=1
    )
    login = pair.jump(
        pair.b,
        "UserManagerService",
        "login",
        {"username": "alice", "password": USER_PASSWORD, "sessionTimeout": 1},
    )
    assert login["errorCode"] == "", login
    cookie, jump_id = login["response"]["authToken"], str(login["response"]["sessionId"])
    pair.issued.append(cookie)
    admin_b = pair.faircom_login(pair.b, "admin")
    faircom_id = find(views(pair, pair.b, admin_b), marker)

    def gone(server: ServerProcess, session_id: str) -> Callable[[], bool]:
        # an admin's Basic look-up does not touch the session
        def check() -> bool:
            reply = httpx.get(f"{server.url}/v1/sessions/{session_id}", auth=ADMIN, timeout=15)
            return reply.status_code == 404

        return check

    eventually(gone(pair.a, faircom_id), "the FairCom session idles out, seen from a")
    eventually(gone(pair.b, jump_id), "the JUMP session idles out, seen from b")
    for server in (pair.a, pair.b):
        assert gone(server, faircom_id)() and gone(server, jump_id)()
        assert pair.ping(server, faircom_token) == 12031
        jump = pair.jump(server, "SessionService", "pingSession", [], cookie=cookie)
        assert jump["errorCode"] == "RSJE0401", jump


# Redis outage ---------------------------------------------------------------------------------
def outage_replies(pair: Pair, server: ServerProcess, token: str) -> None:
    """Every dialect, on ``server``, while Redis is down: its own upstream_unavailable."""
    for answer in (
        pair.faircom(server, "pingSession", authToken=token),
        pair.faircom(
            server, "createSession", params={"username": "admin", "password": ADMIN_PASSWORD}
        ),
        pair.faircom(server, "listSessions", authToken=token),
    ):
        assert answer["errorCode"] == 12106, answer
        assert answer["errorMessage"] == "session store unavailable"

    blob = pair.keep(
        httpx.post(
            f"{server.url}/rest/bquery",
            json={"username": "admin", "password": ADMIN_PASSWORD, "q": "list-sessions"},
            timeout=15,
        )
    )
    assert blob.status_code == 200
    assert blob.json()["ack"] == "0" and blob.json()["code"] == "UPSTREAM_UNAVAILABLE", blob.text

    v1 = pair.keep(httpx.get(f"{server.url}/v1/sessions", auth=ADMIN, timeout=15))
    assert v1.status_code == 503, v1.text
    assert v1.json() == {"errors": [{"detail": "session store unavailable"}]}
    draft = pair.keep(httpx.get(f"{server.url}/sessions", auth=ADMIN, timeout=15))
    assert draft.status_code == 503, draft.text
    assert draft.json()["error"] == "Service Unavailable"
    jwt = pair.keep(httpx.get(f"{server.url}/v1/auth", auth=ADMIN, timeout=15))
    assert jwt.status_code == 503, jwt.text

    path = f"/v3/{PROJECT}/instances/{INSTANCE}/sessions"
    for gemini in (
        pair.keep(httpx.get(server.url + path, headers={"X-Auth-Token": STATIC_TOKEN}, timeout=15)),
        pair.keep(signed_get(server, path)),
    ):
        assert gemini.status_code == 502, gemini.text
        assert gemini.json()["error_code"] == "APIGW.0202", gemini.text

    for jump in (
        pair.jump(server, "SessionService", "listSessions", [], presto=True),
        pair.jump(
            server, "UserManagerService", "login", {"username": "admin", "password": ADMIN_PASSWORD}
        ),
    ):
        assert jump["errorCode"] == "RSJE0503", jump
        assert jump["response"] == ""

    rosetta = pair.keep(
        httpx.post(
            f"{server.url}/rosetta/v1/session.list",
            json={"credentials": {"user": "admin", "password": ADMIN_PASSWORD}},
            timeout=15,
        )
    )
    assert rosetta.status_code == 502
    assert rosetta.json()["error"]["kind"] == "upstream_unavailable"


def test_a_redis_outage_is_clean_in_every_dialect_and_both_replicas_recover(pair: Pair) -> None:
    token = pair.faircom_login(pair.a, "alice")
    pair.redis.stop()
    try:
        for server in (pair.a, pair.b):
            outage_replies(pair, server, token)
            assert httpx.get(f"{server.url}/readyz", timeout=15).status_code == 503
            # what needs no store still answers, in its own dialect
            assert pair.faircom(server, "pingSession")["errorCode"] == 0
            assert server.alive()
    finally:
        pair.redis.start()  # same port, empty (no persistence)

    for server in (pair.a, pair.b):
        eventually(
            lambda s=server: httpx.get(f"{s.url}/readyz", timeout=15).status_code == 200,
            "readiness returns with Redis",
        )
    # every dialect works again on both replicas, and sessions are shared again
    fresh = pair.faircom_login(pair.b, "alice", description="after-outage")
    assert pair.ping(pair.a, fresh) == 0
    for server in (pair.a, pair.b):
        admin = pair.faircom_login(server, "admin")
        seen = views(pair, server, admin)
        fresh_id = find(seen, "after-outage")
        assert all(fresh_id in sessions for sessions in seen.values()), seen
        jwt = pair.keep(httpx.get(f"{server.url}/v1/auth", auth=ADMIN, timeout=15))
        assert jwt.status_code == 200
        pair.issued.append(jwt.json()["meta"]["token"])
        assert server.alive()
    # the old session lived only in the Redis that was stopped
    assert pair.ping(pair.a, token) == 12031


def test_nothing_secret_in_redis_logs_or_error_bodies(pair: Pair) -> None:
    assert len(pair.issued) >= 5
    logs = pair.a.logs() + pair.b.logs()
    assert "session_store_unavailable" in logs  # the outage happened and was logged by type
    dump = dump_redis(pair.redis.url)
    assert b"rosetta:t:" in dump
    errors = [_without_own_token_echo(r) for r in pair.replies if _is_error(r)]
    assert len(errors) >= 10
    for secret in [ADMIN_PASSWORD, USER_PASSWORD, SESSION_SECRET, STATIC_TOKEN, SECRET_KEY]:
        assert secret.encode() not in dump
    for secret in [*pair.issued, ADMIN_PASSWORD, USER_PASSWORD, SESSION_SECRET, STATIC_TOKEN]:
        assert secret not in logs, "a secret in a log"
        assert secret.encode() not in dump, "a secret in Redis"
        for body in errors:
            assert secret not in body, f"a secret in an error body: {body[:200]}"
    assert SECRET_KEY not in logs
    # any body at all: tokens only where a dialect hands callers their own
    assert any(t in r for t in pair.issued for r in pair.replies)  # the scan sees tokens
    assert not leaks([*pair.issued, ADMIN_PASSWORD, USER_PASSWORD, SECRET_KEY], pair.replies)


def _is_error(body: str) -> bool:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(data, dict):
        return False
    return bool(
        data.get("error")
        or data.get("errors")
        or data.get("error_code")
        or data.get("errorCode")
        or data.get("ack") == "0"
    )


def _without_own_token_echo(body: str) -> str:
    """FairCom's 12031 echoes the caller's own offending authToken, as the protocol does."""
    data = orjson.loads(body)
    if data.get("errorCode") == 12031:
        data.pop("authToken", None)
    return orjson.dumps(data).decode()
