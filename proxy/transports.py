"""An httpx transport backed by aiohttp's connection pool, selected with ``transport: aiohttp``
(the default is the httptools pool, ``proxy.http1``, which does the same job with under a
third of the CPU per exchange: ``python -m bench.clients``).

httpx stays the client interface (``httpx.AsyncClient``, its request and response types, its
exception hierarchy), but its default transport degrades under concurrency; aiohttp's pool
does not. Every aiohttp failure is raised as the httpx exception of the same meaning, so the
mapping to canonical error kinds in ``proxy.backends.upstream`` stays in one place:

    aiohttp.ClientConnectorError, ClientOSError before a reply -> httpx.ConnectError
    connect time-out                                            -> httpx.ConnectTimeout
    read time-out                                               -> httpx.ReadTimeout
    ServerDisconnectedError, ClientPayloadError                 -> httpx.RemoteProtocolError
    anything else from aiohttp                                  -> httpx.TransportError

Response bodies are streamed (not decompressed here: httpx decodes ``Content-Encoding``), so
the upstream body cap applies while reading.

``exchange`` is the same request without httpx's request and response objects, for the
upstream backend's hot path: their header normalisation, byte-stream wrappers and decoders
cost about 10% of the translated benchmark pair's throughput (paired runs). It keeps the same
boundary: aiohttp decodes ``Content-Encoding``, headers come back as httpx's
``Headers.items()`` gives them (lower-case names, repeated headers joined with ``", "``), the
body cap applies (``ReplyTooLarge``: before reading when a plain reply's ``Content-Length``
is past it, else while reading), and failures raise the httpx exceptions above. Wrappers
that need httpx objects (tracing) use ``handle_async_request``.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Mapping

import aiohttp
import httpx

from proxy.asgi_http import merged_headers

_CHUNK = 64 * 1024


def _timeout_of(timeouts: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
    """httpx's time-outs (``pool``, ``connect``, ``read``) as aiohttp's."""
    return _client_timeout(timeouts.get("pool"), timeouts.get("connect"), timeouts.get("read"))


@functools.lru_cache(maxsize=64)
def _client_timeout(
    pool: float | None, connect: float | None, read: float | None
) -> aiohttp.ClientTimeout:
    # an upstream's time-outs are the same on every request: each distinct set is built once
    return aiohttp.ClientTimeout(total=None, connect=pool, sock_connect=connect, sock_read=read)


class ReplyTooLarge(Exception):
    """The upstream's reply body passed the cap given to ``exchange``."""


_FAILURES = (aiohttp.ClientError, TimeoutError)
"""What aiohttp raises when an exchange fails; ``_send_failure`` and ``_read_failure`` say
which httpx exception each means. Mapped in ``except`` clauses: nothing on the happy path."""


def _send_failure(
    exc: aiohttp.ClientError | TimeoutError, request: httpx.Request | None = None
) -> httpx.TransportError:
    """aiohttp's failure to send a request and read the reply head, as an httpx exception."""
    if isinstance(exc, aiohttp.ServerTimeoutError):
        if "connect" in str(exc).lower():
            return httpx.ConnectTimeout(str(exc), request=request)
        return httpx.ReadTimeout(str(exc), request=request)
    if isinstance(exc, TimeoutError):
        return httpx.ConnectTimeout("connect timed out", request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc), request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(str(exc) or "server disconnected", request=request)
    return httpx.TransportError(str(exc) or type(exc).__name__, request=request)


def _read_failure(exc: aiohttp.ClientError | TimeoutError) -> httpx.TransportError:
    """aiohttp's failure while reading a reply body, as an httpx exception."""
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(str(exc) or "read timed out")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(str(exc) or "reply cut short")
    return httpx.ReadError(str(exc) or type(exc).__name__)


class _AiohttpStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except _FAILURES as exc:
            raise _read_failure(exc) from exc

    async def aclose(self) -> None:
        self._response.release()


async def _body(response: aiohttp.ClientResponse, max_body: int) -> bytes:
    """The whole (decoded) body of a reply, refused once it passes ``max_body`` bytes. A body
    sent as is with a ``Content-Length`` within the cap is read in one call; any other (of
    unknown length, or decompressed, whose size only reading tells) chunk by chunk."""
    length = response.content_length
    if length is not None and length <= max_body and "Content-Encoding" not in response.headers:
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_body:
            raise ReplyTooLarge(max_body)
        chunks.append(chunk)
    return b"".join(chunks)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (and connection pool) per transport, created on first use inside
    the running event loop."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive_seconds: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive = keepalive_seconds
        self._ssl: ssl.SSLContext | bool = True if ssl_context is None else ssl_context
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=self._keepalive,
                enable_cleanup_closed=True,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                # no skip_auto_headers (about 10 us a request): the requests that come here
                # carry Accept, Accept-Encoding and User-Agent, so aiohttp adds none of its own
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        timeouts: Mapping[str, float | None],
        max_body: int,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request, answered as (status, headers, decoded body); see the module docstring."""
        session = self._open()
        try:
            response = await session.request(
                method,
                url,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=_timeout_of(timeouts),
                compress=None,
                auto_decompress=True,
            )
        except _FAILURES as exc:
            raise _send_failure(exc) from exc
        try:
            content = await _body(response, max_body)
        except _FAILURES as exc:
            raise _read_failure(exc) from exc
        finally:
            response.release()
        return response.status, list(merged_headers(response.raw_headers).items()), content

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        timeouts = request.extensions.get("timeout", {})
        timeout = _timeout_of(timeouts)
        body = await request.aread()
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                ],
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
                compress=None,
            )
        except _FAILURES as exc:
            raise _send_failure(exc, request) from exc
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
        return httpx.Response(
            response.status,
            headers=headers,
            stream=_AiohttpStream(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
