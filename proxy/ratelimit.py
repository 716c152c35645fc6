"""Per-caller rate limiting (``rate_limit:`` in the config), a token bucket per caller:
``requests_per_second`` refill, ``burst`` capacity. Built only when enabled; it wraps each
inbound dialect's handler, so it runs after decoding (the caller is known) and before
authentication and the backend (a flood never reaches password hashing or the upstream).

The caller's key (``key: caller``, the default) is the identity the request claims:

    user + password        user:<name>
    bearer / session token token:<sha256 of the token, 32 hex digits>   (never the token)
    access-key signature   key:<access key id>
    anonymous              ip:<client IP>

``key: ip`` always uses the client IP. The client IP is the peer uvicorn reports; behind a
load balancer, set ``FORWARDED_ALLOW_IPS`` to its address so ``X-Forwarded-For`` is used.

Stores:

``memory``: buckets in this process (per worker with ``--workers > 1``), at most
``MAX_KEYS`` callers, least recently seen dropped first.

``sessions``: one Lua script on the Redis server of ``sessions.store`` (keys
``<sessions.key_prefix>rl:<caller key>``, a hash with ``tokens`` and ``ts``, expiring once the
bucket would be full again). The script reads the clock with Redis ``TIME`` and refills,
takes and writes in one atomic step, so replicas share one limit with no read-modify-write
race and no dependence on their own clocks.

When Redis fails (refused, reset, time-out after ``timeout_seconds``), the request is
*allowed* (fail open) and a warning is logged, at most once per ``WARN_EVERY`` seconds; Redis
is then left alone for ``RETRY_AFTER_FAILURE`` seconds so an outage does not add a time-out
to every request.

A refused request gets ``overloaded`` in the caller's envelope, with
``error.context["retry_after"]`` (whole seconds until a token is back); the gateway turns it
into a ``Retry-After`` header when the dialect answers with HTTP 429.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

import structlog

from proxy.settings import ConfigError, RateLimitSettings, SessionSettings
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    Handler,
    PrincipalKind,
    RosettaError,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

_log = structlog.get_logger("rosetta.ratelimit")
MAX_KEYS = 100_000
WARN_EVERY = 10.0
RETRY_AFTER_FAILURE = 1.0

# KEYS: the bucket. ARGV: rate (tokens/s), burst. Returns {allowed (0/1), seconds to wait}.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local held = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(held[1])
local ts = tonumber(held[2])
if tokens == nil or ts == nil then
  tokens = burst
elseif now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
end
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts',
  string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.6f', wait)}
"""


class Buckets(Protocol):
    async def take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is back."""
        ...

    async def close(self) -> None: ...


class MemoryBuckets:
    """Token buckets in this process."""

    def __init__(self, rate: float, burst: int, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, key: str) -> float:
        now = time.monotonic()
        held = self._buckets.get(key)
        if held is None:
            tokens = self.burst
        else:
            tokens = min(self.burst, held[0] + (now - held[1]) * self.rate)
            self._buckets.move_to_end(key)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    async def close(self) -> None:
        self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)


class RedisBuckets:
    """Token buckets in Redis, shared by every replica using the same server and prefix."""

    def __init__(
        self,
        url: str,
        rate: float,
        burst: int,
        *,
        prefix: str,
        timeout: float,
        client: aioredis.Redis | None = None,
    ) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._redis: aioredis.Redis = client or aioredis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # a failure fails open at once: no retries
        )
        self._script = self._redis.register_script(_TAKE)
        self._args = [repr(float(rate)), str(burst)]
        self._prefix = prefix
        self._skip_until = 0.0
        self._warned_at = -math.inf

    async def take(self, key: str) -> float:
        from redis.exceptions import RedisError

        now = time.monotonic()
        if now < self._skip_until:
            return 0.0
        try:
            allowed, wait = await self._script(keys=[self._prefix + key], args=self._args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._skip_until = now + RETRY_AFTER_FAILURE
            if now - self._warned_at >= WARN_EVERY:
                self._warned_at = now
                # the exception's text may hold the URL; only its type is logged
                _log.warning(
                    "rate_limit_store_unavailable", error=type(exc).__name__, action="allowing"
                )
            return 0.0
        return 0.0 if int(allowed) else max(float(wait), 1e-6)

    async def close(self) -> None:
        await self._redis.aclose()


def caller_key(request: CanonicalRequest, by_ip: bool = False) -> str:
    """The bucket a request counts against (see the module docstring); no secret in it."""
    principal = request.principal
    if not by_ip:
        kind = principal.kind
        if kind is PrincipalKind.PASSWORD and principal.user:
            return "user:" + principal.user
        if kind in (PrincipalKind.BEARER, PrincipalKind.SESSION) and principal.token:
            digest = hashlib.sha256(principal.token.encode("utf-8")).hexdigest()
            return "token:" + digest[:32]
        if kind is PrincipalKind.SIGNATURE and principal.signature is not None:
            return "key:" + principal.signature.access_key
    address = request.client_address
    host, colon, port = address.rpartition(":")
    return "ip:" + (host.strip("[]") if colon and port.isdigit() else address)


class RateLimit:
    """The configured limit: ``stage`` wraps a handler so that over-limit callers get
    ``overloaded`` without reaching it."""

    def __init__(self, settings: RateLimitSettings, buckets: Buckets) -> None:
        self.settings = settings
        self.rate = settings.requests_per_second
        self.burst = burst_of(settings)
        self.buckets = buckets
        self.by_ip = settings.key == "ip"

    def stage(self, inner: Handler) -> Handler:
        buckets, by_ip = self.buckets, self.by_ip

        async def limited(request: CanonicalRequest) -> CanonicalResponse:
            wait = await buckets.take(caller_key(request, by_ip))
            if wait:
                return CanonicalResponse(
                    request.operation, request.request_id, error=self.refusal(request, wait)
                )
            return await inner(request)

        return limited

    def refusal(self, request: CanonicalRequest, wait: float) -> RosettaError:
        retry_after = max(1, math.ceil(wait))
        return RosettaError(
            ErrorKind.OVERLOADED,
            f"rate limit exceeded ({self.rate:g} requests per second, burst {self.burst}); "
            f"retry in {retry_after}s",
            request_id=request.request_id,
            context={"retry_after": retry_after},
        )

    async def close(self) -> None:
        await self.buckets.close()


def burst_of(settings: RateLimitSettings) -> int:
    return settings.burst or max(1, math.ceil(settings.requests_per_second))


def build_rate_limit(settings: RateLimitSettings, sessions: SessionSettings) -> RateLimit:
    """The limiter for ``settings`` (enabled); no I/O here."""
    burst = burst_of(settings)
    if settings.store == "memory":
        return RateLimit(settings, MemoryBuckets(settings.requests_per_second, burst))
    if not sessions.store.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            "rate_limit.store: 'sessions' shares the Redis of sessions.store, "
            "which is 'memory'; set sessions.store to a redis:// URL or use store: memory"
        )
    try:
        buckets = RedisBuckets(
            sessions.store,
            settings.requests_per_second,
            burst,
            prefix=sessions.key_prefix + "rl:",
            timeout=settings.timeout_seconds,
        )
    except ImportError:  # pragma: no cover - redis is in the test extra
        raise ConfigError(
            "rate_limit.store: the sessions store needs the 'redis' package "
            "(pip install 'rosetta-proxy[redis]')"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"sessions.store: {exc}") from None
    return RateLimit(settings, buckets)
