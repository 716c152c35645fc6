"""Row 5 of ``make bench``: the naive proxy most teams write first. Starlette, one shared
``httpx.AsyncClient`` with its default transport, the standard library's JSON through
``request.json()`` / ``reply.json()`` / ``JSONResponse``. Same translation and configuration
as ``handwritten.py``."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

UPSTREAM_URL = (
    os.environ["BENCH_UPSTREAM"].rstrip("/")
    + f"/v3/{os.environ['BENCH_PROJECT_ID']}/instances/{os.environ['BENCH_INSTANCE_ID']}/sessions"
)
UPSTREAM_TOKEN = os.environ["BENCH_UPSTREAM_TOKEN"]
CALLER_TOKEN = os.environ["BENCH_CALLER_TOKEN"]
TOKEN_MESSAGE = (
    "'authToken' does not match any existing session. Use a valid 'authToken' "
    "or use 'createSession' to create a valid 'authToken'."
)
client = httpx.AsyncClient()


def failure(request_id: Any, code: int, message: str, **extra: Any) -> JSONResponse:
    envelope: dict[str, Any] = {} if request_id is None else {"requestId": request_id}
    envelope.update(extra)
    envelope.update(result={}, errorCode=code, errorMessage=message)
    return JSONResponse(envelope)


async def api(request: Request) -> JSONResponse:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return failure(None, -1, "request body is not JSON")
    if not isinstance(body, dict):
        return failure(None, -1, "request body must be a JSON object")
    request_id = body.get("requestId")
    if body.get("api") != "admin" or body.get("action") != "listSessions":
        return failure(request_id, -1, "only admin/listSessions is served here")
    if body.get("authToken") != CALLER_TOKEN:
        return failure(request_id, 12031, TOKEN_MESSAGE, authToken=body.get("authToken"))
    try:
        upstream = await client.get(UPSTREAM_URL, headers={"X-Auth-Token": UPSTREAM_TOKEN})
    except httpx.HTTPError as exc:
        return failure(request_id, -1, f"upstream unreachable: {type(exc).__name__}")
    if upstream.status_code != 200:
        return failure(request_id, -1, f"upstream answered HTTP {upstream.status_code}")
    data = upstream.json()
    sessions = [
        {"authToken": str(s["id"]), "username": s["name"], "description": ""}
        for node in data.get("node_sessions", [])
        for s in node.get("sessions", [])
    ]
    envelope: dict[str, Any] = {} if request_id is None else {"requestId": request_id}
    envelope.update(result={"sessions": sessions}, errorCode=0, errorMessage="")
    return JSONResponse(envelope)


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/api", api, methods=["POST"]),
        Route("/api/{rest:path}", api, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)
