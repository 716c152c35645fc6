"""Row 4 of ``make bench``: the best case a team writes by hand for one translation.
Starlette, one shared aiohttp client session with a keep-alive pool, orjson; served by
uvicorn with uvloop and httptools, like Rosetta.

FairCom ``listSessions`` in (``POST /api``), GeminiDB "list instance sessions" upstream,
FairCom envelope out; the same mapping as ``bench/njs/faircom_geminidb.js``::

    GeminiDB session {id, name, ...} -> FairCom {authToken: str(id), username: name,
                                                  description: ""}

Configured by environment: BENCH_UPSTREAM (base URL), BENCH_PROJECT_ID, BENCH_INSTANCE_ID,
BENCH_UPSTREAM_TOKEN (sent as X-Auth-Token), BENCH_CALLER_TOKEN (the authToken callers send).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

UPSTREAM_URL = (
    os.environ["BENCH_UPSTREAM"].rstrip("/")
    + f"/v3/{os.environ['BENCH_PROJECT_ID']}/instances/{os.environ['BENCH_INSTANCE_ID']}/sessions"
)
UPSTREAM_HEADERS = {"X-Auth-Token": os.environ["BENCH_UPSTREAM_TOKEN"]}
CALLER_TOKEN = os.environ["BENCH_CALLER_TOKEN"]
TOKEN_MESSAGE = (
    "'authToken' does not match any existing session. Use a valid 'authToken' "
    "or use 'createSession' to create a valid 'authToken'."
)
_client: dict[str, aiohttp.ClientSession] = {}


def reply(envelope: dict[str, Any]) -> Response:
    return Response(orjson.dumps(envelope), media_type="application/json")


def failure(request_id: Any, code: int, message: str, **extra: Any) -> Response:
    envelope: dict[str, Any] = {} if request_id is None else {"requestId": request_id}
    envelope.update(extra)
    envelope.update(result={}, errorCode=code, errorMessage=message)
    return reply(envelope)


async def api(request: Request) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return failure(None, -1, "request body is not JSON")
    if not isinstance(body, dict):
        return failure(None, -1, "request body must be a JSON object")
    request_id = body.get("requestId")
    if body.get("api") != "admin" or body.get("action") != "listSessions":
        return failure(request_id, -1, "only admin/listSessions is served here")
    if body.get("authToken") != CALLER_TOKEN:
        return failure(request_id, 12031, TOKEN_MESSAGE, authToken=body.get("authToken"))
    try:
        async with _client["session"].get(UPSTREAM_URL, headers=UPSTREAM_HEADERS) as upstream:
            raw = await upstream.read()
            status = upstream.status
    except aiohttp.ClientError as exc:
        return failure(request_id, -1, f"upstream unreachable: {type(exc).__name__}")
    if status != 200:
        return failure(request_id, -1, f"upstream answered HTTP {status}")
    data = orjson.loads(raw)
    sessions = [
        {"authToken": str(s["id"]), "username": s["name"], "description": ""}
        for node in data.get("node_sessions", ())
        for s in node.get("sessions", ())
    ]
    envelope: dict[str, Any] = {} if request_id is None else {"requestId": request_id}
    envelope.update(result={"sessions": sessions}, errorCode=0, errorMessage="")
    return reply(envelope)


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=60)
    _client["session"] = aiohttp.ClientSession(connector=connector)
    try:
        yield
    finally:
        await _client["session"].close()


async def healthz(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/api", api, methods=["POST"]),
        Route("/api/{rest:path}", api, methods=["POST"]),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
