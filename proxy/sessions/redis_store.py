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

Listing: one script call per page of ``LIST_PAGE`` index members returns every session of
the page (and prunes members whose hash has gone), instead of a command per session: a
100-session list is one round trip and one reply to parse. Pages bound how long one call
holds Redis. A list reads every field but the upstream secrets, which no list needs: they are
neither sent nor decrypted, so the sessions ``live`` returns have none. A session whose
stored fields are exactly those the previous list read is not decoded again: the store keeps
what it decoded (up to ``LISTED_KEPT`` sessions, only those of the last list), and the
sessions ``live`` returns are for reading, as the memory store's are.

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
from proxy.sessions.store import StoredSession, listing_order
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

# Shared Lua: record a use of session hash h (restart its idle timer, count the request, note
# the command); false when it is gone or expired (an expired one is dropped), else its fields.
_USE = (
    _EXPIRY
    + """
local function use(h, now_text, command, tprefix, index, id)
  local last = tonumber(redis.call('HGET', h, 'last_access'))
  if not last then return false end
  local now = tonumber(now_text)
  local old = expiry(h, last)
  if old and now >= old then
    drop(h, tprefix, index, id)
    return false
  end
  if now > last then
    redis.call('HSET', h, 'last_access', now_text)
    last = now
  end
  redis.call('HINCRBY', h, 'requests', 1)
  redis.call('HSET', h, 'last_command', command)
  local e, th = expiry(h, last)
  set_expiry(h, tprefix, e, th)
  return redis.call('HGETALL', h)
end
"""
)

# KEYS: session hash. ARGV: now, command, token prefix, index, id.
_TOUCH = _USE + "return use(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])"

# KEYS: token key. ARGV: now, command, token prefix, index, session key prefix, token hash.
# Returns the session id and its fields: the token lookup and the touch in one round trip.
_USE_TOKEN = (
    _USE
    + """
local id = redis.call('GET', KEYS[1])
if not id then return false end
local h = ARGV[5] .. id
if redis.call('HGET', h, 'token_hash') ~= ARGV[6] then return false end
local fields = use(h, ARGV[1], ARGV[2], ARGV[3], ARGV[4], id)
if not fields then return false end
return {id, fields}
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

_SESSION_FIELDS = (
    "doc",
    "token_hash",
    "idle",
    "deadline",
    "last_access",
    "requests",
    "last_command",
)
"""The fields of a session hash besides its upstream secrets, in this order: what ``put``
writes and what a list reads."""
_LUA_SESSION_FIELDS = ", ".join(f"'{name}'" for name in _SESSION_FIELDS)

# ARGV: session key prefix, index, first and last position in the index. Returns the number
# of members read, the number pruned (their hash had gone), then the id and the values of
# _SESSION_FIELDS (in that order) per session.
_LIST = f"""
local ids = redis.call('ZRANGE', ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
local out, gone = {{}}, {{}}
for _, id in ipairs(ids) do
  local h = ARGV[1] .. id
  local values = redis.call('HMGET', h, {_LUA_SESSION_FIELDS})
  if not values[1] and redis.call('EXISTS', h) == 0 then
    gone[#gone + 1] = id
  else
    out[#out + 1] = id
    out[#out + 1] = values
  end
end
if #gone > 0 then redis.call('ZREM', ARGV[2], unpack(gone)) end
return {{#ids, #gone, out}}
"""
_SESSION_FIELD_KEYS = tuple(name.encode() for name in _SESSION_FIELDS)
LIST_PAGE = 500
LISTED_KEPT = 10_000
"""At most this many decoded sessions are kept from one list to the next (see ``live``)."""
_SECRET_FIELD = SECRET_PREFIX.encode()


def _unavailable(exc: BaseException, operation: str) -> RosettaError:
    # the exception's text may hold the URL; only its type is logged
    _log.warning("session_store_unavailable", operation=operation, error=type(exc).__name__)
    return RosettaError(ErrorKind.UPSTREAM_UNAVAILABLE, UNAVAILABLE)


def _fmt(value: float) -> str:
    return repr(float(value))


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    """A hash as ``HGETALL`` answers it inside a script (field, value, field, ...) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


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
        self._ids = prefix + "ids"
        self._index = prefix + "index"
        self._tokens = prefix + "t:"
        self._sessions = prefix + "s:"
        self._touch = self._redis.register_script(_TOUCH)
        self._use_token = self._redis.register_script(_USE_TOKEN)
        self._put = self._redis.register_script(_PUT)
        self._update = self._redis.register_script(_UPDATE)
        self._secret = self._redis.register_script(_SECRET)
        self._delete = self._redis.register_script(_DELETE)
        self._list = self._redis.register_script(_LIST)
        # what the last list decoded, by session id: (the stored fields, the session)
        self._listed: dict[str, tuple[list[Any], StoredSession]] = {}

    def _key(self, session_id: str) -> str:
        return self._sessions + session_id

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
        values: tuple[str | bytes, ...] = (
            self._doc(session),
            session.token_hash or "",
            _fmt(session.idle_timeout),
            "" if session.absolute_deadline is None else _fmt(session.absolute_deadline),
            _fmt(session.last_access),
            str(session.requests),
            session.record.last_command,
        )
        fields: list[str | bytes] = [
            item for pair in zip(_SESSION_FIELDS, values, strict=True) for item in pair
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
        pairs = _pairs(reply)
        return self._load(session_id, pairs)

    async def use_token(self, token_hash: str, now: float, command: str) -> StoredSession | None:
        try:
            reply = await self._use_token(
                keys=[self._tokens + token_hash],
                args=[_fmt(now), command, self._tokens, self._index, self._sessions, token_hash],
            )
        except RedisError as exc:
            raise _unavailable(exc, "use_token") from None
        if not reply:
            return None
        session_id, fields = _text(reply[0]), reply[1]
        return self._load(session_id, _pairs(fields))

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
        rows: list[Any] = []
        first = 0
        try:
            while True:
                read, pruned, page = await self._list(
                    args=[self._sessions, self._index, first, first + LIST_PAGE - 1]
                )
                rows += page
                if read < LIST_PAGE:
                    break
                first += read - pruned  # pruned members no longer take a position
        except RedisError as exc:
            raise _unavailable(exc, "live") from None
        # a session whose stored fields are what the last list read is not decoded again
        listed = self._listed
        kept: dict[str, tuple[list[Any], StoredSession]] = {}
        sessions = []
        for position in range(0, len(rows), 2):
            session_id, fields = _text(rows[position]), rows[position + 1]
            known = listed.get(session_id)
            if known is not None and known[0] == fields:
                loaded: StoredSession | None = known[1]
            else:
                stored = zip(_SESSION_FIELD_KEYS, fields, strict=True)
                loaded = self._load(session_id, {k: v for k, v in stored if v is not None})
            if loaded is None:
                continue
            if len(kept) < LISTED_KEPT:
                kept[session_id] = (fields, loaded)
            session = self._live(loaded, now)
            if session is not None:
                sessions.append(session)
        self._listed = kept
        return sorted(sessions, key=lambda s: listing_order(s.record.id))

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
            secrets: dict[str, Any] = {}
            for field, sealed in raw.items():  # field names come as bytes
                if field.startswith(_SECRET_FIELD):
                    value = self._box.open(sealed)
                    if value is not None:
                        secrets[field[len(_SECRET_FIELD) :].decode("utf-8")] = value
            record.last_command = _text(raw.get(b"last_command")) or record.last_command
            deadline = raw.get(b"deadline")
            # float() and int() read the ASCII numbers Redis returns as bytes directly
            return StoredSession(
                record=record,
                token_hash=_text(raw.get(b"token_hash")) or None,
                role=str(doc.get("role", "user")),
                created_at=float(doc.get("created_at", 0.0)),
                last_access=float(raw.get(b"last_access") or 0.0),
                idle_timeout=float(raw.get(b"idle") or 0.0),
                absolute_deadline=float(deadline) if deadline else None,
                requests=int(raw.get(b"requests") or 0),
                upstream_secrets=secrets,
            )
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, RosettaError):
            _log.warning("session_store_bad_entry", session_id=session_id)
            return None

    @staticmethod
    def _live(session: StoredSession | None, now: float) -> StoredSession | None:
        # Redis drops expired keys by itself; this covers the moments before it does
        return session if session is not None and session.alive(now) else None
