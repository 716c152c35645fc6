"""The Redis session store, shared by any number of Rosetta replicas (``sessions.store:
redis://host:port/db``), on the maintained ``redis`` client's asyncio API.

Keys (``rosetta:`` prefix)::

    rosetta:ids            INCR counter of session ids
    rosetta:s:<id>         hash: one session (fields below); Redis TTL = time to expiry
    rosetta:t:<tokenhash>  string: the session id a keyed token hash belongs to; same TTL
    rosetta:index          sorted set of session ids, for listing (missing members pruned)

Session hash fields: ``doc`` (orjson: the record as ``codec.session_to_json`` plus role and
created_at), ``token_hash``, ``idle``, ``deadline``, ``last_access``, ``requests``,
``last_command``, and ``x:<name>`` per upstream secret (Fernet-encrypted, see ``crypto``).
No token is ever stored, only its HMAC under the session secret; no password, upstream token
or cookie is stored unencrypted.

Concurrency: every write that depends on what is stored (touch, update, secrets, delete, put)
is one Lua script, so it is atomic across replicas: two replicas touching one session at once
both count, a touch never resurrects a deleted or expired session (it checks and acts in the
same step), and delete removes the session and its token key in one step, so a kill on one
replica is seen by every replica on its next request. Expiry is Redis's own TTL, set with
PEXPIREAT to ``min(last_access + idle, absolute deadline)`` on every write.

Failures: any Redis error (refused, reset, time-out, loading) becomes
``RosettaError(upstream_unavailable, "session store unavailable")``; the connection pool
drops broken connections and reconnects on the next call, with one immediate retry so the
first request after Redis comes back does not fail on a stale pooled connection.
Not for Redis Cluster: the scripts derive the token key from the session hash.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from proxy.sessions.crypto import SecretBox
from proxy.sessions.store import StoredSession
from translators.codec import session_from_json, session_to_json
from translators.contract import ErrorKind, RosettaError

_log = structlog.get_logger("rosetta.sessions")
SECRET_PREFIX = "x:"
UNAVAILABLE = "session store unavailable"

# Shared Lua: expiry of a session hash given a last-access time (nil = never expires).
_EXPIRY = """
local function expiry(h, at)
  local vals = redis.call('HMGET', h, 'idle', 'deadline', 'token_hash')
  local idle = tonumber(vals[1]) or 0
  local deadline = tonumber(vals[2])
  local e = nil
  if vals[3] and vals[3] ~= '' and idle > 0 then e = at + idle end
  if deadline and (e == nil or deadline < e) then e = deadline end
  return e, vals[3]
end
local function set_expiry(h, tprefix, e, th)
  if e then
    local ms = math.floor(e * 1000)
    redis.call('PEXPIREAT', h, ms)
    if th and th ~= '' then redis.call('PEXPIREAT', tprefix .. th, ms) end
  else
    redis.call('PERSIST', h)
    if th and th ~= '' then redis.call('PERSIST', tprefix .. th) end
  end
end
local function drop(h, tprefix, index, id)
  local th = redis.call('HGET', h, 'token_hash')
  local existed = redis.call('DEL', h)
  if th and th ~= '' then redis.call('DEL', tprefix .. th) end
  redis.call('ZREM', index, id)
  return existed
end
"""

# KEYS: session hash. ARGV: now, command, token prefix, index, id.
_TOUCH = (
    _EXPIRY
    + """
local h = KEYS[1]
local last = tonumber(redis.call('HGET', h, 'last_access'))
if not last then return false end
local now = tonumber(ARGV[1])
local old = expiry(h, last)
if old and now >= old then
  drop(h, ARGV[3], ARGV[4], ARGV[5])
  return false
end
if now > last then
  redis.call('HSET', h, 'last_access', ARGV[1])
  last = now
end
redis.call('HINCRBY', h, 'requests', 1)
redis.call('HSET', h, 'last_command', ARGV[2])
local e, th = expiry(h, last)
set_expiry(h, ARGV[3], e, th)
return redis.call('HGETALL', h)
"""
)

# KEYS: session hash. ARGV: token prefix, index, id, score, now, then field/value pairs.
_PUT = (
    _EXPIRY
    + """
local h = KEYS[1]
drop(h, ARGV[1], ARGV[2], ARGV[3])
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', h, unpack(fields))
local th = redis.call('HGET', h, 'token_hash')
if th and th ~= '' then redis.call('SET', ARGV[1] .. th, ARGV[3]) end
redis.call('ZADD', ARGV[2], tonumber(ARGV[4]), ARGV[3])
local e = expiry(h, tonumber(redis.call('HGET', h, 'last_access')))
if e and tonumber(ARGV[5]) >= e then
  drop(h, ARGV[1], ARGV[2], ARGV[3])
  return 0
end
set_expiry(h, ARGV[1], e, th)
return 1
"""
)

# KEYS: session hash. ARGV: token prefix, now, doc, idle, deadline.
_UPDATE = (
    _EXPIRY
    + """
local h = KEYS[1]
local last = tonumber(redis.call('HGET', h, 'last_access'))
if not last then return 0 end
redis.call('HSET', h, 'doc', ARGV[3], 'idle', ARGV[4], 'deadline', ARGV[5])
local e, th = expiry(h, last)
set_expiry(h, ARGV[1], e, th)
return 1
"""
)

# KEYS: session hash. ARGV: field, value ('' with ARGV[3] == 'del' drops it), mode.
_SECRET = """
local h = KEYS[1]
if redis.call('EXISTS', h) == 0 then return 0 end
if ARGV[3] == 'del' then
  redis.call('HDEL', h, ARGV[1])
else
  redis.call('HSET', h, ARGV[1], ARGV[2])
end
return 1
"""

# KEYS: session hashes. ARGV: token prefix, index, then the ids in KEYS order.
_DELETE = (
    _EXPIRY
    + """
local removed = {}
for i, h in ipairs(KEYS) do
  if drop(h, ARGV[1], ARGV[2], ARGV[2 + i]) == 1 then removed[#removed + 1] = ARGV[2 + i] end
end
return removed
"""
)


def _unavailable(exc: BaseException, operation: str) -> RosettaError:
    # the exception's text may hold the URL; only its type is logged
    _log.warning("session_store_unavailable", operation=operation, error=type(exc).__name__)
    return RosettaError(ErrorKind.UPSTREAM_UNAVAILABLE, UNAVAILABLE)


def _fmt(value: float) -> str:
    return repr(float(value))


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8") if isinstance(value, bytes) else value


class RedisSessionStore:
    """``SessionStore`` over Redis; see the module docstring for the layout and guarantees."""

    def __init__(
        self,
        url: str,
        box: SecretBox,
        *,
        prefix: str = "rosetta:",
        timeout: float = 2.0,
        client: aioredis.Redis | None = None,
    ) -> None:
        self._redis: aioredis.Redis = client or aioredis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=15,
        )
        self._box = box
        self._prefix = prefix
        self._ids = prefix + "ids"
        self._index = prefix + "index"
        self._tokens = prefix + "t:"
        self._touch = self._redis.register_script(_TOUCH)
        self._put = self._redis.register_script(_PUT)
        self._update = self._redis.register_script(_UPDATE)
        self._secret = self._redis.register_script(_SECRET)
        self._delete = self._redis.register_script(_DELETE)

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}s:{session_id}"

    # SessionStore -------------------------------------------------------------------------
    async def next_id(self) -> str:
        try:
            while True:
                candidate = str(await self._redis.incr(self._ids))
                # preloaded sessions may already hold low ids
                if not await self._redis.exists(self._key(candidate)):
                    return candidate
        except RedisError as exc:
            raise _unavailable(exc, "next_id") from None

    async def put(self, session: StoredSession) -> None:
        fields: list[str | bytes] = [
            "doc",
            self._doc(session),
            "token_hash",
            session.token_hash or "",
            "idle",
            _fmt(session.idle_timeout),
            "deadline",
            "" if session.absolute_deadline is None else _fmt(session.absolute_deadline),
            "last_access",
            _fmt(session.last_access),
            "requests",
            str(session.requests),
            "last_command",
            session.record.last_command,
        ]
        for name, value in session.upstream_secrets.items():
            fields += [SECRET_PREFIX + name, self._box.seal(value)]
        score = int(session.id) if session.id.isdigit() else 0
        try:
            await self._put(
                keys=[self._key(session.id)],
                args=[self._tokens, self._index, session.id, score, _fmt(time.time()), *fields],
            )
        except RedisError as exc:
            raise _unavailable(exc, "put") from None

    async def get(self, session_id: str, now: float) -> StoredSession | None:
        try:
            raw = await self._redis.hgetall(self._key(session_id))
        except RedisError as exc:
            raise _unavailable(exc, "get") from None
        return self._live(self._load(session_id, raw), now)

    async def by_token(self, token_hash: str, now: float) -> StoredSession | None:
        try:
            found = await self._redis.get(self._tokens + token_hash)
            if found is None:
                return None
            session_id = _text(found)
            raw = await self._redis.hgetall(self._key(session_id))
        except RedisError as exc:
            raise _unavailable(exc, "by_token") from None
        session = self._live(self._load(session_id, raw), now)
        if session is None or session.token_hash != token_hash:
            return None
        return session

    async def touch(self, session_id: str, now: float, command: str) -> StoredSession | None:
        try:
            reply = await self._touch(
                keys=[self._key(session_id)],
                args=[_fmt(now), command, self._tokens, self._index, session_id],
            )
        except RedisError as exc:
            raise _unavailable(exc, "touch") from None
        if not reply:
            return None
        pairs = dict(zip(reply[::2], reply[1::2], strict=True))
        return self._load(session_id, pairs)

    async def update(self, session: StoredSession) -> bool:
        try:
            done = await self._update(
                keys=[self._key(session.id)],
                args=[
                    self._tokens,
                    _fmt(time.time()),
                    self._doc(session),
                    _fmt(session.idle_timeout),
                    "" if session.absolute_deadline is None else _fmt(session.absolute_deadline),
                ],
            )
        except RedisError as exc:
            raise _unavailable(exc, "update") from None
        return bool(done)

    async def set_upstream_secret(self, session_id: str, name: str, value: Any) -> bool:
        sealed: bytes | str = "" if value is None else self._box.seal(value)
        try:
            done = await self._secret(
                keys=[self._key(session_id)],
                args=[SECRET_PREFIX + name, sealed, "del" if value is None else "set"],
            )
        except RedisError as exc:
            raise _unavailable(exc, "set_upstream_secret") from None
        return bool(done)

    async def live(self, now: float) -> list[StoredSession]:
        try:
            members: list[Any] = await self._redis.zrange(self._index, 0, -1)
            ids = [_text(i) for i in members]
            if not ids:
                return []
            async with self._redis.pipeline(transaction=False) as pipe:
                for session_id in ids:
                    pipe.hgetall(self._key(session_id))
                rows = await pipe.execute()
            gone = [i for i, raw in zip(ids, rows, strict=True) if not raw]
            if gone:
                await self._redis.zrem(self._index, *gone)
        except RedisError as exc:
            raise _unavailable(exc, "live") from None
        sessions = []
        for session_id, raw in zip(ids, rows, strict=True):
            session = self._live(self._load(session_id, raw), now)
            if session is not None:
                sessions.append(session)
        return sorted(sessions, key=lambda s: (len(s.id), s.id))

    async def delete(self, session_ids: list[str]) -> list[str]:
        if not session_ids:
            return []
        try:
            removed = await self._delete(
                keys=[self._key(i) for i in session_ids],
                args=[self._tokens, self._index, *session_ids],
            )
        except RedisError as exc:
            raise _unavailable(exc, "delete") from None
        return [_text(i) for i in removed]

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise _unavailable(exc, "ping") from None

    async def close(self) -> None:
        with contextlib.suppress(RedisError):  # closing a pool whose server is gone
            await self._redis.aclose()

    # encoding -----------------------------------------------------------------------------
    def _doc(self, session: StoredSession) -> bytes:
        return orjson.dumps(
            {
                "record": session_to_json(session.record),
                "role": session.role,
                "created_at": session.created_at,
            }
        )

    def _load(self, session_id: str, raw: dict[Any, Any]) -> StoredSession | None:
        if not raw or b"doc" not in raw:
            return None
        try:
            doc = orjson.loads(raw[b"doc"])
            record = session_from_json(doc["record"])
            deadline = _text(raw.get(b"deadline"))
            secrets: dict[str, Any] = {}
            for field, sealed in raw.items():
                name = _text(field)
                if name.startswith(SECRET_PREFIX):
                    value = self._box.open(sealed)
                    if value is not None:
                        secrets[name[len(SECRET_PREFIX) :]] = value
            record.last_command = _text(raw.get(b"last_command")) or record.last_command
            return StoredSession(
                record=record,
                token_hash=_text(raw.get(b"token_hash")) or None,
                role=str(doc.get("role", "user")),
                created_at=float(doc.get("created_at", 0.0)),
                last_access=float(_text(raw.get(b"last_access")) or 0.0),
                idle_timeout=float(_text(raw.get(b"idle")) or 0.0),
                absolute_deadline=float(deadline) if deadline else None,
                requests=int(_text(raw.get(b"requests")) or 0),
                upstream_secrets=secrets,
            )
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, RosettaError):
            _log.warning("session_store_bad_entry", session_id=session_id)
            return None

    @staticmethod
    def _live(session: StoredSession | None, now: float) -> StoredSession | None:
        # Redis drops expired keys by itself; this covers the moments before it does
        return session if session is not None and session.alive(now) else None
