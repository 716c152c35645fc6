"""Who is calling: turns a canonical ``Principal`` into an ``Identity`` using configured users
(argon2 password hashes), static tokens, access-key pairs, Rosetta-issued session tokens and
JWTs. Every secret comparison is constant-time; no secret is kept in plain text."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from proxy.sessions.store import SessionStore, StoredSession
from proxy.sessions.tokens import TokenHasher
from translators.contract import ErrorKind, Principal, PrincipalKind, RosettaError

JWT_ALGORITHM = "HS256"
_VERIFIED_CACHE_SIZE = 1024
_VERIFIED_CACHE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password_hash: str
    role: str


@dataclass(frozen=True, slots=True)
class AccessKey:
    access_key: str
    secret_key: str
    user: str


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller; ``session`` is set when a session token proved it."""

    user: str
    role: str
    session: StoredSession | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def password_hasher() -> PasswordHasher:
    """argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane); hashes made with
    other parameters still verify, since argon2 records them in the hash."""
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    return password_hasher().hash(password)


def denied(message: str = "invalid credentials") -> RosettaError:
    return RosettaError(ErrorKind.UNAUTHENTICATED, message)


class Authenticator:
    """Verifies principals. Built once at start-up; shared by every request."""

    def __init__(
        self,
        *,
        users: list[User],
        tokens: dict[str, str],
        access_keys: list[AccessKey],
        store: SessionStore,
        hasher: TokenHasher,
        jwt_secret: bytes,
        signature_max_skew: float = 900.0,
    ) -> None:
        self._users = {u.name: u for u in users}
        self._token_users = {hasher.hash(t): user for t, user in tokens.items()}
        self._keys = {k.access_key: k for k in access_keys}
        self._store = store
        self._hasher = hasher
        self._jwt_secret = jwt_secret
        self._skew = signature_max_skew
        self._password_hasher = password_hasher()
        self._dummy_hash = self._password_hasher.hash(secrets.token_hex(16))
        self._verified: OrderedDict[str, float] = OrderedDict()

    @property
    def store(self) -> SessionStore:
        return self._store

    @property
    def token_hasher(self) -> TokenHasher:
        return self._hasher

    def role_of(self, user: str) -> str:
        found = self._users.get(user)
        return found.role if found else "user"

    async def authenticate(self, principal: Principal, *, command: str = "") -> Identity:
        """The caller's identity; raises unauthenticated. A session principal's session is
        touched (idle timer restarted, request counted, ``command`` noted)."""
        kind = principal.kind
        if kind is PrincipalKind.PASSWORD:
            return self.verify_password(principal.user or "", principal.password or "")
        if kind in (PrincipalKind.SESSION, PrincipalKind.BEARER):
            return await self._verify_token(principal.token or "", command)
        if kind is PrincipalKind.SIGNATURE:
            return self._verify_signature(principal)
        raise denied("authentication required")

    def verify_password(self, user: str, password: str) -> Identity:
        found = self._users.get(user)
        if found is None:
            # spend the same time on unknown users, so user names cannot be probed by timing
            with contextlib.suppress(VerificationError):
                self._password_hasher.verify(self._dummy_hash, password)
            raise denied()
        cache_key = self._hasher.hash(f"{user}\x00{password}\x00{found.password_hash}")
        now = time.monotonic()
        seen = self._verified.get(cache_key)
        if seen is None or now - seen > _VERIFIED_CACHE_SECONDS:
            try:
                self._password_hasher.verify(found.password_hash, password)
            except (VerificationError, InvalidHashError):
                raise denied() from None
            self._verified[cache_key] = now
            while len(self._verified) > _VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return Identity(found.name, found.role)

    async def session_for_token(self, token: str) -> StoredSession | None:
        """The live session a Rosetta-issued token (random or JWT) belongs to, untouched."""
        if not token:
            return None
        now = time.time()
        session = await self._store.by_token(self._hasher.hash(token), now)
        if session is None and token.count(".") == 2:
            session = await self._session_from_jwt(token, now)
        return session

    async def _verify_token(self, token: str, command: str) -> Identity:
        if not token:
            raise denied("authentication required")
        now = time.time()
        token_hash = self._hasher.hash(token)
        static_user = self._token_users.get(token_hash)
        if static_user is not None:  # a configured token: no session to look up or touch
            return Identity(static_user, self.role_of(static_user))
        if command:
            session = await self._store.use_token(token_hash, now, command)
        else:
            session = await self._store.by_token(token_hash, now)
        if session is None and token.count(".") == 2:
            found = await self._session_from_jwt(token, now)
            if found is not None:
                session = await self._store.touch(found.id, now, command) if command else found
                if session is None:
                    raise denied("session expired")
        if session is not None:
            return Identity(session.record.user, session.role, session)
        raise denied("unknown or expired token")

    def issue_jwt(self, session: StoredSession, max_age: int) -> str:
        import jwt  # PyJWT loads cryptography's bindings (~8 MB): only once JWTs are in use

        now = int(time.time())
        claims = {"sub": session.record.user, "sid": session.id, "iat": now, "exp": now + max_age}
        return jwt.encode(claims, self._jwt_secret, algorithm=JWT_ALGORITHM)

    async def _session_from_jwt(self, token: str, now: float) -> StoredSession | None:
        import jwt

        try:
            claims = jwt.decode(
                token, self._jwt_secret, algorithms=[JWT_ALGORITHM], options={"require": ["exp"]}
            )
        except jwt.PyJWTError:
            return None
        session_id = claims.get("sid")
        if not isinstance(session_id, str):
            return None
        session = await self._store.get(session_id, now)
        if session is None or session.record.user != claims.get("sub"):
            return None
        return session

    def _verify_signature(self, principal: Principal) -> Identity:
        signature = principal.signature
        if signature is None:
            raise denied("signature missing")
        key = self._keys.get(signature.access_key)
        # compute the HMAC even for unknown keys so timing does not reveal which keys exist
        secret = key.secret_key if key else "unknown-access-key"
        expected = hmac.new(
            secret.encode("utf-8"), signature.string_to_sign.encode("utf-8"), hashlib.sha256
        ).hexdigest()
        valid = hmac.compare_digest(expected, signature.signature.lower())
        if key is None or not valid:
            raise denied("signature does not match")
        skew = abs((datetime.now(UTC) - signature.signed_at).total_seconds())
        if skew > self._skew:
            raise denied("request date outside the allowed window")
        return Identity(key.user, self.role_of(key.user))
