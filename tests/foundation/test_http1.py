"""The httptools connection pool at the wire: what it reuses and what it never reuses, what it
sends, and how each odd reply ends. Every case runs against a real socket server playing the
upstream (``tests.support.scripted``); the shared behaviour of both of Rosetta's transports
(gzip, body caps, faults) is in ``test_transports.py``."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import threading
import time
import zlib
from collections.abc import Iterator

import httpx
import pytest
import trustme

from proxy.http1 import MAX_HEAD, Http1Transport
from proxy.transports import ReplyTooLarge
from tests.support.scripted import Channel, ScriptedUpstream, reply
from tests.support.servers import free_port

TIMEOUTS = {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}


async def get(
    transport: Http1Transport,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    max_body: int = 1 << 20,
    **timeouts: float,
) -> tuple[int, list[tuple[str, str]], bytes]:
    return await transport.exchange(
        method, url, headers or {}, body, timeouts={**TIMEOUTS, **timeouts}, max_body=max_body
    )


def echo_target(channel: Channel) -> None:
    """Answers every request on the connection with its own target and the connection's
    number, keeping the connection open."""
    while (request := channel.request()) is not None:
        channel.send(reply(body=f"{request.target} on {channel.index}".encode()))


@pytest.fixture
async def transport() -> Iterator[Http1Transport]:
    pool = Http1Transport()
    yield pool  # type: ignore[misc]
    await pool.aclose()


@pytest.mark.anyio
async def test_one_connection_serves_requests_in_turn(transport: Http1Transport) -> None:
    with ScriptedUpstream(echo_target) as upstream:
        for n in range(5):
            status, _, body = await get(transport, f"{upstream.url}/r{n}?q=1")
            assert (status, body) == (200, f"/r{n}?q=1 on 0".encode())
        assert upstream.connections == 1


@pytest.mark.anyio
async def test_a_reply_that_says_close_is_not_reused(transport: Http1Transport) -> None:
    def closing(channel: Channel) -> None:
        if channel.request() is not None:
            channel.send(reply(body=b"once", headers=[("connection", "close")]))

    with ScriptedUpstream(closing) as upstream:
        for _ in range(3):
            assert (await get(transport, upstream.url))[2] == b"once"
        assert upstream.connections == 3


@pytest.mark.anyio
async def test_what_the_upstream_receives(transport: Http1Transport) -> None:
    seen = []

    def record(channel: Channel) -> None:
        while (request := channel.request()) is not None:
            seen.append(request)
            channel.send(reply())

    with ScriptedUpstream(record) as upstream:
        port = upstream.url.rsplit(":", 1)[1]
        sent = {"X-Token": "abc", "Content-Length": "999", "Transfer-Encoding": "chunked"}
        await get(transport, upstream.url + "/a/b%20c", method="POST", headers=sent, body=b"hi")
        await get(transport, upstream.url + "/x", method="POST")
        await get(transport, upstream.url + "/y", headers={"Host": "signed.example"})
    posted, empty, hosted = seen
    assert (posted.method, posted.target, posted.body) == ("POST", "/a/b%20c", b"hi")
    # the body's own length, the URL's host, no chunked framing the body does not have
    assert sorted(posted.headers) == sorted(
        [("x-token", "abc"), ("host", f"127.0.0.1:{port}"), ("content-length", "2")]
    )
    assert empty.header("content-length") == "0"  # a POST says its body is empty
    assert hosted.header("host") == "signed.example"  # a signed Host header is kept
    assert hosted.header("content-length") is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    "headers",
    [{"X-Token": "a\r\nX-Injected: 1"}, {"X-Token": "a\nb"}, {"X-Bad\r\nName": "v"}],
)
async def test_a_header_with_a_control_character_is_never_sent(
    transport: Http1Transport, headers: dict[str, str]
) -> None:
    with ScriptedUpstream(echo_target) as upstream:
        with pytest.raises(httpx.LocalProtocolError):
            await get(transport, upstream.url, headers=headers)
        assert upstream.connections == 0


@pytest.mark.anyio
async def test_chunked_and_until_close_bodies(transport: Http1Transport) -> None:
    def framing(channel: Channel) -> None:
        while (request := channel.request()) is not None:
            if request.target == "/chunked":
                channel.send(
                    reply(headers=[("transfer-encoding", "chunked")], length=False)
                    + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                )
            elif request.target == "/eof":  # no length: the body is all until the hang-up
                channel.send(reply(length=False) + b"all of ")
                time.sleep(0.05)
                channel.send(b"it")
                return
            else:
                channel.send(reply(body=f"{request.target} on {channel.index}".encode()))

    with ScriptedUpstream(framing) as upstream:
        assert (await get(transport, upstream.url + "/chunked"))[2] == b"hello world"
        assert (await get(transport, upstream.url + "/again"))[2] == b"/again on 0"
        assert (await get(transport, upstream.url + "/eof"))[2] == b"all of it"
        assert (await get(transport, upstream.url + "/after"))[2] == b"/after on 1"


@pytest.mark.anyio
async def test_an_informational_reply_is_skipped(transport: Http1Transport) -> None:
    def early_hints(channel: Channel) -> None:
        while channel.request() is not None:
            channel.send(b"HTTP/1.1 100 Continue\r\n\r\n" + reply(201, b"made"))

    with ScriptedUpstream(early_hints) as upstream:
        for _ in range(2):
            assert (await get(transport, upstream.url, method="POST", body=b"x"))[::2] == (
                201,
                b"made",
            )


@pytest.mark.anyio
async def test_a_head_reply_ends_with_its_headers(transport: Http1Transport) -> None:
    def head(channel: Channel) -> None:
        while channel.request() is not None:  # says 1000 bytes, sends none, as HEAD should
            channel.send(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")

    with ScriptedUpstream(head) as upstream:
        status, headers, body = await get(transport, upstream.url, method="HEAD", read=1.0)
        assert (status, body, dict(headers)["content-length"]) == (200, b"", "1000")


@pytest.mark.anyio
async def test_a_reused_connection_closed_by_the_server_is_retried_when_idempotent(
    transport: Http1Transport,
) -> None:
    """The keep-alive race: the server drops an idle connection just as a request goes out on
    it. A GET is sent again on a new connection; a POST is not (it may have been acted on)."""

    def one_per_connection(channel: Channel) -> None:
        request = channel.request()
        if request is not None:
            channel.send(reply(body=b"first"))
            channel.request()  # the next request on this connection: hang up unanswered

    with ScriptedUpstream(one_per_connection) as upstream:
        assert (await get(transport, upstream.url))[2] == b"first"
        assert (await get(transport, upstream.url))[2] == b"first"
        assert upstream.connections == 2
        with pytest.raises(httpx.RemoteProtocolError):
            await get(transport, upstream.url, method="POST", body=b"x")
        assert upstream.connections == 2


@pytest.mark.anyio
async def test_stray_bytes_after_a_reply_retire_the_connection(
    transport: Http1Transport,
) -> None:
    def chatty(channel: Channel) -> None:
        while (request := channel.request()) is not None:
            channel.send(reply(body=request.target.encode()) + reply(body=b"nobody asked"))

    with ScriptedUpstream(chatty) as upstream:
        for n in range(3):
            assert (await get(transport, f"{upstream.url}/{n}"))[2] == f"/{n}".encode()
        assert upstream.connections == 3


@pytest.mark.anyio
async def test_a_cancelled_exchange_never_hands_its_reply_to_the_next(
    transport: Http1Transport,
) -> None:
    def slow_first(channel: Channel) -> None:
        while (request := channel.request()) is not None:
            if request.target == "/slow":
                time.sleep(0.3)
            channel.send(reply(body=request.target.encode()))

    with ScriptedUpstream(slow_first) as upstream:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await get(transport, upstream.url + "/slow")
        await asyncio.sleep(0.4)  # the late reply has arrived by now
        assert (await get(transport, upstream.url + "/next"))[2] == b"/next"
        assert upstream.connections == 2


@pytest.mark.anyio
async def test_at_most_max_connections_are_open() -> None:
    def slow(channel: Channel) -> None:
        while channel.request() is not None:
            time.sleep(0.1)
            channel.send(reply(body=b"ok"))

    transport = Http1Transport(max_connections=2)
    try:
        with ScriptedUpstream(slow) as upstream:
            replies = await asyncio.gather(*(get(transport, upstream.url) for _ in range(6)))
            assert [body for _, _, body in replies] == [b"ok"] * 6
            assert upstream.connections == 2
    finally:
        await transport.aclose()


@pytest.mark.anyio
async def test_a_full_pool_waits_only_the_pool_time_out() -> None:
    release = threading.Event()

    def stuck(channel: Channel) -> None:
        if channel.request() is not None:
            release.wait(5)
            channel.send(reply(body=b"late"))

    transport = Http1Transport(max_connections=1)
    try:
        with ScriptedUpstream(stuck) as upstream:
            first = asyncio.create_task(get(transport, upstream.url))
            await asyncio.sleep(0.1)
            with pytest.raises(httpx.PoolTimeout):
                await get(transport, upstream.url, pool=0.2)
            release.set()
            assert (await first)[2] == b"late"
    finally:
        await transport.aclose()


@pytest.mark.anyio
async def test_an_idle_connection_past_its_keep_alive_is_replaced() -> None:
    transport = Http1Transport(keepalive_seconds=0.1)
    try:
        with ScriptedUpstream(echo_target) as upstream:
            assert (await get(transport, upstream.url + "/a"))[2] == b"/a on 0"
            await asyncio.sleep(0.3)
            assert (await get(transport, upstream.url + "/b"))[2] == b"/b on 1"
    finally:
        await transport.aclose()


@pytest.mark.anyio
async def test_the_read_time_out_is_between_bytes_not_for_the_whole_reply(
    transport: Http1Transport,
) -> None:
    def trickle(channel: Channel) -> None:
        if channel.request() is not None:
            channel.send(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
            for byte in b"slow!":
                time.sleep(0.15)
                channel.send(bytes([byte]))

    with ScriptedUpstream(trickle) as upstream:
        assert (await get(transport, upstream.url, read=0.4))[2] == b"slow!"
        with pytest.raises(httpx.ReadTimeout):
            await get(transport, upstream.url, read=0.1)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as RFC 9110 says
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw, as some servers send
        ("identity", lambda data: data),
    ],
)
async def test_content_encodings_are_decoded(
    transport: Http1Transport, encoding: str, encode: object
) -> None:
    data = b'{"sessions": []}' * 50
    payload = encode(data)  # type: ignore[operator]

    def encoded(channel: Channel) -> None:
        while channel.request() is not None:
            channel.send(reply(body=payload, headers=[("content-encoding", encoding)]))

    with ScriptedUpstream(encoded) as upstream:
        assert (await get(transport, upstream.url))[2] == data


@pytest.mark.anyio
async def test_a_compressed_bomb_stops_at_the_cap(transport: Http1Transport) -> None:
    bomb = gzip.compress(b"\0" * (20 << 20))  # 20 MB of zeros in ~20 kB

    def send_bomb(channel: Channel) -> None:
        while channel.request() is not None:
            channel.send(reply(body=bomb, headers=[("content-encoding", "gzip")]))

    with ScriptedUpstream(send_bomb) as upstream, pytest.raises(ReplyTooLarge):
        await get(transport, upstream.url, max_body=1 << 20)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (reply(body=b"x", headers=[("content-encoding", "br")]), httpx.DecodingError),
        (reply(body=gzip.compress(b"x" * 100)[:20], headers=[("content-encoding", "gzip")]),
         httpx.DecodingError),
        (b"SSH-2.0-OpenSSH_9.6\r\n", httpx.RemoteProtocolError),
        (b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
         httpx.RemoteProtocolError),
    ],
)  # fmt: skip
async def test_replies_that_cannot_be_read_raise_the_httpx_error(
    transport: Http1Transport, raw: bytes, expected: type[Exception]
) -> None:
    def answer(channel: Channel) -> None:
        if channel.request() is not None:
            channel.send(raw)
            channel.request()

    with ScriptedUpstream(answer) as upstream, pytest.raises(expected):
        await get(transport, upstream.url, read=1.0)


@pytest.mark.anyio
async def test_a_reply_head_that_never_ends_is_refused(transport: Http1Transport) -> None:
    def endless_headers(channel: Channel) -> None:
        if channel.request() is not None:
            channel.send(b"HTTP/1.1 200 OK\r\n")
            line = b"x-filler: " + b"a" * 8000 + b"\r\n"
            for _ in range(MAX_HEAD // len(line) + 10):
                channel.send(line)
            channel.request()  # and keep the connection open

    with ScriptedUpstream(endless_headers) as upstream, pytest.raises(httpx.RemoteProtocolError):
        await get(transport, upstream.url)


@pytest.mark.anyio
async def test_https_checks_the_upstream_certificate(authority: trustme.CA) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    with ScriptedUpstream(echo_target, tls=server) as upstream:
        assert upstream.url.startswith("https://")
        transport = Http1Transport(ssl_context=trusting)
        try:
            for n in range(2):
                assert (await get(transport, f"{upstream.url}/{n}"))[2] == f"/{n} on 0".encode()
        finally:
            await transport.aclose()
        default = Http1Transport()  # the system's trust store has never heard of this CA
        try:
            with pytest.raises(httpx.ConnectError):
                await get(default, upstream.url)
        finally:
            await default.aclose()


@pytest.mark.anyio
async def test_an_unreachable_upstream_is_a_connect_error(transport: Http1Transport) -> None:
    with pytest.raises(httpx.ConnectError):
        await get(transport, f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(httpx.ConnectError):
        await get(transport, "http://no-such-host.invalid/")
