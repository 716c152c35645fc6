"""The ASGI edge: builds an ``HttpRequest`` from a scope and a bounded body, and sends an
``HttpResponse``. The only module that touches raw ASGI messages for the gateway. Its header
reading (``merged_headers``) is also how the upstream transport reads replies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.types import Receive, Scope, Send

from translators.contract import ErrorKind, HttpRequest, HttpResponse, RosettaError


def merged_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Raw header pairs as ``httpx.Headers.items()`` gives them: lower-case names, a repeated
    header's values joined with ``", "``."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def request_from_scope(scope: Scope) -> HttpRequest:
    client = scope.get("client")
    return HttpRequest(
        method=scope["method"],
        path=scope["path"],
        query_string=scope.get("query_string", b"").decode("latin-1"),
        headers=merged_headers(scope["headers"]),
        scheme=scope.get("scheme", "http"),
        client=f"{client[0]}:{client[1]}" if client else "",
    )


async def read_body(receive: Receive, declared_length: str | None, limit: int) -> bytes:
    """The whole request body; payload_too_large past ``limit`` (checked before reading when
    the caller declared a length)."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise RosettaError(ErrorKind.PAYLOAD_TOO_LARGE, f"request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise RosettaError(
                    ErrorKind.PAYLOAD_TOO_LARGE, f"request body larger than {limit} bytes"
                )
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_response(send: Send, response: HttpResponse, extra: list[tuple[str, str]]) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in (*response.headers, *extra)
    ]
    headers.append((b"content-length", str(len(response.body)).encode("ascii")))
    start: dict[str, Any] = {
        "type": "http.response.start",
        "status": response.status,
        "headers": headers,
    }
    await send(start)
    await send({"type": "http.response.body", "body": response.body})
