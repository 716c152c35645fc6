"""What every session store promises (``proxy.sessions.store.SessionStore``), held against the
memory store and the Redis store (a real ``redis-server``) alike: the order ``live`` lists
sessions in, that it follows every put, delete and expiry, that a replaced session's old token
is revoked, and that an expired session is gone for every lookup."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis

from proxy.sessions.crypto import SecretBox
from proxy.sessions.memory import MemorySessionStore
from proxy.sessions.redis_store import RedisSessionStore
from proxy.sessions.store import SessionStore, StoredSession
from tests.support.redis import RedisServer
from translators.contract import SessionRecord

T = TypeVar("T")
Scenario = Callable[[SessionStore], Awaitable[T]]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
def run(request: pytest.FixtureRequest) -> Callable[[Scenario[Any]], Any]:
    """Runs a scenario against a fresh store of the parameter's kind."""
    kind: str = request.param
    url = ""
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        redis.Redis(port=server.port).flushall()
        url = server.url

    def runner(scenario: Scenario[T]) -> T:
        async def main() -> T:
            store: SessionStore = (
                MemorySessionStore()
                if kind == "memory"
                else RedisSessionStore(url, SecretBox(b"k"))
            )
            try:
                return await scenario(store)
            finally:
                await store.close()

        return asyncio.run(main())

    return runner


def session(session_id: str, *, idle: float = 60.0, token: bool = True) -> StoredSession:
    now = time.time()
    return StoredSession(
        record=SessionRecord(id=session_id, user="alice", state="active"),
        token_hash=f"hash-{session_id}" if token else None,
        created_at=now,
        last_access=now,
        idle_timeout=idle,
        requests=1,
    )


async def listed(store: SessionStore) -> list[str]:
    return [s.id for s in await store.live(time.time())]


def test_live_lists_shorter_ids_first_then_by_text(run: Callable[[Scenario[Any]], Any]) -> None:
    async def scenario(store: SessionStore) -> list[str]:
        for session_id in ("10", "2", "b", "1", "a", "9"):
            await store.put(session(session_id, token=session_id.isdigit()))
        return await listed(store)

    assert run(scenario) == ["1", "2", "9", "a", "b", "10"]


def test_live_follows_every_put_and_delete(run: Callable[[Scenario[Any]], Any]) -> None:
    async def scenario(store: SessionStore) -> list[list[str]]:
        seen = []
        await store.put(session("3"))
        await store.put(session("1"))
        seen.append(await listed(store))
        await store.put(session("2"))
        seen.append(await listed(store))
        await store.put(session("2"))  # replaced, not listed twice
        seen.append(await listed(store))
        await store.delete(["1"])
        seen.append(await listed(store))
        await store.put(session("1"))
        seen.append(await listed(store))
        return seen

    assert run(scenario) == [
        ["1", "3"],
        ["1", "2", "3"],
        ["1", "2", "3"],
        ["2", "3"],
        ["1", "2", "3"],
    ]


def test_an_expired_session_leaves_the_list_and_every_lookup(
    run: Callable[[Scenario[Any]], Any],
) -> None:
    async def scenario(store: SessionStore) -> list[Any]:
        await store.put(session("1"))
        await store.put(session("2", idle=0.2))
        before = await listed(store)
        later = time.time() + 1.0  # past the idle time of session 2, within session 1's
        after = [s.id for s in await store.live(later)]
        return [
            before,
            after,
            await store.get("2", later),
            await store.by_token("hash-2", later),
            await store.touch("2", later, "session.ping"),
            (await store.get("1", later)) is not None,
        ]

    assert run(scenario) == [["1", "2"], ["1"], None, None, None, True]


def test_replacing_a_session_revokes_its_old_token(run: Callable[[Scenario[Any]], Any]) -> None:
    async def scenario(store: SessionStore) -> list[Any]:
        await store.put(session("1"))
        renewed = session("1")
        renewed.token_hash = "hash-renewed"
        await store.put(renewed)
        now = time.time()
        old = await store.by_token("hash-1", now)
        new = await store.by_token("hash-renewed", now)
        return [old, new.id if new else None, await listed(store)]

    assert run(scenario) == [None, "1", ["1"]]


def test_a_touch_shows_on_the_next_list(run: Callable[[Scenario[Any]], Any]) -> None:
    async def scenario(store: SessionStore) -> list[tuple[str, int, str]]:
        await store.put(session("1"))
        await store.live(time.time())
        await store.touch("1", time.time(), "session.list")
        return [(s.id, s.requests, s.record.last_command) for s in await store.live(time.time())]

    assert run(scenario) == [("1", 2, "session.list")]
