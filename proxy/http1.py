"""The default upstream transport: an HTTP/1.1 keep-alive connection pool on httptools, the
llhttp parser uvicorn serves Rosetta's own callers with.

httpx stays the client interface (``httpx.AsyncClient``, its request and response types and
its exception hierarchy); this is the network under it. A pool does one thing per exchange:
take an idle connection (or open one), write the request head and body in one write, and let
the parser's callbacks collect the reply. On the benchmark's 100-session list reply that is
about 22 us of CPU per exchange, against about 75 - 80 us for aiohttp's client
(``proxy.transports``, still selectable as ``transport: aiohttp``); ``python -m bench.clients``
measures both, and docs/performance.md has the numbers.

``exchange`` is the upstream backend's direct path (same signature as the aiohttp
transport's): status, headers as ``httpx.Headers.items()`` gives them (lower-case names,
repeated headers joined with ``", "``) and the body with ``Content-Encoding`` (gzip, deflate)
decoded. ``handle_async_request`` answers ``httpx.Request`` objects (for wrappers such as
tracing) with the body as received, which httpx decodes.

What a connection is trusted with:

- It goes back to the pool only after a complete reply that allows keep-alive. A reply cut
  short, a parse error, a time-out, a cancelled exchange, bytes nobody asked for or a reply to
  ``HEAD`` (whose body length the parser cannot be told) close it.
- An idle connection the server has closed is noticed (the loop reports the hang-up) and never
  reused; one idle longer than ``keepalive_seconds`` is closed when next taken.
- A request that met a reused connection the server had just closed, before any byte of a
  reply, is sent once more on a new connection when its method is idempotent (RFC 9112 9.3.1,
  as aiohttp does).
- At most ``max_connections`` exchanges are in flight per origin; more wait up to the pool
  time-out. A connection is opened only when no idle one is left, so open connections never
  exceed that number.
- Request headers are refused (nothing is sent) when a name or value holds a control
  character: no header injection. ``Host`` is the URL's unless given; ``Content-Length`` is
  always the body's own; a given ``Transfer-Encoding`` is dropped (bodies are sent whole).
- A reply body is refused past ``max_body`` bytes, as received and again once decoded, so a
  compressed bomb stops at the cap; a reply head that has not ended within ``MAX_HEAD`` bytes
  is refused too.

Failures raise the httpx exception of the same meaning, as ``proxy.transports`` does:

    refused, unreachable, DNS or TLS failure      -> httpx.ConnectError
    no connection within the connect time-out     -> httpx.ConnectTimeout
    no free slot within the pool time-out         -> httpx.PoolTimeout
    no byte of the reply within the read time-out -> httpx.ReadTimeout
    hang-up before or during the reply, not HTTP,
    a reply head past MAX_HEAD                    -> httpx.RemoteProtocolError
    a Content-Encoding that does not decode       -> httpx.DecodingError
    a control character in a request header       -> httpx.LocalProtocolError
    a reply body past the cap                     -> ReplyTooLarge (``exchange``)

Not supported (none is used towards an upstream): HTTP/2, proxies, following redirects,
cookies, ``Expect: 100-continue``, protocol upgrades, streamed request bodies.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import zlib
from collections.abc import Iterable, Mapping
from typing import NamedTuple, cast

import httptools
import httpx

from proxy.asgi_http import merged_headers
from proxy.transports import ReplyTooLarge

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_MANAGED = frozenset({"host", "content-length", "transfer-encoding"})
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""Control characters no header name or value may hold (tab is allowed), as aiohttp checks."""
_TARGET_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
MAX_HEAD = 1024 * 1024
"""Bytes a reply may take to finish its status line and headers (the body sharing its reads
counts too, so this is a bound on memory, not a header-size rule): past it, the connection is
closed. llhttp itself puts no limit on header size."""

Reply = tuple[int, list[tuple[str, str]], bytes]
"""What ``exchange`` answers: status, merged headers, decoded body."""


class Target(NamedTuple):
    """Where a URL sends a request: the pool key, how to connect, the request line's target
    and the ``Host`` header."""

    origin: tuple[str, str, int]
    host: str
    port: int
    tls: bool
    path: str
    host_header: str


@functools.lru_cache(maxsize=256)
def target_of(url: str) -> Target:
    """``url`` split for sending; worked out once per distinct URL."""
    parsed = httpx.URL(url)
    scheme = parsed.scheme
    if scheme not in ("http", "https") or not parsed.host:
        raise httpx.UnsupportedProtocol(f"not an http:// or https:// URL: {scheme}")
    tls = scheme == "https"
    default_port = 443 if tls else 80
    port = parsed.port or default_port
    host = parsed.host
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    path = parsed.raw_path.decode("ascii") or "/"
    if _TARGET_FORBIDDEN.search(path):
        raise httpx.LocalProtocolError("request target holds a space or control character")
    return Target((scheme, host, port), host, port, tls, path, host_header)


def request_head(
    method: str, target: Target, headers: Iterable[tuple[str, str]], body: bytes
) -> bytes:
    """The request line and header block, refused when a header holds a control character."""
    fields: list[str] = []
    host = target.host_header
    for name, value in headers:
        lowered = name.lower()
        if lowered in _MANAGED:
            if lowered == "host":
                host = value
            continue
        fields.append(f"{name}: {value}")
    fields.append(f"host: {host}")
    if body or method in _BODY_METHODS:
        fields.append(f"content-length: {len(body)}")
    if _FORBIDDEN.search("".join(fields)) or _TARGET_FORBIDDEN.search(method):
        raise httpx.LocalProtocolError("a request header holds a control character")
    return (f"{method} {target.path} HTTP/1.1\r\n" + "\r\n".join(fields) + "\r\n\r\n").encode()


def decoded(body: bytes, content_encoding: str, max_body: int) -> bytes:
    """``body`` with its ``Content-Encoding`` undone (last applied, first undone); refused
    once the decoded size passes ``max_body``."""
    for coding in reversed(content_encoding.lower().split(",")):
        coding = coding.strip()
        if coding in ("", "identity"):
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, max_body)
        elif coding == "deflate":  # zlib-wrapped as the RFC says, or raw as some servers send
            try:
                body = _inflate(body, zlib.MAX_WBITS, max_body)
            except httpx.DecodingError:
                body = _inflate(body, -zlib.MAX_WBITS, max_body)
        else:
            raise httpx.DecodingError(f"unsupported content-encoding {coding!r}")
    return body


def _inflate(data: bytes, wbits: int, max_body: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, max_body + 1)
    except zlib.error as exc:
        raise httpx.DecodingError(f"reply body does not decode: {exc}") from None
    if len(out) > max_body:
        raise ReplyTooLarge(max_body)
    if not inflater.eof:
        raise httpx.DecodingError("compressed reply body is cut short")
    return out


RawReply = tuple[int, list[tuple[bytes, bytes]], bytes]


class _Connection(asyncio.Protocol):
    """One keep-alive connection. ``start`` sends a request; the parser's callbacks collect
    the reply and settle the future ``start`` returned."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.replied = False  # a byte of a reply to the current request arrived
        self.reusable = False  # the current reply is complete and allows keep-alive
        self._waiter: asyncio.Future[RawReply] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []
        self._size = 0
        self._head_size = 0  # bytes received before the reply's head was complete
        self._max_body = 0
        self._head_only = False
        self._headers_done = False
        self._complete = False
        self._read_timeout: float | None = None
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def start(
        self, head: bytes, *, max_body: int, head_only: bool, read_timeout: float | None
    ) -> asyncio.Future[RawReply]:
        """Send one request (head and body in ``head``); the future settles with the reply."""
        assert self._transport is not None
        self._headers = []
        self._chunks = []
        self._size = self._head_size = 0
        self._max_body = max_body
        self._head_only = head_only
        self._headers_done = self._complete = self.replied = self.reusable = False
        self._waiter = waiter = self._loop.create_future()
        if read_timeout is not None:
            self._read_timeout = read_timeout
            self._last_read = self._loop.time()
            self._timer = self._loop.call_at(self._last_read + read_timeout, self._read_deadline)
        self._transport.write(head)
        return waiter

    def rest(self) -> None:
        """The exchange is over and the connection goes back to the pool."""
        self._waiter = None
        self.idle_since = self._loop.time()

    def now(self) -> float:
        return self._loop.time()

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.abort()

    # asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes nobody asked for: the stream cannot be trusted
            self.close()
            return
        self.replied = True
        if self._timer is not None:
            self._last_read = self._loop.time()
        if not self._headers_done:
            self._head_size += len(data)
            if self._head_size > MAX_HEAD:
                self._fail(httpx.RemoteProtocolError(f"reply head longer than {MAX_HEAD} bytes"))
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"upstream reply is not HTTP/1.1: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and self._until_close():
            self._finish(keep_alive=False)
        elif self.replied:
            self._fail(httpx.RemoteProtocolError("upstream hung up in the middle of its reply"))
        else:
            self._fail(httpx.RemoteProtocolError("upstream closed the connection without a reply"))

    # httptools callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._complete:  # a second reply to one request: never reuse this connection
            self.reusable = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        if self._head_only and self._parser.get_status_code() >= 200:
            self._finish(keep_alive=False)  # the parser would wait for the body HEAD lacks

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._max_body:
            self._fail(ReplyTooLarge(self._max_body))
            return
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._parser.get_status_code() < 200:  # 1xx: the reply itself follows
            self._headers = []
            self._headers_done = False
            return
        self._finish(keep_alive=self._parser.should_keep_alive())

    # --------------------------------------------------------------------------------------
    def _finish(self, *, keep_alive: bool) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        self._complete = True
        self.reusable = keep_alive and not self._head_only and not self.closed
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        waiter.set_result((self._parser.get_status_code(), self._headers, body))

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def _read_deadline(self) -> None:
        self._timer = None
        limit = self._read_timeout
        waiter = self._waiter
        if limit is None or waiter is None or waiter.done():
            return
        due = self._last_read + limit
        if self._loop.time() >= due:
            self._fail(httpx.ReadTimeout(f"upstream sent nothing for {limit}s"))
        else:  # bytes came since the timer was set: wait out the rest from the last one
            self._timer = self._loop.call_at(due, self._read_deadline)

    def _until_close(self) -> bool:
        """The reply's body runs to the end of the connection: no length, not chunked."""
        if self._parser.get_status_code() in (204, 304) or self._head_only:
            return False
        for name, _ in self._headers:
            if name.lower() in (b"content-length", b"transfer-encoding"):
                return False
        return True


class _Pool:
    """The connections to one origin: the idle ones (most recent last) and the exchange slots."""

    __slots__ = ("idle", "open", "slots")

    def __init__(self, limit: int) -> None:
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(limit)
        self.open = True


class Http1Transport(httpx.AsyncBaseTransport):
    """A pool per origin, created on first use inside the running event loop (see the module
    docstring). ``max_body`` caps replies read for ``handle_async_request``."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive_seconds: float = 30.0,
        max_body: int = 16 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive = keepalive_seconds
        self._max_body = max_body
        self._ssl = ssl_context
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        timeouts: Mapping[str, float | None],
        max_body: int,
    ) -> Reply:
        """One request, answered as (status, headers, decoded body); see the module docstring."""
        status, raw, content = await self._send(
            method, target_of(url), headers.items(), body, timeouts, max_body
        )
        merged = merged_headers(raw)
        encoding = merged.get("content-encoding")
        if encoding is not None:
            content = decoded(content, encoding, max_body)
        return status, list(merged.items()), content

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        status, raw, content = await self._send(
            request.method,
            target_of(str(request.url)),
            request.headers.multi_items(),
            body,
            request.extensions.get("timeout", {}),
            self._max_body,
        )
        return httpx.Response(
            status,
            headers=raw,
            stream=httpx.ByteStream(content),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.open = False
            for connection in pool.idle:
                connection.close()
            pool.idle.clear()

    # --------------------------------------------------------------------------------------
    async def _send(
        self,
        method: str,
        target: Target,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        timeouts: Mapping[str, float | None],
        max_body: int,
    ) -> RawReply:
        head = request_head(method, target, headers, body)
        if body:
            head += body
        pool = self._pool(target.origin)
        slots = pool.slots
        if slots.locked():
            try:
                await asyncio.wait_for(slots.acquire(), timeouts.get("pool"))
            except TimeoutError:
                raise httpx.PoolTimeout("no upstream connection free in time") from None
        else:
            await slots.acquire()
        try:
            connection = self._idle(pool)
            if connection is not None:
                try:
                    return await self._round_trip(
                        pool, connection, head, method, timeouts, max_body
                    )
                except httpx.RemoteProtocolError:
                    # the server closed it as it was reused: once more on a new connection
                    if connection.replied or method not in IDEMPOTENT:
                        raise
            connection = await self._connect(target, timeouts.get("connect"))
            return await self._round_trip(pool, connection, head, method, timeouts, max_body)
        finally:
            slots.release()

    async def _round_trip(
        self,
        pool: _Pool,
        connection: _Connection,
        head: bytes,
        method: str,
        timeouts: Mapping[str, float | None],
        max_body: int,
    ) -> RawReply:
        waiter = connection.start(
            head, max_body=max_body, head_only=method == "HEAD", read_timeout=timeouts.get("read")
        )
        try:
            return await waiter
        finally:
            if connection.reusable and pool.open:
                connection.rest()
                self._rest(pool, connection)
            else:
                connection.close()

    def _rest(self, pool: _Pool, connection: _Connection) -> None:
        idle = pool.idle
        idle.append(connection)
        oldest = idle[0]
        if connection.idle_since - oldest.idle_since > self._keepalive:
            del idle[0]  # the bottom of the stack is never taken while traffic is steady
            oldest.close()

    def _idle(self, pool: _Pool) -> _Connection | None:
        idle = pool.idle
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            if connection.idle_since + self._keepalive < connection.now():
                connection.close()
                continue
            return connection
        return None

    def _pool(self, origin: tuple[str, str, int]) -> _Pool:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new event loop: the old one's are unusable
            self._pools = {}
            self._loop = loop
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool(self._max_connections)
        return pool

    async def _connect(self, target: Target, connect_timeout: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if target.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            async with asyncio.timeout(connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    target.host,
                    target.port,
                    ssl=context,
                    server_hostname=target.host if context is not None else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"no connection to {target.host_header} within {connect_timeout}s"
            ) from None
        except OSError as exc:  # refused, unreachable, DNS, TLS
            raise httpx.ConnectError(f"{target.host_header}: {exc}") from None
        return connection
