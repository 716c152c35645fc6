"""CPU per request of Rosetta's ASGI app and of the hand-written proxy (row 4), each driven
in this process, without uvicorn or wrk, against the benchmark's nginx upstream.

Both apps answer the same FairCom ``listSessions`` request (Rosetta with a token it issued at
``createSession``, translating to the GeminiDB upstream, as row 6a does), ``--concurrency``
at a time, on uvloop as under ``rosetta serve``, and the process's CPU time is divided by the
requests answered; the best of ``--rounds`` rounds is reported. With no server, socket to
the caller or load generator sharing the two cores, a change to Rosetta's per-request work
shows as a steadier number than ``make bench`` gives (a few us apart between runs, where
``make bench`` rows differ by up to 30%). The numbers leave out what both pay to uvicorn, so
their ratio is not row 6a's.

``make bench-inprocess`` or ``python -m bench.inprocess [--requests N] [--rounds R]
[--concurrency C] [--no-access-log] [--only rosetta|handwritten]`` (needs nginx and aiohttp:
``bench/setup`` installs them). Rosetta's JSON log lines go to
/dev/null, written as a server writes them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson
import uvloop

from bench import payloads
from bench.callers import ADMIN_PASSWORD, ADMIN_USER, CALLER_TOKEN, UPSTREAM_TOKEN
from bench.nginx import start_upstream
from bench.run import rosetta_config

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Message, Receive, Send], Awaitable[None]]


async def call(app: App, body: bytes) -> bytes:
    """One ``POST /api`` through ``app``; the response body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api",
        "raw_path": b"/api",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    chunks: list[bytes] = []

    async def receive() -> Message:
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # the caller never goes away
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(chunks)


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    """The app started (ASGI lifespan) for the duration of the block."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})

    async def serve() -> None:
        await app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put
        )

    task = asyncio.create_task(serve())
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"app did not start: {started}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


async def cpu_per_request(
    app: App, body: bytes, *, requests: int, rounds: int, concurrency: int
) -> float:
    """The best round's CPU microseconds per request, after a check and a warm-up."""
    first = orjson.loads(await call(app, body))
    sessions = first.get("result", {}).get("sessions") if isinstance(first, dict) else None
    if not isinstance(sessions, list) or len(sessions) < payloads.SESSION_COUNT:
        raise RuntimeError(f"unexpected answer: {str(first)[:300]}")
    return await cpu_per_call(
        lambda: call(app, body), requests=requests, rounds=rounds, concurrency=concurrency
    )


async def cpu_per_call(
    once: Callable[[], Awaitable[object]], *, requests: int, rounds: int, concurrency: int
) -> float:
    """The best round's CPU microseconds per call of ``once``, ``concurrency`` at a time,
    after a warm-up of a tenth of a round."""

    async def caller(count: int) -> None:
        for _ in range(count):
            await once()

    each = max(1, requests // concurrency)
    await asyncio.gather(*(caller(max(1, each // 10)) for _ in range(concurrency)))
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        await asyncio.gather(*(caller(each) for _ in range(concurrency)))
        best = min(best, (time.process_time() - started) / (each * concurrency) * 1e6)
    return best


def _list_body(token: str) -> bytes:
    return orjson.dumps(
        {"api": "admin", "action": "listSessions", "params": {}, "authToken": token, "requestId": 1}
    )


async def measure_rosetta(upstream_url: str, workdir: Path, args: argparse.Namespace) -> float:
    from proxy import logs
    from proxy.app import build_runtime, create_app
    from proxy.cli import resolve_secrets
    from proxy.gctune import tune_for_serving
    from proxy.settings import Settings

    config = rosetta_config(
        "faircom", "geminidb", upstream_url, workdir / "sessions.json", "memory", 1, args.access_log
    )
    settings = resolve_secrets(Settings.model_validate(config), announce=False)
    app = create_app(settings, runtime=build_runtime(settings))
    async with lifespan(app):
        tune_for_serving()  # as `rosetta serve` does once the app is built
        login = {
            "api": "admin",
            "action": "createSession",
            "params": {"username": ADMIN_USER, "password": ADMIN_PASSWORD},
            "requestId": 0,
        }
        created = orjson.loads(await call(app, orjson.dumps(login)))
        token = created.get("authToken") or created.get("result", {}).get("authToken")
        if not isinstance(token, str):
            raise RuntimeError(f"createSession failed: {created}")
        logs.flush_access_lines()
        return await cpu_per_request(
            app,
            _list_body(token),
            requests=args.requests,
            rounds=args.rounds,
            concurrency=args.concurrency,
        )


async def measure_handwritten(upstream_url: str, args: argparse.Namespace) -> float:
    os.environ.update(
        BENCH_UPSTREAM=upstream_url,
        BENCH_PROJECT_ID=payloads.PROJECT_ID,
        BENCH_INSTANCE_ID=payloads.INSTANCE_ID,
        BENCH_UPSTREAM_TOKEN=UPSTREAM_TOKEN,
        BENCH_CALLER_TOKEN=CALLER_TOKEN,
    )
    from bench.proxies import handwritten

    async with lifespan(handwritten.app):
        return await cpu_per_request(
            handwritten.app,
            _list_body(CALLER_TOKEN),
            requests=args.requests,
            rounds=args.rounds,
            concurrency=args.concurrency,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=4000, help="per round (default 4000)")
    parser.add_argument("--rounds", type=int, default=5, help="best of (default 5)")
    parser.add_argument("--concurrency", type=int, default=8, help="in flight (default 8)")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    parser.add_argument("--only", choices=["rosetta", "handwritten"], help="measure one app")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="rosetta-inprocess-"))
    workdir.chmod(0o755)  # nginx's workers read the static reply from here
    upstream = start_upstream(workdir, UPSTREAM_TOKEN, "1")
    from proxy import logs

    # Rosetta's log lines are written as a server writes them, to a sink
    sink = open(os.devnull, "w")  # noqa: SIM115  # open for the whole run
    stderr, sys.stderr = sys.stderr, sink
    try:
        logs.configure("json", "info")
        results: dict[str, float] = {}
        if args.only in (None, "rosetta"):
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results["rosetta"] = runner.run(measure_rosetta(upstream.url, workdir, args))
        if args.only in (None, "handwritten"):
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results["handwritten"] = runner.run(measure_handwritten(upstream.url, args))
    finally:
        sys.stderr = stderr
        sink.close()
        upstream.stop()
    for name, cpu in results.items():
        print(f"{name:12} {cpu:7.1f} us CPU per request")
    if len(results) == 2:
        print(f"rosetta / handwritten: {results['rosetta'] / results['handwritten']:.2f}x CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
