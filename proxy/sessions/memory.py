"""The in-memory session store: one process, no sharing. Expired sessions are dropped lazily
when met and by a sweep on listing. Upstream secrets stay in this process's memory only (never
written anywhere), so they are not encrypted here; see ``redis_store`` for the shared store."""

from __future__ import annotations

import itertools
from typing import Any

from proxy.sessions.store import StoredSession, listing_order


class MemorySessionStore:
    def __init__(self) -> None:
        self._sessions: dict[str, StoredSession] = {}
        self._by_token: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._order: list[str] | None = None  # the ids in listing order; None: sort again

    async def next_id(self) -> str:
        while True:
            candidate = str(next(self._ids))
            if candidate not in self._sessions:
                return candidate

    async def put(self, session: StoredSession) -> None:
        old = self._sessions.get(session.id)
        if old is None:
            self._order = None
        elif old.token_hash is not None:
            self._by_token.pop(old.token_hash, None)
        self._sessions[session.id] = session
        if session.token_hash is not None:
            self._by_token[session.token_hash] = session.id

    async def get(self, session_id: str, now: float) -> StoredSession | None:
        return self._live(self._sessions.get(session_id), now)

    async def by_token(self, token_hash: str, now: float) -> StoredSession | None:
        session_id = self._by_token.get(token_hash)
        return None if session_id is None else self._live(self._sessions.get(session_id), now)

    async def touch(self, session_id: str, now: float, command: str) -> StoredSession | None:
        session = self._live(self._sessions.get(session_id), now)
        if session is None:
            return None
        session.last_access = now
        session.requests += 1
        session.record.last_command = command
        return session

    async def use_token(self, token_hash: str, now: float, command: str) -> StoredSession | None:
        session_id = self._by_token.get(token_hash)
        return None if session_id is None else await self.touch(session_id, now, command)

    async def update(self, session: StoredSession) -> bool:
        if session.id not in self._sessions:
            return False
        await self.put(session)
        return True

    async def set_upstream_secret(self, session_id: str, name: str, value: Any) -> bool:
        session = self._sessions.get(session_id)
        if session is None:
            return False
        if value is None:
            session.upstream_secrets.pop(name, None)
        else:
            session.upstream_secrets[name] = value
        return True

    async def live(self, now: float) -> list[StoredSession]:
        order = self._order
        if order is None:  # sorted again only after a session came or went
            order = self._order = sorted(self._sessions, key=listing_order)
        sessions = self._sessions
        live = [sessions[session_id] for session_id in order]
        if all(session.alive(now) for session in live):
            return live
        return [session for session in live if self._live(session, now) is not None]

    async def delete(self, session_ids: list[str]) -> list[str]:
        removed = []
        for session_id in session_ids:
            session = self._sessions.pop(session_id, None)
            if session is not None:
                self._order = None
                removed.append(session_id)
                if session.token_hash is not None:
                    self._by_token.pop(session.token_hash, None)
        return removed

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _live(self, session: StoredSession | None, now: float) -> StoredSession | None:
        if session is None:
            return None
        if session.alive(now):
            return session
        if self._sessions.pop(session.id, None) is not None:
            self._order = None
        if session.token_hash is not None:
            self._by_token.pop(session.token_hash, None)
        return None
