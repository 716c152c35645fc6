"""The canonical request pipeline: a backend is a ``Handler`` (canonical request in, canonical
response out) and each stage wraps one handler in another. ``build`` assembles the stages in
the fixed order below, outermost first, so the data flow reads top to bottom."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import structlog

from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    Handler,
    RosettaError,
)

Stage = Callable[[Handler], Handler]
_log = structlog.get_logger("rosetta.pipeline")


def errors_as_responses(inner: Handler) -> Handler:
    """Any failure becomes ``response.error``: the caller always gets its own envelope."""

    async def handle(request: CanonicalRequest) -> CanonicalResponse:
        try:
            return await inner(request)
        except RosettaError as error:
            return CanonicalResponse(request.operation, request.request_id, error=error)
        except Exception:
            _log.exception("backend_failure", operation=request.operation.value)
            internal = RosettaError(ErrorKind.INTERNAL, "internal error; see the server log")
            return CanonicalResponse(request.operation, request.request_id, error=internal)

    return handle


def measured(inner: Handler) -> Handler:
    """Fills ``elapsed_ms`` with the backend's time unless the backend reported its own."""

    async def handle(request: CanonicalRequest) -> CanonicalResponse:
        started = time.perf_counter()
        response = await inner(request)
        if not response.elapsed_ms:
            response.elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        return response

    return handle


DEFAULT_STAGES: tuple[Stage, ...] = (errors_as_responses, measured)


def build(backend: Handler, stages: Sequence[Stage] = DEFAULT_STAGES) -> Handler:
    handler = backend
    for stage in reversed(stages):
        handler = stage(handler)
    return handler
