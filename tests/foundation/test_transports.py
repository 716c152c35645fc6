"""The aiohttp-backed httpx transport behaves like httpx's own at the boundary: replies come
through intact (gzip decoded by httpx), and every network failure raises the httpx exception
that the upstream backend maps to a canonical kind."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from proxy.transports import AiohttpTransport
from tests.support.faulty import FaultyUpstream
from tests.support.servers import free_port


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        payload = gzip.compress(
            b'{"echo": "' + body + b'", "ua": "' + self.headers.get("x-t", "").encode() + b'"}'
        )
        self.send_response(201)
        self.send_header("content-type", "application/json")
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


def client(**timeouts: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=AiohttpTransport(), timeout=httpx.Timeout(timeouts.get("t", 2.0))
    )


@pytest.mark.anyio
async def test_round_trip_with_gzip_and_headers(echo_url: str) -> None:
    async with client() as http:
        for _ in range(3):  # the pooled connection is reused
            reply = await http.post(echo_url + "/x", content=b"hello", headers={"x-t": "v1"})
            assert reply.status_code == 201
            assert reply.json() == {"echo": "hello", "ua": "v1"}


@pytest.mark.anyio
async def test_refused_connection_is_connect_error() -> None:
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{free_port()}/")


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
    behaviour: str, expected: type[Exception]
) -> None:
    with FaultyUpstream(behaviour, hang_seconds=5) as faulty:
        async with client(t=0.5) as http:
            with pytest.raises(expected):
                reply = await http.get(faulty.url + "/")
                await reply.aread()
