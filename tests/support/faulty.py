"""A misbehaving upstream for fault tests: a raw TCP server on a free loopback port that
answers in one chosen bad way. Runs in threads; bounded; stops itself.

The behaviour can be switched while it runs (``set``), so one port can fail and then serve
good replies again: ``good`` relays each request to a real server of the right dialect
(``relay_to``, e.g. a ``rosetta emulate`` process) over keep-alive connections, ``gzip_good``
does the same with the reply gzip-encoded. The fault behaviours:

    refuse          the listening socket is closed: connections are refused
    hang            accept, read the request, never answer
    close           accept, read the request, hang up without a reply
    close_mid_body  promise 1000 bytes of body, send 10, hang up
    html500         HTTP 500 with an HTML page
    garbage         HTTP 200, application/json, invalid JSON
    wrong_envelope  HTTP 200, valid JSON that is no dialect's envelope
    gzip_corrupt    HTTP 200, Content-Encoding: gzip, a gzip header and a corrupt body
    huge            HTTP 200 with a 30 MB JSON body, streamed (``huge_sent`` counts what left)

``open_connections`` is how many client connections are open right now, ``connections`` how
many were ever accepted, ``requests`` how many requests were read."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import socket
import threading
import time
from types import TracebackType
from urllib.parse import urlsplit

BEHAVIOURS = (
    "hang",
    "html500",
    "garbage",
    "close_mid_body",
    "wrong_envelope",
    "close",
    "refuse",
    "gzip_corrupt",
    "huge",
    "good",
    "gzip_good",
)
HUGE_BYTES = 30 * 1024 * 1024
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}
_MAX_HEAD = 64 * 1024


class FaultyUpstream:
    def __init__(
        self,
        behaviour: str,
        *,
        hang_seconds: float = 30.0,
        relay_to: str | None = None,
        port: int = 0,
    ) -> None:
        self._check(behaviour, relay_to)
        self.behaviour = behaviour
        self.hang_seconds = hang_seconds
        self.relay_to = relay_to
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.port = self._listen(port)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._clients: set[socket.socket] = set()
        self.connections = 0
        self.requests = 0
        self.huge_sent = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._clients)

    def set(self, behaviour: str) -> None:
        """Switch behaviour; open client connections are dropped so nothing served under the
        old behaviour carries over."""
        self._check(behaviour, self.relay_to)
        if behaviour == "refuse" and self._sock is not None:
            listener, self._sock = self._sock, None
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        elif behaviour != "refuse" and self._sock is None:
            self._listen(self.port)
        self.behaviour = behaviour
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        self.wait_idle(at_most=0)

    def wait_idle(self, at_most: int = 0, timeout: float = 10.0) -> int:
        """Wait until no more than ``at_most`` client connections are open; the count."""
        deadline = time.monotonic() + timeout
        while self.open_connections > at_most and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.open_connections

    def __enter__(self) -> FaultyUpstream:
        self._thread.start()
        return self

    def __exit__(
        self, exc: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()

    @staticmethod
    def _check(behaviour: str, relay_to: str | None) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(behaviour)
        if behaviour in ("good", "gzip_good") and not relay_to:
            raise ValueError(f"{behaviour} needs relay_to")

    def _listen(self, port: int) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        sock.settimeout(0.1)
        self._sock = sock
        return int(sock.getsockname()[1])

    def _serve(self) -> None:
        while not self._stop.is_set():
            listener = self._sock
            if listener is None:  # refusing
                time.sleep(0.02)
                continue
            try:
                conn, _ = listener.accept()
            except OSError:  # a time-out, or the listener was closed to refuse
                continue
            self.connections += 1
            with self._lock:
                self._clients.add(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(10)
                buffer = b""
                while not self._stop.is_set():
                    request, buffer = _read_request(conn, buffer)
                    if request is None:
                        return
                    self.requests += 1
                    if not self._respond(conn, request):
                        return
        except OSError:
            return
        finally:
            with self._lock:
                self._clients.discard(conn)

    def _respond(self, conn: socket.socket, request: _Request) -> bool:
        """Answer one request; ``True`` to keep the connection for the next one."""
        behaviour = self.behaviour
        if behaviour == "hang":
            deadline = time.monotonic() + self.hang_seconds
            while time.monotonic() < deadline and not self._stop.is_set():
                if self.behaviour != "hang":
                    break
                time.sleep(0.05)
            return False
        if behaviour in ("close", "refuse"):
            return False
        if behaviour in ("good", "gzip_good"):
            status, headers, body = self._relay(request)
            if behaviour == "gzip_good":
                body = gzip.compress(body)
                headers.append(("content-encoding", "gzip"))
            conn.sendall(_http(status, headers, body, close=request.close))
            return not request.close
        if behaviour == "huge":
            self._huge(conn)
            return False
        conn.sendall(self._reply(behaviour))
        return False

    def _relay(self, request: _Request) -> tuple[int, list[tuple[str, str]], bytes]:
        assert self.relay_to is not None
        target = urlsplit(self.relay_to)
        client = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
        try:
            # the Host header is kept: a signed request (GeminiDB) signs it
            headers = {k: v for k, v in request.headers if k not in _HOP}
            headers.pop("accept-encoding", None)
            client.request(request.method, request.target, body=request.body, headers=headers)
            reply = client.getresponse()
            body = reply.read()
            kept = [(k.lower(), v) for k, v in reply.getheaders() if k.lower() not in _HOP]
            return reply.status, kept, body
        finally:
            client.close()

    def _huge(self, conn: socket.socket) -> None:
        head = (
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            f"content-length: {HUGE_BYTES}\r\nconnection: close\r\n\r\n"
        )
        conn.sendall(head.encode("ascii"))
        chunk = b" " * 65536
        sent = 0
        try:
            while sent < HUGE_BYTES and not self._stop.is_set():
                piece = chunk[: HUGE_BYTES - sent]
                conn.sendall(piece)
                sent += len(piece)
        finally:
            self.huge_sent = sent

    @staticmethod
    def _reply(behaviour: str) -> bytes:
        json = [("content-type", "application/json")]
        if behaviour == "html500":
            body = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
            return _http(500, [("content-type", "text/html")], body)
        if behaviour == "garbage":
            return _http(200, json, b'{"unterminated": [1, 2')
        if behaviour == "wrong_envelope":
            return _http(200, json, b'{"hello": "world", "items": [1, 2, 3]}')
        if behaviour == "gzip_corrupt":
            corrupt = gzip.compress(b'{"ok": true}')[:10] + b"\x00garbage that is not deflate"
            return _http(200, [*json, ("content-encoding", "gzip")], corrupt)
        # close_mid_body: promise 1000 bytes, send 10, hang up
        return (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
            b'{"partial"'
        )


class _Request:
    def __init__(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.close = any(k == "connection" and v.lower() == "close" for k, v in headers)


def _read_request(conn: socket.socket, buffer: bytes) -> tuple[_Request | None, bytes]:
    """One HTTP/1.1 request (Content-Length bodies) and what was read past it; ``None`` when
    the client closed the connection."""
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > _MAX_HEAD:
            return None, b""
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    length = next((int(v) for k, v in headers if k == "content-length" and v.isdigit()), 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        rest += chunk
    return _Request(method, target, headers, rest[:length]), rest[length:]


def _http(status: int, headers: list[tuple[str, str]], body: bytes, *, close: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status} X"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"content-length: {len(body)}")
    if close:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
