"""An httpx transport backed by aiohttp's connection pool.

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
body cap applies while reading (``ReplyTooLarge``), and failures raise the httpx exceptions
above. Wrappers that need httpx objects (tracing) use ``handle_async_request``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager

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


@contextmanager
def _sending(request: httpx.Request | None = None) -> Iterator[None]:
    """aiohttp's failures to send a request and read the reply head, as httpx exceptions."""
    try:
        yield
    except aiohttp.ServerTimeoutError as exc:
        if "connect" in str(exc).lower():
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        raise httpx.ReadTimeout(str(exc), request=request) from exc
    except TimeoutError as exc:
        raise httpx.ConnectTimeout("connect timed out", request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise httpx.RemoteProtocolError(str(exc) or "server disconnected", request=request) from exc
    except aiohttp.ClientError as exc:
        raise httpx.TransportError(str(exc) or type(exc).__name__, request=request) from exc


@contextmanager
def _reading() -> Iterator[None]:
    """aiohttp's failures while reading a reply body, as httpx exceptions."""
    try:
        yield
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "read timed out") from exc
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
        raise httpx.RemoteProtocolError(str(exc) or "reply cut short") from exc
    except aiohttp.ClientError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc


class _AiohttpStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _reading():
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (and connection pool) per transport, created on first use inside
    the running event loop."""

    def __init__(self, *, max_connections: int = 100, keepalive_seconds: float = 30.0) -> None:
        self._max_connections = max_connections
        self._keepalive = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=self._keepalive,
                enable_cleanup_closed=True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
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
        with _sending():
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
        try:
            chunks: list[bytes] = []
            size = 0
            with _reading():
                async for chunk in response.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > max_body:
                        raise ReplyTooLarge(max_body)
                    chunks.append(chunk)
        finally:
            response.release()
        return response.status, list(merged_headers(response.raw_headers).items()), b"".join(chunks)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        timeouts = request.extensions.get("timeout", {})
        timeout = _timeout_of(timeouts)
        body = await request.aread()
        with _sending(request):
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
