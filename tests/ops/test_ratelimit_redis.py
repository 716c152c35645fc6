"""Rate limiting shared through Redis (``store: sessions``): two real replicas on one real
redis-server share each caller's bucket, concurrent requests never overshoot the burst (the
Lua script takes tokens atomically), no secret reaches Redis, and a Redis outage fails open
with a warning and limiting resumes once Redis is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from proxy.ratelimit import RedisBuckets
from tests.conftest import ADMIN_PASSWORD, STATIC_TOKEN, USER_PASSWORD, base_config
from tests.support.faulty import FaultyUpstream
from tests.support.redis import RedisServer, dump_redis
from tests.support.servers import ServerProcess, serve

BURST = 3


def shared_config(redis_url: str, **limit: Any) -> dict[str, Any]:
    return base_config(
        sessions={"store": redis_url, "secret": "test-session-secret-0123456789abcdef"},
        rate_limit={
            "enabled": True,
            "store": "sessions",
            "requests_per_second": 0.001,  # no refill within a test
            "burst": BURST,
            **limit,
        },
    )


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-rl")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    directory = tmp_path_factory.mktemp("replicas")
    config = shared_config(redis_server.url)
    first = serve(directory, config, name="replica-a")
    second = serve(directory, config, name="replica-b")
    yield first, second
    first.stop()
    second.stop()


def listing(server: ServerProcess, user: str, secret: str) -> int:
    return httpx.post(
        f"{server.url}/rosetta/v1/session.list", json={}, auth=(user, secret), timeout=30
    ).status_code


def test_replicas_share_one_bucket_per_caller(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = replicas
    codes = [listing(server, "admin", ADMIN_PASSWORD) for server in (a, b, a, b, a)]
    assert codes == [200, 200, 200, 429, 429]
    assert listing(b, "admin", ADMIN_PASSWORD) == 429
    # the maxscale dialect on either replica draws on the same bucket
    refused = httpx.get(f"{a.url}/v1/sessions", auth=("admin", ADMIN_PASSWORD))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_concurrent_requests_on_two_replicas_never_overshoot(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = replicas
    servers = [a, b] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda s: listing(s, "alice", USER_PASSWORD), servers))
    assert sorted(codes) == [200] * BURST + [429] * (len(servers) - BURST)


def test_redis_holds_hashed_keys_and_no_secret(
    replicas: tuple[ServerProcess, ServerProcess], redis_server: RedisServer
) -> None:
    a, _ = replicas
    reply = httpx.get(
        f"{a.url}/v3/proj/instances/inst/sessions", headers={"X-Auth-Token": STATIC_TOKEN}
    )
    assert reply.status_code == 200
    client = redis.Redis.from_url(redis_server.url)
    keys = sorted(k.decode() for k in client.scan_iter("rosetta:rl:*"))
    client.close()
    assert "rosetta:rl:user:admin" in keys
    assert any(k.startswith("rosetta:rl:token:") for k in keys)
    dumped = dump_redis(redis_server.url)
    for secret in (STATIC_TOKEN, ADMIN_PASSWORD, USER_PASSWORD):
        assert secret.encode() not in dumped


def test_redis_outage_fails_open_and_limiting_resumes(tmp_path: Path) -> None:
    store = RedisServer(tmp_path).start()
    server = serve(tmp_path, shared_config(store.url))
    try:

        def ping() -> int:
            # anonymous pings are answered without the session store: only the limit uses Redis
            return httpx.post(
                f"{server.url}/rosetta/v1/session.ping",
                json={},
                headers={"x-forwarded-for": "10.9.9.9"},
                timeout=30,
            ).status_code

        assert [ping() for _ in range(BURST + 1)] == [200] * BURST + [429]
        store.stop()
        assert [ping() for _ in range(5)] == [200] * 5  # fail open
        assert "rate_limit_store_unavailable" in server.logs()
        assert store.url not in server.logs()
        store.start()  # an empty Redis on the same port: a fresh bucket
        deadline = time.monotonic() + 60
        codes: list[int] = []
        while time.monotonic() < deadline and 429 not in codes:
            codes.append(ping())
            time.sleep(0.1)
        assert 429 in codes  # limiting again once Redis answers
        assert server.alive()
    finally:
        server.stop()
        store.stop()


def test_a_redis_that_never_answers_fails_open_within_the_timeout() -> None:
    """A stalled Redis (accepts, reads, never answers): the request is allowed once the
    store's time-out passes, not when the server gives up."""
    with FaultyUpstream("hang", hang_seconds=30) as stalled:

        async def main() -> tuple[float, float]:
            url = stalled.url.replace("http://", "redis://") + "/0"
            buckets = RedisBuckets(url, 1.0, 1, prefix="rosetta:", timeout=0.3)
            started = time.monotonic()
            try:
                wait = await buckets.take("user:alice")
            finally:
                await buckets.close()
            return wait, time.monotonic() - started

        wait, waited = asyncio.run(main())
    assert wait == 0.0  # allowed: fail open
    assert waited < 5  # the time-out, not the server's 30 s
