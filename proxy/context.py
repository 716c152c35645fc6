"""Request-scoped context shared along one request's path without threading it through every
call: the request id (sent upstream and logged) and the time spent waiting for upstreams."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("rosetta_request_id", default="")
upstream_seconds: ContextVar[list[float] | None] = ContextVar(
    "rosetta_upstream_seconds", default=None
)


def record_upstream_time(seconds: float) -> None:
    """Add one upstream exchange's duration to the current request's total."""
    spent = upstream_seconds.get()
    if spent is not None:
        spent.append(seconds)
