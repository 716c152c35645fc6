"""An HTTP upstream speaking one dialect. One ``httpx.AsyncClient`` per upstream lives as long
as the app; its transport is the seam tests and benchmarks swap. Transport failures are
mapped here, once, to canonical kinds:

    connection refused / DNS / reset before a reply  -> upstream_unavailable
    connect, read or total time-out                  -> upstream_timeout
    reply cut short, undecodable or over the size cap -> upstream_error
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import anyio
import httpx

from proxy.auth import Authenticator
from proxy.settings import UpstreamBackendSettings
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    HttpRequest,
    HttpResponse,
    PrincipalKind,
    RosettaError,
    Translator,
    UpstreamCredentials,
)

MAX_UPSTREAM_BODY = 16 * 1024 * 1024
_STATE_CACHE_SIZE = 10_000


class UpstreamState:
    """Per-caller upstream state (tokens, cookies), bounded, least recently used dropped."""

    def __init__(self, size: int = _STATE_CACHE_SIZE) -> None:
        self._values: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def get(self, key: str) -> str | None:
        value = self._values.get(key)
        if value is not None:
            self._values.move_to_end(key)
        return value

    def set(self, key: str, value: str | None) -> None:
        if value is None:
            self._values.pop(key, None)
            return
        self._values[key] = value
        self._values.move_to_end(key)
        while len(self._values) > self._size:
            self._values.popitem(last=False)


class Channel:
    """``UpstreamChannel`` for one canonical request."""

    def __init__(self, upstream: HttpUpstream, credentials: UpstreamCredentials, key: str) -> None:
        self._upstream = upstream
        self._credentials = credentials
        self._key = key

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
        return self._upstream.state.get(f"{self._key}:{name}")

    async def remember(self, name: str, value: str | None) -> None:
        self._upstream.state.set(f"{self._key}:{name}", value)


class HttpUpstream:
    """A backend that forwards canonical requests to an upstream through its translator."""

    def __init__(
        self,
        name: str,
        settings: UpstreamBackendSettings,
        translator: Translator,
        auth: Authenticator,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.translator = translator
        self.auth = auth
        self.state = UpstreamState()
        timeouts = settings.timeouts
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
            transport=transport,
            follow_redirects=False,
        )

    @property
    def dialect(self) -> str:
        return self.translator.name

    async def __call__(self, request: CanonicalRequest) -> CanonicalResponse:
        credentials, key = await self._credentials_for(request)
        return await self.translator.call_upstream(request, Channel(self, credentials, key))

    async def close(self) -> None:
        await self.client.aclose()

    async def _credentials_for(self, request: CanonicalRequest) -> tuple[UpstreamCredentials, str]:
        auth = self.settings.auth
        principal = request.principal
        if auth.mode == "static":
            if not self.settings.allow_anonymous:
                await self.auth.authenticate(principal, command=request.operation.value)
            static = UpstreamCredentials(
                user=auth.user,
                password=auth.password,
                token=auth.token,
                access_key=auth.access_key,
                secret_key=auth.secret_key,
            )
            return static, "static"
        if principal.kind is PrincipalKind.SIGNATURE:
            raise RosettaError(
                ErrorKind.UNAUTHENTICATED,
                f"a {request.dialect} access-key signature cannot be passed to a "
                f"{self.dialect} upstream; configure static upstream credentials",
            )
        creds = UpstreamCredentials(
            user=principal.user, password=principal.password, token=principal.token
        )
        parts = (principal.kind.value, principal.user, principal.password, principal.token)
        secret = "\x00".join(str(p) for p in parts)
        return creds, hashlib.sha256(secret.encode("utf-8")).hexdigest()

    async def send(self, request: HttpRequest) -> HttpResponse:
        """One HTTP exchange with the upstream, bounded by the total time-out and body cap."""
        total = self.settings.timeouts.total
        try:
            with anyio.fail_after(total):
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

    async def _exchange(self, request: HttpRequest) -> HttpResponse:
        url = request.path + (f"?{request.query_string}" if request.query_string else "")
        outgoing = self.client.build_request(
            request.method, url, headers=request.headers, content=request.body
        )
        reply = await self.client.send(outgoing, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in reply.aiter_bytes():
                size += len(chunk)
                if size > MAX_UPSTREAM_BODY:
                    raise RosettaError(
                        ErrorKind.UPSTREAM_ERROR,
                        f"upstream {self.name} reply exceeds {MAX_UPSTREAM_BODY} bytes",
                    )
                chunks.append(chunk)
        finally:
            await reply.aclose()
        return HttpResponse(reply.status_code, list(reply.headers.items()), b"".join(chunks))
