"""The dialect gateway, a pure ASGI app: route by path -> read the bounded body -> decode in the
caller's dialect -> canonical pipeline -> encode in the caller's dialect. Whatever fails, the
caller gets its own dialect's envelope; the access log gets one line per request."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from os import urandom

import structlog
from starlette.types import Receive, Scope, Send

from proxy import context, logs
from proxy.asgi_http import read_body, request_from_scope, send_response
from proxy.metrics import Metrics
from proxy.router import Router
from translators.codec import error_to_json
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    Handler,
    HttpRequest,
    HttpResponse,
    Operation,
    RosettaError,
    Translator,
)
from translators.wire import json_response

_log = structlog.get_logger("rosetta.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class Inbound:
    """A dialect callers speak, wired to the handler that answers it."""

    translator: Translator
    handler: Handler
    backend: str
    upstream_dialect: str


class Gateway:
    def __init__(
        self,
        router: Router[Inbound],
        *,
        max_body: int,
        access_log: bool = True,
        metrics: Metrics | None = None,
    ) -> None:
        self.router = router
        self.max_body = max_body
        self.access_log = access_log
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        spent: list[float] = []
        context.upstream_seconds.set(spent)
        http = request_from_scope(scope)
        supplied = http.headers.get("x-request-id", "")
        request_id = supplied if _REQUEST_ID.match(supplied) else urandom(16).hex()
        http.headers["x-request-id"] = request_id
        context.request_id.set(request_id)
        match = self.router.match(http.method, http.path)
        if match is None:
            error = RosettaError(ErrorKind.NOT_FOUND, f"no dialect serves {http.path}")
            await send_response(
                send,
                json_response(404, {"error": error_to_json(error)}),
                [("x-request-id", request_id)],
            )
            unmatched = CanonicalResponse(Operation.PING, error=error)
            self._finish(request_id, http, None, "", None, 404, started, spent, unmatched)
            return
        inbound = match.target
        http.path_params = match.params
        request: CanonicalRequest | None = None
        try:
            http.body = await read_body(receive, http.headers.get("content-length"), self.max_body)
            if not match.method_allowed:
                raise RosettaError(
                    ErrorKind.BAD_REQUEST,
                    f"method {http.method} is not allowed on {http.path}",
                    context={"http_status": 405},
                )
            request = inbound.translator.decode_request(http)
            request.client_address = request.client_address or http.client
            response = await inbound.handler(request)
        except RosettaError as error:
            response = CanonicalResponse(Operation.PING, error.request_id, error=error)
        except Exception:
            _log.exception("decode_failure", dialect=inbound.translator.name, path=http.path)
            if self.metrics:
                self.metrics.translator_failures.labels(inbound.translator.name, "decode").inc()
            internal = RosettaError(ErrorKind.INTERNAL, "internal error; see the server log")
            response = CanonicalResponse(Operation.PING, error=internal)
        if request is None and response.error is not None and response.request_id is None:
            response.request_id = response.error.request_id
        rendered = self._encode(inbound.translator, response, request, http)
        await send_response(send, rendered, [("x-request-id", request_id)])
        self._finish(
            request_id,
            http,
            inbound,
            match.route_name,
            request,
            rendered.status,
            started,
            spent,
            response,
        )

    def _encode(
        self,
        translator: Translator,
        response: CanonicalResponse,
        request: CanonicalRequest | None,
        http: HttpRequest,
    ) -> HttpResponse:
        try:
            rendered = translator.encode_response(response, request, http)
        except Exception:
            _log.exception("encode_failure", dialect=translator.name, path=http.path)
            if self.metrics:
                self.metrics.translator_failures.labels(translator.name, "encode").inc()
            return self._encode_internal_error(translator, response, http)
        if response.error is not None and rendered.status == 429:
            retry_after = response.error.context.get("retry_after")
            if isinstance(retry_after, int):  # set by the rate limit (proxy.ratelimit)
                # a new list: a translator may render from a shared header list
                rendered.headers = [*rendered.headers, ("retry-after", str(retry_after))]
        return rendered

    def _encode_internal_error(
        self, translator: Translator, response: CanonicalResponse, http: HttpRequest
    ) -> HttpResponse:
        """The answer could not be rendered: say so in the caller's own envelope, without the
        data that failed; only if even that fails, in the canonical one."""
        error = RosettaError(ErrorKind.INTERNAL, "internal error; see the server log")
        try:
            return translator.encode_response(
                CanonicalResponse(response.operation, error=error), None, http
            )
        except Exception:
            _log.exception("encode_failure", dialect=translator.name, path=http.path)
            return json_response(500, {"error": error_to_json(error)})

    def _finish(
        self,
        request_id: str,
        http: HttpRequest,
        inbound: Inbound | None,
        route_name: str,
        request: CanonicalRequest | None,
        status: int,
        started: float,
        upstream_spent: list[float],
        response: CanonicalResponse | None = None,
    ) -> None:
        """One access-log line and the metrics of a finished request."""
        total = time.perf_counter() - started
        upstream = sum(upstream_spent)
        error = response.error if response is not None else None
        outcome = error.kind.value if error else "ok"
        dialect = inbound.translator.name if inbound else ""
        upstream_dialect = inbound.upstream_dialect if inbound else ""
        operation = request.operation.value if request else ""
        if self.metrics is not None:
            m = self.metrics
            route = f"{dialect}:{route_name}" if inbound else "unmatched"
            m.count_request(route, dialect, upstream_dialect, operation, outcome)
            m.observe_own_time(dialect, upstream_dialect, max(0.0, total - upstream))
            if upstream_spent:
                m.observe_upstream_time(inbound.backend if inbound else "", upstream)
            if error is not None and error.kind.value.startswith("upstream_") and inbound:
                m.upstream_errors.labels(inbound.backend, error.kind.value).inc()
        if not self.access_log:
            return
        logs.access(
            {
                "request_id": request_id,
                "method": http.method,
                "route": http.path,
                "client": http.client,
                "inbound": dialect or None,
                "backend": inbound.backend if inbound else None,
                "upstream": upstream_dialect or None,
                "operation": operation or None,
                "status": status,
                "outcome": outcome,
                "duration_ms": round(total * 1000, 3),
                "upstream_ms": round(upstream * 1000, 3),
            }
        )
