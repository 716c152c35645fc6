"""Logging: structlog, JSON lines in production and a readable console on a terminal. A
redaction processor masks every value whose key names a secret, at any depth, so passwords,
tokens, ``Authorization``, ``X-Auth-Token``, ``presto_password`` and secret keys never reach
a log line even if a caller of the logger passes them by mistake.

The access log (one line per request) is the only line written on every request. In JSON
format it skips structlog's bound-logger machinery (~30 us a line) and does what the same
processors would do to the same event dict itself (``access``): the line is identical, for
~3 us. Two of those steps are cheaper than structlog's: the timestamp formats the date and
time of day once per second, and the secret check skips keys the gateway's own lines carry
(``ACCESS_FIELDS``, none of them a secret); a line with any other key is redacted in full.
Lines are written once per event-loop turn, all the lines of that turn in one write, so a
busy server makes one system call for several requests; outside an event loop, and at exit,
they are written at once."""

from __future__ import annotations

import asyncio
import atexit
import datetime
import functools
import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

MASK = "***"
_SECRET_MARKERS = ("password", "token", "secret", "authorization", "cookie", "signature")


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    """Keys repeat on every log line, so the answer is remembered per key."""
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if _is_secret_key(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event):
        if key != "event" and _is_secret_key(key):
            event[key] = MASK
        elif isinstance(event[key], dict | list | tuple):
            event[key] = redact(event[key])
    return event


def _orjson_dumps(value: Any, **_kwargs: Any) -> str:
    return orjson.dumps(value, default=str).decode("utf-8")


ACCESS_FIELDS = frozenset(
    {
        "request_id",
        "method",
        "route",
        "client",
        "inbound",
        "backend",
        "upstream",
        "operation",
        "status",
        "outcome",
        "duration_ms",
        "upstream_ms",
        "event",
        "level",
        "timestamp",
    }
)
"""The keys of the gateway's access lines (and the three every line gets): names no secret
hides behind, each holding a number, a string or null."""


class UtcTimestamp:
    """The time now as structlog's ``TimeStamper(fmt="iso", utc=True)`` writes it
    (``2026-12-05T01:24:09.123456Z``; no fraction when it is zero), with the date and time of
    day formatted once per second rather than on every line."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        # whole nanoseconds, cut to microseconds as datetime.now() does (rounding down)
        second, nanos = divmod(time.time_ns(), 1_000_000_000)
        if second != self._second:
            moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
            self._prefix, self._second = moment.strftime("%Y-%m-%dT%H:%M:%S"), second
        micro = nanos // 1000
        return f"{self._prefix}.{micro:06d}Z" if micro else self._prefix + "Z"


class _JsonAccessLines:
    """Writes access lines as the configured structlog chain renders them in JSON: the same
    steps in the same order, the lines of one event-loop turn written and flushed together at
    the end of the turn (see the module docstring)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.timestamp = UtcTimestamp()
        self.pending: list[str] = []

    def write(self, fields: dict[str, Any]) -> None:
        structlog.contextvars.merge_contextvars(None, "info", fields)
        fields["event"] = "request"
        fields["level"] = "info"
        fields["timestamp"] = self.timestamp()
        if not fields.keys() <= ACCESS_FIELDS:
            redact_secrets(None, "info", fields)
        self.pending.append(_orjson_dumps(fields))
        if len(self.pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop running: now
                self.flush()

    def flush(self) -> None:
        if self.pending:
            lines, self.pending = self.pending, []
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


_access_lines: _JsonAccessLines | None = None
_access_log = structlog.get_logger("rosetta.access")


def access(fields: dict[str, Any]) -> None:
    """One access-log line (``event`` ``request``, level info) of ``fields``."""
    lines = _access_lines
    if lines is None:  # console format, or info lines filtered out
        _access_log.info("request", **fields)
    else:
        lines.write(fields)


def flush_access_lines() -> None:
    """Write the access lines still waiting for the end of their event-loop turn."""
    if _access_lines is not None:
        _access_lines.flush()


atexit.register(flush_access_lines)


def configure(fmt: str = "auto", level: str = "info") -> None:
    """Set up structlog for this process; safe to call more than once."""
    global _access_lines
    flush_access_lines()
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    stamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    threshold = logging.getLevelNamesMapping()[level.upper()]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if use_console
        else structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamper,
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    fast = not use_console and threshold <= logging.INFO
    _access_lines = _JsonAccessLines(sys.stderr) if fast else None
