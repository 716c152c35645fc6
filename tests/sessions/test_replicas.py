"""Two real Rosetta processes sharing one real ``redis-server``: a session made on one is used,
listed and killed on the other; idle expiry; exact counters under parallel use from both;
a Redis outage gives clean upstream_unavailable errors and the servers recover by themselves.
The outage test stops the module's Redis, so it runs last."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import (
    ADMIN_PASSWORD,
    SESSION_SECRET,
    STATIC_TOKEN,
    USER_PASSWORD,
    base_config,
)
from tests.support.redis import RedisServer, dump_redis
from tests.support.servers import ServerProcess, serve

DEADLINE_SECONDS = 30.0


@dataclass
class Cluster:
    redis: RedisServer
    a: ServerProcess
    b: ServerProcess
    replies: list[str]  # every response body, for the secret scan

    def call(self, server: ServerProcess, operation: str, body: dict[str, Any]) -> httpx.Response:
        reply = httpx.post(f"{server.url}/rosetta/v1/{operation}", json=body, timeout=15)
        self.replies.append(reply.text)
        return reply

    def login(self, server: ServerProcess, user: str = "admin", **settings: Any) -> str:
        password = ADMIN_PASSWORD if user == "admin" else USER_PASSWORD
        body: dict[str, Any] = {"credentials": {"user": user, "password": password}}
        if settings:
            body["settings"] = settings
        reply = self.call(server, "session.login", body)
        assert reply.status_code == 200, reply.text
        token: str = reply.json()["token"]
        return token


def replica_config(redis_url: str) -> dict[str, Any]:
    return base_config(
        inbound={"rosetta": {}},
        sessions={"store": redis_url, "secret": SESSION_SECRET, "idle_timeout_seconds": 600},
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("replicas")
    redis_server = RedisServer(directory).start()
    config = replica_config(redis_server.url)
    a = serve(directory, config, name="a")
    try:
        b = serve(directory, config, name="b")
    except Exception:
        a.stop()
        redis_server.stop()
        raise
    yield Cluster(redis_server, a, b, [])
    a.stop()
    b.stop()
    redis_server.stop()


def creds(token: str) -> dict[str, Any]:
    return {"credentials": {"token": token}}


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {DEADLINE_SECONDS}s: {what}")


def test_a_session_made_on_one_replica_is_used_and_killed_on_the_other(cluster: Cluster) -> None:
    token = cluster.login(cluster.a)
    pinged = cluster.call(cluster.b, "session.ping", creds(token))
    assert pinged.status_code == 200, pinged.text
    session_id = pinged.json()["caller"]["session_id"]

    listed = cluster.call(cluster.b, "session.list", creds(token)).json()
    assert session_id in {s["id"] for s in listed["sessions"]}
    got = cluster.call(cluster.b, "session.get", {**creds(token), "filters": {"ids": [session_id]}})
    assert got.json()["session"]["client_address"].startswith("127.0.0.1:")

    killer = cluster.login(cluster.b)
    killed = cluster.call(
        cluster.b, "session.kill", {**creds(killer), "filters": {"ids": [session_id]}}
    )
    assert killed.status_code == 200 and killed.json()["affected"] == 1
    # seen at once on the first replica: no polling
    after = cluster.call(cluster.a, "session.ping", creds(token))
    assert after.status_code == 401 and after.json()["error"]["kind"] == "unauthenticated"
    listed_on_a = cluster.call(cluster.a, "session.list", creds(killer)).json()
    assert session_id not in {s["id"] for s in listed_on_a["sessions"]}


def test_logout_on_one_replica_revokes_on_the_other(cluster: Cluster) -> None:
    token = cluster.login(cluster.b)
    assert cluster.call(cluster.a, "session.logout", creds(token)).status_code == 200
    assert cluster.call(cluster.b, "session.ping", creds(token)).status_code == 401


def test_ids_are_unique_across_replicas(cluster: Cluster) -> None:
    ids = set()
    for server in (cluster.a, cluster.b) * 5:
        token = cluster.login(server)
        ids.add(cluster.call(server, "session.ping", creds(token)).json()["caller"]["session_id"])
    assert len(ids) == 10


def test_idle_expiry_ends_the_session_on_both_replicas(cluster: Cluster) -> None:
    token = cluster.login(cluster.a, idle_timeout_seconds=1)
    session_id = cluster.call(cluster.b, "session.ping", creds(token)).json()["caller"][
        "session_id"
    ]
    watcher = cluster.login(cluster.b)

    def gone(server: ServerProcess) -> Callable[[], bool]:
        # looking the session up with another session does not touch it
        def check() -> bool:
            reply = cluster.call(
                server, "session.get", {**creds(watcher), "filters": {"ids": [session_id]}}
            )
            return reply.status_code == 404

        return check

    eventually(gone(cluster.a), "session idles out as seen from replica a")
    assert gone(cluster.b)()
    for server in (cluster.a, cluster.b):
        reply = cluster.call(server, "session.ping", creds(token))
        assert reply.status_code == 401, reply.text


def test_parallel_use_from_both_replicas_keeps_an_exact_count(cluster: Cluster) -> None:
    token = cluster.login(cluster.a, user="alice")
    uses = 120

    def ping(i: int) -> int:
        server = cluster.a if i % 2 else cluster.b
        return cluster.call(server, "session.ping", creds(token)).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(ping, range(uses)))
    assert statuses == [200] * uses
    admin = cluster.login(cluster.b)
    session_id = cluster.call(cluster.a, "session.ping", creds(token)).json()["caller"][
        "session_id"
    ]
    got = cluster.call(cluster.b, "session.get", {**creds(admin), "filters": {"ids": [session_id]}})
    reads = got.json()["session"]["connections"][0]["reads"]
    assert reads == 1 + uses + 1  # the login, the parallel pings, the ping that read the id
    assert got.json()["session"]["extras"]["rosetta"]["requests"] == reads


def test_no_token_or_password_in_redis_in_plain_text(cluster: Cluster) -> None:
    token = cluster.login(cluster.a)
    assert cluster.call(cluster.b, "session.ping", creds(token)).status_code == 200
    dump = dump_redis(cluster.redis.url)
    assert b"rosetta:t:" in dump  # the store was scanned, not an empty Redis
    for secret in (token, ADMIN_PASSWORD, USER_PASSWORD, SESSION_SECRET):
        assert secret.encode() not in dump


def test_redis_outage_gives_clean_errors_and_the_replicas_recover(cluster: Cluster) -> None:
    token = cluster.login(cluster.a)
    cluster.redis.stop()
    try:
        for server in (cluster.a, cluster.b):
            for operation, body in (
                ("session.ping", creds(token)),
                ("session.list", creds(token)),
                ("session.login", {"credentials": {"user": "admin", "password": ADMIN_PASSWORD}}),
            ):
                reply = cluster.call(server, operation, body)
                assert reply.status_code == 502, reply.text
                error = reply.json()["error"]
                assert error == {
                    "kind": "upstream_unavailable",
                    "message": "session store unavailable",
                }
            ready = httpx.get(f"{server.url}/readyz", timeout=15)
            assert ready.status_code == 503
            assert httpx.get(f"{server.url}/healthz", timeout=15).status_code == 200
            # what needs no store still works: anonymous pings, and a configured token
            assert cluster.call(server, "session.ping", {}).status_code == 200
            pinged = cluster.call(server, "session.ping", creds(STATIC_TOKEN))
            assert pinged.status_code == 200, pinged.text
            assert server.alive()
    finally:
        cluster.redis.start()  # same port, empty (no persistence)

    for server in (cluster.a, cluster.b):
        eventually(
            lambda s=server: httpx.get(f"{s.url}/readyz", timeout=15).status_code == 200,
            "readiness returns with Redis",
        )
    fresh = cluster.login(cluster.b)
    assert cluster.call(cluster.a, "session.ping", creds(fresh)).status_code == 200
    # the old session lived only in the Redis that was stopped
    assert cluster.call(cluster.a, "session.ping", creds(token)).status_code == 401


def test_nothing_secret_in_logs_or_error_messages(cluster: Cluster) -> None:
    secrets = [ADMIN_PASSWORD, USER_PASSWORD, SESSION_SECRET]
    logs = cluster.a.logs() + cluster.b.logs()
    assert "session_store_unavailable" in logs  # the outage was logged, by type only
    replies = "\n".join(cluster.replies)
    assert '"token":"' in replies.replace(" ", "")  # tokens were issued to callers...
    issued = [
        line.split('"token":"', 1)[1].split('"', 1)[0]
        for line in cluster.replies
        if '"token":"' in line
    ]
    errors = "\n".join(r for r in cluster.replies if '"error"' in r)
    for secret in secrets + issued:
        assert secret not in logs
        assert secret not in errors
