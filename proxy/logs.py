"""Logging: structlog, JSON lines in production and a readable console on a terminal. A
redaction processor masks every value whose key names a secret, at any depth, so passwords,
tokens, ``Authorization``, ``X-Auth-Token``, ``presto_password`` and secret keys never reach
a log line even if a caller of the logger passes them by mistake."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

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


def configure(fmt: str = "auto", level: str = "info") -> None:
    """Set up structlog for this process; safe to call more than once."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if use_console
        else structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
