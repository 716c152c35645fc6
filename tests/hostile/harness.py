"""Fire hostile requests at a real Rosetta over HTTP and check every answer: the caller's
dialect envelope with an allowed meaning, never a 5xx the dialect does not document, never a
traceback or HTML. Every request actually sent is counted per dialect (``TALLY``); the
counts are printed at the end of the run (``tests/hostile/conftest.py``)."""

from __future__ import annotations

import socket
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import httpx
import orjson

from tests.hostile.envelopes import EnvelopeError, Reading, read
from tests.support.servers import ServerProcess

#: dialect -> source ("generated" / "fixed") -> requests sent
TALLY: defaultdict[str, Counter[str]] = defaultdict(Counter)
#: dialect -> outcome ("ok" or an error kind) -> answers
OUTCOMES: defaultdict[str, Counter[str]] = defaultdict(Counter)
MAX_BODY = 1024 * 1024  # server.max_body_bytes default
REQUEST_TIMEOUT = 30.0
#: events of Rosetta's JSON log lines that mean a request hit a bug
FAILURE_EVENTS = frozenset({"decode_failure", "encode_failure", "backend_failure"})
#: levels of Rosetta's JSON log lines that must not appear after hostile input
FAILURE_LEVELS = frozenset({"error", "critical"})
#: what any other line (uvicorn's own, a traceback printed raw) must never contain
TEXT_ALARMS = ("Traceback", "Exception in ASGI application")


@dataclass
class Case:
    """One request: ``target`` is the path with its query string."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    allowed: frozenset[str] = frozenset()
    label: str = ""


class Firing:
    """A shared client for one dialect of one server."""

    def __init__(self, server: ServerProcess, dialect: str) -> None:
        self.server = server
        self.dialect = dialect
        self.client = httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT)
        self.outcomes: Counter[str] = Counter()

    def close(self) -> None:
        self.client.close()

    def fire(self, case: Case, *, source: str = "generated", chunked: bool = False) -> Reading:
        content: bytes | Iterator[bytes] | None = case.body
        if chunked and case.body is not None:
            content = _chunks(case.body)
        reply = self.client.request(case.method, case.target, headers=case.headers, content=content)
        TALLY[self.dialect][source] += 1
        return self.check(case, reply)

    def check(self, case: Case, reply: httpx.Response) -> Reading:
        path = case.target.split("?", 1)[0]
        try:
            reading = read(self.dialect, reply, path)
        except EnvelopeError as exc:
            raise AssertionError(
                f"{case.label}: {case.method} {case.target[:200]}: {exc}"
            ) from None
        self.outcomes[reading.outcome] += 1
        OUTCOMES[self.dialect][reading.outcome] += 1
        assert reading.outcome in case.allowed, (
            f"{case.label}: {case.method} {case.target[:200]} body={_clip(case.body)} "
            f"headers={case.headers}: meant {reading.outcome} ({reading.code}), "
            f"allowed {sorted(case.allowed)}; reply {reply.status_code} {reply.content[:300]!r}"
        )
        return reading

    def healthy(self) -> None:
        """The server still serves, and its log has no unhandled exception."""
        assert self.server.alive(), self.server.logs()[-4000:]
        assert self.client.get("/healthz").status_code == 200
        assert_clean_log(self.server)


def assert_clean_log(server: ServerProcess) -> None:
    """No line of the server's log reports a failure. JSON lines are judged by their ``event``,
    ``level`` and ``exception`` fields, not their text: an access line holds the path the
    caller sent, and hostile paths may spell anything, ``backend_failure`` included."""
    for line in server.logs().splitlines():
        entry = _json_line(line)
        if entry is None:
            alarms = [alarm for alarm in TEXT_ALARMS if alarm in line]
            assert not alarms, f"server log has {alarms[0]!r}: {line[:3000]}"
            continue
        assert (
            entry.get("event") not in FAILURE_EVENTS
            and entry.get("level") not in FAILURE_LEVELS
            and "exception" not in entry
        ), f"server log reports a failure: {line[:3000]}"


def _json_line(line: str) -> dict[str, object] | None:
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return entry if isinstance(entry, dict) else None


def _chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _clip(body: bytes | None) -> str:
    if body is None:
        return "None"
    return repr(body[:200]) + (f"...({len(body)} bytes)" if len(body) > 200 else "")


# raw sockets: what an HTTP client library will not send ------------------------------------
def raw_exchange(
    server: ServerProcess, head: str, body: bytes, *, read_reply: bool = True, wait: float = 30
) -> bytes:
    """Send ``head`` (request line and headers, without the blank line) and ``body`` exactly
    as given on a fresh connection; return everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        if not read_reply:
            return b""
        received: list[bytes] = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            received.append(chunk)
        return b"".join(received)


def parse_raw(data: bytes) -> httpx.Response:
    """The first HTTP/1.1 response in ``data`` as an ``httpx.Response``."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
    pairs = [(k.strip(), v.strip()) for k, v in headers]
    length = next((int(v) for k, v in pairs if k.lower() == "content-length"), len(rest))
    return httpx.Response(status, headers=pairs, content=rest[:length])


def tally_lines(dialects: Iterable[str]) -> list[str]:
    lines = []
    for dialect in dialects:
        counts = TALLY.get(dialect)
        if not counts:
            continue
        total = sum(counts.values())
        lines.append(
            f"hostile input, {dialect}: {total} requests sent "
            f"({counts['generated']} generated by hypothesis, {counts['fixed']} fixed cases)"
        )
        seen = ", ".join(f"{k} {v}" for k, v in sorted(OUTCOMES[dialect].items()))
        lines.append(f"    answered: {seen}")
    return lines
