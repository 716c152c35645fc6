"""CPU per upstream exchange of each HTTP client Rosetta could put under its upstreams, alone:
a ``GET`` of the benchmark's GeminiDB list reply from the bench nginx, the body read whole,
``--concurrency`` in flight on uvloop, the process's CPU time divided by the exchanges (best
of ``--rounds``). The numbers behind the choice of ``proxy/http1.py`` as the default
transport (docs/performance.md):

    httptools   Rosetta's pool (``transport: httptools``), its direct ``exchange``
    aiohttp     aiohttp's client as the hand-written proxy (row 4) uses it
    aiohttp-tr  Rosetta's aiohttp transport (``transport: aiohttp``), its direct ``exchange``
    httpx       httpx's own transport (``transport: httpx``)

``python -m bench.clients [--requests N] [--rounds R] [--concurrency C] [--only NAME ...]``
(needs nginx: ``bench/setup`` installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import uvloop

from bench import payloads
from bench.callers import UPSTREAM_TOKEN
from bench.inprocess import cpu_per_call
from bench.nginx import start_upstream
from proxy.http1 import Http1Transport
from proxy.transports import AiohttpTransport

Fetch = Callable[[], Awaitable[bytes]]
TIMEOUTS = {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 10.0}
MAX_BODY = 16 * 1024 * 1024
HEADERS = {"x-auth-token": UPSTREAM_TOKEN, "accept": "application/json", "user-agent": "bench"}


async def cpu_per_exchange(fetch: Fetch, *, requests: int, rounds: int, concurrency: int) -> float:
    """The best round's CPU microseconds per exchange, after a check and a warm-up."""
    first = await fetch()
    if first.count(b'"id"') < payloads.SESSION_COUNT:
        raise RuntimeError(f"unexpected reply: {first[:300]!r}")
    return await cpu_per_call(fetch, requests=requests, rounds=rounds, concurrency=concurrency)


async def measure(name: str, url: str, args: argparse.Namespace) -> float:
    options = {"requests": args.requests, "rounds": args.rounds, "concurrency": args.concurrency}
    if name in ("httptools", "aiohttp-tr"):
        transport = Http1Transport() if name == "httptools" else AiohttpTransport()

        async def direct() -> bytes:
            _, _, body = await transport.exchange(
                "GET", url, HEADERS, b"", timeouts=TIMEOUTS, max_body=MAX_BODY
            )
            return body

        try:
            return await cpu_per_exchange(direct, **options)
        finally:
            await transport.aclose()
    if name == "aiohttp":
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

            async def plain() -> bytes:
                async with session.get(url, headers=HEADERS) as reply:
                    return await reply.read()

            return await cpu_per_exchange(plain, **options)
    async with httpx.AsyncClient() as client:

        async def default() -> bytes:
            return (await client.get(url, headers=HEADERS)).content

        return await cpu_per_exchange(default, **options)


CLIENTS = ("httptools", "aiohttp", "aiohttp-tr", "httpx")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=8000, help="per round (default 8000)")
    parser.add_argument("--rounds", type=int, default=5, help="best of (default 5)")
    parser.add_argument("--concurrency", type=int, default=8, help="in flight (default 8)")
    parser.add_argument("--only", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="rosetta-clients-"))
    workdir.chmod(0o755)  # nginx's workers read the static reply from here
    upstream = start_upstream(workdir, UPSTREAM_TOKEN, "1")
    url = f"{upstream.url}/v3/{payloads.PROJECT_ID}/instances/{payloads.INSTANCE_ID}/sessions"
    try:
        for name in args.only:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                cpu = runner.run(measure(name, url, args))
            print(f"{name:12} {cpu:7.1f} us CPU per exchange", flush=True)
    finally:
        upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
