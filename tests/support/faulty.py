"""A misbehaving upstream for fault tests: a raw TCP server on a free loopback port that
answers every connection in one chosen bad way. Runs in a thread; bounded; stops itself."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

BEHAVIOURS = ("hang", "html500", "garbage", "close_mid_body", "wrong_envelope", "close")


class FaultyUpstream:
    def __init__(self, behaviour: str, *, hang_seconds: float = 30.0) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(behaviour)
        self.behaviour = behaviour
        self.hang_seconds = hang_seconds
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.connections = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultyUpstream:
        self._thread.start()
        return self

    def __exit__(
        self, exc: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(65536)
            except OSError:
                return
            if self.behaviour == "hang":
                deadline = time.monotonic() + self.hang_seconds
                while time.monotonic() < deadline and not self._stop.is_set():
                    time.sleep(0.05)
                return
            if self.behaviour == "close":
                return
            conn.sendall(self._reply())

    def _reply(self) -> bytes:
        if self.behaviour == "html500":
            body = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
            return _http(500, "text/html", body)
        if self.behaviour == "garbage":
            return _http(200, "application/json", b'{"unterminated": [1, 2')
        if self.behaviour == "wrong_envelope":
            return _http(200, "application/json", b'{"hello": "world", "items": [1, 2, 3]}')
        # close_mid_body: promise 1000 bytes, send 10, hang up
        return (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
            b'{"partial"'
        )


def _http(status: int, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
