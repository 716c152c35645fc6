"""An upstream whose every connection is played by a test's own function: a raw TCP server on
a free loopback port (threads, blocking sockets) for the wire-level cases of the HTTP client
(keep-alive, hang-ups between requests, informational replies, trickled bodies, stray bytes).

``ScriptedUpstream(play)`` calls ``play(channel)`` once per accepted connection in its own
thread; ``channel.request()`` reads the next request (``None`` once the client hung up),
``channel.send`` writes raw bytes. ``connections`` counts accepted connections, ``requests``
the requests read, ``open`` the connections not yet finished."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

_MAX_HEAD = 64 * 1024


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]  # names lower-case, in the order received
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


class Channel:
    """One accepted connection, as its ``play`` function sees it."""

    def __init__(self, sock: socket.socket, upstream: ScriptedUpstream, index: int) -> None:
        self.sock = sock
        self.index = index  # 0 for the first connection accepted, 1 for the next, ...
        self._upstream = upstream
        self._buffer = b""

    def request(self) -> Request | None:
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > _MAX_HEAD:
                return None
            chunk = self._recv()
            if not chunk:
                return None
            self._buffer += chunk
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        length = int(next((v for k, v in headers if k == "content-length"), "0"))
        while len(rest) < length:
            chunk = self._recv()
            if not chunk:
                return None
            rest += chunk
        self._buffer = rest[length:]
        with self._upstream._lock:
            self._upstream.requests += 1
        return Request(method, target, headers, rest[:length])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            return b""


def reply(
    status: int = 200,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    *,
    length: bool = True,
) -> bytes:
    """A raw reply; with ``Content-Length`` unless ``length`` is false."""
    lines = [f"HTTP/1.1 {status} X", *(f"{k}: {v}" for k, v in headers or [])]
    if length:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ScriptedUpstream:
    def __init__(
        self,
        play: Callable[[Channel], None],
        *,
        tls: ssl.SSLContext | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.play = play
        self.connections = 0
        self.requests = 0
        self.open = 0
        self._tls = tls
        self._timeout = timeout
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> ScriptedUpstream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                index = self.connections
                self.connections += 1
                self.open += 1
            threading.Thread(target=self._run, args=(conn, index), daemon=True).start()

    def _run(self, conn: socket.socket, index: int) -> None:
        try:
            conn.settimeout(self._timeout)
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            self.play(Channel(conn, self, index))
        except (OSError, ssl.SSLError):
            pass  # the client hung up, or refused the certificate
        finally:
            conn.close()
            with self._lock:
                self.open -= 1
