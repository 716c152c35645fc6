"""Both of Rosetta's upstream transports (the httptools pool, the default, and the
aiohttp-backed one) behave like httpx's own at the boundary: replies come through intact (gzip
decoded), and every network failure raises the httpx exception that the upstream backend maps
to a canonical kind. Both paths of each: under ``httpx.AsyncClient``, and ``exchange``, the
upstream backend's direct path, which must give the same answers. The httptools pool's own
wire-level cases are in ``test_http1.py``."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson
import pytest

from proxy.http1 import Http1Transport
from proxy.transports import AiohttpTransport, ReplyTooLarge
from tests.support.faulty import FaultyUpstream
from tests.support.servers import free_port


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/headers":  # the request's header lines, as received
            body = orjson.dumps([[name.lower(), value] for name, value in self.headers.items()])
        if self.path in ("/plain", "/headers"):  # the body back as is, with its length
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        payload = gzip.compress(
            b'{"echo": "' + body + b'", "ua": "' + self.headers.get("x-t", "").encode() + b'"}'
        )
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("Set-Cookie", "a=1; Path=/")
        self.send_header("Set-Cookie", "JSESSIONID=s2; HttpOnly")
        self.send_header("content-encoding", "gzip")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


Transport = Http1Transport | AiohttpTransport


@pytest.fixture(params=[Http1Transport, AiohttpTransport], ids=["httptools", "aiohttp"])
def make(request: pytest.FixtureRequest) -> Callable[[], Transport]:
    """A new transport of the kind under test."""
    kind: Callable[[], Transport] = request.param
    return kind


def client(make: Callable[[], Transport], **timeouts: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=make(), timeout=httpx.Timeout(timeouts.get("t", 2.0)))


@pytest.mark.anyio
async def test_round_trip_with_gzip_and_headers(
    echo_url: str, make: Callable[[], Transport]
) -> None:
    async with client(make) as http:
        for _ in range(3):  # the pooled connection is reused
            reply = await http.post(echo_url + "/x", content=b"hello", headers={"x-t": "v1"})
            assert reply.status_code == 201
            assert reply.json() == {"echo": "hello", "ua": "v1"}


TIMEOUTS = {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}


@pytest.mark.anyio
async def test_exchange_answers_as_httpx_does(echo_url: str, make: Callable[[], Transport]) -> None:
    transport = make()
    try:
        for _ in range(3):  # the pooled connection is reused
            status, headers, body = await transport.exchange(
                "POST", echo_url + "/x", {"x-t": "v1"}, b"hello", timeouts=TIMEOUTS, max_body=1000
            )
            assert status == 201
            assert orjson.loads(body) == {"echo": "hello", "ua": "v1"}
        async with httpx.AsyncClient(transport=make()) as http:
            reply = await http.post(echo_url + "/x", content=b"hello", headers={"x-t": "v1"})
        # names lower-case, repeated headers joined: what HttpResponse.header() reads
        assert headers == list(reply.headers.items())
        assert dict(headers)["set-cookie"] == "a=1; Path=/, JSESSIONID=s2; HttpOnly"
    finally:
        await transport.aclose()


@pytest.mark.anyio
async def test_exchange_stops_reading_past_the_body_cap(
    echo_url: str, make: Callable[[], Transport]
) -> None:
    transport = make()
    try:
        with pytest.raises(ReplyTooLarge):
            await transport.exchange(
                "POST", echo_url, {}, b"x" * 100, timeouts=TIMEOUTS, max_body=50
            )
    finally:
        await transport.aclose()


@pytest.mark.anyio
async def test_a_plain_body_of_known_length_is_read_up_to_the_cap(
    echo_url: str, make: Callable[[], Transport]
) -> None:
    """A body sent as is with its Content-Length: read whole within the cap, refused past it
    (a gzip body's size is known only once decoded: the test above)."""
    transport = make()
    try:
        body = b"y" * 70_000  # more than one read chunk
        status, _, received = await transport.exchange(
            "POST", echo_url + "/plain", {}, body, timeouts=TIMEOUTS, max_body=70_000
        )
        assert (status, received) == (200, body)
        with pytest.raises(ReplyTooLarge):
            await transport.exchange(
                "POST", echo_url + "/plain", {}, body, timeouts=TIMEOUTS, max_body=69_999
            )
    finally:
        await transport.aclose()


@pytest.mark.anyio
async def test_the_upstream_sees_the_headers_rosetta_sends_and_no_others(
    echo_url: str, make: Callable[[], Transport]
) -> None:
    """aiohttp adds no Accept, Accept-Encoding or User-Agent of its own to a request that has
    them (as every request from an upstream backend does), on either path."""
    sent = {"accept": "*/*", "accept-encoding": "gzip, deflate", "user-agent": "rosetta-test"}
    transport = make()
    try:
        _, _, body = await transport.exchange(
            "POST", echo_url + "/headers", {**sent, "x-t": "v1"}, b"", timeouts=TIMEOUTS,
            max_body=10_000,
        )  # fmt: skip
        async with httpx.AsyncClient(transport=make(), headers=sent) as http:
            reply = await http.post(echo_url + "/headers", headers={"x-t": "v1"})
    finally:
        await transport.aclose()
    for received in (orjson.loads(body), reply.json()):
        names = [name for name, _ in received]
        assert len(names) == len(set(names)), received
        assert {name: value for name, value in received if name in sent} == sent
        assert dict(received)["x-t"] == "v1"


@pytest.mark.anyio
async def test_refused_connection_is_connect_error(make: Callable[[], Transport]) -> None:
    async with client(make) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{free_port()}/")
    transport = make()
    try:
        with pytest.raises(httpx.ConnectError):
            url = f"http://127.0.0.1:{free_port()}/"
            await transport.exchange("GET", url, {}, b"", timeouts=TIMEOUTS, max_body=100)
    finally:
        await transport.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        ("hang", httpx.ReadTimeout),
        ("close_mid_body", httpx.RemoteProtocolError),
        ("close", httpx.RemoteProtocolError),
    ],
)
async def test_faults_raise_the_matching_httpx_exception(
    behaviour: str, expected: type[Exception], make: Callable[[], Transport]
) -> None:
    with FaultyUpstream(behaviour, hang_seconds=5) as faulty:
        async with client(make, t=0.5) as http:
            with pytest.raises(expected):
                reply = await http.get(faulty.url + "/")
                await reply.aread()
        transport = make()
        try:
            with pytest.raises(expected):
                await transport.exchange(
                    "GET",
                    faulty.url + "/",
                    {},
                    b"",
                    timeouts=dict.fromkeys(TIMEOUTS, 0.5),
                    max_body=1 << 20,
                )
        finally:
            await transport.aclose()
