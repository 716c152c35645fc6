"""``rosetta translate``: one request or response through two translators, no server, for
debugging a mapping. Input is a raw HTTP message (``POST /api HTTP/1.1`` ...) or just a JSON
body, which is then taken as a POST to the source dialect's first fixed path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from proxy.router import Router
from translators.codec import request_to_json, response_to_json
from translators.contract import (
    CanonicalRequest,
    ErrorKind,
    HttpRequest,
    HttpResponse,
    Operation,
    RosettaError,
    Translator,
    UpstreamCredentials,
)
from translators.registry import translator_class

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class OfflineChannel:
    """An upstream channel that only builds requests: credentials come from the caller."""

    def __init__(self, credentials: UpstreamCredentials) -> None:
        self._credentials = credentials

    @property
    def base_url(self) -> str:
        return "http://upstream.invalid"

    @property
    def options(self) -> Mapping[str, Any]:
        return {}

    @property
    def credentials(self) -> UpstreamCredentials:
        return self._credentials

    @property
    def cache_key(self) -> str:
        return "offline"

    async def send(self, request: HttpRequest) -> HttpResponse:
        raise RosettaError(ErrorKind.UPSTREAM_UNAVAILABLE, "offline: nothing is sent")

    async def cached(self, name: str) -> str | None:
        return None

    async def remember(self, name: str, value: str | None) -> None:
        return None


def parse_http_message(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """``(start line, headers, body)`` when ``raw`` is an HTTP message, else ``None``."""
    head, sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode("latin-1").split("\n")
    first = lines[0].split(" ", 1)[0]
    if first not in _METHODS and not first.startswith("HTTP/"):
        return None
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers, body if sep else b""


def _http_request(raw: bytes, source: Translator) -> HttpRequest:
    parsed = parse_http_message(raw)
    if parsed is None:
        fixed = [r for r in source.routes if "{" not in r.path]
        if not fixed:
            raise RosettaError(
                ErrorKind.BAD_REQUEST, f"{source.name} needs a full HTTP request, not a bare body"
            )
        route = fixed[0]
        method = "POST" if "POST" in route.methods else route.methods[0]
        return HttpRequest(
            method, route.path, headers={"content-type": "application/json"}, body=raw.strip()
        )
    start, headers, body = parsed
    method, target = start.split(" ")[:2]
    path, _, query = target.partition("?")
    return HttpRequest(method, path, query, dict(headers), body)


def _route(http: HttpRequest, source: Translator) -> None:
    router: Router[Translator] = Router()
    for route in source.routes:
        router.add(route.path, route.methods, source, route.name)
    match = router.match(http.method, http.path)
    if match is None:
        raise RosettaError(ErrorKind.NOT_FOUND, f"{source.name} serves no path {http.path}")
    http.path_params = match.params


def _render_request(http: HttpRequest) -> str:
    target = http.path + (f"?{http.query_string}" if http.query_string else "")
    lines = [f"{http.method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in http.headers.items())]
    return "\n".join(lines) + "\n\n" + http.body.decode("utf-8", "replace") + "\n"


def _render_response(response: HttpResponse) -> str:
    lines = [f"HTTP/1.1 {response.status}", *(f"{k}: {v}" for k, v in response.headers)]
    return "\n".join(lines) + "\n\n" + response.body.decode("utf-8", "replace") + "\n"


def _dump(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"


def translate_file(
    raw: bytes,
    *,
    source: str,
    target: str,
    response: bool = False,
    operation: str = "session.list",
    canonical: bool = False,
) -> str:
    src = translator_class(source)()
    dst = translator_class(target)()
    if response:
        parsed = parse_http_message(raw)
        status, headers, body = 200, [("content-type", "application/json")], raw
        if parsed is not None:
            status, headers, body = int(parsed[0].split(" ")[1]), parsed[1], parsed[2]
        request = CanonicalRequest(Operation(operation), dialect=target)
        decoded = src.decode_response(HttpResponse(status, headers, body), request)
        if canonical:
            return _dump(response_to_json(decoded))
        rendered = dst.encode_response(decoded, request, HttpRequest("POST", "/"))
        return _render_response(rendered)
    http = _http_request(raw, src)
    _route(http, src)
    decoded_request = src.decode_request(http)
    if canonical:
        return _dump(request_to_json(decoded_request))
    principal = decoded_request.principal
    channel = OfflineChannel(
        UpstreamCredentials(user=principal.user, password=principal.password, token=principal.token)
    )
    return _render_request(dst.encode_request(decoded_request, channel))
