"""The Redis session store against a real ``redis-server``: layout, TTLs, atomic touches from
two clients at once, revocation, encryption of upstream secrets, and failure mapping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis

from proxy.sessions.crypto import SecretBox
from proxy.sessions.redis_store import LIST_PAGE, RedisSessionStore
from proxy.sessions.store import StoredSession
from tests.support.faulty import FaultyUpstream
from tests.support.redis import RedisServer, dump_redis
from tests.support.servers import free_port
from translators.contract import ErrorKind, RosettaError, SessionRecord

T = TypeVar("T")
KEY = b"store-test-encryption-key"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def url(redis_server: RedisServer) -> str:
    redis.Redis(port=redis_server.port).flushall()
    return redis_server.url


def run(factory: Callable[[RedisSessionStore], Awaitable[T]], url: str, key: bytes = KEY) -> T:
    async def main() -> T:
        store = RedisSessionStore(url, SecretBox(key))
        try:
            return await factory(store)
        finally:
            await store.close()

    return asyncio.run(main())


def login_session(
    session_id: str, *, idle: float = 60.0, token_hash: str = "", **kw: Any
) -> StoredSession:
    now = time.time()
    return StoredSession(
        record=SessionRecord(id=session_id, user="alice", state="active"),
        token_hash=token_hash or f"hash-{session_id}",
        created_at=now,
        last_access=now,
        idle_timeout=idle,
        requests=1,
        **kw,
    )


def raw(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def test_ids_come_from_one_counter_and_skip_preloaded_ids(url: str) -> None:
    async def scenario(store: RedisSessionStore) -> list[str]:
        await store.put(StoredSession(record=SessionRecord(id="2", user="x")))
        return [await store.next_id() for _ in range(3)]

    assert run(scenario, url) == ["1", "3", "4"]


def test_a_session_round_trips_with_its_lifecycle_and_ttl(url: str) -> None:
    session = login_session("7", idle=30, absolute_deadline=time.time() + 10)
    session.record.extras = {"faircom": {"settings": {"x": 1}}}

    async def scenario(store: RedisSessionStore) -> tuple[Any, Any]:
        await store.put(session)
        return await store.get("7", time.time()), await store.by_token("hash-7", time.time())

    got, by_token = run(scenario, url)
    assert got == session and by_token == session
    client = raw(url)
    # the absolute deadline (10 s) is sooner than the idle timeout (30 s)
    assert 0 < client.pttl("rosetta:s:7") <= 10_000
    assert 0 < client.pttl("rosetta:t:hash-7") <= 10_000
    assert client.get("rosetta:t:hash-7") == b"7"
    assert client.zrange("rosetta:index", 0, -1) == [b"7"]


def test_touch_counts_restarts_the_idle_timer_and_notes_the_command(url: str) -> None:
    session = login_session("1", idle=100)
    session.last_access -= 50

    async def scenario(store: RedisSessionStore) -> StoredSession | None:
        await store.put(session)
        return await store.touch("1", time.time(), "session.list")

    touched = run(scenario, url)
    assert touched is not None
    assert touched.requests == 2 and touched.record.last_command == "session.list"
    assert touched.last_access > session.last_access
    assert raw(url).pttl("rosetta:s:1") > 90_000


def test_a_token_is_resolved_and_its_session_touched_in_one_step(url: str) -> None:
    session = login_session("1", idle=100, upstream_secrets={"token": "up-1"})
    session.last_access -= 50

    async def scenario(store: RedisSessionStore) -> list[Any]:
        await store.put(session)
        await store.put(login_session("2", token_hash="hash-of-2"))
        used = await store.use_token("hash-1", time.time(), "session.list")
        return [
            used,
            await store.use_token("hash-unknown", time.time(), "session.list"),
            await store.get("1", time.time()),
        ]

    used, unknown, stored = run(scenario, url)
    assert used is not None and used.id == "1" and used.record.user == "alice"
    assert used.requests == 2 and used.record.last_command == "session.list"
    assert used.last_access > session.last_access
    assert used.upstream_secrets == {"token": "up-1"}
    assert unknown is None
    assert stored is not None and stored.requests == 2  # the use was recorded
    assert raw(url).pttl("rosetta:s:1") > 90_000 and raw(url).pttl("rosetta:t:hash-1") > 90_000


def test_a_token_of_a_revoked_or_expired_session_is_refused(url: str) -> None:
    async def scenario(store: RedisSessionStore) -> list[Any]:
        await store.put(login_session("1"))
        await store.put(login_session("2", idle=0.3))
        await store.delete(["1"])
        late = time.time() + 1.0
        return [
            await store.use_token("hash-1", time.time(), "session.ping"),
            await store.use_token("hash-2", late, "session.ping"),
        ]

    assert run(scenario, url) == [None, None]
    assert raw(url).exists("rosetta:s:2", "rosetta:t:hash-2") == 0  # dropped on the late use


def test_a_token_key_pointing_at_another_session_is_refused(url: str) -> None:
    """The token key and the session's own token hash must agree (as ``by_token`` checks)."""

    async def scenario(store: RedisSessionStore) -> list[Any]:
        await store.put(login_session("1"))
        raw(url).set("rosetta:t:forged", "1")
        return [
            await store.use_token("forged", time.time(), "session.ping"),
            await store.by_token("forged", time.time()),
        ]

    assert run(scenario, url) == [None, None]


def test_concurrent_touches_from_two_clients_all_count(url: str) -> None:
    touches = 200

    async def scenario(store: RedisSessionStore) -> int:
        other = RedisSessionStore(url, SecretBox(KEY))
        try:
            await store.put(login_session("1"))
            await asyncio.gather(
                *(
                    (store if i % 2 else other).touch("1", time.time(), "session.ping")
                    for i in range(touches)
                )
            )
            final = await other.get("1", time.time())
            assert final is not None
            return final.requests
        finally:
            await other.close()

    assert run(scenario, url) == 1 + touches


def test_delete_revokes_at_once_and_nothing_resurrects(url: str) -> None:
    async def scenario(store: RedisSessionStore) -> list[Any]:
        await store.put(login_session("1", upstream_secrets={"password": "pw"}))
        removed = await store.delete(["1", "404"])
        return [
            removed,
            await store.by_token("hash-1", time.time()),
            await store.touch("1", time.time(), "session.ping"),
            await store.update(login_session("1")),
            await store.set_upstream_secret("1", "state:token", "t"),
            await store.live(time.time()),
        ]

    assert run(scenario, url) == [["1"], None, None, False, False, []]
    assert raw(url).keys("rosetta:s:*") == [] and raw(url).keys("rosetta:t:*") == []


def test_expiry_is_redis_ttl_and_touch_does_not_revive(url: str) -> None:
    async def scenario(store: RedisSessionStore) -> list[Any]:
        session = login_session("1", idle=0.3)
        await store.put(session)
        await asyncio.sleep(0.1)
        # a touch that arrives after the deadline finds nothing, even if the key lingers
        late = await store.touch("1", session.last_access + 1.0, "session.ping")
        return [late, await store.get("1", time.time())]

    assert run(scenario, url) == [None, None]
    assert raw(url).exists("rosetta:s:1", "rosetta:t:hash-1") == 0


def test_listing_prunes_members_whose_session_expired(url: str) -> None:
    async def scenario(store: RedisSessionStore) -> list[str]:
        await store.put(login_session("1"))
        await store.put(login_session("2", idle=0.2))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # Redis's own TTL removes the key
            if not raw(url).exists("rosetta:s:2"):
                break
            await asyncio.sleep(0.05)
        return [s.id for s in await store.live(time.time())]

    assert run(scenario, url) == ["1"]
    assert raw(url).zrange("rosetta:index", 0, -1) == [b"1"]


def test_listing_reads_every_page_when_members_are_pruned_on_the_way(url: str) -> None:
    """More sessions than one listing call reads, with expired ones in every page: pruning a
    page must not make the next page skip live sessions."""
    total = 2 * LIST_PAGE + 37
    gone = {str(i) for i in range(1, total + 1) if i % 7 == 0}

    async def scenario(store: RedisSessionStore) -> list[str]:
        for i in range(1, total + 1):
            await store.put(login_session(str(i)))
        raw(url).delete(*(f"rosetta:s:{i}" for i in gone))  # as if Redis had expired them
        return [s.id for s in await store.live(time.time())]

    expected = [str(i) for i in range(1, total + 1) if str(i) not in gone]
    assert run(scenario, url) == expected
    assert len(raw(url).zrange("rosetta:index", 0, -1)) == len(expected)


def test_a_list_sees_every_change_another_replica_made_since_the_last_list(url: str) -> None:
    """The store reuses what it decoded for the last list, but only for sessions whose stored
    fields have not changed: a list always shows what Redis holds now."""

    async def scenario(store: RedisSessionStore) -> list[list[tuple[str, str, int]]]:
        other = RedisSessionStore(url, SecretBox(KEY))

        async def listed() -> list[tuple[str, str, int]]:
            return [(s.id, s.record.description, s.requests) for s in await store.live(time.time())]

        try:
            for session_id in ("1", "2", "3"):
                await store.put(login_session(session_id))
            seen = [await listed(), await listed()]  # the second list reuses the first's
            renamed = await other.get("2", time.time())
            assert renamed is not None
            renamed.record.description = "renamed elsewhere"
            assert await other.update(renamed)
            await other.touch("3", time.time(), "session.ping")
            await other.delete(["1"])
            await other.put(login_session("4"))
            seen.append(await listed())
            return seen
        finally:
            await other.close()

    first, again, after = run(scenario, url)
    assert first == again == [("1", "", 1), ("2", "", 1), ("3", "", 1)]
    assert after == [("2", "renamed elsewhere", 1), ("3", "", 2), ("4", "", 1)]


def test_a_listed_session_past_its_idle_time_is_not_listed_again(url: str) -> None:
    async def scenario(store: RedisSessionStore) -> list[list[str]]:
        await store.put(login_session("1", idle=600))
        await store.put(login_session("2", idle=30))
        now = time.time()
        # the same stored fields both times; the second list is 60 s later
        return [[s.id for s in await store.live(when)] for when in (now, now + 60)]

    assert run(scenario, url) == [["1", "2"], ["1"]]


def test_update_keeps_concurrent_counts_and_lifecycle(url: str) -> None:
    async def scenario(store: RedisSessionStore) -> StoredSession | None:
        await store.put(login_session("1"))
        stale = await store.get("1", time.time())
        assert stale is not None
        await store.touch("1", time.time(), "session.ping")
        stale.record.description = "renamed"
        stale.idle_timeout = 500
        assert await store.update(stale)
        return await store.get("1", time.time())

    updated = run(scenario, url)
    assert updated is not None
    assert updated.record.description == "renamed" and updated.idle_timeout == 500
    assert updated.requests == 2  # the touch between read and update is not lost
    assert raw(url).pttl("rosetta:s:1") > 400_000


def test_upstream_secrets_are_encrypted_at_rest(url: str) -> None:
    secrets = {"user": "bob", "password": "plain-password-6d1f", "token": "upstream-token-77aa"}

    async def scenario(store: RedisSessionStore) -> StoredSession | None:
        await store.put(login_session("1", upstream_secrets=dict(secrets)))
        await store.set_upstream_secret("1", "state:cookie", "cookie-value-3c9e")
        return await store.get("1", time.time())

    got = run(scenario, url)
    assert got is not None
    assert got.upstream_secrets == {**secrets, "state:cookie": "cookie-value-3c9e"}
    dump = dump_redis(url)
    for plain in [*secrets.values(), "cookie-value-3c9e"]:
        if plain != "bob":
            assert plain.encode() not in dump
    # under another key the secrets are unreadable, so they are dropped, not garbled
    other = run(lambda store: store.get("1", time.time()), url, key=b"rotated-key")
    assert other is not None and other.upstream_secrets == {}


class CountingBox(SecretBox):
    """A ``SecretBox`` that counts how many sealed values it opened."""

    opened = 0

    def open(self, sealed: bytes) -> Any:
        CountingBox.opened += 1
        return super().open(sealed)


def test_a_list_neither_reads_nor_decrypts_upstream_secrets(url: str) -> None:
    """Listing every session must not open every session's upstream credentials: the list
    has the sessions without them, and the session itself still has them."""
    secrets = {"user": "bob", "password": "plain-password-6d1f"}

    async def scenario() -> tuple[list[StoredSession], int, StoredSession | None, int]:
        store = RedisSessionStore(url, CountingBox(KEY))
        try:
            await store.put(login_session("1", upstream_secrets=dict(secrets)))
            await store.put(login_session("2"))
            await store.set_upstream_secret("2", "state:cookie", "cookie-value-3c9e")
            CountingBox.opened = 0
            listed = await store.live(time.time())
            opened_by_list = CountingBox.opened
            return listed, opened_by_list, await store.get("1", time.time()), CountingBox.opened
        finally:
            await store.close()

    listed, opened_by_list, got, opened_in_all = asyncio.run(scenario())
    assert [(s.id, s.record.user, s.upstream_secrets) for s in listed] == [
        ("1", "alice", {}),
        ("2", "alice", {}),
    ]
    assert opened_by_list == 0
    assert got is not None and got.upstream_secrets == secrets and opened_in_all == 2


def test_a_redis_that_never_answers_is_upstream_unavailable_within_the_timeout() -> None:
    """A server that accepts connections and reads commands but never answers (a stalled
    Redis): every call gives up after the store's timeout, as upstream_unavailable."""
    with FaultyUpstream("hang", hang_seconds=30) as stalled:

        async def main() -> list[tuple[ErrorKind, str, float]]:
            url = stalled.url.replace("http://", "redis://") + "/0"
            store = RedisSessionStore(url, SecretBox(KEY), timeout=0.3)
            outcomes = []
            try:
                for call in (
                    lambda: store.use_token("h", time.time(), "x"),
                    lambda: store.live(time.time()),
                    lambda: store.get("1", time.time()),
                ):
                    started = time.monotonic()
                    with pytest.raises(RosettaError) as caught:
                        await call()
                    waited = time.monotonic() - started
                    outcomes.append((caught.value.kind, caught.value.message, waited))
            finally:
                await store.close()
            return outcomes

        for kind, message, waited in asyncio.run(main()):
            assert (kind, message) == (ErrorKind.UPSTREAM_UNAVAILABLE, "session store unavailable")
            assert waited < 5  # the timeout, not the server's 30 s


def test_an_unreachable_redis_is_upstream_unavailable() -> None:
    store_url = f"redis://127.0.0.1:{free_port()}/0"

    async def scenario(store: RedisSessionStore) -> None:
        for call in (
            store.ping(),
            store.get("1", time.time()),
            store.touch("1", time.time(), "x"),
            store.next_id(),
        ):
            with pytest.raises(RosettaError) as caught:
                await call
            assert caught.value.kind is ErrorKind.UPSTREAM_UNAVAILABLE
            assert caught.value.message == "session store unavailable"

    run(scenario, store_url)


def test_dump_helper_sees_every_value(url: str) -> None:
    client = raw(url)
    client.set("a", "one")
    client.hset("b", "f", "two")
    client.zadd("c", {"three": 1})
    dump = dump_redis(url)
    assert all(word in dump for word in (b"one", b"two", b"three", b"f"))
