"""The session store interface and the stored-session type. Stores are async and small so that
an in-memory and a Redis implementation can stand behind the same calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from translators.contract import SessionRecord


@dataclass(slots=True)
class StoredSession:
    """A session as the store keeps it: the canonical record plus its lifecycle.

    Login sessions carry a ``token_hash`` and expire; preloaded sessions (``rosetta emulate
    --sessions``) have no token, never expire and keep the idle time they were loaded with.
    Times are seconds since the epoch.
    """

    record: SessionRecord
    token_hash: str | None = None
    role: str = "user"
    created_at: float = 0.0
    last_access: float = 0.0
    idle_timeout: float = 0.0  # 0: never idles out
    absolute_deadline: float | None = None
    requests: int = 0
    # upstream credentials and per-caller upstream state (tokens, cookies) kept with the
    # session; encrypted at rest in shared stores, never part of any response or log line
    upstream_secrets: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def is_login(self) -> bool:
        return self.token_hash is not None

    def expires_at(self) -> float | None:
        """When the session ends if nobody touches it, or ``None`` for never: the sooner of
        its idle end (login sessions) and its absolute deadline. Read for every session of
        every list, so it builds nothing."""
        deadline = self.absolute_deadline
        if self.token_hash is not None and self.idle_timeout > 0:
            idle_end = self.last_access + self.idle_timeout
            if deadline is None or idle_end < deadline:
                return idle_end
        return deadline

    def alive(self, now: float) -> bool:
        deadline = self.expires_at()
        return deadline is None or now < deadline


def listing_order(session_id: str) -> tuple[int, str]:
    """The sort key of a session id in ``live``: shorter ids first (so decimal ids come in
    numeric order), then by text."""
    return len(session_id), session_id


class SessionStore(Protocol):
    """Where sessions live. Every method is safe under concurrent callers, and in shared
    stores under concurrent replicas."""

    async def next_id(self) -> str:
        """A fresh session id: a decimal integer > 0, unique in this store."""
        ...

    async def put(self, session: StoredSession) -> None:
        """Insert or replace a session."""
        ...

    async def get(self, session_id: str, now: float) -> StoredSession | None:
        """A live session by id, or ``None``."""
        ...

    async def by_token(self, token_hash: str, now: float) -> StoredSession | None:
        """The live session a token hash belongs to, or ``None``."""
        ...

    async def touch(self, session_id: str, now: float, command: str) -> StoredSession | None:
        """Record a use: restart the idle timer, count the request, note the command.
        Returns the updated session, or ``None`` when it is gone or expired."""
        ...

    async def use_token(self, token_hash: str, now: float, command: str) -> StoredSession | None:
        """``by_token`` and ``touch`` at once (one round trip in shared stores): the live
        session a token hash belongs to, after recording this use; ``None`` when none."""
        ...

    async def update(self, session: StoredSession) -> bool:
        """Replace a live session's record and settings; ``False`` when it is gone."""
        ...

    async def live(self, now: float) -> list[StoredSession]:
        """Every live session, oldest id first. For reading only: a store may hand out the
        objects it keeps (the memory store does, the Redis store reuses what it decoded for
        the last list); to change a session, ``get`` it and ``update`` it. A list never needs
        upstream secrets, so a shared store leaves them out (the Redis store neither reads nor
        decrypts them); ``get`` has them."""
        ...

    async def set_upstream_secret(self, session_id: str, name: str, value: Any) -> bool:
        """Keep (or with ``None`` drop) one upstream credential with a live session, without
        touching anything else of it; ``False`` when the session is gone. Shared stores keep
        these values encrypted at rest; they go away with the session."""
        ...

    async def delete(self, session_ids: list[str]) -> list[str]:
        """Remove sessions at once (revoking their tokens and dropping their upstream
        secrets); returns the ids that existed."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot be reached (readiness)."""
        ...

    async def close(self) -> None: ...
