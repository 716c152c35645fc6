"""The MariaDB MaxScale REST dialect: the 2016 draft format on bare ``/sessions...`` and the
released JSON:API format on ``/v1/...``, inbound and outbound.

Inbound paths (every one needs ``Authorization: Basic`` or ``Bearer <JWT from /v1/auth>``):

| method | path | operation | success |
|---|---|---|---|
| GET | ``/sessions`` (``fields``, ``range``) | session.list | 200 array |
| GET | ``/sessions/:id`` (``fields``) | session.get | 200 object |
| GET | ``/sessions/:id/connections`` (``fields``, ``range``) | session.get | 200 array |
| DELETE | ``/sessions/:id`` | session.kill | 204 |
| PATCH | ``/sessions/:id`` (JSON Patch) | session.alter | 200 object |
| GET | ``/v1/``, ``/v1/maxscale`` | session.ping | 200 document |
| GET | ``/v1/auth[?max-age=N]`` (Basic) | session.login (JWT) | 200 ``{"meta":{"token"}}`` |
| GET | ``/v1/sessions`` (``fields[sessions]``, ``page[..]``, ``filter``) | session.list | 200 |
| GET | ``/v1/sessions/:id`` | session.get | 200 document |
| DELETE | ``/v1/sessions/:id[?ttl=N]`` | session.kill | 200 empty |
| PATCH | ``/v1/sessions/:id`` (parameters, filters) | session.alter | 200 empty |
| POST | ``/v1/sessions/:id/restart`` | session.alter (no change) | 200 empty |
| POST | ``/v1/sessions/restart`` | session.ping | 200 empty |

Field mapping (canonical <-> draft <-> JSON:API):

| canonical | draft | JSON:API |
|---|---|---|
| ``id`` "1" | ``id`` 1 | ``id`` "1" |
| ``state`` | ``state`` | ``attributes.state`` |
| ``user`` | ``user`` | ``attributes.user`` (omitted when empty) |
| ``client_address`` "ip:port" | ``address`` ip | ``attributes.remote`` ip + ``attributes.port`` |
| ``service`` X | ``service`` "/services/X" | ``relationships.services.data[0].id`` X |
| ``connected_at`` | ``connected`` asctime | ``attributes.connected`` HTTP-date |
| ``idle_seconds`` | ``idle`` integer | ``attributes.idle`` float |
| ``connections[].server`` X | ``server`` "/servers/X" | ``attributes.connections[].server`` |
| ``connections[].reads/writes`` | ``statistics.reads/writes`` | ``attributes.io_activity`` (sum) |
| ``extras.maxscale.parameters`` | ``parameters`` (when set) | ``attributes.parameters`` |
| ``extras.maxscale.filters`` | — | ``relationships.filters`` |

Errors — draft body ``{"error": <short>, "description": <message>}``, JSON:API body
``{"errors": [{"detail": <message>}]}`` (``"Access denied"`` for 401, with
``WWW-Authenticate: Basic realm="maxscale"``). The short draft text is the native code:

| kind | HTTP | native code |
|---|---|---|
| bad_request | 400 | Bad Request |
| unauthenticated | 401 | Unauthorized |
| forbidden | 403 | Forbidden |
| not_found | 404 | Not Found |
| (method not allowed) | 405 | Method Not Allowed |
| payload_too_large | 413 | Payload Too Large |
| overloaded | 429 | Too Many Requests |
| (PATCH media type) | 415 | Unsupported Media Type |
| internal | 500 | Internal Server Error |
| unsupported_operation | 501 | Not Implemented |
| upstream_error | 502 | Bad Gateway |
| upstream_unavailable | 503 | Service Unavailable |
| upstream_timeout | 504 | Gateway Timeout |

Outbound, ``upstream.options``: ``format`` ``"jsonapi"`` (default) or ``"draft"``; ``auth``
``"basic"`` (default: Basic with the upstream credentials, or Bearer when the credentials are a
token) or ``"jwt"`` (fetch a JWT from ``/v1/auth`` once per caller, cache it, fetch again once
on 401). Lists are fetched whole; canonical filters and offset/limit are applied by Rosetta;
kill of several ids and kill_all are composed from list + DELETE; logout is unsupported, and
so is a list or kill_all filtered by node (MaxScale sessions carry no node).
Upstream statuses map 400/401/403/404/405/413/501/503/504 to the kinds above, other 5xx to
upstream_error, with the status as ``native_code``.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jsonpatch
import jsonpointer
import orjson

from translators.contract import (
    CallerInfo,
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
    Filters,
    HttpRequest,
    HttpResponse,
    Operation,
    Principal,
    PrincipalKind,
    RosettaError,
    Route,
    SessionRecord,
    Translator,
    UpstreamChannel,
)
from translators.maxscale import params
from translators.maxscale.documents import (
    NAME,
    SETTINGS_BASE,
    connection_from_draft,
    draft_connection,
    draft_session,
    jsonapi_session,
    session_from_draft,
    session_from_jsonapi,
)
from translators.maxscale.paths import ALL_METHODS, Endpoint, Format, Resource, parse_endpoint
from translators.maxscale.rows import USUAL_ROWS, reply_rows, resource_of_usual
from translators.session_rows import SessionRows
from translators.wire import JSON_CONTENT_TYPE, dump_json, parse_json

_ERRORS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.BAD_REQUEST: (400, "Bad Request"),
    ErrorKind.UNAUTHENTICATED: (401, "Unauthorized"),
    ErrorKind.FORBIDDEN: (403, "Forbidden"),
    ErrorKind.NOT_FOUND: (404, "Not Found"),
    ErrorKind.PAYLOAD_TOO_LARGE: (413, "Payload Too Large"),
    ErrorKind.OVERLOADED: (429, "Too Many Requests"),
    ErrorKind.INTERNAL: (500, "Internal Server Error"),
    ErrorKind.UNSUPPORTED_OPERATION: (501, "Not Implemented"),
    ErrorKind.UPSTREAM_ERROR: (502, "Bad Gateway"),
    ErrorKind.UPSTREAM_UNAVAILABLE: (503, "Service Unavailable"),
    ErrorKind.UPSTREAM_TIMEOUT: (504, "Gateway Timeout"),
}
_SHORT_BY_STATUS = {status: short for status, short in _ERRORS.values()}
_SHORT_BY_STATUS.update({405: "Method Not Allowed", 415: "Unsupported Media Type"})
_KIND_BY_STATUS = {
    400: ErrorKind.BAD_REQUEST,
    401: ErrorKind.UNAUTHENTICATED,
    403: ErrorKind.FORBIDDEN,
    404: ErrorKind.NOT_FOUND,
    405: ErrorKind.UNSUPPORTED_OPERATION,
    413: ErrorKind.PAYLOAD_TOO_LARGE,
    415: ErrorKind.BAD_REQUEST,
    429: ErrorKind.OVERLOADED,
    501: ErrorKind.UNSUPPORTED_OPERATION,
    503: ErrorKind.UPSTREAM_UNAVAILABLE,
    504: ErrorKind.UPSTREAM_TIMEOUT,
}
_PATCH_TYPES = frozenset(("application/json-patch", "application/json-patch+json"))
_ACCEPT_PATCH = ("Accept-Patch", "application/json-patch")
_CHALLENGE = ("WWW-Authenticate", 'Basic realm="maxscale"')
_ACCESS_DENIED = "Access denied"
_WRITABLE = ("/parameters", "/filters")
_FORMATS = ("jsonapi", "draft")
_AUTH_MODES = ("basic", "jwt")


@dataclass(frozen=True, slots=True)
class _Mode:
    """How to talk to one upstream."""

    format: Format
    jwt: bool


def _mode(options: Mapping[str, Any]) -> _Mode:
    fmt, auth = options.get("format", "jsonapi"), options.get("auth", "basic")
    if fmt not in _FORMATS:
        raise ValueError(f"format must be one of {', '.join(_FORMATS)}, not {fmt!r}")
    if auth not in _AUTH_MODES:
        raise ValueError(f"auth must be one of {', '.join(_AUTH_MODES)}, not {auth!r}")
    return _Mode(Format.DRAFT if fmt == "draft" else Format.JSONAPI, auth == "jwt")


class MaxScaleTranslator(Translator):
    name = "maxscale"
    routes = (
        Route("/sessions", ("GET",), "draft.sessions"),
        Route("/sessions/{id}", ("GET", "DELETE", "PATCH"), "draft.session"),
        Route("/sessions/{id}/connections", ("GET",), "draft.connections"),
        Route("/sessions/{rest:path}", ALL_METHODS, "draft.other"),
        Route("/v1", ("GET",), "v1.root"),
        Route("/v1/", ("GET",), "v1.root"),
        Route("/v1/maxscale", ("GET",), "v1.maxscale"),
        Route("/v1/auth", ("GET",), "v1.auth"),
        Route("/v1/sessions", ("GET",), "v1.sessions"),
        Route("/v1/sessions/restart", ("POST",), "v1.restart_all"),
        Route("/v1/sessions/{id}", ("GET", "DELETE", "PATCH"), "v1.session"),
        Route("/v1/sessions/{id}/restart", ("POST",), "v1.restart"),
        Route("/v1/{rest:path}", ALL_METHODS, "v1.other"),
    )
    error_table = {kind: entry for kind, entry in _ERRORS.items()}
    inbound_operations = frozenset(
        {
            Operation.LOGIN,
            Operation.PING,
            Operation.LIST,
            Operation.GET,
            Operation.KILL,
            Operation.ALTER,
        }
    )
    # lists are fetched whole and filtered/paged here; kill_all is list + one DELETE each;
    # connections come from the session (JSON:API) or /sessions/:id/connections (draft);
    # MaxScale has no logout
    outbound_operations = {
        Operation.LOGIN: "native",
        Operation.PING: "native",
        Operation.LIST: "composed",
        Operation.GET: "native",
        Operation.CONNECTIONS: "native",
        Operation.KILL: "native",
        Operation.KILL_ALL: "composed",
        Operation.ALTER: "native",
    }

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        unknown = set(self.options) - {"format", "auth"}
        if unknown:
            raise ValueError(f"unknown maxscale options: {', '.join(sorted(unknown))}")
        self.mode = _mode(self.options)

    # inbound ------------------------------------------------------------------------------
    def decode_request(self, request: HttpRequest) -> CanonicalRequest:
        endpoint = parse_endpoint(request.path)
        if endpoint.resource is Resource.UNKNOWN:
            raise RosettaError(ErrorKind.NOT_FOUND, f"No resource at {request.path}")
        if request.method not in endpoint.methods:
            raise RosettaError(
                ErrorKind.BAD_REQUEST,
                f"Method {request.method} is not supported on {request.path}",
                context={"http_status": 405},
            )
        principal = _principal(request)
        if endpoint.format is Format.JSONAPI:
            canonical = self._decode_jsonapi(endpoint, request)
        else:
            canonical = self._decode_draft(endpoint, request)
        canonical.principal = principal
        return canonical

    def _new(self, operation: Operation, ids: list[str] | None = None) -> CanonicalRequest:
        return CanonicalRequest(operation=operation, dialect=self.name, filters=Filters(ids=ids))

    def _decode_jsonapi(self, endpoint: Endpoint, http: HttpRequest) -> CanonicalRequest:
        resource = endpoint.resource
        if resource in (Resource.ROOT, Resource.MAXSCALE, Resource.RESTART_ALL):
            request = self._new(Operation.PING)
            if resource is Resource.RESTART_ALL:
                request.extras = {NAME: {"action": "restart"}}
            return request
        if resource is Resource.AUTH:
            request = self._new(Operation.LOGIN)
            request.settings["token_format"] = "jwt"
            max_age = http.query_param("max-age")
            if max_age is not None:
                if not max_age.isascii() or not max_age.isdigit() or int(max_age) < 1:
                    raise params.bad(f"max-age must be an integer >= 1, not {max_age!r}")
                request.settings["jwt_max_age_seconds"] = int(max_age)
            return request
        if resource is Resource.SESSIONS:
            query = params.jsonapi_query(http)
            request = self._new(Operation.LIST)
            if query.page is not None and not query.filters:
                request.offset, request.limit = query.page.offset, query.page.size
            return request
        session_id = endpoint.session_id()
        if resource is Resource.RESTART:
            request = self._new(Operation.ALTER, [session_id])
            request.extras = {NAME: {"action": "restart"}}
            return request
        if http.method == "GET":
            params.jsonapi_query(http)
            return self._new(Operation.GET, [session_id])
        if http.method == "DELETE":
            request = self._new(Operation.KILL, [session_id])
            ttl = http.query_param("ttl")
            if ttl is not None:
                if not ttl.isascii() or not ttl.isdigit():
                    raise params.bad(f"ttl must be an integer >= 0, not {ttl!r}")
                request.extras = {NAME: {"ttl": int(ttl)}}
            return request
        request = self._new(Operation.ALTER, [session_id])
        request.settings = _jsonapi_patch(http)
        return request

    def _decode_draft(self, endpoint: Endpoint, http: HttpRequest) -> CanonicalRequest:
        resource = endpoint.resource
        if resource is Resource.SESSIONS:
            params.draft_fields(http)
            request = self._new(Operation.LIST)
            window = params.draft_range(http)
            if window is not None:
                request.offset, request.limit = window
            return request
        session_id = endpoint.session_id()
        if resource is Resource.CONNECTIONS:
            # a get, not session.connections: draft connections name the session's service
            params.draft_range(http)
            return self._new(Operation.GET, [session_id])
        if http.method == "GET":
            return self._new(Operation.GET, [session_id])
        if http.method == "DELETE":
            return self._new(Operation.KILL, [session_id])
        request = self._new(Operation.ALTER, [session_id])
        request.settings = _draft_patch(http)
        return request

    def encode_response(
        self, response: CanonicalResponse, request: CanonicalRequest | None, http: HttpRequest
    ) -> HttpResponse:
        endpoint = parse_endpoint(http.path)
        error = response.error
        if error is None and request is not None:
            try:
                if endpoint.format is Format.JSONAPI:
                    return self._jsonapi_success(endpoint, response, http)
                return self._draft_success(endpoint, response, request, http)
            except Exception:
                error = RosettaError(ErrorKind.INTERNAL, "internal error; see the server log")
        if error is None:
            error = RosettaError(ErrorKind.INTERNAL, "no answer")
        return _error_response(endpoint.format, error)

    def _jsonapi_success(
        self, endpoint: Endpoint, response: CanonicalResponse, http: HttpRequest
    ) -> HttpResponse:
        base = _base_url(http, endpoint)
        resource = endpoint.resource
        query = params.jsonapi_query(http)
        if response.operation is Operation.LOGIN:
            return _json(200, {"meta": {"token": response.token}}, query.pretty)
        if resource in (Resource.RESTART, Resource.RESTART_ALL) or response.operation in (
            Operation.KILL,
            Operation.ALTER,
        ):
            return HttpResponse(200, [], b"")
        if resource is Resource.ROOT:
            document = {
                "links": {"self": f"{base}/v1/"},
                "meta": {"resources": {"sessions": f"{base}/v1/sessions/"}},
            }
            return _json(200, document, query.pretty)
        if resource is Resource.MAXSCALE:
            data = {
                "id": "maxscale",
                "type": "maxscale",
                "attributes": {"parameters": {}},
                "links": {"self": f"{base}/v1/maxscale/"},
            }
            return _json(200, {"links": {"self": f"{base}/v1/maxscale/"}, "data": data}, False)
        if response.operation is Operation.GET and response.session is not None:
            one = params.sparse(jsonapi_session(response.session, base), query.fields)
            document = {"links": {"self": one["links"]["self"]}, "data": one}
            return _json(200, document, query.pretty)
        return _json(200, _collection(response, base, query, http), query.pretty)

    def _draft_success(
        self,
        endpoint: Endpoint,
        response: CanonicalResponse,
        request: CanonicalRequest,
        http: HttpRequest,
    ) -> HttpResponse:
        fields = params.draft_fields(http)
        headers = [_ACCEPT_PATCH]
        operation = response.operation
        if operation is Operation.KILL:
            return HttpResponse(204, headers, b"")
        if operation is Operation.LIST:
            rows = [params.keep_fields(draft_session(s), fields) for s in response.sessions or []]
            return _json(200, rows, False, headers)
        if endpoint.resource is Resource.CONNECTIONS:
            session = response.session
            service = session.service if session is not None else ""
            found = session.connections if session is not None else response.connections
            conns = [draft_connection(c, service) for c in found or []]
            window = params.draft_range(http)
            if window is not None:
                conns = conns[window[0] : window[0] + window[1]]
            return _json(200, [params.keep_fields(c, fields) for c in conns], False, headers)
        if response.session is None:
            return HttpResponse(204, headers, b"")
        return _json(
            200, params.keep_fields(draft_session(response.session), fields), False, headers
        )

    # outbound -----------------------------------------------------------------------------
    def encode_request(self, request: CanonicalRequest, upstream: UpstreamChannel) -> HttpRequest:
        mode = _mode(upstream.options) if upstream.options else self.mode
        return self._build(request, mode, _basic_headers(upstream))

    def _build(
        self, request: CanonicalRequest, mode: _Mode, headers: dict[str, str]
    ) -> HttpRequest:
        """The single upstream request for one canonical operation (one id for a kill)."""
        op = request.operation
        draft = mode.format is Format.DRAFT
        root = "/sessions" if draft else "/v1/sessions"
        target = request.target_id
        extras = request.extras.get(NAME)
        extras = extras if isinstance(extras, dict) else {}
        if op is Operation.LOGIN:
            return HttpRequest("GET", "/v1/auth", _max_age_query(request), headers)
        if op is Operation.PING:
            if extras.get("action") == "restart" and not draft:
                return HttpRequest("POST", "/v1/sessions/restart", headers=headers)
            if draft:
                return HttpRequest("GET", "/sessions", "range=0-0", headers)
            return HttpRequest("GET", "/v1/maxscale", headers=headers)
        if op in (Operation.LIST, Operation.KILL_ALL):
            return HttpRequest("GET", root, headers=headers)
        if target is None:
            raise RosettaError(ErrorKind.BAD_REQUEST, "exactly one session id is needed")
        if op is Operation.GET or (op is Operation.CONNECTIONS and not draft):
            return HttpRequest("GET", f"{root}/{target}", headers=headers)
        if op is Operation.CONNECTIONS:
            return HttpRequest("GET", f"/sessions/{target}/connections", headers=headers)
        if op is Operation.KILL:
            ttl = extras.get("ttl")
            query = f"ttl={ttl}" if isinstance(ttl, int) and not draft else ""
            return HttpRequest("DELETE", f"{root}/{target}", query, headers)
        if op is Operation.ALTER:
            return self._build_alter(request, target, draft, extras, headers)
        raise RosettaError(
            ErrorKind.UNSUPPORTED_OPERATION, f"a maxscale upstream cannot express {op.value}"
        )

    def _build_alter(
        self,
        request: CanonicalRequest,
        target: str,
        draft: bool,
        extras: dict[str, Any],
        headers: dict[str, str],
    ) -> HttpRequest:
        if extras.get("action") == "restart":
            if draft:
                return HttpRequest("GET", f"/sessions/{target}", headers=headers)
            return HttpRequest("POST", f"/v1/sessions/{target}/restart", headers=headers)
        ops = _alter_ops(request.settings)
        if draft:
            body = dump_json(ops)
            patch_headers = {**headers, "content-type": "application/json-patch"}
            return HttpRequest("PATCH", f"/sessions/{target}", "", patch_headers, body)
        document = _jsonapi_alter_body(ops)
        json_headers = {**headers, "content-type": "application/json"}
        return HttpRequest("PATCH", f"/v1/sessions/{target}", "", json_headers, dump_json(document))

    def decode_response(
        self, response: HttpResponse, request: CanonicalRequest
    ) -> CanonicalResponse:
        _raise_for_status(response)
        result = CanonicalResponse(operation=request.operation, request_id=request.request_id)
        op = request.operation
        if op in (Operation.KILL, Operation.ALTER, Operation.PING) and not response.body.strip():
            result.affected = 1 if op is Operation.KILL else None
            return result
        body = _upstream_json(response)
        if op is Operation.LOGIN:
            meta = body.get("meta") if isinstance(body, dict) else None
            token = meta.get("token") if isinstance(meta, dict) else None
            if not isinstance(token, str) or not token:
                raise RosettaError(ErrorKind.UPSTREAM_ERROR, "maxscale /v1/auth gave no token")
            result.token = token
            return result
        if op is Operation.PING:
            return result
        if op in (Operation.LIST, Operation.KILL_ALL):
            result.sessions = _decode_list(body)
            result.total = len(result.sessions)
            return result
        if op is Operation.CONNECTIONS and isinstance(body, list):
            result.connections = [connection_from_draft(c) for c in body]
            result.total = len(result.connections)
            return result
        session = _decode_one(body)
        if op is Operation.CONNECTIONS:
            result.connections = session.connections
            result.total = len(session.connections)
        else:
            result.session = session
        return result

    async def call_upstream(
        self, request: CanonicalRequest, upstream: UpstreamChannel
    ) -> CanonicalResponse:
        mode = _mode(upstream.options) if upstream.options else self.mode
        op = request.operation
        if op is Operation.LOGOUT:
            raise RosettaError(ErrorKind.UNSUPPORTED_OPERATION, "MaxScale has no logout")
        if op is Operation.LOGIN:
            response = await self._exchange(request, mode, upstream, login=True)
            if response.token:
                response.caller = CallerInfo(
                    user=upstream.credentials.user or "", expires_in=_jwt_expires_in(response.token)
                )
            return response
        if op in (Operation.LIST, Operation.KILL_ALL):
            if request.filters.node_id is not None:
                # MaxScale sessions carry no node: the filter would silently match nothing
                raise RosettaError(
                    ErrorKind.UNSUPPORTED_OPERATION, "a maxscale upstream has no node ids"
                )
            listed = await self._exchange(_listing(request), mode, upstream)
            sessions = listed.sessions or []
            if request.filters != _NO_FILTERS:  # else every session matches: none is decoded
                sessions = [s for s in sessions if _matches(s, request.filters)]
            if op is Operation.LIST:
                end = None if request.limit is None else request.offset + request.limit
                listed.sessions, listed.total = sessions[request.offset : end], len(sessions)
                listed.request_id = request.request_id
                return listed
            return await self._kill(request, [s.id for s in sessions], mode, upstream)
        if op is Operation.KILL:
            return await self._kill(request, list(request.filters.ids or []), mode, upstream)
        response = await self._exchange(request, mode, upstream)
        if op is Operation.ALTER and response.session is None:
            # JSON:API PATCH answers 200 empty; the canonical alter answers the session
            fetch = CanonicalRequest(
                Operation.GET, request.dialect, principal=request.principal, filters=request.filters
            )
            response.session = (await self._exchange(fetch, mode, upstream)).session
        if op is Operation.GET and mode.format is Format.DRAFT and response.session is not None:
            # a draft session object has no connections: they are /sessions/:id/connections
            connections = CanonicalRequest(
                Operation.CONNECTIONS,
                request.dialect,
                principal=request.principal,
                filters=request.filters,
            )
            found = await self._exchange(connections, mode, upstream)
            response.session.connections = list(found.connections or [])
        return response

    async def _kill(
        self,
        request: CanonicalRequest,
        ids: list[str],
        mode: _Mode,
        upstream: UpstreamChannel,
    ) -> CanonicalResponse:
        if not ids and request.operation is Operation.KILL:
            raise RosettaError(ErrorKind.BAD_REQUEST, "no session id given")
        for session_id in ids:
            one = CanonicalRequest(
                operation=Operation.KILL,
                dialect=request.dialect,
                principal=request.principal,
                filters=Filters(ids=[session_id]),
                extras=request.extras,
            )
            await self._exchange(one, mode, upstream)
        return CanonicalResponse(request.operation, request.request_id, affected=len(ids))

    async def _exchange(
        self,
        request: CanonicalRequest,
        mode: _Mode,
        upstream: UpstreamChannel,
        *,
        login: bool = False,
    ) -> CanonicalResponse:
        """One round trip, with a cached JWT in ``auth: jwt`` mode (fetched again once)."""
        if login or not mode.jwt or upstream.credentials.token:
            http = self._build(request, mode, _basic_headers(upstream))
            return self.decode_response(await upstream.send(http), request)
        for attempt in (1, 2):
            token = await upstream.cached("jwt")
            if token is None:
                token = await self._fetch_jwt(request, mode, upstream)
            http = self._build(request, mode, {"authorization": f"Bearer {token}"})
            reply = await upstream.send(http)
            if reply.status == 401 and attempt == 1:
                await upstream.remember("jwt", None)
                continue
            return self.decode_response(reply, request)
        raise AssertionError("unreachable")

    async def _fetch_jwt(
        self, request: CanonicalRequest, mode: _Mode, upstream: UpstreamChannel
    ) -> str:
        login = CanonicalRequest(Operation.LOGIN, request.dialect, principal=request.principal)
        got = await self._exchange(login, mode, upstream, login=True)
        assert got.token is not None
        await upstream.remember("jwt", got.token)
        return got.token


# inbound helpers -------------------------------------------------------------------------------
def _principal(http: HttpRequest) -> Principal:
    authorization = http.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return Principal(PrincipalKind.BEARER, token=value.strip())
    if scheme.lower() == "basic":
        try:
            user, sep, password = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if sep:
            return Principal(PrincipalKind.PASSWORD, user=user, password=password)
    raise RosettaError(ErrorKind.UNAUTHENTICATED, _ACCESS_DENIED)


def _jsonapi_patch(http: HttpRequest) -> dict[str, Any]:
    """``{"data":{"attributes":{"parameters":{..}},"relationships":{"filters":{"data":[..]}}}}``
    as JSON Patch operations on the session's writable document."""
    try:
        body = parse_json(http.body) if http.body.strip() else None
    except RosettaError as exc:
        raise params.bad(f"Invalid JSON in request: {exc.message}") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise params.bad("Request body must be a JSON:API document with a 'data' object")
    ops: list[dict[str, Any]] = []
    parameters: dict[str, Any] = {}
    attributes = data.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise params.bad("'data.attributes' must be an object")
    for key, value in attributes.items():
        if key != "parameters":
            raise RosettaError(ErrorKind.FORBIDDEN, f"Cannot modify attribute '{key}'")
        if not isinstance(value, dict):
            raise params.bad("'parameters' must be an object")
        parameters = value
        for name, setting in value.items():
            ops.append({"op": "add", "path": f"/parameters/{_escape(name)}", "value": setting})
    relationships = data.get("relationships") or {}
    if not isinstance(relationships, dict):
        raise params.bad("'data.relationships' must be an object")
    for key, value in relationships.items():
        if key != "filters":
            raise RosettaError(ErrorKind.FORBIDDEN, f"Cannot modify relationship '{key}'")
        linked = value.get("data") if isinstance(value, dict) else None
        if linked is None:
            linked = []
        if not isinstance(linked, list) or not all(
            isinstance(d, dict) and isinstance(d.get("id"), str) for d in linked
        ):
            raise params.bad("'filters.data' must be a list of {id, type} objects")
        ops.append({"op": "add", "path": "/filters", "value": [d["id"] for d in linked]})
    settings: dict[str, Any] = {
        "json_patch": ops,
        "json_patch_base": SETTINGS_BASE,
        "json_patch_dialect": NAME,
    }
    if parameters:
        settings["parameters"] = parameters
    return settings


def _draft_patch(http: HttpRequest) -> dict[str, Any]:
    if http.content_type not in _PATCH_TYPES:
        raise RosettaError(
            ErrorKind.BAD_REQUEST,
            "PATCH needs Content-Type: application/json-patch (or application/json-patch+json)",
            context={"http_status": 415},
        )
    ops = parse_json(http.body) if http.body.strip() else None
    if not isinstance(ops, list):
        raise params.bad("a JSON Patch document is an array of operations")
    try:
        jsonpatch.JsonPatch(ops)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise params.bad(f"not a JSON Patch: {exc}") from None
    for op in ops:
        for member in ("path", "from"):
            path = op.get(member)
            if path is not None and not _writable(path):
                raise RosettaError(
                    ErrorKind.FORBIDDEN, f"'{path}' is read-only; only /parameters and /filters"
                )
    return {"json_patch": ops, "json_patch_base": SETTINGS_BASE, "json_patch_dialect": NAME}


def _writable(path: Any) -> bool:
    return isinstance(path, str) and any(path == w or path.startswith(w + "/") for w in _WRITABLE)


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _base_url(http: HttpRequest, endpoint: Endpoint) -> str:
    return f"{http.scheme}://{http.host or 'localhost'}{endpoint.prefix}"


def _json(
    status: int, value: Any, pretty: bool, headers: list[tuple[str, str]] | None = None
) -> HttpResponse:
    body = orjson.dumps(value, option=orjson.OPT_INDENT_2) if pretty else dump_json(value)
    return HttpResponse(status, [JSON_CONTENT_TYPE, *(headers or [])], body)


def _collection(
    response: CanonicalResponse, base: str, query: params.JsonApiQuery, http: HttpRequest
) -> dict[str, Any]:
    resources = _resources(response.sessions or [], base)
    self_link = f"{base}/v1/sessions/"
    total = response.total if response.total is not None else len(resources)
    if query.filters:
        resources = [r for r in resources if query.matches(r)]
        total = len(resources)
        if query.page is not None:
            resources = resources[query.page.offset : query.page.offset + query.page.size]
    links: dict[str, str] = {"self": self_link}
    document: dict[str, Any] = {"links": links}
    if query.page is not None:
        size, number = query.page.size, query.page.number
        last = max(0, math.ceil(total / size) - 1)
        kept = [(k, v) for k, v in http.query if k not in ("page[size]", "page[number]")]

        def page(n: int) -> str:
            pairs = [*kept, ("page[size]", str(size)), ("page[number]", str(n))]
            return f"{self_link}?{urlencode(pairs, safe='[]/,')}"

        links.update(first=page(0), last=page(last))
        if number < last:
            links["next"] = page(number + 1)
        if number > 0:
            links["prev"] = page(min(number - 1, last))
        document["meta"] = {"total": total}
    document["data"] = [params.sparse(r, query.fields) for r in resources]
    return document


def _resources(records: Sequence[SessionRecord], base: str) -> list[dict[str, Any]]:
    """The ``sessions`` resource of each record. A resource a JSON:API upstream sent in the
    usual shape is rendered straight from what it sent, which gives the resource its record
    renders (``tests/maxscale/test_rows.py``) at a fraction of the cost."""
    now = time.time()
    if type(records) is SessionRows and records.codec is USUAL_ROWS:
        return [
            resource_of_usual(row, moment, base, now)
            if record is None
            else jsonapi_session(record, base, now)
            for row, moment, record in records.entries()
        ]
    return [jsonapi_session(record, base, now) for record in records]


def _error_response(fmt: Format, error: RosettaError) -> HttpResponse:
    override = error.context.get("http_status")
    status = override if isinstance(override, int) else _ERRORS[error.kind][0]
    headers: list[tuple[str, str]] = []
    if status == 401:
        headers.append(_CHALLENGE)
    if fmt is Format.JSONAPI:
        detail = _ACCESS_DENIED if status == 401 else error.message
        return _json(status, {"errors": [{"detail": detail}]}, False, headers)
    short = _SHORT_BY_STATUS.get(status, _ERRORS[error.kind][1])
    body = {"error": short, "description": error.message}
    return _json(status, body, False, [*headers, _ACCEPT_PATCH])


# outbound helpers ------------------------------------------------------------------------------
def _basic_headers(upstream: UpstreamChannel) -> dict[str, str]:
    creds = upstream.credentials
    if creds.token:
        return {"authorization": f"Bearer {creds.token}"}
    if creds.user is not None:
        pair = f"{creds.user}:{creds.password or ''}".encode()
        return {"authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return {}


def _max_age_query(request: CanonicalRequest) -> str:
    max_age = request.settings.get("jwt_max_age_seconds")
    return f"max-age={max_age}" if isinstance(max_age, int) else ""


def _alter_ops(settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    ops = settings.get("json_patch")
    if isinstance(ops, list):
        return ops
    parameters = settings.get("parameters")
    if isinstance(parameters, dict) and parameters:
        return [
            {"op": "add", "path": f"/parameters/{_escape(k)}", "value": v}
            for k, v in parameters.items()
        ]
    raise RosettaError(
        ErrorKind.UNSUPPORTED_OPERATION,
        "a maxscale upstream can only alter session parameters and filters",
    )


def _jsonapi_alter_body(ops: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON Patch operations as a JSON:API PATCH body; only adds/replaces of parameters and of
    the filter list can be expressed there."""
    parameters: dict[str, Any] = {}
    data: dict[str, Any] = {}
    for op in ops:
        path = op.get("path", "")
        if op.get("op") not in ("add", "replace") or not isinstance(path, str):
            raise RosettaError(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"a JSON:API maxscale upstream cannot apply JSON Patch op {op.get('op')!r}",
            )
        if path.startswith("/parameters/") and path.count("/") == 2:
            name = path.split("/", 2)[2].replace("~1", "/").replace("~0", "~")
            parameters[name] = op.get("value")
        elif path == "/filters" and isinstance(op.get("value"), list):
            linked = [{"id": str(f), "type": "filters"} for f in op["value"]]
            data["relationships"] = {"filters": {"data": linked}}
        else:
            raise RosettaError(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"a JSON:API maxscale upstream cannot patch {path!r}",
            )
    if parameters:
        data["attributes"] = {"parameters": parameters}
    return {"data": data}


def _raise_for_status(response: HttpResponse) -> None:
    if response.status < 400:
        return
    detail = f"maxscale upstream answered HTTP {response.status}"
    try:
        body = orjson.loads(response.body) if response.body.strip() else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            detail = str(errors[0].get("detail", detail))
        elif isinstance(body.get("description"), str):
            detail = body["description"]
    if response.status >= 500:
        kind = _KIND_BY_STATUS.get(response.status, ErrorKind.UPSTREAM_ERROR)
    else:
        kind = _KIND_BY_STATUS.get(response.status, ErrorKind.BAD_REQUEST)
    raise RosettaError(kind, detail, native_code=response.status)


def _upstream_json(response: HttpResponse) -> Any:
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError:
        raise RosettaError(
            ErrorKind.UPSTREAM_ERROR,
            f"maxscale upstream answered HTTP {response.status} without a JSON body",
        ) from None


def _decode_list(body: Any) -> Sequence[SessionRecord]:
    """A draft array decoded, or a JSON:API document's resources kept as ``SessionRows``."""
    if isinstance(body, list):
        return [session_from_draft(s) for s in body]
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise RosettaError(ErrorKind.UPSTREAM_ERROR, "maxscale upstream: no session list")
    return reply_rows(data)


def _decode_one(body: Any) -> SessionRecord:
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        return session_from_jsonapi(body["data"])
    if isinstance(body, dict) and "id" in body:
        return session_from_draft(body)
    raise RosettaError(ErrorKind.UPSTREAM_ERROR, "maxscale upstream: no session in the reply")


def _listing(request: CanonicalRequest) -> CanonicalRequest:
    return CanonicalRequest(
        Operation.LIST, request.dialect, request.request_id, principal=request.principal
    )


_NO_FILTERS = Filters()


def _matches(record: SessionRecord, filters: Filters) -> bool:
    if filters.ids is not None and record.id not in filters.ids:
        return False
    if filters.users is not None and record.user not in filters.users:
        return False
    if filters.node_id is not None and record.node_id != filters.node_id:
        return False
    prefix = filters.address_prefix
    return prefix is None or record.client_address.startswith(prefix)


def _jwt_expires_in(token: str) -> float | None:
    """Seconds until the (unverified) ``exp`` claim of a JWT the upstream issued."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return round(max(0.0, float(claims["exp"]) - time.time()), 3)
    except (IndexError, ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        return None
