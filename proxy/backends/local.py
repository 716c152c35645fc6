"""The ``local`` backend: Rosetta's own session registry. Its sessions are the callers' login
sessions (FairCom ``createSession``, JUMP ``login``, MaxScale ``/v1/auth``, ...) plus any
preloaded records, and every canonical operation works on them from every dialect.

Visibility: an ``admin`` sees and may kill every session; any other user only its own.
Another user's session is reported as not found rather than forbidden, so ids cannot be
probed.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import jsonpatch
import jsonpointer

from proxy.auth import Authenticator, Identity
from proxy.sessions.store import StoredSession
from proxy.sessions.tokens import mint_token
from translators.contract import (
    CallerInfo,
    CanonicalRequest,
    CanonicalResponse,
    Connection,
    ErrorKind,
    Operation,
    PrincipalKind,
    RosettaError,
    SessionRecord,
)

_ACTIVE = "active"
# the caller a request was authenticated as, so a later failure can still report it
_IDENTIFIED: ContextVar[Identity | None] = ContextVar("rosetta_local_identified", default=None)


class LocalBackend:
    """Implements the canonical operations over a session store."""

    def __init__(
        self,
        auth: Authenticator,
        *,
        node_id: str,
        idle_timeout: float,
        absolute_lifetime: float,
        service: str | None = None,
        jwt_max_age: int = 28800,
        project_id: str | None = None,
        instance_id: str | None = None,
    ) -> None:
        self.auth = auth
        self.store = auth.store
        self.node_id = node_id
        self.idle_timeout = idle_timeout
        self.absolute_lifetime = absolute_lifetime
        self.service = service
        self.jwt_max_age = jwt_max_age
        self.project_id = project_id
        self.instance_id = instance_id
        self._handlers = {
            Operation.LOGIN: self._login,
            Operation.LOGOUT: self._logout,
            Operation.PING: self._ping,
            Operation.LIST: self._list,
            Operation.GET: self._get,
            Operation.CONNECTIONS: self._connections,
            Operation.KILL: self._kill,
            Operation.KILL_ALL: self._kill_all,
            Operation.ALTER: self._alter,
        }

    async def __call__(self, request: CanonicalRequest) -> CanonicalResponse:
        """One operation. A failure after the caller was authenticated carries the caller in
        ``error.context["caller"]`` (a ``CallerInfo``) for envelopes that report it."""
        reset = _IDENTIFIED.set(None)
        try:
            return await self._handlers[request.operation](request)
        except RosettaError as error:
            identity = _IDENTIFIED.get()
            if identity is not None and "caller" not in error.context:
                error.context["caller"] = (
                    _caller(identity.session, time.time())
                    if identity.session is not None
                    else CallerInfo(user=identity.user)
                )
            raise
        finally:
            _IDENTIFIED.reset(reset)

    async def preload(self, records: list[SessionRecord]) -> None:
        """Add sessions that belong to no caller (for emulators and demos)."""
        now = time.time()
        for record in records:
            await self.store.put(StoredSession(record=record, created_at=now, last_access=now))

    # operations ---------------------------------------------------------------------------
    async def _login(self, request: CanonicalRequest) -> CanonicalResponse:
        principal = request.principal
        if principal.kind is not PrincipalKind.PASSWORD:
            raise RosettaError(ErrorKind.UNAUTHENTICATED, "login needs a user name and password")
        identity = self.auth.verify_password(principal.user or "", principal.password or "")
        now = time.time()
        idle = _idle_timeout(request.settings.get("idle_timeout_seconds"), self.idle_timeout)
        token = mint_token()
        record = SessionRecord(
            id=await self.store.next_id(),
            user=identity.user,
            client_address=request.client_address,
            service=self.service or request.dialect,
            state=_ACTIVE,
            connected_at=datetime.fromtimestamp(now, UTC),
            last_command=request.operation.value,
            node_id=self.node_id,
            description=str(request.settings.get("description") or ""),
            extras=_settings_extras(request),
        )
        session = StoredSession(
            record=record,
            token_hash=self.auth.token_hasher.hash(token),
            role=identity.role,
            created_at=now,
            last_access=now,
            idle_timeout=idle,
            absolute_deadline=now + self.absolute_lifetime if self.absolute_lifetime else None,
            requests=1,
        )
        await self.store.put(session)
        if request.settings.get("token_format") == "jwt":
            max_age = request.settings.get("jwt_max_age_seconds", self.jwt_max_age)
            if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 1:
                raise RosettaError(ErrorKind.BAD_REQUEST, "JWT max age must be an integer >= 1")
            token = self.auth.issue_jwt(session, max_age)
        return CanonicalResponse(
            operation=request.operation,
            request_id=request.request_id,
            token=token,
            session=self._view(session, now),
            caller=_caller(session, now),
        )

    async def _logout(self, request: CanonicalRequest) -> CanonicalResponse:
        identity = await self._identify(request, require_session=True)
        assert identity.session is not None
        await self.store.delete([identity.session.id])
        return self._done(request, identity, affected=1, caller=False)

    async def _ping(self, request: CanonicalRequest) -> CanonicalResponse:
        if request.principal.kind is PrincipalKind.ANONYMOUS:
            return CanonicalResponse(operation=request.operation, request_id=request.request_id)
        identity = await self._identify(request)
        now = time.time()
        session = self._view(identity.session, now) if identity.session else None
        response = self._done(request, identity)
        response.session = session
        return response

    async def _list(self, request: CanonicalRequest) -> CanonicalResponse:
        identity = await self._identify(request)
        now = time.time()
        views = _matching([self._view(s, now) for s in await self._visible(identity, now)], request)
        total = len(views)
        end = None if request.limit is None else request.offset + request.limit
        response = self._done(request, identity)
        response.sessions = views[request.offset : end]
        response.total = total
        return response

    async def _get(self, request: CanonicalRequest) -> CanonicalResponse:
        identity = await self._identify(request)
        session = await self._target(request, identity)
        response = self._done(request, identity)
        response.session = self._view(session, time.time())
        return response

    async def _connections(self, request: CanonicalRequest) -> CanonicalResponse:
        identity = await self._identify(request)
        session = await self._target(request, identity)
        response = self._done(request, identity)
        response.connections = self._view(session, time.time()).connections
        response.total = len(response.connections)
        return response

    async def _kill(self, request: CanonicalRequest) -> CanonicalResponse:
        identity = await self._identify(request)
        ids = request.filters.ids or []
        if not ids:
            raise RosettaError(ErrorKind.BAD_REQUEST, "no session id given")
        now = time.time()
        visible = {s.id for s in await self._visible(identity, now)}
        missing = [i for i in ids if i not in visible]
        if missing:
            raise RosettaError(ErrorKind.NOT_FOUND, f"session {missing[0]} does not exist")
        removed = await self.store.delete(ids)
        return self._done(request, identity, affected=len(removed))

    async def _kill_all(self, request: CanonicalRequest) -> CanonicalResponse:
        identity = await self._identify(request)
        now = time.time()
        views = _matching([self._view(s, now) for s in await self._visible(identity, now)], request)
        ids = [v.id for v in views]
        removed = await self.store.delete(ids)
        return self._done(request, identity, affected=len(removed))

    async def _alter(self, request: CanonicalRequest) -> CanonicalResponse:
        identity = await self._identify(request)
        if request.target_id is None and identity.session is None:
            raise RosettaError(ErrorKind.BAD_REQUEST, "no session to alter")
        session = (
            await self._target(request, identity)
            if request.target_id is not None
            else identity.session
        )
        assert session is not None
        settings = request.settings
        if "description" in settings:
            session.record.description = str(settings["description"] or "")
        if "idle_timeout_seconds" in settings and session.is_login:
            session.idle_timeout = _idle_timeout(
                settings["idle_timeout_seconds"], self.idle_timeout
            )
        extras = _settings_extras(request)
        for dialect, values in extras.items():
            session.record.extras.setdefault(dialect, {}).update(values)
        if "json_patch" in settings:
            # the dialect whose settings the patch addresses; it travels with the patch, so
            # one relayed through a rosetta upstream still lands on that dialect's settings
            named = settings.get("json_patch_dialect")
            target = named if isinstance(named, str) and named else request.dialect
            session.record.extras[target] = _json_patched(
                session.record.extras.get(target) or {},
                settings["json_patch"],
                settings.get("json_patch_base"),
            )
        if not await self.store.update(session):
            raise RosettaError(ErrorKind.NOT_FOUND, f"session {session.id} does not exist")
        now = time.time()
        response = self._done(request, identity)
        response.session = self._view(session, now)
        return response

    # helpers ------------------------------------------------------------------------------
    async def _identify(self, request: CanonicalRequest, require_session: bool = False) -> Identity:
        identity = await self.auth.authenticate(request.principal, command=request.operation.value)
        _IDENTIFIED.set(identity)
        self._check_scope(request)
        if require_session and identity.session is None:
            raise RosettaError(ErrorKind.UNAUTHENTICATED, "this operation needs a session token")
        return identity

    def _check_scope(self, request: CanonicalRequest) -> None:
        """A request that names a project (``principal.project_id``) or an instance
        (``extras[<dialect>]["instance_id"]``, GeminiDB) must name the pinned ones, if any."""
        project = request.principal.project_id
        if self.project_id is not None and project is not None and project != self.project_id:
            raise RosettaError(
                ErrorKind.NOT_FOUND,
                f"project {project} does not exist",
                context={"unknown": "project"},
            )
        carried = request.extras.get(request.dialect)
        instance = carried.get("instance_id") if isinstance(carried, dict) else None
        if self.instance_id is not None and instance is not None and instance != self.instance_id:
            raise RosettaError(
                ErrorKind.NOT_FOUND,
                f"instance {instance} does not exist",
                context={"unknown": "instance"},
            )

    async def _visible(self, identity: Identity, now: float) -> list[StoredSession]:
        sessions = await self.store.live(now)
        if identity.is_admin:
            return sessions
        return [s for s in sessions if s.record.user == identity.user]

    async def _target(self, request: CanonicalRequest, identity: Identity) -> StoredSession:
        target = request.target_id
        if target is None:
            raise RosettaError(ErrorKind.BAD_REQUEST, "exactly one session id is needed")
        session = await self.store.get(target, time.time())
        if session is None or not (identity.is_admin or session.record.user == identity.user):
            raise RosettaError(ErrorKind.NOT_FOUND, f"session {target} does not exist")
        return session

    def _view(self, session: StoredSession, now: float) -> SessionRecord:
        """The record as callers see it now: idle time and counters brought up to date."""
        record = session.record
        if not session.is_login:
            return record
        return record.refreshed(
            idle_seconds=round(max(0.0, now - session.last_access), 3),
            connections=[
                Connection(
                    server="rosetta",
                    state=_ACTIVE,
                    role="client",
                    reads=session.requests,
                    writes=session.requests,
                )
            ],
            extras={**record.extras, "rosetta": _lifecycle(session, now)},
        )

    def _done(
        self,
        request: CanonicalRequest,
        identity: Identity,
        *,
        affected: int | None = None,
        caller: bool = True,
    ) -> CanonicalResponse:
        now = time.time()
        info = (
            _caller(identity.session, now)
            if identity.session is not None
            else CallerInfo(user=identity.user)
        )
        return CanonicalResponse(
            operation=request.operation,
            request_id=request.request_id,
            affected=affected,
            caller=info if caller else None,
        )


def _caller(session: StoredSession, now: float) -> CallerInfo:
    deadline = session.expires_at()
    return CallerInfo(
        user=session.record.user,
        session_id=session.id,
        expires_in=None if deadline is None else round(max(0.0, deadline - now), 3),
    )


def _lifecycle(session: StoredSession, now: float) -> dict[str, Any]:
    return {
        "idle_timeout_seconds": session.idle_timeout,
        "last_accessed_at": datetime.fromtimestamp(session.last_access, UTC).isoformat(),
        "requests": session.requests,
    }


def _idle_timeout(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise RosettaError(ErrorKind.BAD_REQUEST, "idle timeout must be a number >= 0")
    return float(value)


def _settings_extras(request: CanonicalRequest) -> dict[str, Any]:
    """Dialect settings a login or alter carried beyond the canonical ones, kept per dialect."""
    carried = request.extras.get(request.dialect)
    if isinstance(carried, dict) and isinstance(carried.get("settings"), dict):
        return {request.dialect: dict(carried["settings"])}
    return {}


def _json_patched(stored: dict[str, Any], patch: Any, base: Any) -> dict[str, Any]:
    """An RFC 6902 patch applied to a session's dialect settings (``extras[<dialect>]``), over
    ``base`` (the dialect's defaults, shallowly merged under what is stored). All or nothing."""
    document = {**base, **stored} if isinstance(base, dict) else dict(stored)
    try:
        patched = jsonpatch.apply_patch(document, patch)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError) as exc:
        raise RosettaError(ErrorKind.BAD_REQUEST, f"JSON Patch not applied: {exc}") from None
    if not isinstance(patched, dict):
        raise RosettaError(ErrorKind.BAD_REQUEST, "JSON Patch must leave an object")
    return patched


def _matching(records: list[SessionRecord], request: CanonicalRequest) -> list[SessionRecord]:
    """The records ``request.filters`` selects (all of them, untouched, when it selects no
    subset)."""
    f = request.filters
    if f.ids is None and f.users is None and f.node_id is None and f.address_prefix is None:
        return records
    return [record for record in records if _matches(record, request)]


def _matches(record: SessionRecord, request: CanonicalRequest) -> bool:
    f = request.filters
    if f.ids is not None and record.id not in f.ids:
        return False
    if f.users is not None and record.user not in f.users:
        return False
    if f.node_id is not None and record.node_id != f.node_id:
        return False
    return f.address_prefix is None or record.client_address.startswith(f.address_prefix)
