"""An HTTP upstream speaking one dialect, and the credential policy that decides what it is
sent. One ``httpx.AsyncClient`` per upstream lives as long as the app; its transport is the
seam tests and benchmarks swap. Transport failures are mapped here, once, to canonical kinds:

    connection refused / DNS / reset before a reply  -> upstream_unavailable
    connect, read or total time-out                  -> upstream_timeout
    reply cut short, undecodable or over the size cap -> upstream_error

Upstream authentication (``backends.<name>.auth.mode``):

``passthrough`` (default): each caller's own credentials, converted by the upstream's
translator (user/password to Basic auth, body credentials, headers or an upstream login; a
bearer or session token passes as a token). An access-key signature cannot be converted (it
signs one request for one server) and is an unauthenticated error naming both dialects.
A password login is *bridged*: the upstream checks the credentials (its own login, or a
credentialed ``session.ping`` when its dialect has no login), then Rosetta issues its own
session token, kept in the session store as a keyed hash, and keeps the caller's credentials
and the upstream's token with the session, encrypted at rest in shared stores. Later requests
with that token are sent with those credentials, so a FairCom or JUMP caller can use an
upstream whose dialect wants credentials in every request. A Rosetta token is never sent to an
upstream: a token of a session opened elsewhere is refused.

``static``: the service credentials from config for every request, lent only to callers who
authenticated to Rosetta itself (configured users, tokens, key pairs, or a Rosetta session),
unless ``allow_anonymous: true``. Logins and logouts are answered by Rosetta's own session
layer, so the service account's upstream session never reaches a caller. An anonymous
``session.ping`` is forwarded with no credentials.

Per-caller upstream state (tokens and cookies cached by translators with ``remember``) is
keyed by the caller: for a Rosetta session it is kept *in the session* (the store's upstream
secrets), so it is shared by replicas and goes when the session goes (logout, kill, expiry);
for callers without a Rosetta session it lives in this process, keyed by a hash of the
credentials, and is forgotten when that caller logs out. Static credentials share one state.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from proxy import context
from proxy.auth import Authenticator
from proxy.backends.local import LocalBackend
from proxy.deadlines import Deadlines
from proxy.http1 import Http1Transport
from proxy.sessions.store import StoredSession
from proxy.sessions.tokens import mint_token
from proxy.settings import UpstreamBackendSettings
from proxy.tls import client_context
from proxy.transports import AiohttpTransport, ReplyTooLarge
from translators.contract import (
    CallerInfo,
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    HttpRequest,
    HttpResponse,
    Operation,
    PrincipalKind,
    RosettaError,
    SessionRecord,
    Translator,
    UpstreamCredentials,
)

MAX_UPSTREAM_BODY = 16 * 1024 * 1024
_URL_CACHE_SIZE = 1024
_STATE_CACHE_SIZE = 10_000
STATE_PREFIX = "state:"  # upstream secrets of a session that are translator state


class UpstreamState:
    """Per-caller upstream state (tokens, cookies) of callers without a Rosetta session,
    bounded, least recently used caller dropped."""

    def __init__(self, size: int = _STATE_CACHE_SIZE) -> None:
        self._callers: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._size = size

    def get(self, caller: str, name: str) -> str | None:
        values = self._callers.get(caller)
        if values is None:
            return None
        self._callers.move_to_end(caller)
        return values.get(name)

    def set(self, caller: str, name: str, value: str | None) -> None:
        if value is None:
            values = self._callers.get(caller)
            if values is not None:
                values.pop(name, None)
            return
        self._callers.setdefault(caller, {})[name] = value
        self._callers.move_to_end(caller)
        while len(self._callers) > self._size:
            self._callers.popitem(last=False)

    def forget(self, caller: str) -> None:
        """Drop everything kept for one caller (it logged out)."""
        self._callers.pop(caller, None)

    def __len__(self) -> int:
        return len(self._callers)


class Channel:
    """``UpstreamChannel`` for one canonical request. With ``session`` set, per-caller state
    is read from and written to that session in the store."""

    def __init__(
        self,
        upstream: HttpUpstream,
        credentials: UpstreamCredentials,
        key: str,
        session: StoredSession | None = None,
    ) -> None:
        self._upstream = upstream
        self._credentials = credentials
        self._key = key
        self._session = session

    @property
    def base_url(self) -> str:
        return self._upstream.settings.url

    @property
    def options(self) -> Mapping[str, Any]:
        return self._upstream.settings.options

    @property
    def credentials(self) -> UpstreamCredentials:
        return self._credentials

    @property
    def cache_key(self) -> str:
        return self._key

    async def send(self, request: HttpRequest) -> HttpResponse:
        return await self._upstream.send(request)

    async def cached(self, name: str) -> str | None:
        if self._session is None:
            return self._upstream.state.get(self._key, name)
        value = self._session.upstream_secrets.get(STATE_PREFIX + name)
        return value if isinstance(value, str) else None

    async def remember(self, name: str, value: str | None) -> None:
        if self._session is None:
            self._upstream.state.set(self._key, name, value)
            return
        field = STATE_PREFIX + name
        if value is None:
            self._session.upstream_secrets.pop(field, None)
        else:
            self._session.upstream_secrets[field] = value
        # a session killed meanwhile stays dead: the store refuses to write to it
        await self._upstream.auth.store.set_upstream_secret(self._session.id, field, value)


class HttpUpstream:
    """A backend that forwards canonical requests to an upstream through its translator,
    choosing credentials by the backend's ``auth`` policy (see the module docstring)."""

    def __init__(
        self,
        name: str,
        settings: UpstreamBackendSettings,
        translator: Translator,
        auth: Authenticator,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        sessions: LocalBackend | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.translator = translator
        self.auth = auth
        self.state = UpstreamState()
        # Rosetta's own session layer: static-mode logins, and lifetimes of bridged sessions
        self.sessions = sessions or LocalBackend(
            auth, node_id="rosetta", idle_timeout=1800, absolute_lifetime=86400
        )
        timeouts = settings.timeouts
        # the client builds requests (base URL, default headers, time-outs) and owns the
        # transport's lifetime; requests go straight to the transport, since none of the
        # client's per-send features (auth, redirects, cookies, hooks) apply to an upstream
        self.transport = transport or default_transport(name, settings)
        self.client = httpx.AsyncClient(
            base_url=settings.url,
            timeout=httpx.Timeout(
                connect=timeouts.connect,
                read=timeouts.read,
                write=timeouts.read,
                pool=timeouts.read,
            ),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
            transport=self.transport,
            follow_redirects=False,
        )
        # what client.build_request would add to each request, worked out once
        self._default_headers = dict(self.client.headers)
        self._extensions = {"timeout": self.client.timeout.as_dict()}
        self._urls: dict[str, tuple[httpx.URL, str]] = {}
        # the direct path of Rosetta's own transports decodes what it advertises itself
        self._direct: Http1Transport | AiohttpTransport | None = None
        if isinstance(self.transport, Http1Transport | AiohttpTransport):
            self._direct = self.transport
        self._direct_headers = {**self._default_headers, "accept-encoding": "gzip, deflate"}
        self._deadlines = Deadlines()

    @property
    def dialect(self) -> str:
        return self.translator.name

    async def __call__(self, request: CanonicalRequest) -> CanonicalResponse:
        if self.settings.auth.mode == "static":
            return await self._static(request)
        return await self._passthrough(request)

    async def close(self) -> None:
        await self.client.aclose()

    # static -------------------------------------------------------------------------------
    def static_credentials(self) -> UpstreamCredentials:
        auth = self.settings.auth
        return UpstreamCredentials(
            user=auth.user,
            password=auth.password,
            token=auth.token,
            access_key=auth.access_key,
            secret_key=auth.secret_key,
        )

    async def _static(self, request: CanonicalRequest) -> CanonicalResponse:
        if request.operation in (Operation.LOGIN, Operation.LOGOUT):
            return await self.sessions(request)
        anonymous = request.principal.kind is PrincipalKind.ANONYMOUS
        if anonymous and request.operation is Operation.PING and not self.settings.allow_anonymous:
            return await self._forward(request, Channel(self, UpstreamCredentials(), "anonymous"))
        identity = None
        if not self.settings.allow_anonymous:
            identity = await self.auth.authenticate(
                request.principal, command=request.operation.value
            )
        response = await self._forward(request, Channel(self, self.static_credentials(), "static"))
        if response.caller is None and response.error is None and identity is not None:
            # the upstream did not say who asked (e.g. a kill): the caller Rosetta verified
            session = identity.session
            response.caller = _caller_info(identity.user, session.id if session else None, session)
        return response

    # passthrough --------------------------------------------------------------------------
    async def _passthrough(self, request: CanonicalRequest) -> CanonicalResponse:
        principal = request.principal
        if principal.kind is PrincipalKind.SIGNATURE:
            raise RosettaError(
                ErrorKind.UNAUTHENTICATED,
                f"a {request.dialect} access-key signature cannot be passed to a "
                f"{self.dialect} upstream; configure static upstream credentials",
                context={"credentials_not_convertible": True},
            )
        if principal.kind in (PrincipalKind.SESSION, PrincipalKind.BEARER) and principal.token:
            session = await self.auth.session_for_token(principal.token)
            if session is not None:
                return await self._bridged(request, session)
        if request.operation is Operation.LOGIN and principal.kind is PrincipalKind.PASSWORD:
            return await self._bridge_login(request)
        credentials = UpstreamCredentials(
            user=principal.user, password=principal.password, token=principal.token
        )
        key = _caller_key(principal.kind.value, principal.user, principal.password, principal.token)
        response = await self._forward(request, Channel(self, credentials, key))
        if request.operation is Operation.LOGOUT and response.error is None:
            self.state.forget(key)
        password = principal.kind is PrincipalKind.PASSWORD and bool(principal.user)
        if response.caller is None and response.error is None and password:
            # the upstream accepted the caller's own user and password
            response.caller = _caller_info(principal.user or "", None, None)
        return response

    async def _bridge_login(self, request: CanonicalRequest) -> CanonicalResponse:
        principal = request.principal
        user, password = principal.user or "", principal.password or ""
        credentials = UpstreamCredentials(user=user, password=password)
        key = _caller_key("password", user, password, None)
        try:
            upstream = _ok(await self._forward(request, Channel(self, credentials, key)))
        except RosettaError as error:
            if error.kind is not ErrorKind.UNSUPPORTED_OPERATION:
                raise
            # no login in the upstream's dialect (credentials go with every request): prove
            # the credentials with a credentialed ping before issuing a session for them
            probe = CanonicalRequest(
                Operation.PING,
                request.dialect,
                request.request_id,
                principal,
                client_address=request.client_address,
            )
            _ok(await self._forward(probe, Channel(self, credentials, key)))
            upstream = CanonicalResponse(Operation.LOGIN, request.request_id)
        self.state.forget(key)  # what the login cached moves into the session below
        store = self.auth.store
        now = time.time()
        local = self.sessions
        upstream_id = upstream.session.id if upstream.session is not None else None
        record = SessionRecord(
            id=await store.next_id(),
            user=user,
            client_address=request.client_address,
            service=self.dialect,
            state="active",
            connected_at=datetime.fromtimestamp(now, UTC),
            last_command=request.operation.value,
            node_id=local.node_id,
            description=str(request.settings.get("description") or ""),
            extras={"rosetta": {"backend": self.name, "upstream_session_id": upstream_id}},
        )
        secrets: dict[str, Any] = {"backend": self.name, "user": user, "password": password}
        if upstream.token:
            secrets["token"] = upstream.token
        idle = request.settings.get("idle_timeout_seconds")
        token = mint_token()
        session = StoredSession(
            record=record,
            token_hash=self.auth.token_hasher.hash(token),
            role="user",
            created_at=now,
            last_access=now,
            idle_timeout=float(idle)
            if isinstance(idle, int | float) and not isinstance(idle, bool) and idle >= 0
            else local.idle_timeout,
            absolute_deadline=now + local.absolute_lifetime if local.absolute_lifetime else None,
            requests=1,
            upstream_secrets=secrets,
        )
        await store.put(session)
        if request.settings.get("token_format") == "jwt":
            token = self.auth.issue_jwt(session, local.jwt_max_age)
        deadline = session.expires_at()
        upstream.token = token
        upstream.session = upstream.session or record
        upstream.caller = CallerInfo(
            user=user,
            session_id=upstream_id or record.id,
            expires_in=None if deadline is None else round(deadline - now, 3),
        )
        return upstream

    async def _bridged(
        self, request: CanonicalRequest, session: StoredSession
    ) -> CanonicalResponse:
        secrets = session.upstream_secrets
        if secrets.get("backend") != self.name:
            raise RosettaError(
                ErrorKind.UNAUTHENTICATED,
                f"this session was not opened through the {self.dialect} upstream; log in again",
            )
        touched = await self.auth.store.touch(session.id, time.time(), request.operation.value)
        if touched is None:
            raise RosettaError(ErrorKind.UNAUTHENTICATED, "session expired")
        credentials = UpstreamCredentials(
            user=_opt_str(secrets.get("user")),
            password=_opt_str(secrets.get("password")),
            token=_opt_str(secrets.get("token")),
        )
        channel = Channel(self, credentials, f"session:{session.id}", touched)
        if request.operation is Operation.LOGOUT:
            # end the upstream session too when the dialect has one; Rosetta's goes regardless
            with contextlib.suppress(RosettaError):
                await self._forward(request, channel)
            await self.auth.store.delete([session.id])
            return CanonicalResponse(Operation.LOGOUT, request.request_id, affected=1)
        response = await self._forward(request, channel)
        if request.operation is Operation.KILL and response.error is None:
            await self._end_bridged(request.filters.ids or [])
        if response.caller is None and response.error is None:
            # the upstream did not say who asked (e.g. a kill): the bridged session's user
            ours = touched.record.extras.get("rosetta")
            upstream_id = (
                _opt_str(ours.get("upstream_session_id")) if isinstance(ours, dict) else None
            )
            response.caller = _caller_info(touched.record.user, upstream_id or touched.id, touched)
        return response

    async def _end_bridged(self, upstream_ids: list[str]) -> None:
        """Sessions killed on the upstream through Rosetta end their bridged sessions too."""
        if not upstream_ids:
            return
        wanted = set(upstream_ids)
        ended = []
        for session in await self.auth.store.live(time.time()):
            ours = session.record.extras.get("rosetta")
            if (
                isinstance(ours, dict)
                and ours.get("backend") == self.name
                and ours.get("upstream_session_id") in wanted
            ):
                ended.append(session.id)
        await self.auth.store.delete(ended)

    # the wire -----------------------------------------------------------------------------
    async def _forward(self, request: CanonicalRequest, channel: Channel) -> CanonicalResponse:
        return await self.translator.call_upstream(request, channel)

    async def send(self, request: HttpRequest) -> HttpResponse:
        """One HTTP exchange with the upstream, bounded by the total time-out and body cap."""
        total = self.settings.timeouts.total
        request_id = context.request_id.get()
        if request_id and "x-request-id" not in request.headers:
            request.headers["x-request-id"] = request_id
        started = time.perf_counter()
        try:
            # one ticker for all exchanges in flight, not a timer each (proxy.deadlines)
            with self._deadlines.bound(total):
                return await self._exchange(request)
        except TimeoutError:
            raise RosettaError(
                ErrorKind.UPSTREAM_TIMEOUT, f"upstream {self.name} did not answer within {total}s"
            ) from None
        except httpx.TimeoutException:
            raise RosettaError(
                ErrorKind.UPSTREAM_TIMEOUT, f"upstream {self.name} timed out"
            ) from None
        except (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.ProxyError):
            raise RosettaError(
                ErrorKind.UPSTREAM_UNAVAILABLE, f"upstream {self.name} is unreachable"
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.DecodingError):
            raise RosettaError(
                ErrorKind.UPSTREAM_ERROR, f"upstream {self.name} broke off its reply"
            ) from None
        except httpx.HTTPError as exc:
            raise RosettaError(
                ErrorKind.UPSTREAM_ERROR, f"upstream {self.name} failed: {type(exc).__name__}"
            ) from None
        finally:
            context.record_upstream_time(time.perf_counter() - started)

    def _url(self, path: str, query: str) -> tuple[httpx.URL, str]:
        """The absolute URL of ``path?query``, and its text; built once per distinct target (a
        list or a ping hits the same few URLs over and over), at most ``_URL_CACHE_SIZE`` kept."""
        target = path + (f"?{query}" if query else "")
        url = self._urls.get(target)
        if url is None:
            base = self.client.base_url
            joined = base.join(target.lstrip("/")) if target else base
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            url = self._urls[target] = (joined, str(joined))
        return url

    async def _exchange(self, request: HttpRequest) -> HttpResponse:
        if self._direct is not None:  # the same exchange without httpx's objects
            try:
                status, headers, body = await self._direct.exchange(
                    request.method,
                    self._url(request.path, request.query_string)[1],
                    {**self._direct_headers, **request.headers},
                    request.body,
                    timeouts=self._extensions["timeout"],
                    max_body=MAX_UPSTREAM_BODY,
                )
            except ReplyTooLarge:
                raise self._too_large() from None
            return HttpResponse(status, headers, body)
        outgoing = httpx.Request(
            request.method,
            self._url(request.path, request.query_string)[0],
            headers={**self._default_headers, **request.headers},
            content=request.body,
            extensions=self._extensions,
        )
        try:
            reply = await self.transport.handle_async_request(outgoing)
        except ReplyTooLarge:  # Rosetta's transports cap what they read themselves
            raise self._too_large() from None
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in reply.aiter_bytes():
                size += len(chunk)
                if size > MAX_UPSTREAM_BODY:
                    raise self._too_large()
                chunks.append(chunk)
        finally:
            await reply.aclose()
        return HttpResponse(reply.status_code, list(reply.headers.items()), b"".join(chunks))

    def _too_large(self) -> RosettaError:
        return RosettaError(
            ErrorKind.UPSTREAM_ERROR,
            f"upstream {self.name} reply exceeds {MAX_UPSTREAM_BODY} bytes",
        )


def default_transport(name: str, settings: UpstreamBackendSettings) -> httpx.AsyncBaseTransport:
    """The configured transport under backend ``name``'s ``httpx.AsyncClient``, with the TLS
    context of its ``tls:`` settings (``ConfigError`` when their files do not load)."""
    tls = None if settings.tls is None else client_context(settings.tls, f"backends.{name}.tls")
    limit = settings.max_connections
    if settings.transport == "httptools":
        return Http1Transport(max_connections=limit, max_body=MAX_UPSTREAM_BODY, ssl_context=tls)
    if settings.transport == "aiohttp":
        return AiohttpTransport(max_connections=limit, ssl_context=tls)
    return httpx.AsyncHTTPTransport(
        verify=True if tls is None else tls,
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
    )


def _ok(response: CanonicalResponse) -> CanonicalResponse:
    if response.error is not None:
        raise response.error
    return response


def _caller_info(user: str, session_id: str | None, session: StoredSession | None) -> CallerInfo:
    """The caller as Rosetta knows it, with the seconds its Rosetta session has left."""
    deadline = session.expires_at() if session is not None else None
    expires_in = None if deadline is None else round(max(0.0, deadline - time.time()), 3)
    return CallerInfo(user=user, session_id=session_id, expires_in=expires_in)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _caller_key(*parts: str | None) -> str:
    """A caller's key for per-caller state: a digest, so no credential is kept as a key."""
    joined = "\x00".join("" if p is None else p for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()
