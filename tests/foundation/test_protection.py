"""Upstream protection stages around a scripted upstream handler: the breaker opens after
repeated failures, fails fast, probes and closes; retries only repeat idempotent operations;
the concurrency cap answers overloaded."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from proxy.protection import BreakerState, CircuitBreaker, ConcurrencyCap, Retry
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    Operation,
    RosettaError,
)


class ScriptedUpstream:
    """Fails with ``kind`` while ``failing`` is true; counts calls per operation."""

    def __init__(self, kind: ErrorKind = ErrorKind.UPSTREAM_UNAVAILABLE) -> None:
        self.kind = kind
        self.failing = True
        self.calls: list[Operation] = []

    async def __call__(self, request: CanonicalRequest) -> CanonicalResponse:
        self.calls.append(request.operation)
        if self.failing:
            raise RosettaError(self.kind, "scripted failure")
        return CanonicalResponse(request.operation)


def req(operation: Operation = Operation.LIST) -> CanonicalRequest:
    return CanonicalRequest(operation, dialect="rosetta")


async def outcome(handler: Callable[..., object], operation: Operation = Operation.LIST) -> str:
    try:
        await handler(req(operation))  # type: ignore[misc]
    except RosettaError as error:
        return error.message
    return "ok"


@pytest.mark.anyio
async def test_breaker_opens_fails_fast_probes_and_closes() -> None:
    upstream = ScriptedUpstream()
    state = BreakerState()
    breaker = CircuitBreaker(upstream, name="up", threshold=3, cool_down=0.2, state=state)
    for _ in range(3):
        assert await outcome(breaker) == "scripted failure"
    assert state.status == "open"
    assert "circuit open" in await outcome(breaker)
    assert len(upstream.calls) == 3  # failing fast: the upstream was not called
    await anyio.sleep(0.25)
    assert await outcome(breaker) == "scripted failure"  # the probe fails: open again
    assert state.status == "open" and len(upstream.calls) == 4
    await anyio.sleep(0.25)
    upstream.failing = False
    assert await outcome(breaker) == "ok"  # the probe succeeds: closed
    assert state.status == "closed" and state.failures == 0
    assert await outcome(breaker) == "ok"


@pytest.mark.anyio
async def test_breaker_ignores_caller_errors() -> None:
    upstream = ScriptedUpstream(ErrorKind.UNAUTHENTICATED)
    state = BreakerState()
    breaker = CircuitBreaker(upstream, name="up", threshold=2, cool_down=10, state=state)
    for _ in range(5):
        await outcome(breaker)
    assert state.status == "closed" and len(upstream.calls) == 5


@pytest.mark.anyio
@pytest.mark.parametrize(
    "operation",
    [Operation.KILL, Operation.KILL_ALL, Operation.LOGIN, Operation.LOGOUT, Operation.ALTER],
)
async def test_retry_never_repeats_a_non_idempotent_operation(operation: Operation) -> None:
    upstream = ScriptedUpstream()
    retry = Retry(upstream, attempts=5, backoff=0.001)
    assert await outcome(retry, operation) == "scripted failure"
    assert upstream.calls == [operation]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "operation", [Operation.LIST, Operation.GET, Operation.CONNECTIONS, Operation.PING]
)
async def test_retry_repeats_idempotent_operations_on_unavailable(operation: Operation) -> None:
    upstream = ScriptedUpstream()
    retry = Retry(upstream, attempts=3, backoff=0.001)
    assert await outcome(retry, operation) == "scripted failure"
    assert upstream.calls == [operation] * 3


@pytest.mark.anyio
async def test_retry_does_not_repeat_timeouts() -> None:
    upstream = ScriptedUpstream(ErrorKind.UPSTREAM_TIMEOUT)
    retry = Retry(upstream, attempts=3, backoff=0.001)
    await outcome(retry)
    assert len(upstream.calls) == 1


@pytest.mark.anyio
async def test_concurrency_cap_answers_overloaded() -> None:
    gate = anyio.Event()

    async def slow(request: CanonicalRequest) -> CanonicalResponse:
        await gate.wait()
        return CanonicalResponse(request.operation)

    cap = ConcurrencyCap(slow, limit=2, name="up")
    results: list[str] = []

    async def one() -> None:
        results.append(await outcome(cap))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(one)
        tasks.start_soon(one)
        await anyio.sleep(0.05)
        with pytest.raises(RosettaError) as refused:
            await cap(req())
        assert refused.value.kind is ErrorKind.OVERLOADED
        gate.set()
    assert results == ["ok", "ok"] and cap.in_flight == 0
