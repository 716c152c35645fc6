"""Upstream credential policy over real processes: a ``rosetta emulate rosetta`` upstream with
its own users, a passthrough Rosetta and a static Rosetta (built with the CLI shortcut flags),
both on one real Redis. Bridged logins, revocation, static-mode authentication, and proof that
no password, token or secret key is in Redis, in the logs, or in any error message."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis

from proxy.sessions.crypto import SecretBox
from tests.conftest import ADMIN_PASSWORD, SESSION_SECRET, USER_PASSWORD, base_config
from tests.support.redis import RedisServer, dump_redis
from tests.support.servers import ServerProcess, emulate, serve

BOB_PASSWORD = "bob-upstream-password-2e7d"
SERVICE_PASSWORD = "service-upstream-password-8c41"
ENCRYPTION_KEY = "bridging-test-encryption-key-5a0b"


@dataclass
class Setup:
    redis: RedisServer
    upstream: ServerProcess
    passthrough: ServerProcess
    static: ServerProcess
    replies: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def call(
        self, server: ServerProcess, operation: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        reply = httpx.post(f"{server.url}/rosetta/v1/{operation}", json=body or {}, timeout=15)
        self.replies.append(reply.text)
        if reply.status_code == 200 and "token" in reply.json():
            self.tokens.append(reply.json()["token"])
        return reply

    def login(self, server: ServerProcess, user: str, password: str) -> httpx.Response:
        return self.call(
            server, "session.login", {"credentials": {"user": user, "password": password}}
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("bridging")
    started: list[Any] = []
    try:
        redis_server = RedisServer(directory).start()
        started.append(redis_server)
        upstream = emulate(
            directory, "rosetta", users=[f"bob:{BOB_PASSWORD}", f"svc:{SERVICE_PASSWORD}"]
        )
        started.append(upstream)
        sessions = {
            "store": redis_server.url,
            "secret": SESSION_SECRET,
            "encryption_key": ENCRYPTION_KEY,
        }
        passthrough = serve(
            directory,
            base_config(
                inbound={"rosetta": {}},
                backends={"up": {"type": "upstream", "dialect": "rosetta", "url": upstream.url}},
                default_backend="up",
                sessions=sessions,
            ),
            name="passthrough",
        )
        started.append(passthrough)
        static = serve(
            directory,
            base_config(inbound={"rosetta": {}}, sessions=sessions),
            name="static",
            extra_args=[
                "--upstream",
                upstream.url,
                "--upstream-dialect",
                "rosetta",
                "--upstream-auth",
                "static",
                "--upstream-user",
                "svc",
                "--upstream-password",
                SERVICE_PASSWORD,
                "--upstream-param",
                "project_id=p-123",
            ],
        )
        started.append(static)
    except Exception:
        for process in reversed(started):
            process.stop()
        raise
    yield Setup(redis_server, upstream, passthrough, static)
    for process in reversed(started):
        process.stop()


def creds(token: str) -> dict[str, Any]:
    return {"credentials": {"token": token}}


def upstream_sessions(setup: Setup) -> list[dict[str, Any]]:
    reply = httpx.post(
        f"{setup.upstream.url}/rosetta/v1/session.list",
        json={"credentials": {"user": "svc", "password": SERVICE_PASSWORD}},
        timeout=15,
    )
    assert reply.status_code == 200, reply.text
    sessions: list[dict[str, Any]] = reply.json()["sessions"]
    return sessions


# passthrough ----------------------------------------------------------------------------------
def test_passthrough_login_is_bridged_into_a_rosetta_session(setup: Setup) -> None:
    reply = setup.login(setup.passthrough, "bob", BOB_PASSWORD)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    token = body["token"]
    assert len(token) >= 43
    # the upstream checked the password and opened its own session for bob
    upstream_id = body["session"]["id"]
    assert upstream_id in {s["id"] for s in upstream_sessions(setup) if s["user"] == "bob"}
    # Rosetta's token is Rosetta's: the upstream does not know it
    direct = httpx.post(f"{setup.upstream.url}/rosetta/v1/session.ping", json=creds(token))
    assert direct.status_code == 401
    # through Rosetta it works, sent upstream with bob's own upstream session
    listed = setup.call(setup.passthrough, "session.list", creds(token))
    assert listed.status_code == 200, listed.text
    assert listed.json()["caller"] == {
        "user": "bob",
        "session_id": upstream_id,
        "expires_in": listed.json()["caller"]["expires_in"],
    }


def test_passthrough_login_with_a_wrong_password_is_refused_upstream(setup: Setup) -> None:
    before = redis.Redis.from_url(setup.redis.url).zcard("rosetta:index")
    reply = setup.login(setup.passthrough, "bob", "not-the-password")
    assert reply.status_code == 401
    assert reply.json()["error"]["kind"] == "unauthenticated"
    assert redis.Redis.from_url(setup.redis.url).zcard("rosetta:index") == before


def test_logout_ends_the_bridged_session_and_the_upstream_one(setup: Setup) -> None:
    login = setup.login(setup.passthrough, "bob", BOB_PASSWORD).json()
    token, upstream_id = login["token"], login["session"]["id"]
    assert setup.call(setup.passthrough, "session.logout", creds(token)).status_code == 200
    assert setup.call(setup.passthrough, "session.ping", creds(token)).status_code == 401
    assert upstream_id not in {s["id"] for s in upstream_sessions(setup)}


def test_a_kill_through_rosetta_ends_the_bridged_session_at_once(setup: Setup) -> None:
    victim = setup.login(setup.passthrough, "bob", BOB_PASSWORD).json()
    admin = setup.login(setup.passthrough, "svc", SERVICE_PASSWORD).json()["token"]
    killed = setup.call(
        setup.passthrough,
        "session.kill",
        {**creds(admin), "filters": {"ids": [victim["session"]["id"]]}},
    )
    assert killed.status_code == 200, killed.text
    # Rosetta's own session went with the upstream one (not just failing upstream later)
    client = redis.Redis.from_url(setup.redis.url)
    assert client.exists(f"rosetta:t:{_hash(victim['token'])}") == 0
    after = setup.call(setup.passthrough, "session.ping", creds(victim["token"]))
    assert after.status_code == 401


def test_a_plain_rosetta_session_token_is_never_sent_upstream(setup: Setup) -> None:
    # a token of a static-side Rosetta session, presented to the passthrough replica
    token = setup.login(setup.static, "alice", USER_PASSWORD).json()["token"]
    reply = setup.call(setup.passthrough, "session.list", creds(token))
    assert reply.status_code == 401
    assert "not opened through" in reply.json()["error"]["message"]


def test_upstream_credentials_are_encrypted_in_redis(setup: Setup) -> None:
    token = setup.login(setup.passthrough, "bob", BOB_PASSWORD).json()["token"]
    assert setup.call(setup.passthrough, "session.ping", creds(token)).status_code == 200
    client = redis.Redis.from_url(setup.redis.url)
    session_id = client.get(f"rosetta:t:{_hash(token)}")
    assert session_id is not None
    fields = client.hgetall(b"rosetta:s:" + session_id)
    box = SecretBox(ENCRYPTION_KEY.encode())
    upstream_token = box.open(fields[b"x:token"])
    assert box.open(fields[b"x:password"]) == BOB_PASSWORD
    # the decrypted upstream token is bob's live upstream session token
    direct = httpx.post(f"{setup.upstream.url}/rosetta/v1/session.ping", json=creds(upstream_token))
    assert direct.status_code == 200 and direct.json()["caller"]["user"] == "bob"
    dump = dump_redis(setup.redis.url)
    for secret in (token, upstream_token, BOB_PASSWORD, ENCRYPTION_KEY, SESSION_SECRET):
        assert secret.encode() not in dump


# static ---------------------------------------------------------------------------------------
def test_static_mode_lends_service_credentials_only_to_authenticated_callers(setup: Setup) -> None:
    anonymous = setup.call(setup.static, "session.list")
    assert anonymous.status_code == 401
    wrong = setup.call(
        setup.static, "session.list", {"credentials": {"user": "alice", "password": "nope"}}
    )
    assert wrong.status_code == 401
    listed = setup.call(
        setup.static, "session.list", {"credentials": {"user": "alice", "password": USER_PASSWORD}}
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["caller"]["user"] == "svc"  # the upstream saw the service account
    # an anonymous ping still answers (forwarded without any credentials)
    assert setup.call(setup.static, "session.ping").status_code == 200


def test_static_mode_login_is_a_rosetta_session(setup: Setup) -> None:
    before = {s["id"] for s in upstream_sessions(setup)}
    reply = setup.login(setup.static, "alice", USER_PASSWORD)
    assert reply.status_code == 200, reply.text
    token = reply.json()["token"]
    # no upstream session was opened for the caller, and the token is Rosetta's only
    assert {s["id"] for s in upstream_sessions(setup)} == before
    direct = httpx.post(f"{setup.upstream.url}/rosetta/v1/session.ping", json=creds(token))
    assert direct.status_code == 401
    listed = setup.call(setup.static, "session.list", creds(token))
    assert listed.status_code == 200
    assert setup.call(setup.static, "session.logout", creds(token)).status_code == 200
    assert setup.call(setup.static, "session.list", creds(token)).status_code == 401


def test_nothing_secret_in_redis_logs_or_error_messages(setup: Setup) -> None:
    # make sure every path ran at least once in this module, whatever the test order
    setup.login(setup.passthrough, "bob", BOB_PASSWORD)
    setup.login(setup.passthrough, "bob", "a-wrong-password-7b1e")
    setup.call(setup.static, "session.list", {"credentials": {"user": "x", "password": "y"}})
    secrets = [
        BOB_PASSWORD,
        SERVICE_PASSWORD,
        ADMIN_PASSWORD,
        USER_PASSWORD,
        SESSION_SECRET,
        ENCRYPTION_KEY,
        "a-wrong-password-7b1e",
        *setup.tokens,
    ]
    assert len(setup.tokens) >= 3
    dump = dump_redis(setup.redis.url)
    logs = setup.passthrough.logs() + setup.static.logs() + setup.upstream.logs()
    errors = "\n".join(r for r in setup.replies if '"error"' in r)
    assert '"event":"request"' in logs.replace(" ", "")
    for secret in secrets:
        assert secret.encode() not in dump, "secret in Redis"
        assert secret not in logs, "secret in a log"
        assert secret not in errors, "secret in an error message"


def _hash(token: str) -> str:
    from proxy.sessions.tokens import TokenHasher

    return TokenHasher(SESSION_SECRET.encode()).hash(token)
