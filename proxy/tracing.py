"""OpenTelemetry tracing (``tracing:`` in the config), imported only when enabled: with
tracing off, nothing of OpenTelemetry is loaded and the request path is untouched. It needs
the ``otel`` extra (``pip install 'rosetta-proxy[otel]'``).

Spans of one request (names, then what they carry; never a credential, a token, a body or a
query string)::

    <METHOD> <dialect>:<route>   SERVER  http.request.method, url.path, http.route,
                                         http.response.status_code, rosetta.route,
                                         rosetta.inbound_dialect, rosetta.backend,
                                         rosetta.upstream_dialect, rosetta.operation,
                                         rosetta.outcome, rosetta.request_id
      decode                     INTERNAL rosetta.dialect, rosetta.operation | rosetta.outcome
      backend                    INTERNAL rosetta.backend, rosetta.upstream_dialect,
                                         rosetta.operation, rosetta.outcome
        upstream <METHOD>        CLIENT  one per HTTP exchange with an upstream (a login
                                         first, retries): http.request.method, server.address,
                                         server.port, url.path, http.response.status_code
      encode                     INTERNAL rosetta.dialect

W3C trace context: a caller's ``traceparent`` / ``tracestate`` make the request span a child
of the caller's span (its sampling decision is kept); each upstream exchange carries a
``traceparent`` naming its own CLIENT span, so the upstream continues the same trace.
A failure of Rosetta or an upstream (``internal``, ``upstream_*``) marks the request span as
an error; a caller's error (bad request, unauthenticated, overloaded, ...) does not.

How it hooks in without touching the request path when off: ``build_runtime`` builds a
``TracedGateway`` (a ``Gateway`` that opens the request span around the normal flow), wraps
each inbound translator (decode and encode spans) and handler (backend span), and wraps each
upstream's HTTP transport (upstream spans and ``traceparent`` injection).

The provider is private to the runtime (the global OpenTelemetry provider is left alone),
its span processor is started with the runtime (``start``) and flushed and stopped with it
(``shutdown``), so ``rosetta check`` and the parent of ``--workers`` start no threads.
Exporters: ``otlp`` (OTLP over HTTP/protobuf, batched; ``endpoint`` or the standard
``OTEL_EXPORTER_OTLP_*`` variables) and ``console`` (one JSON line per span on stdout).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import Message, Receive, Scope, Send

from proxy.gateway import Gateway, Inbound
from proxy.router import Router
from proxy.settings import TracingSettings
from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    Handler,
    HttpRequest,
    HttpResponse,
    RosettaError,
    Translator,
    UpstreamChannel,
)

# failures of Rosetta or an upstream; everything else is the caller's and not a span error
SERVER_FAILURES = frozenset(
    {
        ErrorKind.INTERNAL,
        ErrorKind.UPSTREAM_UNAVAILABLE,
        ErrorKind.UPSTREAM_TIMEOUT,
        ErrorKind.UPSTREAM_ERROR,
    }
)
_TRACE_HEADERS = (b"traceparent", b"tracestate")


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + os.linesep


class Tracing:
    """A tracer provider for one runtime, and the wrappers that put spans on its path."""

    def __init__(self, settings: TracingSettings) -> None:
        self.settings = settings
        self.provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
            resource=Resource.create({"service.name": settings.service_name}),
            shutdown_on_exit=False,
        )
        self.tracer = self.provider.get_tracer("rosetta")
        self.propagator = TraceContextTextMapPropagator()
        self._processor: SpanProcessor | None = None

    def _exporter(self) -> SpanExporter:
        if self.settings.exporter == "console":
            return ConsoleSpanExporter(out=sys.stdout, formatter=_one_line)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=self.settings.endpoint, headers=dict(self.settings.headers) or None
        )

    def start(self) -> None:
        """Start exporting (a batch processor starts its thread here, not at build time)."""
        if self._processor is not None:
            return
        exporter = self._exporter()
        self._processor = (
            SimpleSpanProcessor(exporter)
            if self.settings.exporter == "console"
            else BatchSpanProcessor(exporter)
        )
        self.provider.add_span_processor(self._processor)

    async def shutdown(self) -> None:
        """Flush what is queued and stop; off the event loop (an export may block)."""
        await anyio.to_thread.run_sync(self.provider.shutdown)

    # wrappers -----------------------------------------------------------------------------
    def translator(self, inner: Translator) -> Translator:
        return TracedTranslator(inner, self.tracer)

    def handler(self, inner: Handler, backend: str, upstream_dialect: str) -> Handler:
        tracer = self.tracer
        attributes = {"rosetta.backend": backend, "rosetta.upstream_dialect": upstream_dialect}

        async def traced(request: CanonicalRequest) -> CanonicalResponse:
            with tracer.start_as_current_span(
                "backend", attributes=attributes, record_exception=False
            ) as span:
                span.set_attribute("rosetta.operation", request.operation.value)
                response = await inner(request)
                _outcome(span, response.error)
                return response

        return traced

    def transport(
        self, inner: httpx.AsyncBaseTransport, backend: str, dialect: str
    ) -> httpx.AsyncBaseTransport:
        return TracedTransport(inner, self, backend, dialect)

    def gateway(self, router: Router[Inbound], *, max_body: int, **options: Any) -> TracedGateway:
        return TracedGateway(router, tracing=self, max_body=max_body, **options)


def _outcome(span: Span, error: RosettaError | None) -> None:
    span.set_attribute("rosetta.outcome", error.kind.value if error is not None else "ok")
    if error is not None and error.kind in SERVER_FAILURES:
        span.set_status(Status(StatusCode.ERROR, error.kind.value))


class TracedGateway(Gateway):
    """The gateway inside a SERVER span continuing the caller's trace context."""

    def __init__(self, router: Router[Inbound], *, tracing: Tracing, **options: Any) -> None:
        super().__init__(router, **options)
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracing = self.tracing
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _TRACE_HEADERS
        }
        parent = tracing.propagator.extract(carrier) if carrier else None
        method: str = scope["method"]
        path: str = scope["path"]
        attributes: dict[str, str] = {"http.request.method": method, "url.path": path}
        match = self.router.match(method, path)
        if match is None:
            route = "unmatched"
        else:
            inbound = match.target
            route = f"{inbound.translator.name}:{match.route_name}"
            attributes["rosetta.inbound_dialect"] = inbound.translator.name
            attributes["rosetta.backend"] = inbound.backend
            attributes["rosetta.upstream_dialect"] = inbound.upstream_dialect
        attributes["http.route"] = attributes["rosetta.route"] = route
        with tracing.tracer.start_as_current_span(
            f"{method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
        ) as span:

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            await super().__call__(scope, receive, traced_send)


class TracedTranslator(Translator):
    """An inbound translator whose decode and encode run in their own spans; it also notes
    the operation and the outcome on the request span."""

    def __init__(self, inner: Translator, tracer: trace.Tracer) -> None:
        super().__init__(inner.options)
        self.inner = inner
        self._tracer = tracer
        # the dialect's own description, so the gateway, metrics and logs see the same dialect
        for attribute in (
            "name",
            "routes",
            "error_table",
            "inbound_operations",
            "outbound_operations",
        ):
            setattr(self, attribute, getattr(inner, attribute))
        self._attributes = {"rosetta.dialect": inner.name}

    def decode_request(self, request: HttpRequest) -> CanonicalRequest:
        root = trace.get_current_span()
        with self._tracer.start_as_current_span(
            "decode",
            attributes=self._attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                decoded = self.inner.decode_request(request)
            except RosettaError as error:
                span.set_attribute("rosetta.outcome", error.kind.value)
                raise
            except Exception as exc:  # a translator bug: the gateway logs it
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            span.set_attribute("rosetta.operation", decoded.operation.value)
        root.set_attribute("rosetta.operation", decoded.operation.value)
        return decoded

    def encode_response(
        self, response: CanonicalResponse, request: CanonicalRequest | None, http: HttpRequest
    ) -> HttpResponse:
        root = trace.get_current_span()
        _outcome(root, response.error)
        request_id = http.headers.get("x-request-id")
        if request_id:
            root.set_attribute("rosetta.request_id", request_id)
        with self._tracer.start_as_current_span(
            "encode", attributes=self._attributes, record_exception=False
        ):
            return self.inner.encode_response(response, request, http)

    # the outbound side is the inner translator's (an inbound wrapper never uses it)
    def encode_request(self, request: CanonicalRequest, upstream: UpstreamChannel) -> HttpRequest:
        return self.inner.encode_request(request, upstream)

    def decode_response(
        self, response: HttpResponse, request: CanonicalRequest
    ) -> CanonicalResponse:
        return self.inner.decode_response(response, request)

    async def call_upstream(
        self, request: CanonicalRequest, upstream: UpstreamChannel
    ) -> CanonicalResponse:
        return await self.inner.call_upstream(request, upstream)


class _SpanEndingStream(httpx.AsyncByteStream):
    """An upstream reply's body; the exchange's span ends when the body is closed."""

    def __init__(self, inner: httpx.AsyncByteStream, span: Span) -> None:
        self._inner = inner
        self._span = span

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._span.end()


class TracedTransport(httpx.AsyncBaseTransport):
    """An upstream transport that opens a CLIENT span per exchange and sends its
    ``traceparent``."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, tracing: Tracing, backend: str, dialect: str
    ) -> None:
        self.inner = inner
        self._tracer = tracing.tracer
        self._propagator = tracing.propagator
        self._attributes = {"rosetta.backend": backend, "rosetta.upstream_dialect": dialect}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        span = self._tracer.start_span(
            f"upstream {request.method}",
            kind=SpanKind.CLIENT,
            attributes={
                **self._attributes,
                "http.request.method": request.method,
                "server.address": url.host,
                "server.port": url.port or (443 if url.scheme == "https" else 80),
                "url.path": url.path,  # never the query string: it may carry credentials
            },
        )
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        for name, value in carrier.items():
            request.headers[name] = value
        try:
            reply = await self.inner.handle_async_request(request)
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
            raise
        span.set_attribute("http.response.status_code", reply.status_code)
        if reply.status_code >= 500:
            span.set_status(Status(StatusCode.ERROR, str(reply.status_code)))
        stream = reply.stream
        if not isinstance(stream, httpx.AsyncByteStream):  # not a streamed reply: done now
            span.end()
            return reply
        return httpx.Response(
            reply.status_code,
            headers=reply.headers,
            stream=_SpanEndingStream(stream, span),
            extensions=reply.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
