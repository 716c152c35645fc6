"""OpenTelemetry tracing: the span tree of one request (in-process, an in-memory exporter),
W3C trace context from the caller through Rosetta to a real upstream over real HTTP, the
console exporter in a real server process, and no OpenTelemetry at all when tracing is off."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from proxy.app import Runtime, build_runtime
from proxy.settings import parse_settings
from tests.conftest import ADMIN_PASSWORD, base_config
from tests.support.servers import ServerProcess, serve

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
CREDS = {"credentials": {"user": "admin", "password": ADMIN_PASSWORD}}


def traced_config(upstream_url: str, **tracing: Any) -> dict[str, Any]:
    return base_config(
        backends={"up": {"type": "upstream", "dialect": "rosetta", "url": upstream_url}},
        default_backend="up",
        tracing={"enabled": True, "exporter": "console", "service_name": "rosetta-test", **tracing},
    )


# in-process: the span tree -------------------------------------------------------------------
class Upstream:
    """A scripted rosetta-dialect upstream behind ``httpx.MockTransport``."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.reply = httpx.Response(200, json={"operation": "session.list", "sessions": []})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply


@pytest.fixture
async def traced() -> Any:
    upstream = Upstream()
    settings = parse_settings(traced_config("http://upstream.test"), "<test>")
    runtime = build_runtime(settings, transport=httpx.MockTransport(upstream))
    assert runtime.tracing is not None
    exporter = InMemorySpanExporter()
    runtime.tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    await runtime.start()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=runtime.gateway), base_url="http://rosetta"
    )
    yield client, upstream, exporter, runtime
    await client.aclose()
    await runtime.close()


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), [s.name for s in spans]
    return named


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@pytest.mark.anyio
async def test_one_request_is_one_span_tree_continuing_the_callers_trace(traced: Any) -> None:
    client, upstream, exporter, _ = traced
    reply = await client.post(
        "/rosetta/v1/session.list",
        json=CREDS,
        headers={"traceparent": TRACEPARENT, "x-request-id": "req-42"},
    )
    assert reply.status_code == 200
    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {"POST rosetta:operation", "decode", "backend", "upstream POST", "encode"}
    root = spans["POST rosetta:operation"]
    assert root.kind is SpanKind.SERVER and parent_id(root) == int(CALLER_SPAN, 16)
    for name in ("decode", "backend", "encode"):
        assert parent_id(spans[name]) == span_id(root)
    exchange = spans["upstream POST"]
    assert exchange.kind is SpanKind.CLIENT and parent_id(exchange) == span_id(spans["backend"])
    for span in spans.values():
        assert span.context is not None and span.context.trace_id == int(TRACE_ID, 16)
    assert dict(root.attributes or {}) == {
        "http.request.method": "POST",
        "url.path": "/rosetta/v1/session.list",
        "http.route": "rosetta:operation",
        "rosetta.route": "rosetta:operation",
        "rosetta.inbound_dialect": "rosetta",
        "rosetta.backend": "up",
        "rosetta.upstream_dialect": "rosetta",
        "rosetta.operation": "session.list",
        "rosetta.outcome": "ok",
        "rosetta.request_id": "req-42",
        "http.response.status_code": 200,
    }
    assert root.status.status_code is StatusCode.UNSET
    assert spans["backend"].attributes is not None
    assert spans["backend"].attributes["rosetta.outcome"] == "ok"
    assert exchange.attributes is not None
    assert exchange.attributes["server.address"] == "upstream.test"
    assert exchange.attributes["http.response.status_code"] == 200
    # the upstream continues the trace from Rosetta's CLIENT span
    sent = upstream.requests[0].headers["traceparent"]
    assert sent == f"00-{TRACE_ID}-{span_id(exchange):016x}-01"
    assert upstream.requests[0].headers["x-request-id"] == "req-42"
    # no credential in any span
    for span in spans.values():
        assert ADMIN_PASSWORD not in json.dumps(dict(span.attributes or {}))


@pytest.mark.anyio
async def test_without_a_traceparent_rosetta_starts_the_trace(traced: Any) -> None:
    client, upstream, exporter, _ = traced
    assert (await client.post("/rosetta/v1/session.list", json=CREDS)).status_code == 200
    spans = by_name(exporter.get_finished_spans())
    root = spans["POST rosetta:operation"]
    assert root.parent is None and root.context is not None
    assert upstream.requests[0].headers["traceparent"].split("-")[1] == (
        f"{root.context.trace_id:032x}"
    )


@pytest.mark.anyio
async def test_upstream_failures_mark_the_request_span_caller_errors_do_not(
    traced: Any,
) -> None:
    client, upstream, exporter, _ = traced
    upstream.reply = httpx.Response(200, content=b"<html>not json</html>")
    await client.post("/rosetta/v1/session.list", json=CREDS)
    failed = by_name(exporter.get_finished_spans())
    root = failed["POST rosetta:operation"]
    assert root.attributes is not None and root.attributes["rosetta.outcome"] == "upstream_error"
    assert root.status.status_code is StatusCode.ERROR
    exporter.clear()
    reply = await client.post("/rosetta/v1/session.list", content=b"{not json")
    assert reply.status_code == 400
    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {"POST rosetta:operation", "decode", "encode"}
    root = spans["POST rosetta:operation"]
    assert root.attributes is not None and root.attributes["rosetta.outcome"] == "bad_request"
    assert root.status.status_code is StatusCode.UNSET
    assert spans["decode"].attributes is not None
    assert spans["decode"].attributes["rosetta.outcome"] == "bad_request"


@pytest.mark.anyio
async def test_unmatched_paths_are_traced_too(traced: Any) -> None:
    client, _, exporter, _ = traced
    assert (await client.get("/nowhere")).status_code == 404
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET unmatched"
    assert span.attributes is not None and span.attributes["http.response.status_code"] == 404


def test_tracing_off_imports_no_opentelemetry() -> None:
    script = """
import sys, anyio, httpx
from proxy.app import build_runtime
from proxy.settings import parse_settings
from tests.conftest import base_config

async def main():
    settings = parse_settings(base_config(rate_limit={"enabled": True}), "<test>")
    runtime = build_runtime(settings)
    await runtime.start()
    transport = httpx.ASGITransport(app=runtime.gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
        reply = await client.post("/rosetta/v1/session.ping", json={})
        assert reply.status_code == 200, reply.text
    await runtime.close()

anyio.run(main)
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
print("loaded:", loaded)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert "loaded: []" in done.stdout


def test_runtime_without_start_exports_nothing_and_starts_no_thread() -> None:
    settings = parse_settings(traced_config("http://upstream.test", exporter="otlp"), "<test>")
    before = {t.ident for t in threading.enumerate()}
    runtime: Runtime = build_runtime(settings)  # what `rosetta check` does
    assert {t.ident for t in threading.enumerate()} == before
    assert runtime.tracing is not None


# over real HTTP: a real upstream receives the caller's trace ---------------------------------
class CaptureHandler(BaseHTTPRequestHandler):
    """A tiny rosetta-dialect upstream that records the headers of every request."""

    seen: list[dict[str, str]] = []
    exported: list[bytes] = []  # OTLP export bodies posted to /v1/traces

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        payload = self.rfile.read(length)
        if self.path == "/v1/traces":
            CaptureHandler.exported.append(payload)
        else:
            CaptureHandler.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = json.dumps({"operation": "session.ping"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def capture() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), CaptureHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def traced_server(
    tmp_path_factory: pytest.TempPathFactory, capture: str
) -> Iterator[ServerProcess]:
    server = serve(tmp_path_factory.mktemp("tracing"), traced_config(capture))
    yield server
    server.stop()


def console_spans(server: ServerProcess) -> list[dict[str, Any]]:
    spans = []
    for line in server.logs().splitlines():
        if line.startswith("{") and '"context"' in line:
            spans.append(json.loads(line))
    return spans


def test_traceparent_reaches_a_real_upstream_with_the_same_trace_id(
    traced_server: ServerProcess,
) -> None:
    CaptureHandler.seen.clear()
    reply = httpx.post(
        f"{traced_server.url}/rosetta/v1/session.ping",
        json={},
        headers={"traceparent": TRACEPARENT},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    (received,) = CaptureHandler.seen
    version, trace_id, parent, flags = received["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert parent != CALLER_SPAN  # Rosetta's own CLIENT span is the upstream's parent
    assert received["x-request-id"] == reply.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", received["x-request-id"])  # generated: 128 random bits
    # the console exporter wrote the same trace, one JSON line per span, in the real process;
    # the request's own span ends once the reply is sent, so it may be written just after it
    expected = {"POST rosetta:operation", "decode", "backend", "upstream POST", "encode"}
    deadline = time.monotonic() + 10
    while True:
        spans = [
            s for s in console_spans(traced_server) if s["context"]["trace_id"] == "0x" + TRACE_ID
        ]
        names = {s["name"] for s in spans}
        if names >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert names == expected
    client_span = next(s for s in spans if s["name"] == "upstream POST")
    assert client_span["context"]["span_id"] == "0x" + parent
    root = next(s for s in spans if s["name"] == "POST rosetta:operation")
    assert root["parent_id"] == "0x" + CALLER_SPAN
    assert root["resource"]["attributes"]["service.name"] == "rosetta-test"
    assert root["attributes"]["rosetta.operation"] == "session.ping"


def test_an_untraced_caller_still_gives_the_upstream_a_trace(
    traced_server: ServerProcess,
) -> None:
    CaptureHandler.seen.clear()
    reply = httpx.post(f"{traced_server.url}/rosetta/v1/session.ping", json={}, timeout=30)
    assert reply.status_code == 200
    (received,) = CaptureHandler.seen
    assert len(received["traceparent"].split("-")[1]) == 32
    assert received["traceparent"].split("-")[1] != TRACE_ID


@pytest.mark.anyio
async def test_otlp_exporter_sends_the_spans_to_the_collector(capture: str) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    CaptureHandler.exported.clear()
    settings = parse_settings(
        traced_config(capture, exporter="otlp", endpoint=f"{capture}/v1/traces"), "<test>"
    )
    runtime = build_runtime(settings)
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=runtime.gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://rosetta") as client:
            reply = await client.post(
                "/rosetta/v1/session.ping", json={}, headers={"traceparent": TRACEPARENT}
            )
            assert reply.status_code == 200
    finally:
        await runtime.close()  # flushes the batch to the collector
    exported = ExportTraceServiceRequest()
    for body in CaptureHandler.exported:
        exported.MergeFromString(body)
    spans = [
        span
        for resource in exported.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert {span.name for span in spans} == {
        "POST rosetta:operation",
        "decode",
        "backend",
        "upstream POST",
        "encode",
    }
    assert {span.trace_id.hex() for span in spans} == {TRACE_ID}
