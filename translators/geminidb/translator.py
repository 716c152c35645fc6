"""The Huawei Cloud GeminiDB (Redis API) sessions dialect, inbound and outbound.

Inbound paths (``{project_id}`` is any id unless the local backend pins one)::

    GET    /v3/{project_id}/instances/{instance_id}/sessions[?node_id=]   session.list, grouped
    DELETE /v3/{project_id}/instances/{instance_id}/sessions[?node_id=]   session.kill_all
    GET    /v3/{project_id}/redis/nodes/{node_id}/sessions
           ?offset=0&limit=50&addr_prefix=                                 session.list, one node
    DELETE /v3/{project_id}/redis/nodes/{node_id}/sessions
           {"is_all": bool, "session_ids": [...]}                          kill_all / kill
    GET    /v3/{project_id}/redis/nodes/{node_id}/session-statistics       session.list, counted

Authentication: ``X-Auth-Token`` (a Rosetta session token or a configured static token) wins;
otherwise an ``Authorization: SDK-HMAC-SHA256 ...`` signature, whose string to sign is rebuilt
here exactly as the Huawei SDK builds it (``signing``) and verified by ``proxy.auth`` against
the configured key pairs, clock skew included.

Field mapping (session objects; details in ``translators.geminidb.sessions``):

| GeminiDB | canonical                    |  | GeminiDB            | canonical              |
|----------|------------------------------|--|---------------------|------------------------|
| ``id``   | ``id``                       |  | ``db``              | ``database``           |
| ``name`` | ``description`` or ``user``  |  | ``addr``            | ``client_address``     |
| ``cmd``  | ``last_command``             |  | ``fd sub psub multi`` | ``extras.geminidb``  |
| ``age``  | ``connected_at`` (now - age) |  | group ``node_id``   | ``node_id`` (empty ->  |
| ``idle`` | ``idle_seconds``             |  |                     | option default_node_id)|

Errors: ``{"error_code": "...", "error_msg": "..."}`` (gateway codes add ``request_id``);
every response carries ``X-Request-Id`` (added by the gateway).

| error kind            | HTTP | error_code                                             |
|-----------------------|------|--------------------------------------------------------|
| bad_request           | 400  | DBS.200001 (parameter error)                           |
| unauthenticated       | 401  | APIGW.0301 (incorrect IAM authentication information)  |
| forbidden             | 403  | APIGW.0302 (not authorized)                            |
| not_found             | 404  | DBS.200002 (instance/project); DBS.200013 on node paths|
| unsupported_operation | 400  | DBS.200004 (illegal operation)                         |
| payload_too_large     | 413  | APIGW.0201 (request entity too large)                  |
| overloaded            | 429  | APIGW.0308 (throttling threshold reached)              |
| upstream_unavailable  | 502  | APIGW.0202 (backend unavailable)                       |
| upstream_timeout      | 504  | APIGW.0203 (backend timeout)                           |
| upstream_error        | 502  | DBS.200000 (Rosetta: upstream failure)                 |
| internal              | 500  | DBS.200000 (Rosetta: internal error)                   |

An unknown path under ``/v3/`` is 404 and a known path with the wrong method 405, both
``APIGW.0101``. A ``DBS.*``/``APIGW.*`` code from a GeminiDB upstream is passed through with
the upstream's status.

Outbound: ``options.project_id`` and ``options.instance_id`` name the upstream instance;
``credentials.token`` is sent as ``X-Auth-Token``, else ``access_key``/``secret_key`` sign the
request; a user and password alone cannot be converted (unauthenticated, naming both
dialects, before anything is sent). list/get/connections/ping are composed from the instance
listing; kill goes to each session's node; kill_all uses the instance-wide close when it can.
A ``users`` filter is unsupported_operation: GeminiDB sessions have no user (``name`` is a
connection name).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any
from urllib.parse import urlsplit

from translators.contract import (
    CanonicalRequest,
    CanonicalResponse,
    Connection,
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
    Signature,
    Translator,
    UpstreamChannel,
)
from translators.geminidb import signing
from translators.geminidb.sessions import NAME, ReplyRows, SessionEncoder, UsualRows, client_ip
from translators.geminidb.typed import TypedRows, UsualSession, typed_rows
from translators.session_rows import SessionRows
from translators.wire import dump_json, parse_json, rows_json

DEFAULT_NODE_ID = "rosetta-node-1"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
TOP = 10
INSTANCE_PATH = "/v3/{project_id}/instances/{instance_id}/sessions"
NODE_PATH = "/v3/{project_id}/redis/nodes/{node_id}/sessions"
STATISTICS_PATH = "/v3/{project_id}/redis/nodes/{node_id}/session-statistics"
_ANY_METHOD = ("GET", "DELETE", "POST", "PUT", "PATCH")

_STATUS_AND_CODE: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.BAD_REQUEST: (400, "DBS.200001"),
    ErrorKind.UNAUTHENTICATED: (401, "APIGW.0301"),
    ErrorKind.FORBIDDEN: (403, "APIGW.0302"),
    ErrorKind.NOT_FOUND: (404, "DBS.200002"),
    ErrorKind.UNSUPPORTED_OPERATION: (400, "DBS.200004"),
    ErrorKind.PAYLOAD_TOO_LARGE: (413, "APIGW.0201"),
    ErrorKind.OVERLOADED: (429, "APIGW.0308"),
    ErrorKind.UPSTREAM_UNAVAILABLE: (502, "APIGW.0202"),
    ErrorKind.UPSTREAM_TIMEOUT: (504, "APIGW.0203"),
    ErrorKind.UPSTREAM_ERROR: (502, "DBS.200000"),
    ErrorKind.INTERNAL: (500, "DBS.200000"),
}
NODE_NOT_FOUND = "DBS.200013"
INSTANCE_NOT_FOUND = "DBS.200002"
NO_SUCH_API = "APIGW.0101"
_NATIVE_CODE = re.compile(r"^(DBS|APIGW)\.[0-9A-Za-z]+$")
_DIGITS = re.compile(r"^[0-9]{1,9}$")
_KNOWN_PATHS = tuple(
    re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(p)) + "$")
    for p in (INSTANCE_PATH, NODE_PATH, STATISTICS_PATH)
)
_KIND_BY_STATUS = {
    400: ErrorKind.BAD_REQUEST,
    401: ErrorKind.UNAUTHENTICATED,
    403: ErrorKind.FORBIDDEN,
    404: ErrorKind.NOT_FOUND,
    413: ErrorKind.PAYLOAD_TOO_LARGE,
    429: ErrorKind.OVERLOADED,
}
_KIND_BY_CODE = {
    "APIGW.0301": ErrorKind.UNAUTHENTICATED,
    "APIGW.0303": ErrorKind.UNAUTHENTICATED,
    "APIGW.0302": ErrorKind.FORBIDDEN,
    "DBS.200010": ErrorKind.UNAUTHENTICATED,
    "DBS.200002": ErrorKind.NOT_FOUND,
    "DBS.200013": ErrorKind.NOT_FOUND,
    "DBS.200001": ErrorKind.BAD_REQUEST,
    "DBS.200004": ErrorKind.UNSUPPORTED_OPERATION,
    "DBS.200011": ErrorKind.FORBIDDEN,
    "APIGW.0201": ErrorKind.PAYLOAD_TOO_LARGE,
    "APIGW.0308": ErrorKind.OVERLOADED,
    "APIGW.0202": ErrorKind.UPSTREAM_UNAVAILABLE,
    "APIGW.0203": ErrorKind.UPSTREAM_TIMEOUT,
}
_UPSTREAM_STATUS = "geminidb_status"  # error.context key: the status a GeminiDB upstream sent
_OPTIONS = {"default_node_id", "nodes", "number_format", "project_id", "instance_id"}


SessionObject = dict[str, Any] | UsualSession
"""A session as a GeminiDB reply writes it: rendered, or kept as an upstream sent it."""


def _json(status: int, value: Any) -> HttpResponse:
    return HttpResponse(status, [("content-type", "application/json")], dump_json(value))


def _bad(message: str) -> RosettaError:
    return RosettaError(ErrorKind.BAD_REQUEST, message)


def _denied(message: str) -> RosettaError:
    return RosettaError(ErrorKind.UNAUTHENTICATED, message)


def _utf8_header(value: str) -> str:
    """Header values arrive latin-1 decoded; the SDK signed their UTF-8 text."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


class GeminiDbTranslator(Translator):
    name = NAME
    routes = (
        Route(INSTANCE_PATH, ("GET", "DELETE"), "instance_sessions"),
        Route(NODE_PATH, ("GET", "DELETE"), "node_sessions"),
        Route(STATISTICS_PATH, ("GET",), "node_statistics"),
        Route("/v3/{rest:path}", _ANY_METHOD, "v3"),
    )
    error_table = dict(_STATUS_AND_CODE)
    inbound_operations = frozenset({Operation.LIST, Operation.KILL, Operation.KILL_ALL})
    # reads and ping come from the instance listing; kill goes to each session's node;
    # no login, logout or alter
    outbound_operations = {
        Operation.PING: "composed",
        Operation.LIST: "composed",
        Operation.GET: "composed",
        Operation.CONNECTIONS: "composed",
        Operation.KILL: "native",
        Operation.KILL_ALL: "native",
    }

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        unknown = set(self.options) - _OPTIONS
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
        default_node = self.options.get("default_node_id", DEFAULT_NODE_ID)
        if not isinstance(default_node, str) or not default_node:
            raise ValueError("default_node_id must be a non-empty string")
        nodes = self.options.get("nodes", [])
        if not isinstance(nodes, list) or not all(isinstance(n, str) and n for n in nodes):
            raise ValueError("nodes must be a list of node ids")
        number_format = self.options.get("number_format", "integer")
        if number_format not in ("integer", "string"):
            raise ValueError("number_format must be 'integer' or 'string'")
        for key in ("project_id", "instance_id"):
            value = self.options.get(key)
            if value is not None and (not isinstance(value, str) or not value or "/" in value):
                raise ValueError(f"{key} must be a non-empty id without '/'")
        self.default_node = default_node
        self.known_nodes = frozenset([default_node, *nodes])
        self.sessions = SessionEncoder(number_format == "integer")

    # inbound ------------------------------------------------------------------------------
    def decode_request(self, request: HttpRequest) -> CanonicalRequest:
        params = request.path_params
        if "rest" in params or "project_id" not in params:
            self._unknown_api(request)
        project = params["project_id"]
        principal = self._principal(request, project)
        request_id = request.headers.get("x-request-id")
        extras: dict[str, Any] = {}
        canonical = CanonicalRequest(
            Operation.LIST,
            self.name,
            request_id=request_id,
            principal=principal,
            extras={self.name: extras},
        )
        node = self._query_text(request, "node_id") if "instance_id" in params else None
        if "instance_id" in params:
            extras.update(view="instance", instance_id=params["instance_id"], node_id=node)
            canonical.filters = Filters(node_id=self._pushdown(node))
            if request.method == "DELETE":
                canonical.operation = Operation.KILL_ALL
                canonical.filters = Filters(node_id=node)
            return canonical
        node = params["node_id"]
        extras["node_id"] = node
        if request.path.endswith("/session-statistics"):
            extras["view"] = "statistics"
            canonical.filters = Filters(node_id=self._pushdown(node))
            return canonical
        if request.method == "DELETE":
            return self._decode_close(request, canonical, node)
        offset = self._query_int(request, "offset", 0)
        limit = self._query_int(request, "limit", DEFAULT_LIMIT)
        if limit < 1 or limit > MAX_LIMIT:
            raise _bad(f"limit must be between 1 and {MAX_LIMIT}")
        prefix = self._query_text(request, "addr_prefix")
        extras.update(view="node", offset=offset, limit=limit, addr_prefix=prefix)
        canonical.filters = Filters(node_id=self._pushdown(node))
        return canonical

    def encode_response(
        self, response: CanonicalResponse, request: CanonicalRequest | None, http: HttpRequest
    ) -> HttpResponse:
        try:
            if response.error is not None:
                return self._render_error(response.error, http)
            assert request is not None
            return self._render(response, request, http)
        except Exception:
            internal = RosettaError(ErrorKind.INTERNAL, "internal error; see the server log")
            return self._render_error(internal, http)

    def _unknown_api(self, request: HttpRequest) -> None:
        if any(p.match(request.path) for p in _KNOWN_PATHS):
            raise RosettaError(
                ErrorKind.BAD_REQUEST,
                f"method {request.method} is not allowed on {request.path}",
                native_code=NO_SUCH_API,
                context={"http_status": 405},
            )
        raise RosettaError(
            ErrorKind.NOT_FOUND,
            "The API does not exist or has not been published in the environment",
            native_code=NO_SUCH_API,
        )

    def _principal(self, request: HttpRequest, project: str) -> Principal:
        headers = request.headers
        token = headers.get("x-auth-token", "").strip()
        if token:
            return Principal(PrincipalKind.SESSION, token=token, project_id=project)
        authorization = headers.get("authorization", "").strip()
        if not authorization:
            return Principal(project_id=project)
        try:
            parsed = signing.parse_authorization(authorization)
            if signing.DATE_HEADER not in parsed.signed_headers:
                raise signing.SignatureFormatError("X-Sdk-Date must be a signed header")
            date_text = headers.get(signing.DATE_HEADER, "").strip()
            signed_at = signing.parse_date(date_text)
            values = {name: _utf8_header(headers.get(name, "")) for name in parsed.signed_headers}
            for name in parsed.signed_headers:
                if name not in headers:
                    raise signing.SignatureFormatError(f"signed header {name!r} is missing")
            canonical = signing.canonical_request(
                request.method,
                request.path,
                signing.query_pairs(request.query_string),
                values,
                parsed.signed_headers,
                signing.payload_hash(request.body, headers),
            )
        except signing.SignatureFormatError as exc:
            raise _denied(str(exc)) from None
        signature = Signature(
            scheme=signing.ALGORITHM,
            access_key=parsed.access_key,
            signature=parsed.signature,
            string_to_sign=signing.string_to_sign(canonical, date_text),
            signed_at=signed_at,
        )
        return Principal(PrincipalKind.SIGNATURE, signature=signature, project_id=project)

    def _pushdown(self, node: str | None) -> str | None:
        """The node filter the backend can apply: none for the default node, which also holds
        the records that carry no node id (filtered here instead)."""
        return None if node is None or node == self.default_node else node

    @staticmethod
    def _query_text(request: HttpRequest, name: str) -> str | None:
        value = request.query_param(name)
        return value if value else None

    @staticmethod
    def _query_int(request: HttpRequest, name: str, default: int) -> int:
        value = request.query_param(name)
        if value is None:
            return default
        if not _DIGITS.match(value.strip()):
            raise _bad(f"{name} must be an integer >= 0")
        return int(value)

    def _decode_close(
        self, request: HttpRequest, canonical: CanonicalRequest, node: str
    ) -> CanonicalRequest:
        extras = canonical.extras[self.name]
        extras["view"] = "close"
        if not request.body.strip():
            raise _bad('the request body must be {"is_all": ..., "session_ids": [...]}')
        try:
            body = parse_json(request.body)
        except RosettaError:
            raise _bad("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _bad("the request body must be a JSON object")
        is_all = body.get("is_all")
        if not isinstance(is_all, bool):
            raise _bad("is_all is required and must be true or false")
        ids = body.get("session_ids")
        if ids is not None and (
            not isinstance(ids, list)
            or not all(
                isinstance(i, str) or (isinstance(i, int) and not isinstance(i, bool)) for i in ids
            )
        ):
            raise _bad("session_ids must be a list of session ids")
        if is_all:
            canonical.operation = Operation.KILL_ALL
            canonical.filters = Filters(node_id=node)
            return canonical
        session_ids = [str(i) for i in ids or [] if str(i)]
        if not session_ids:
            raise _bad("session_ids is required when is_all is false")
        canonical.operation = Operation.KILL
        canonical.filters = Filters(ids=session_ids, node_id=node)
        return canonical

    # rendering ------------------------------------------------------------------------------
    def _node_of(self, record: SessionRecord) -> str:
        return record.node_id or self.default_node

    def _render(
        self, response: CanonicalResponse, request: CanonicalRequest, http: HttpRequest
    ) -> HttpResponse:
        extras = request.extras.get(self.name) or {}
        view = extras.get("view")
        node = extras.get("node_id")
        if request.operation in (Operation.KILL, Operation.KILL_ALL):
            if (
                request.operation is Operation.KILL_ALL
                and node is not None
                and not response.affected
                and node not in self.known_nodes
            ):
                return self._no_such_node(node, http)
            return _json(200, {})
        now = datetime.now(UTC)
        records = response.sessions or []
        if node is not None:
            records = [r for r in records if self._node_of(r) == node]
            if not records and node not in self.known_nodes:
                return self._no_such_node(node, http)
        if view == "instance":
            groups: dict[str, list[SessionObject]] = {}
            for node_id, _, obj in self._session_objects(records, now, ages=False):
                groups.setdefault(node_id, []).append(obj)
            return _json(
                200,
                {
                    "node_sessions": [
                        {
                            "node_id": n,
                            "total_count": len(s),
                            "sessions": rows_json(s, UsualSession),
                        }
                        for n, s in groups.items()
                    ]
                },
            )
        if view == "statistics":
            return _json(200, self._statistics(records, now))
        prefix = extras.get("addr_prefix")
        if prefix:
            records = [r for r in records if r.client_address.startswith(prefix)]
        ordered = sorted(self._session_objects(records, now, ages=True), key=itemgetter(1))
        offset, limit = int(extras.get("offset", 0)), int(extras.get("limit", DEFAULT_LIMIT))
        page = ordered[offset : offset + limit]
        listed = rows_json([obj for *_, obj in page], UsualSession)
        return _json(200, {"total_count": len(ordered), "sessions": listed})

    def _session_objects(
        self, records: Sequence[SessionRecord], now: datetime, *, ages: bool
    ) -> list[tuple[str, float, SessionObject]]:
        """``(node, age, session object)`` of each record (``age`` 0 unless ``ages``). A
        session a GeminiDB upstream sent in the usual shape is sent on as it came (a dict, or
        a ``UsualSession`` that ``wire.rows_json`` writes): rendering its record gives the same
        object (``tests/geminidb/test_records.py``, ``tests/geminidb/test_typed.py``)."""
        encode, age_of, default = self.sessions.encode, self.sessions.age_of, self.default_node

        def rendered(r: SessionRecord) -> tuple[str, float, SessionObject]:
            return r.node_id or default, age_of(r, now) if ages else 0, encode(r, now)

        if type(records) is SessionRows and isinstance(records.codec, UsualRows | TypedRows):
            row_age = records.codec.row_age
            return [
                (context or default, row_age(row), row) if record is None else rendered(record)
                for row, context, record in records.entries()
            ]
        return [rendered(r) for r in records]

    def _statistics(self, records: Sequence[SessionRecord], now: datetime) -> dict[str, Any]:
        ips = Counter(client_ip(r.client_address) for r in records if r.client_address)
        dbs = Counter(str(r.database or "0") for r in records)
        active = sum(1 for r in records if int(float(r.idle_seconds)) == 0)

        def top(counter: Counter[str]) -> list[tuple[str, int]]:
            return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]

        return {
            "total_connection_count": len(records),
            "active_connection_count": active,
            "top_source_ips": [{"client_ip": k, "connection_count": v} for k, v in top(ips)],
            "top_dbs": [{"db": k, "connection_count": v} for k, v in top(dbs)],
        }

    def _no_such_node(self, node: str, http: HttpRequest) -> HttpResponse:
        error = RosettaError(
            ErrorKind.NOT_FOUND, f"node {node} does not exist", native_code=NODE_NOT_FOUND
        )
        return self._render_error(error, http)

    def _render_error(self, error: RosettaError, http: HttpRequest) -> HttpResponse:
        status, code = _STATUS_AND_CODE.get(error.kind, _STATUS_AND_CODE[ErrorKind.INTERNAL])
        override = error.context.get("http_status") or error.context.get(_UPSTREAM_STATUS)
        if isinstance(override, int) and 400 <= override <= 599:
            status = override
        native = error.native_code
        if isinstance(native, str) and _NATIVE_CODE.match(native):
            code = native
        elif error.kind is ErrorKind.NOT_FOUND:
            scoped = error.context.get("unknown") in ("project", "instance")
            on_node = "/redis/nodes/" in http.path
            code = NODE_NOT_FOUND if on_node and not scoped else INSTANCE_NOT_FOUND
        message = error.message
        if code == "APIGW.0301":
            message = f"Incorrect IAM authentication information: {message}"
        body: dict[str, Any] = {"error_code": code, "error_msg": message}
        if code.startswith("APIGW."):
            body["request_id"] = http.headers.get("x-request-id", "")
        return _json(status, body)

    # outbound -----------------------------------------------------------------------------
    def encode_request(self, request: CanonicalRequest, upstream: UpstreamChannel) -> HttpRequest:
        """One upstream request: the instance listing for reads, the instance-wide close for
        kill_all, the node close for kill (which needs ``filters.node_id``)."""
        project, instance = self._upstream_ids(upstream)
        node = request.filters.node_id
        op = request.operation
        if op in (Operation.LIST, Operation.GET, Operation.CONNECTIONS, Operation.PING):
            pairs = [("node_id", node)] if node else []
            path = f"/v3/{project}/instances/{instance}/sessions"
            return self._outgoing("GET", path, pairs, b"", project, upstream)
        if op is Operation.KILL_ALL:
            pairs = [("node_id", node)] if node else []
            path = f"/v3/{project}/instances/{instance}/sessions"
            return self._outgoing("DELETE", path, pairs, b"", project, upstream)
        if op is Operation.KILL and node and request.filters.ids:
            body = dump_json({"is_all": False, "session_ids": request.filters.ids})
            path = f"/v3/{project}/redis/nodes/{node}/sessions"
            return self._outgoing("DELETE", path, [], body, project, upstream)
        raise RosettaError(
            ErrorKind.UNSUPPORTED_OPERATION, f"a GeminiDB upstream cannot express {op.value}"
        )

    def decode_response(
        self, response: HttpResponse, request: CanonicalRequest
    ) -> CanonicalResponse:
        result = CanonicalResponse(request.operation, request.request_id)
        now = datetime.now(UTC)
        if request.operation not in (Operation.KILL, Operation.KILL_ALL) and response.status < 400:
            kept = typed_rows(response.body, now)
            if kept is not None:  # the usual reply, read in one pass
                result.sessions = kept
                result.total = len(kept)
                return result
        data = self._upstream_body(response)
        if request.operation in (Operation.KILL, Operation.KILL_ALL):
            return result
        result.sessions = self._upstream_sessions(data, now)
        result.total = len(result.sessions)
        return result

    async def call_upstream(
        self, request: CanonicalRequest, upstream: UpstreamChannel
    ) -> CanonicalResponse:
        op = request.operation
        if op in (Operation.LOGIN, Operation.LOGOUT, Operation.ALTER):
            raise RosettaError(
                ErrorKind.UNSUPPORTED_OPERATION, f"a GeminiDB upstream cannot express {op.value}"
            )
        creds = upstream.credentials
        if creds.password and not creds.token and not (creds.access_key and creds.secret_key):
            # GeminiDB takes an IAM token or an AK/SK signature, never a user and password
            raise RosettaError(
                ErrorKind.UNAUTHENTICATED,
                f"a {request.dialect} user and password cannot be passed to a geminidb "
                "upstream (it takes X-Auth-Token or an AK/SK signature); configure static "
                "upstream credentials",
                context={"credentials_not_convertible": True},
            )
        if request.filters.users is not None and op is not Operation.KILL:
            # GeminiDB sessions carry a connection name, not a user: filtering on users would
            # silently match nothing (and a kill_all kill nothing)
            raise RosettaError(
                ErrorKind.UNSUPPORTED_OPERATION, "a GeminiDB upstream has no users to filter by"
            )
        listing = CanonicalRequest(
            Operation.LIST,
            request.dialect,
            request_id=request.request_id,
            filters=Filters(node_id=request.filters.node_id),
        )
        listed = await self._round_trip(listing, upstream)
        records = listed.sessions or []
        f = request.filters
        if f != _NO_FILTERS:
            records = [r for r in records if _matches(r, f)]
        response = CanonicalResponse(op, request.request_id)
        if op is Operation.PING:
            return response
        if op is Operation.LIST:
            end = None if request.limit is None else request.offset + request.limit
            response.sessions = records[request.offset : end]
            response.total = len(records)
            return response
        if op in (Operation.GET, Operation.CONNECTIONS):
            target = request.target_id
            if target is None:
                raise _bad("exactly one session id is needed")
            found = next((r for r in records if r.id == target), None)
            if found is None:
                raise RosettaError(ErrorKind.NOT_FOUND, f"session {target} does not exist")
            if op is Operation.GET:
                response.session = found
            else:
                response.connections = [_connection(found)]
                response.total = 1
            return response
        if op is Operation.KILL:
            wanted = request.filters.ids or []
            if not wanted:
                raise _bad("no session id given")
            missing = [i for i in wanted if i not in {r.id for r in records}]
            if missing:
                raise RosettaError(ErrorKind.NOT_FOUND, f"session {missing[0]} does not exist")
            await self._close_by_node(request, records, upstream)
            response.affected = len(records)
            return response
        # kill_all: the instance-wide close when nothing narrower than a node was asked
        if f.ids is None and f.users is None and f.address_prefix is None:
            closing = CanonicalRequest(
                Operation.KILL_ALL, request.dialect, filters=Filters(node_id=f.node_id)
            )
            await self._round_trip(closing, upstream)
        elif records:
            await self._close_by_node(request, records, upstream)
        response.affected = len(records)
        return response

    async def _round_trip(
        self, request: CanonicalRequest, upstream: UpstreamChannel
    ) -> CanonicalResponse:
        return self.decode_response(
            await upstream.send(self.encode_request(request, upstream)), request
        )

    async def _close_by_node(
        self, request: CanonicalRequest, records: Sequence[SessionRecord], upstream: UpstreamChannel
    ) -> None:
        by_node: dict[str, list[str]] = {}
        for record in records:
            by_node.setdefault(record.node_id, []).append(record.id)
        for node, ids in by_node.items():
            if not node:
                raise RosettaError(
                    ErrorKind.UPSTREAM_ERROR, f"session {ids[0]} has no node to close it on"
                )
            kill = CanonicalRequest(
                Operation.KILL, request.dialect, filters=Filters(ids=ids, node_id=node)
            )
            await self._round_trip(kill, upstream)

    def _upstream_ids(self, upstream: UpstreamChannel) -> tuple[str, str]:
        project = upstream.options.get("project_id") or self.options.get("project_id")
        instance = upstream.options.get("instance_id") or self.options.get("instance_id")
        if not isinstance(project, str) or not isinstance(instance, str):
            raise RosettaError(
                ErrorKind.INTERNAL,
                "a geminidb upstream needs options.project_id and options.instance_id",
            )
        return project, instance

    def _outgoing(
        self,
        method: str,
        path: str,
        pairs: list[tuple[str, str]],
        body: bytes,
        project: str,
        upstream: UpstreamChannel,
    ) -> HttpRequest:
        base = urlsplit(upstream.base_url)
        headers = {"content-type": "application/json", "x-project-id": project}
        creds = upstream.credentials
        query = signing.canonical_query(pairs)
        if creds.token:
            headers["x-auth-token"] = creds.token
        elif creds.access_key and creds.secret_key:
            headers = signing.sign(
                method=method,
                path=base.path.rstrip("/") + path,
                pairs=pairs,
                headers={**headers, "host": base.netloc},
                body=body,
                access_key=creds.access_key,
                secret_key=creds.secret_key,
                now=datetime.now(UTC),
            )
        return HttpRequest(method, path, query_string=query, headers=headers, body=body)

    def _upstream_body(self, response: HttpResponse) -> Any:
        data: Any = None
        if response.body.strip():
            try:
                data = parse_json(response.body, what="upstream reply")
            except RosettaError:
                data = None
        if response.status >= 400:
            raise _upstream_failure(response.status, data)
        if not isinstance(data, dict):
            raise RosettaError(
                ErrorKind.UPSTREAM_ERROR,
                f"GeminiDB upstream answered HTTP {response.status} without a JSON object",
            )
        return data

    def _upstream_sessions(self, data: dict[str, Any], now: datetime) -> SessionRows:
        reply = ReplyRows(now)
        groups = data.get("node_sessions")
        if isinstance(groups, list):
            for group in groups:
                if not isinstance(group, dict) or not isinstance(group.get("sessions", []), list):
                    raise RosettaError(ErrorKind.UPSTREAM_ERROR, "malformed node_sessions entry")
                node = group.get("node_id")
                reply.add(group.get("sessions", []), node if isinstance(node, str) else "")
            return reply.result()
        sessions = data.get("sessions")
        if isinstance(sessions, list):
            reply.add(sessions, "")
            return reply.result()
        raise RosettaError(ErrorKind.UPSTREAM_ERROR, "GeminiDB upstream sent no sessions")


def _upstream_failure(status: int, data: Any) -> RosettaError:
    code: Any = None
    message: Any = None
    if isinstance(data, dict):
        for code_key, message_key in (
            ("error_code", "error_msg"),
            ("errorCode", "errorMsg"),
            ("code", "message"),
        ):
            if data.get(code_key) is not None:
                code, message = data.get(code_key), data.get(message_key)
                break
    native = str(code) if code is not None else None
    kind = _KIND_BY_CODE.get(native or "") or _KIND_BY_STATUS.get(status)
    if kind is None:
        kind = ErrorKind.UPSTREAM_ERROR
    text = str(message) if message else f"GeminiDB upstream answered HTTP {status}"
    context = {_UPSTREAM_STATUS: status} if native and _NATIVE_CODE.match(native) else {}
    return RosettaError(kind, text, native_code=native, context=context)


_NO_FILTERS = Filters()


def _matches(record: SessionRecord, f: Filters) -> bool:
    if f.ids is not None and record.id not in f.ids:
        return False
    if f.users is not None and record.user not in f.users:
        return False
    if f.node_id is not None and record.node_id != f.node_id:
        return False
    return f.address_prefix is None or record.client_address.startswith(f.address_prefix)


def _connection(record: SessionRecord) -> Connection:
    """GeminiDB reports one client connection per session and no traffic counters."""
    carried = record.extras.get(NAME)
    ours = carried if isinstance(carried, dict) else {}
    return Connection(
        server=record.node_id,
        state="idle" if int(float(record.idle_seconds)) > 0 else "active",
        role="client",
        extras={NAME: {k: ours[k] for k in ("fd", "sub", "psub", "multi") if k in ours}},
    )
