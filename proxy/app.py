"""Builds the running proxy from validated settings, once, at start-up: translators, session
store, authenticator, backends, the pipeline and the router; then wraps them in the ASGI app:
Starlette for the lifespan (which opens and closes what needs I/O) and the operational
endpoints, the dialect gateway for everything else. ``build_runtime`` does no network I/O,
so ``rosetta check`` can trial-build a config without serving it."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import orjson
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from proxy import pipeline
from proxy.auth import AccessKey, Authenticator, User, hash_password
from proxy.backends.local import LocalBackend
from proxy.backends.upstream import HttpUpstream, default_transport
from proxy.gateway import Gateway, Inbound
from proxy.metrics import Metrics
from proxy.protection import BreakerState, protect
from proxy.ratelimit import RateLimit, build_rate_limit
from proxy.router import Router
from proxy.sessions.memory import MemorySessionStore
from proxy.sessions.store import SessionStore
from proxy.sessions.tokens import TokenHasher
from proxy.settings import (
    ConfigError,
    LocalBackendSettings,
    Settings,
    UpstreamBackendSettings,
)
from translators.codec import session_from_json
from translators.contract import Handler, RosettaError, SessionRecord, Translator
from translators.registry import UnknownDialectError, translator_class

if TYPE_CHECKING:  # proxy.tracing imports OpenTelemetry: only loaded when tracing is on
    from proxy.tracing import Tracing

_log = structlog.get_logger("rosetta")
StoreFactory = Callable[[Settings, bytes], SessionStore]


@dataclass
class Runtime:
    """Everything a running Rosetta holds, built from one ``Settings``."""

    settings: Settings
    store: SessionStore
    auth: Authenticator
    gateway: Gateway
    backends: dict[str, Handler]
    locals: dict[str, LocalBackend] = field(default_factory=dict)
    upstreams: list[HttpUpstream] = field(default_factory=list)
    preloads: dict[str, list[SessionRecord]] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    breakers: dict[str, BreakerState] = field(default_factory=dict)
    rate_limit: RateLimit | None = None
    tracing: Tracing | None = None

    async def start(self) -> None:
        for name, records in self.preloads.items():
            await self.locals[name].preload(records)
        if self.tracing is not None:
            self.tracing.start()

    async def close(self, *, close_store: bool = True) -> None:
        for upstream in self.upstreams:
            await upstream.close()
        if close_store:
            await self.store.close()
        if self.rate_limit is not None:
            await self.rate_limit.close()
        if self.tracing is not None:
            await self.tracing.shutdown()


def make_translator(dialect: str, options: dict[str, Any], where: str) -> Translator:
    try:
        return translator_class(dialect)(options)
    except UnknownDialectError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except (ValueError, TypeError, RosettaError) as exc:
        raise ConfigError(f"{where}.options: {exc}") from None


def session_secret(settings: Settings) -> bytes:
    configured = settings.sessions.secret
    return configured.encode("utf-8") if configured else secrets.token_bytes(32)


def build_store(settings: Settings, secret: bytes) -> SessionStore:
    """The configured store; no I/O here (the Redis client connects on first use)."""
    sessions = settings.sessions
    if sessions.store == "memory":
        return MemorySessionStore()
    try:  # imported here: redis and cryptography cost ~15 MB per worker that may never use them
        from proxy.sessions.crypto import SecretBox
        from proxy.sessions.redis_store import RedisSessionStore
    except ImportError:  # pragma: no cover - redis is a declared dependency
        raise ConfigError(
            "sessions.store: the redis store needs the 'redis' package "
            "(pip install 'rosetta-proxy[redis]')"
        ) from None
    try:
        return RedisSessionStore(
            sessions.store,
            SecretBox.from_settings(sessions.encryption_key, secret),
            prefix=sessions.key_prefix,
            timeout=sessions.store_timeout_seconds,
        )
    except ValueError as exc:  # a malformed redis:// URL
        raise ConfigError(f"sessions.store: {exc}") from None


def build_authenticator(settings: Settings, store: SessionStore, secret: bytes) -> Authenticator:
    users = []
    for index, user in enumerate(settings.users):
        if user.password_hash:
            users.append(User(user.name, user.password_hash, user.role))
        elif user.password:
            users.append(User(user.name, hash_password(user.password), user.role))
        else:
            raise ConfigError(
                f"users.{index}.password: user {user.name!r} has no password "
                "(set it, give password_hash, or generate_password: true)"
            )
    return Authenticator(
        users=users,
        tokens={t.token: t.user for t in settings.tokens if t.token},
        access_keys=[
            AccessKey(k.access_key, k.secret_key, k.user)
            for k in settings.access_keys
            if k.access_key and k.secret_key
        ],
        store=store,
        hasher=TokenHasher(secret),
        jwt_secret=secret,
        signature_max_skew=settings.auth.signature_max_skew_seconds,
    )


def load_sessions_file(path: str, where: str) -> list[SessionRecord]:
    try:
        data = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"{where}: cannot load {path}: {exc}") from None
    if not isinstance(data, list):
        raise ConfigError(f"{where}: {path} must hold a JSON array of sessions")
    try:
        return [session_from_json(item) for item in data]
    except RosettaError as exc:
        raise ConfigError(f"{where}: {path}: {exc.message}") from None


def build_runtime(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    store_factory: StoreFactory = build_store,
    metrics: Metrics | None = None,
    preload: bool = True,
) -> Runtime:
    """Everything for ``settings``; ``metrics`` carries counters over a reload, and
    ``preload=False`` skips preloading sessions into a store that already has them."""
    secret = session_secret(settings)
    store = store_factory(settings, secret)
    auth = build_authenticator(settings, store, secret)
    runtime_backends: dict[str, Handler] = {}
    upstream_dialects: dict[str, str] = {}
    runtime = Runtime(settings, store, auth, Gateway(Router(), max_body=1), runtime_backends)
    if metrics is not None:
        runtime.metrics = metrics
    if settings.rate_limit.enabled:
        runtime.rate_limit = build_rate_limit(settings.rate_limit, settings.sessions)
    tracing = runtime.tracing = build_tracing(settings) if settings.tracing.enabled else None
    for name, backend in settings.backends.items():
        where = f"backends.{name}"
        if isinstance(backend, LocalBackendSettings):
            local = LocalBackend(
                auth,
                node_id=backend.node_id,
                idle_timeout=settings.sessions.idle_timeout_seconds,
                absolute_lifetime=settings.sessions.absolute_lifetime_seconds,
                service=backend.service,
                jwt_max_age=settings.sessions.jwt_max_age_seconds,
                project_id=backend.project_id,
                instance_id=backend.instance_id,
            )
            runtime.locals[name] = local
            if backend.sessions_file and preload:
                runtime.preloads[name] = load_sessions_file(
                    backend.sessions_file, f"{where}.sessions_file"
                )
            runtime_backends[name] = pipeline.build(local)
            upstream_dialects[name] = "local"
        else:
            assert isinstance(backend, UpstreamBackendSettings)
            translator = make_translator(backend.dialect, backend.options, f"{where}.dialect")
            sessions = LocalBackend(  # Rosetta's own sessions in front of this upstream
                auth,
                node_id="rosetta",
                idle_timeout=settings.sessions.idle_timeout_seconds,
                absolute_lifetime=settings.sessions.absolute_lifetime_seconds,
                jwt_max_age=settings.sessions.jwt_max_age_seconds,
            )
            wire = transport
            if tracing is not None:
                wire = tracing.transport(
                    transport or default_transport(name, backend), name, translator.name
                )
            upstream = HttpUpstream(name, backend, translator, auth, wire, sessions=sessions)
            runtime.upstreams.append(upstream)
            guard = backend.protection
            runtime_backends[name] = pipeline.build(
                protect(
                    upstream,
                    name=name,
                    max_in_flight=guard.max_in_flight,
                    breaker_threshold=guard.breaker_threshold,
                    breaker_cool_down=guard.breaker_cool_down_seconds,
                    retry_attempts=guard.retry_attempts,
                    retry_backoff=guard.retry_backoff_seconds,
                    breaker_state=runtime.breakers.setdefault(name, BreakerState()),
                )
            )
            upstream_dialects[name] = translator.name
    if settings.default_backend not in runtime_backends:
        raise ConfigError(f"default_backend: no backend named {settings.default_backend!r}")

    router: Router[Inbound] = Router()
    for dialect, inbound in settings.inbound.items():
        if not inbound.enabled:
            continue
        where = f"inbound.{dialect}"
        translator = make_translator(dialect, inbound.options, where)
        backend_name = inbound.backend or settings.default_backend
        if backend_name not in runtime_backends:
            raise ConfigError(f"{where}.backend: no backend named {backend_name!r}")
        handler = runtime_backends[backend_name]
        if runtime.rate_limit is not None:
            handler = runtime.rate_limit.stage(handler)
        if tracing is not None:
            translator = tracing.translator(translator)
            handler = tracing.handler(handler, backend_name, upstream_dialects[backend_name])
        target = Inbound(translator, handler, backend_name, upstream_dialects[backend_name])
        for route in translator.routes:
            router.add(inbound.prefix + route.path, route.methods, target, route.name)
    runtime.gateway = (tracing.gateway if tracing is not None else Gateway)(
        router,
        max_body=settings.server.max_body_bytes,
        access_log=settings.logging.access_log,
        metrics=runtime.metrics,
    )
    return runtime


def build_tracing(settings: Settings) -> Tracing:
    """The tracing of an enabled ``tracing:`` section; OpenTelemetry is imported here."""
    try:
        from proxy.tracing import Tracing
    except ImportError as exc:
        raise ConfigError(
            f"tracing.enabled: tracing needs the OpenTelemetry packages ({exc.name} is "
            "missing): pip install 'rosetta-proxy[otel]'"
        ) from None
    return Tracing(settings.tracing)


OPERATIONAL_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RosettaApp(Starlette):
    """Starlette serves the lifespan and ``OPERATIONAL_PATHS``; every other HTTP request goes
    straight to the dialect gateway, without Starlette's middleware stack and route scan (the
    gateway answers every failure in the caller's envelope itself). A reload swaps
    ``gateway``."""

    gateway: Callable[[Scope, Receive, Send], Awaitable[None]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPERATIONAL_PATHS:
            await self.gateway(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    runtime: Runtime | None = None,
    load_settings: Callable[[], Settings] | None = None,
) -> RosettaApp:
    """The ASGI app: ``/healthz``, ``/readyz``, ``/metrics``, and every dialect route through
    the gateway. With ``load_settings``, SIGHUP reloads the configuration in place."""
    from proxy.reload import Reloader  # reload builds runtimes: imported late, no cycle

    built = runtime or build_runtime(settings, transport=transport)

    def current() -> Runtime:
        active: Runtime = app.state.runtime
        return active

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await built.start()
        _log.info(
            "started",
            pid=os.getpid(),
            dialects=sorted(settings.inbound),
            backends=sorted(built.backends),
        )
        async with anyio.create_task_group() as tasks:
            if load_settings is not None:
                tasks.start_soon(Reloader(app, built, load_settings).watch)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
                await current().close()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "pid": os.getpid()})

    async def readyz(_request: Request) -> Response:
        try:
            await current().store.ping()
        except Exception as exc:  # any store failure means not ready
            return JSONResponse(
                {"status": "unavailable", "reason": f"session store: {type(exc).__name__}"},
                status_code=503,
            )
        return JSONResponse({"status": "ready"})

    async def metrics(_request: Request) -> Response:
        active = current()
        try:
            active.metrics.live_sessions.set(len(await active.store.live(time.time())))
        except Exception:  # the scrape still reports everything else
            _log.warning("metrics_store_unavailable")
        return Response(active.metrics.render(), media_type=active.metrics.content_type)

    app = RosettaApp(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )
    app.gateway = built.gateway
    app.state.runtime = built
    return app
