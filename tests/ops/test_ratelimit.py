"""Per-caller rate limiting with the in-process (memory) store, over real HTTP against a real
server: every dialect answers an over-limit caller in its own envelope (HTTP 429 with
``Retry-After`` where the dialect uses statuses, in-band otherwise), callers are kept apart
by identity or, when anonymous, by client IP, and the caller key never holds a secret."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from proxy import ratelimit
from proxy.ratelimit import MemoryBuckets, caller_key
from tests.conftest import STATIC_TOKEN, USER_PASSWORD, base_config
from tests.support.servers import ServerProcess, serve
from translators.contract import CanonicalRequest, Operation, Principal, PrincipalKind, Signature

DIALECTS = ("rosetta", "faircom", "blobcity", "maxscale", "geminidb", "jump")
# one token per ~17 minutes: a bucket of 2 never refills during a test
LIMIT = {"enabled": True, "requests_per_second": 0.001, "burst": 2}


def password(dialect: str) -> str:
    return f"pw-{dialect}-5c1e"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = base_config(rate_limit=LIMIT)
    config["users"] += [
        {"name": f"u-{d}", "password": password(d), "role": "admin"} for d in DIALECTS
    ]
    server = serve(tmp_path_factory.mktemp("ratelimit"), config)
    yield server
    server.stop()


def dialect_request(url: str, dialect: str) -> Callable[[], httpx.Response]:
    """A request of ``dialect`` with its own user's credentials (its own bucket)."""
    user, secret = f"u-{dialect}", password(dialect)
    requests: dict[str, Callable[[], httpx.Response]] = {
        "rosetta": lambda: httpx.post(
            f"{url}/rosetta/v1/session.list",
            json={"request_id": 7, "credentials": {"user": user, "password": secret}},
        ),
        "faircom": lambda: httpx.post(
            f"{url}/api",
            json={
                "api": "admin",
                "action": "createSession",
                "requestId": 9,
                "params": {"username": user, "password": secret},
            },
        ),
        "blobcity": lambda: httpx.post(
            f"{url}/rest/bquery",
            json={"username": user, "password": secret, "q": "list-sessions", "p": {}},
        ),
        "maxscale": lambda: httpx.get(f"{url}/v1/sessions", auth=(user, secret)),
        # GeminiDB callers present a token: the bucket is keyed by its hash
        "geminidb": lambda: httpx.get(
            f"{url}/v3/proj/instances/inst/sessions", headers={"X-Auth-Token": STATIC_TOKEN}
        ),
        "jump": lambda: httpx.post(
            f"{url}/presto/edge/api",
            json={
                "version": "1.1",
                "sid": "UserManagerService",
                "svcVersion": "0.1",
                "oid": "login",
                "params": [user, secret],
            },
        ),
    }
    return requests[dialect]


def assert_refused(dialect: str, reply: httpx.Response) -> None:
    body: dict[str, Any] = reply.json()
    if dialect == "rosetta":
        assert reply.status_code == 429
        assert body["error"]["kind"] == "overloaded" and body["request_id"] == 7
    elif dialect == "faircom":
        assert reply.status_code == 200
        assert body["errorCode"] == 12110 and body["requestId"] == 9
        assert "rate limit" in body["errorMessage"]
    elif dialect == "blobcity":
        assert reply.status_code == 200
        assert body["ack"] == "0" and body["code"] == "TOO_MANY_REQUESTS"
    elif dialect == "maxscale":
        assert reply.status_code == 429
        assert "rate limit" in body["errors"][0]["detail"]
    elif dialect == "geminidb":
        assert reply.status_code == 429
        assert body["error_code"] == "APIGW.0308"
        assert body["request_id"] == reply.headers["x-request-id"]
    else:
        assert dialect == "jump"
        assert reply.status_code == 200
        assert body["errorCode"] == "RSJE0429" and body["oid"] == "login"
        assert body["error"].startswith("Failed to handle given request. Error = rate limit")
    if reply.status_code == 429:
        assert int(reply.headers["retry-after"]) >= 1
    else:  # in-band dialects: no HTTP-level signal
        assert "retry-after" not in reply.headers


@pytest.mark.parametrize("dialect", DIALECTS)
def test_over_the_limit_answers_in_the_callers_envelope(
    limited: ServerProcess, dialect: str
) -> None:
    send = dialect_request(limited.url, dialect)
    for _ in range(LIMIT["burst"]):
        allowed = send()
        assert allowed.status_code == 200 and "retry-after" not in allowed.headers
        assert "rate limit" not in allowed.text
    assert_refused(dialect, send())
    assert_refused(dialect, send())  # still refused: refusals do not refill
    assert '"outcome":"overloaded"' in limited.logs()


def test_anonymous_callers_are_kept_apart_by_client_ip(limited: ServerProcess) -> None:
    # uvicorn takes the client address from X-Forwarded-For sent by a trusted proxy
    # (127.0.0.1 by default; FORWARDED_ALLOW_IPS in production)
    def ping(ip: str) -> httpx.Response:
        return httpx.post(
            f"{limited.url}/rosetta/v1/session.ping", json={}, headers={"x-forwarded-for": ip}
        )

    assert [ping("10.1.0.1").status_code for _ in range(3)] == [200, 200, 429]
    assert ping("10.1.0.2").status_code == 200
    assert ping("10.1.0.1").status_code == 429


def test_one_user_over_the_limit_does_not_limit_another(limited: ServerProcess) -> None:
    def listing(user: str, secret: str) -> int:
        return httpx.post(
            f"{limited.url}/rosetta/v1/session.list", json={}, auth=(user, secret)
        ).status_code

    assert [listing("alice", USER_PASSWORD) for _ in range(3)] == [200, 200, 429]
    assert listing("someone-else", "x") == 401  # another user: its own bucket
    # the bucket is the claimed identity, checked before authentication: a wrong password
    # for alice is refused by the limit, not by a password check
    assert listing("alice", "wrong") == 429


def test_probes_and_metrics_are_not_limited(limited: ServerProcess) -> None:
    for _ in range(5):
        assert httpx.get(f"{limited.url}/healthz").status_code == 200
        assert httpx.get(f"{limited.url}/metrics").status_code == 200


# caller keys and buckets, in-process ---------------------------------------------------------
def request_with(principal: Principal, address: str = "192.0.2.7:5123") -> CanonicalRequest:
    return CanonicalRequest(Operation.LIST, "rosetta", principal=principal, client_address=address)


def test_caller_keys_name_the_identity_and_never_a_secret() -> None:
    token = "session-token-that-must-not-leak"
    keyed = caller_key(request_with(Principal(PrincipalKind.SESSION, token=token)))
    assert keyed == "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    assert token not in keyed
    bearer = caller_key(request_with(Principal(PrincipalKind.BEARER, token=token)))
    assert bearer == keyed
    user = Principal(PrincipalKind.PASSWORD, user="alice", password="hunter2")
    assert caller_key(request_with(user)) == "user:alice"
    signature = Signature("SDK-HMAC-SHA256", "AKID1", "sig", "sts", datetime.now(UTC))
    assert caller_key(request_with(Principal(PrincipalKind.SIGNATURE, signature=signature))) == (
        "key:AKID1"
    )
    assert caller_key(request_with(Principal())) == "ip:192.0.2.7"
    assert caller_key(request_with(Principal(), "[2001:db8::1]:443")) == "ip:2001:db8::1"
    assert caller_key(request_with(user), by_ip=True) == "ip:192.0.2.7"


@pytest.mark.anyio
async def test_memory_bucket_refills_at_the_configured_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    buckets = MemoryBuckets(rate=2.0, burst=3)
    assert [await buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await buckets.take("a") == pytest.approx(0.5)  # empty: half a second per token
    assert await buckets.take("b") == 0.0  # another caller, a full bucket
    now[0] += 0.5
    assert await buckets.take("a") == 0.0  # one token back
    assert await buckets.take("a") == pytest.approx(0.5)
    now[0] += 60
    assert [await buckets.take("a") for _ in range(4)][-1] > 0  # capped at the burst


@pytest.mark.anyio
async def test_memory_buckets_stay_bounded() -> None:
    buckets = MemoryBuckets(rate=1.0, burst=1, max_keys=100)
    for i in range(1000):
        await buckets.take(f"ip:10.0.{i // 256}.{i % 256}")
    assert len(buckets) == 100
