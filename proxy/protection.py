"""Upstream protection as pipeline stages, each wrapping one upstream handler:

    concurrency cap  -> at most N requests in flight; the rest fail fast with ``overloaded``
    circuit breaker  -> after N consecutive upstream failures, fail fast for a cool-down,
                        then let one probe through; its success closes the circuit
    retry            -> idempotent operations only (list, get, connections, ping), on
                        ``upstream_unavailable``, with exponential backoff; never kill,
                        kill_all, login, logout or alter

Order (outermost first): cap, breaker, retry — a request retried and still failing counts
as one failure for the breaker, and a waiting retry holds its concurrency slot.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import anyio

from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    Handler,
    Operation,
    RosettaError,
)

IDEMPOTENT = frozenset({Operation.LIST, Operation.GET, Operation.CONNECTIONS, Operation.PING})
UPSTREAM_FAILURES = frozenset(
    {ErrorKind.UPSTREAM_UNAVAILABLE, ErrorKind.UPSTREAM_TIMEOUT, ErrorKind.UPSTREAM_ERROR}
)


class _Stage:
    def __init__(self, inner: Handler) -> None:
        self.inner = inner

    async def __call__(self, request: CanonicalRequest) -> CanonicalResponse:
        raise NotImplementedError


class ConcurrencyCap(_Stage):
    """At most ``limit`` requests in flight to upstream ``name``; the rest fail fast."""

    def __init__(self, inner: Handler, *, limit: int, name: str) -> None:
        super().__init__(inner)
        self.limit = limit
        self.name = name
        self.in_flight = 0

    async def __call__(self, request: CanonicalRequest) -> CanonicalResponse:
        if self.in_flight >= self.limit:
            raise RosettaError(
                ErrorKind.OVERLOADED,
                f"upstream {self.name} is at its limit of {self.limit} concurrent requests",
            )
        self.in_flight += 1
        try:
            return await self.inner(request)
        finally:
            self.in_flight -= 1


@dataclass
class BreakerState:
    """Shared by every request to one upstream; ``opened_at`` is ``None`` while closed."""

    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    @property
    def status(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.probing else "open"


class CircuitBreaker(_Stage):
    def __init__(
        self, inner: Handler, *, name: str, threshold: int, cool_down: float, state: BreakerState
    ) -> None:
        super().__init__(inner)
        self.name = name
        self.threshold = threshold
        self.cool_down = cool_down
        self.state = state

    async def __call__(self, request: CanonicalRequest) -> CanonicalResponse:
        state = self.state
        probe = False
        if state.opened_at is not None:
            waited = time.monotonic() - state.opened_at
            if waited < self.cool_down or state.probing:
                raise RosettaError(
                    ErrorKind.UPSTREAM_UNAVAILABLE,
                    f"upstream {self.name} is failing; circuit open, retry in "
                    f"{max(0.0, self.cool_down - waited):.1f}s",
                )
            state.probing = probe = True
        try:
            response = await self.inner(request)
        except RosettaError as error:
            self._record(error.kind in UPSTREAM_FAILURES, probe)
            raise
        except BaseException:
            if probe:
                state.probing = False
            raise
        self._record(response.error is not None and response.error.kind in UPSTREAM_FAILURES, probe)
        return response

    def _record(self, failed: bool, probe: bool) -> None:
        state = self.state
        if probe:
            state.probing = False
        if not failed:
            state.failures = 0
            state.opened_at = None
            return
        state.failures += 1
        if probe or state.failures >= self.threshold:
            state.opened_at = time.monotonic()


class Retry(_Stage):
    def __init__(self, inner: Handler, *, attempts: int, backoff: float) -> None:
        super().__init__(inner)
        self.attempts = attempts
        self.backoff = backoff

    async def __call__(self, request: CanonicalRequest) -> CanonicalResponse:
        if request.operation not in IDEMPOTENT:
            return await self.inner(request)
        attempt = 1
        while True:
            try:
                return await self.inner(request)
            except RosettaError as error:
                if error.kind is not ErrorKind.UPSTREAM_UNAVAILABLE or attempt >= self.attempts:
                    raise
            delay = self.backoff * (2 ** (attempt - 1))
            await anyio.sleep(delay * random.uniform(0.5, 1.0))
            attempt += 1


def protect(
    upstream: Handler,
    *,
    name: str,
    max_in_flight: int,
    breaker_threshold: int,
    breaker_cool_down: float,
    retry_attempts: int,
    retry_backoff: float,
    breaker_state: BreakerState,
) -> Handler:
    """The protection stages around one upstream, in their fixed order."""
    handler: Handler = upstream
    if retry_attempts > 1:
        handler = Retry(handler, attempts=retry_attempts, backoff=retry_backoff)
    if breaker_threshold > 0:
        handler = CircuitBreaker(
            handler,
            name=name,
            threshold=breaker_threshold,
            cool_down=breaker_cool_down,
            state=breaker_state,
        )
    if max_in_flight > 0:
        handler = ConcurrencyCap(handler, limit=max_in_flight, name=name)
    return handler
