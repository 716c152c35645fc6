"""BlobCity DB REST dialect, inbound and outbound: ``POST /rest/bquery``.

BlobCity is stateless: every request carries its credentials and the backend checks them on
every request (``PrincipalKind.PASSWORD``; an API ``key`` becomes a ``BEARER`` principal).
BlobCity has no session query codes, so Rosetta defines its own as an extension of the
management-query format; the names are configurable (option ``query_codes``) and matched
case-insensitively, with ``_`` read as ``-``, as the engine matches its own codes.

Two request forms, both accepted (a body starting with ``{`` is JSON, anything else a form)::

    {"username": "admin", "password": "pw", "q": "list-sessions", "p": {"user": "jdoe"}}

    username=admin&password=pw&q={"q":"list-sessions","username":"admin","password":"pw","p":null}

The form's ``q`` holds the query JSON as a string (raw or URL-encoded; see ``form.py`` for
the lenient parsing of the Java adapter's unencoded fields). With an empty body, the query
string is read as the form. ``p`` may be absent or ``null``.

Credentials may appear as outer fields (form fields / top-level JSON) and inside ``q``. When
both places give a user name or password and they disagree (no reading of the form value
equals the value in ``q``, and the body does not hold ``name=<value>`` verbatim) the request is
refused with ``APP003``; nothing is guessed. Malformed requests and unknown codes are answered
(``DBQEX``) before credentials are checked.

Options (inbound and upstream alike): ``query_codes`` (below); ``form`` (bool, outbound: send
the form-encoded form instead of JSON; ``upstream.options["form"]`` wins); ``anonymous_ping``
(bool, default true: a ``ping`` without credentials is a liveness check).

Query codes (defaults; option ``query_codes`` maps a canonical operation, or
``verify-credentials``, to a code or list of codes)::

    list-sessions             session.list         p: user|users, node, address-prefix, ids|id,
                                                      offset, limit
    describe-session          session.get          p: id (exactly one)
    list-session-connections  session.connections  p: id (exactly one)
    kill-session              session.kill         p: id and/or ids (at least one)
    kill-all-sessions         session.kill_all     p: user|users, node, address-prefix, ids|id
    ping                      session.ping         p: {} (no credentials: liveness only)
    verify-credentials        session.ping         p: {}; credentials required and verified

Unknown ``p`` keys are refused (a typo in a kill-all filter must not kill everything). ``id``
values may be strings or integers; ``user`` a string or list of strings.

Success ``{"ack":"1","time":<ms>,"rows":<n>,"p":...}``; ``time`` is the backend's measured
time (``response.elapsed_ms``, or a BlobCity upstream's own ``time``), rounded to whole ms::

    list-sessions             p: {"sessions": [<session>...], "total": <matches before paging>}
                              rows: sessions returned
    describe-session          p: <session>                          rows: 1
    list-session-connections  p: [<connection>...]  (an array)      rows: connections returned
    kill-session, kill-all    p: {}                                 rows: sessions killed
    ping, verify-credentials  p: {"user": <verified user>} or {}    rows: 0

Field mapping (BlobCity session JSON <-> ``SessionRecord``)::

    id               id                  ds               database
    user             user                state            state
    client-address   client_address      connected-at     connected_at (RFC 3339)
    service          service             idle-seconds     idle_seconds
    last-command     last_command        node             node_id
    description      description         connections      connections
    <other keys>     extras["blobcity"]  extras           extras[<other dialects>]
    connection: server, state, role, reads, writes (same names); other keys likewise.

    request: username/password -> principal (PASSWORD); key -> principal (BEARER);
    p.ids/id -> filters.ids; p.user(s) -> filters.users; p.node -> filters.node_id;
    p.address-prefix -> filters.address_prefix; p.offset/limit -> offset/limit;
    ds, c, db and the code as sent -> extras["blobcity"].

Failure ``{"ack":"0","code":<code>,"cause":<text>,"message":<text>}``, always HTTP 200 except
a wrong method (405). The real server writes its text under ``cause``, the docs under
``message``: both are written. Error table:

    error kind             HTTP  code                   cause
    bad_request            200   DBQEX                  the problem ("Invalid query format" ...)
    unauthenticated        200   APP003                 "Invalid credentials"
                                 INVALID_API_KEY        (when an API key was presented)
    forbidden              200   NOT AUTHORISED         the problem
    not_found              200   SESSION_INVALID        the problem
    unsupported_operation  200   UNSUPPORTED_OPERATION  the problem
    payload_too_large      200   REQUEST_TOO_LARGE      the problem
    overloaded             200   TOO_MANY_REQUESTS      the problem
    upstream_unavailable   200   UPSTREAM_UNAVAILABLE   the problem
    upstream_timeout       200   UPSTREAM_TIMEOUT       the problem
    upstream_error         200   UPSTREAM_ERROR         the problem
    internal               200   UNKNOWN_ERROR          the problem

Outbound: JSON body by default; ``options: {"form": true}`` sends the Java adapter's form
(fields URL-encoded, q repeating the credentials). Credentials are the bridged/configured
user and password, else a token as ``key``. ``ack`` is read as ``"1"``/``1``; the error text
under ``cause`` or ``message``; codes map back: APP003, INVALID_API_KEY -> unauthenticated;
DBQEX -> bad_request; NOT AUTHORISED -> forbidden; SESSION_INVALID, DATASTORE_INVALID, DB001
-> not_found; the others in the table to their kinds; anything else -> upstream_error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import orjson
import structlog

from translators.blobcity import records
from translators.blobcity.form import FormFields, FormValue, parse_form, query_json
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
    Translator,
    UpstreamChannel,
)
from translators.wire import JSON_CONTENT_TYPE, dump_json, json_response, parse_json

NAME = records.NAME
PATH = "/rest/bquery"
VERIFY = "verify-credentials"
INVALID_FORMAT = "Invalid query format"
INVALID_CREDENTIALS = "Invalid credentials"

DEFAULT_QUERY_CODES: dict[str, tuple[str, ...]] = {
    Operation.LIST.value: ("list-sessions",),
    Operation.GET.value: ("describe-session",),
    Operation.CONNECTIONS.value: ("list-session-connections",),
    Operation.KILL.value: ("kill-session",),
    Operation.KILL_ALL.value: ("kill-all-sessions",),
    Operation.PING.value: ("ping",),
    VERIFY: ("verify-credentials",),
}
_QUERY_OPERATION = {key: Operation(key) for key in DEFAULT_QUERY_CODES if key != VERIFY}
_QUERY_OPERATION[VERIFY] = Operation.PING

_ERRORS: dict[ErrorKind, str] = {
    ErrorKind.BAD_REQUEST: "DBQEX",
    ErrorKind.UNAUTHENTICATED: "APP003",
    ErrorKind.FORBIDDEN: "NOT AUTHORISED",
    ErrorKind.NOT_FOUND: "SESSION_INVALID",
    ErrorKind.UNSUPPORTED_OPERATION: "UNSUPPORTED_OPERATION",
    ErrorKind.PAYLOAD_TOO_LARGE: "REQUEST_TOO_LARGE",
    ErrorKind.OVERLOADED: "TOO_MANY_REQUESTS",
    ErrorKind.UPSTREAM_UNAVAILABLE: "UPSTREAM_UNAVAILABLE",
    ErrorKind.UPSTREAM_TIMEOUT: "UPSTREAM_TIMEOUT",
    ErrorKind.UPSTREAM_ERROR: "UPSTREAM_ERROR",
    ErrorKind.INTERNAL: "UNKNOWN_ERROR",
}
INVALID_API_KEY = "INVALID_API_KEY"
_KIND_BY_CODE: dict[str, ErrorKind] = {code: kind for kind, code in _ERRORS.items()}
_KIND_BY_CODE.update(
    {
        INVALID_API_KEY: ErrorKind.UNAUTHENTICATED,
        "DATASTORE_INVALID": ErrorKind.NOT_FOUND,
        "DB001": ErrorKind.NOT_FOUND,
        "UNKNOWN_ERROR": ErrorKind.UPSTREAM_ERROR,  # the upstream's own internal failure
    }
)
_KIND_BY_CAUSE = {
    INVALID_CREDENTIALS.lower(): ErrorKind.UNAUTHENTICATED,
    INVALID_FORMAT.lower(): ErrorKind.BAD_REQUEST,
}

_FILTER_KEYS = frozenset({"id", "ids", "user", "users", "node", "address-prefix"})
_ALLOWED_P: dict[str, frozenset[str]] = {
    Operation.LIST.value: _FILTER_KEYS | {"offset", "limit"},
    Operation.GET.value: frozenset({"id", "ids"}),
    Operation.CONNECTIONS.value: frozenset({"id", "ids"}),
    Operation.KILL.value: frozenset({"id", "ids"}),
    Operation.KILL_ALL.value: _FILTER_KEYS,
    Operation.PING.value: frozenset(),
    VERIFY: frozenset(),
}
_PASSED_FIELDS = ("ds", "c", "db")
_OPTIONS = frozenset({"query_codes", "form", "anonymous_ping"})
_MAX_ECHO = 64

_log = structlog.get_logger("rosetta.blobcity")


def normalise_code(code: str) -> str:
    """How the engine compares query codes: case-insensitive; ``_`` is read as ``-``."""
    return code.strip().lower().replace("_", "-")


def _query_codes(option: Any) -> dict[str, tuple[str, ...]]:
    if option is None:
        return dict(DEFAULT_QUERY_CODES)
    if not isinstance(option, Mapping):
        raise ValueError("query_codes must map an operation to a query code or list of codes")
    codes = dict(DEFAULT_QUERY_CODES)
    for raw_key, value in option.items():
        key = str(raw_key).replace("_", "-") if str(raw_key).startswith("verify") else raw_key
        if key not in codes:
            raise ValueError(
                f"query_codes: {raw_key!r} is not one of {', '.join(DEFAULT_QUERY_CODES)}"
            )
        listed = [value] if isinstance(value, str) else value
        if (
            not isinstance(listed, list | tuple)
            or not listed
            or not all(isinstance(c, str) and c.strip() for c in listed)
        ):
            raise ValueError(f"query_codes.{raw_key}: must be a non-empty code or list of codes")
        codes[key] = tuple(c.strip() for c in listed)
    return codes


def _flag(options: Mapping[str, Any], name: str, default: bool) -> bool:
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def _bad(message: str) -> RosettaError:
    return RosettaError(ErrorKind.BAD_REQUEST, message)


def _echo(value: str) -> str:
    return value if len(value) <= _MAX_ECHO else value[:_MAX_ECHO] + "..."


class BlobCityTranslator(Translator):
    name = NAME
    routes = (Route(PATH, ("POST",), "bquery"),)
    inbound_operations = frozenset(
        {
            Operation.PING,
            Operation.LIST,
            Operation.GET,
            Operation.CONNECTIONS,
            Operation.KILL,
            Operation.KILL_ALL,
        }
    )
    # stateless: no login, logout or alter query code
    outbound_operations = {
        Operation.PING: "native",
        Operation.LIST: "native",
        Operation.GET: "native",
        Operation.CONNECTIONS: "native",
        Operation.KILL: "native",
        Operation.KILL_ALL: "native",
    }
    error_table = {kind: (200, code) for kind, code in _ERRORS.items()}

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        unknown = sorted(set(self.options) - _OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(_OPTIONS))}"
            )
        codes = _query_codes(self.options.get("query_codes"))
        self.form = _flag(self.options, "form", False)
        self.anonymous_ping = _flag(self.options, "anonymous_ping", True)
        self._by_code: dict[str, str] = {}
        for key, listed in codes.items():
            for code in listed:
                normal = normalise_code(code)
                other = self._by_code.setdefault(normal, key)
                if other != key:
                    raise ValueError(f"query_codes: {code!r} is used for both {other} and {key}")
        self._outbound = {key: listed[0] for key, listed in codes.items()}

    # inbound ------------------------------------------------------------------------------
    def decode_request(self, request: HttpRequest) -> CanonicalRequest:
        outer, query = self._envelope(request)
        code = query.get("q")
        if code is None or (isinstance(code, str) and not code.strip()):
            raise _bad(INVALID_FORMAT)
        if not isinstance(code, str):
            raise _bad(f"{INVALID_FORMAT}: q must be a query code string")
        key = self._by_code.get(normalise_code(code))
        if key is None:
            raise _bad(f"unknown query code {_echo(code)!r}")
        operation = _QUERY_OPERATION[key]
        principal = _principal(outer, query)
        if key == VERIFY and principal.kind is PrincipalKind.ANONYMOUS:
            raise RosettaError(ErrorKind.UNAUTHENTICATED, "verify-credentials needs credentials")
        if (
            operation is not Operation.PING or not self.anonymous_ping
        ) and principal.kind is PrincipalKind.ANONYMOUS:
            raise RosettaError(ErrorKind.UNAUTHENTICATED, "credentials are required")
        payload = query.get("p", None) if "p" in query else _plain(outer.get("p"))
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise _bad(f"{INVALID_FORMAT}: p must be a JSON object or null")
        canonical = CanonicalRequest(operation=operation, dialect=self.name, principal=principal)
        _apply_payload(canonical, key, code, payload)
        carried: dict[str, Any] = {"query": code}
        for name in _PASSED_FIELDS:
            value = query.get(name, _plain(outer.get(name)))
            if value is not None:
                carried[name] = value
        canonical.extras[self.name] = carried
        return canonical

    def _envelope(self, request: HttpRequest) -> tuple[Mapping[str, Any], dict[str, Any]]:
        """``(outer fields, query object, is_form)``; the query object holds ``q`` (the code),
        ``p`` and possibly credentials. For the plain JSON form both are the same object."""
        body = request.body.lstrip()
        if body.startswith(b"\xef\xbb\xbf"):
            body = body[3:].lstrip()
        if body.startswith(b"{"):
            data = parse_json(body)
            if not isinstance(data, dict):
                raise _bad(f"{INVALID_FORMAT}: the body must be a JSON object")
            inner = data.get("q")
            if isinstance(inner, str) and inner.lstrip().startswith("{"):
                inner = parse_json(inner, what="q")
            if isinstance(inner, dict):
                return data, inner
            return data, data
        if body:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad(f"{INVALID_FORMAT}: the body is not UTF-8") from None
        else:
            text = request.query_string
        fields = parse_form(text) if text.strip() else {}
        q = fields.get("q")
        if q is None or not q.decoded.strip():
            raise _bad(INVALID_FORMAT)
        inner = query_json(q)
        if not isinstance(inner, dict):
            raise _bad(f"{INVALID_FORMAT}: q must hold a JSON object")
        return fields, inner

    def encode_response(
        self, response: CanonicalResponse, request: CanonicalRequest | None, http: HttpRequest
    ) -> HttpResponse:
        try:
            if response.error is not None:
                return self._failure(response.error, request)
            operation = request.operation if request is not None else response.operation
            rows, payload = _success_payload(operation, response)
            body = {"ack": "1", "time": _time(response), "rows": rows, "p": payload}
            return HttpResponse(200, [JSON_CONTENT_TYPE], dump_json(body))
        except Exception:
            _log.exception("encode_failure")
            failure = {
                "ack": "0",
                "code": _ERRORS[ErrorKind.INTERNAL],
                "cause": "internal error",
                "message": "internal error",
            }
            return json_response(200, failure)

    def _failure(self, error: RosettaError, request: CanonicalRequest | None) -> HttpResponse:
        code = error.context.get("blobcity_code")
        if not isinstance(code, str) or _KIND_BY_CODE.get(code) is not error.kind:
            code = _ERRORS[error.kind]
            if (
                error.kind is ErrorKind.UNAUTHENTICATED
                and request is not None
                and request.principal.kind is PrincipalKind.BEARER
            ):
                code = INVALID_API_KEY
        cause = INVALID_CREDENTIALS if error.kind is ErrorKind.UNAUTHENTICATED else error.message
        body = {"ack": "0", "code": code, "cause": cause, "message": error.message}
        status = 405 if error.context.get("http_status") == 405 else 200
        return json_response(status, body)

    # outbound -----------------------------------------------------------------------------
    def encode_request(self, request: CanonicalRequest, upstream: UpstreamChannel) -> HttpRequest:
        carried = request.extras.get(self.name)
        carried = carried if isinstance(carried, dict) else {}
        key = request.operation.value
        if request.operation is Operation.PING and carried.get("query") is not None:
            sent = carried["query"]
            if isinstance(sent, str) and self._by_code.get(normalise_code(sent)) == VERIFY:
                key = VERIFY
        code = self._outbound.get(key)
        if code is None:
            raise RosettaError(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"a blobcity upstream cannot express {request.operation.value}",
            )
        creds = upstream.credentials
        outer: dict[str, Any] = {}
        if creds.user is not None:
            outer["username"] = creds.user
            outer["password"] = creds.password or ""
        elif creds.token:
            outer["key"] = creds.token
        for name in _PASSED_FIELDS:
            if name in carried:
                outer[name] = carried[name]
        payload = _outbound_payload(request)
        form = upstream.options.get("form", self.form) is True
        if form:
            query = {"q": code, **outer, "p": payload or None}
            fields = {k: v for k, v in outer.items() if isinstance(v, str)}
            fields["q"] = orjson.dumps(query).decode("utf-8")
            headers = {"content-type": "application/x-www-form-urlencoded"}
            return HttpRequest("POST", PATH, headers=headers, body=urlencode(fields).encode())
        body = {**outer, "q": code, "p": payload}
        headers = {"content-type": "application/json"}
        return HttpRequest("POST", PATH, headers=headers, body=dump_json(body))

    def decode_response(
        self, response: HttpResponse, request: CanonicalRequest
    ) -> CanonicalResponse:
        try:
            data = parse_json(response.body, what="upstream reply")
        except RosettaError:
            raise RosettaError(
                ErrorKind.UPSTREAM_ERROR,
                f"upstream answered HTTP {response.status} without a BlobCity JSON body",
            ) from None
        if not isinstance(data, dict) or "ack" not in data:
            raise RosettaError(
                ErrorKind.UPSTREAM_ERROR,
                f"upstream answered HTTP {response.status} without a BlobCity envelope",
            )
        ack = data["ack"]
        if ack in ("0", 0):
            raise _upstream_failure(data)
        if ack not in ("1", 1):
            raise RosettaError(ErrorKind.UPSTREAM_ERROR, f"upstream ack {ack!r} is not 0 or 1")
        decoded = CanonicalResponse(operation=request.operation, request_id=request.request_id)
        time_ms = data.get("time")
        if isinstance(time_ms, int | float) and not isinstance(time_ms, bool):
            decoded.elapsed_ms = float(time_ms)
            decoded.extras[self.name] = {"time": time_ms}
        _read_payload(decoded, data.get("p"), data.get("rows"))
        return decoded


# inbound helpers ----------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A form field's decoded text, or a JSON value as it is."""
    return value.decoded if isinstance(value, FormValue) else value


def _principal(outer: Mapping[str, Any], query: dict[str, Any]) -> Principal:
    """User and password (PASSWORD), else an API key (BEARER), else anonymous."""
    user = _credential(outer, query, "username")
    password = _credential(outer, query, "password")
    if user or password:
        return Principal(PrincipalKind.PASSWORD, user=user or "", password=password or "")
    key = _credential(outer, query, "key")
    if key:
        return Principal(PrincipalKind.BEARER, token=key)
    return Principal()


def _credential(outer: Mapping[str, Any], query: dict[str, Any], name: str) -> str | None:
    """One credential from the query object and/or the outer fields; refuses a mismatch."""
    inner = query.get(name)
    if inner is not None and not isinstance(inner, str):
        raise _bad(f"{INVALID_FORMAT}: {name} must be a string")
    if query is outer:
        return inner or None
    given = outer.get(name)
    if isinstance(outer, FormFields):
        sent = given.decoded if given is not None and given.raw else None
        agrees = sent is None or not inner or outer.agrees(name, inner)
    else:
        if given is not None and not isinstance(given, str):
            raise _bad(f"{INVALID_FORMAT}: {name} must be a string")
        sent = given or None
        agrees = sent is None or not inner or sent == inner
    if not agrees:
        raise RosettaError(
            ErrorKind.UNAUTHENTICATED, f"the {name} given as a field and the one inside q disagree"
        )
    return inner or sent


def _ids(payload: dict[str, Any]) -> list[str] | None:
    found: list[str] = []
    present = False
    for name in ("id", "ids"):
        if name not in payload or payload[name] is None:
            continue
        present = True
        value = payload[name]
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, bool) or not isinstance(item, str | int) or item == "":
                raise _bad(f"p.{name}: session ids must be non-empty strings or integers")
            text = str(item)
            if text not in found:
                found.append(text)
    return found if present else None


def _users(payload: dict[str, Any]) -> list[str] | None:
    found: list[str] = []
    present = False
    for name in ("user", "users"):
        value = payload.get(name)
        if value is None:
            continue
        present = True
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items):
            raise _bad(f"p.{name}: must be a user name or a list of user names")
        found.extend(i for i in items if i not in found)
    return found if present else None


def _text(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad(f"p.{name}: must be a string")
    return value


def _count(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(f"p.{name}: must be an integer >= 0")
    return value


def _apply_payload(request: CanonicalRequest, key: str, code: str, raw: dict[str, Any]) -> None:
    payload = {normalise_code(str(k)): v for k, v in raw.items()}
    unknown = sorted(set(payload) - _ALLOWED_P[key])
    if unknown:
        raise _bad(f"{_echo(code)}: unknown payload field(s) {', '.join(map(repr, unknown))}")
    request.filters = Filters(
        ids=_ids(payload),
        users=_users(payload),
        node_id=_text(payload, "node"),
        address_prefix=_text(payload, "address-prefix"),
    )
    request.offset = _count(payload, "offset") or 0
    request.limit = _count(payload, "limit")
    ids = request.filters.ids or []
    if key in (Operation.GET.value, Operation.CONNECTIONS.value) and len(ids) != 1:
        raise _bad(f"{_echo(code)} needs exactly one session id in p.id")
    if key == Operation.KILL.value and not ids:
        raise _bad(f"{_echo(code)} needs a session id in p.id or p.ids")


def _time(response: CanonicalResponse) -> int:
    carried = response.extras.get(NAME)
    if isinstance(carried, dict):
        upstream_time = carried.get("time")
        if isinstance(upstream_time, int) and not isinstance(upstream_time, bool):
            return upstream_time
    return round(response.elapsed_ms)


def _success_payload(operation: Operation, response: CanonicalResponse) -> tuple[int, Any]:
    if operation is Operation.LIST:
        sessions = records.sessions_to_json(response.sessions or [])
        total = response.total if response.total is not None else len(sessions)
        return len(sessions), {"sessions": sessions, "total": total}
    if operation is Operation.GET:
        if response.session is None:
            return 0, {}
        return 1, records.session_to_json(response.session)
    if operation is Operation.CONNECTIONS:
        connections = [records.connection_to_json(c) for c in response.connections or []]
        return len(connections), connections
    if operation in (Operation.KILL, Operation.KILL_ALL):
        return response.affected or 0, {}
    if response.caller is not None:
        return 0, {"user": response.caller.user}
    return 0, {}


# outbound helpers ---------------------------------------------------------------------------
def _outbound_payload(request: CanonicalRequest) -> dict[str, Any]:
    f = request.filters
    payload: dict[str, Any] = {}
    if f.ids is not None:
        if len(f.ids) == 1 and request.operation is not Operation.LIST:
            payload["id"] = f.ids[0]
        else:
            payload["ids"] = list(f.ids)
    if request.operation in (Operation.GET, Operation.CONNECTIONS, Operation.KILL):
        # these codes take ids only (a node named alongside, e.g. by a GeminiDB node path,
        # does not narrow a kill by id): anything else is refused as an unknown p field
        return payload
    if f.users is not None:
        payload["user"] = f.users[0] if len(f.users) == 1 else list(f.users)
    if f.node_id is not None:
        payload["node"] = f.node_id
    if f.address_prefix is not None:
        payload["address-prefix"] = f.address_prefix
    if request.operation is Operation.LIST:
        if request.offset:
            payload["offset"] = request.offset
        if request.limit is not None:
            payload["limit"] = request.limit
    return payload


def _upstream_failure(data: dict[str, Any]) -> RosettaError:
    code = data.get("code")
    text = data.get("message") or data.get("cause") or ""
    text = text if isinstance(text, str) else str(text)
    kind: ErrorKind | None = None
    if isinstance(code, str) and code:
        kind = _KIND_BY_CODE.get(code.strip().upper())
    if kind is None and not code:
        kind = _KIND_BY_CAUSE.get(text.strip().lower())
    kind = kind or ErrorKind.UPSTREAM_ERROR
    native = code if isinstance(code, str | int) and not isinstance(code, bool) else None
    context = {"blobcity_code": native} if isinstance(native, str) else {}
    return RosettaError(
        kind, text or f"upstream failed with code {native!r}", native_code=native, context=context
    )


def _read_payload(response: CanonicalResponse, payload: Any, rows: Any) -> None:
    operation = response.operation
    count = rows if isinstance(rows, int) and not isinstance(rows, bool) else None
    try:
        if operation is Operation.LIST:
            items = payload.get("sessions") if isinstance(payload, dict) else payload
            if not isinstance(items, list):
                raise records.upstream_error("list-sessions p has no 'sessions' list")
            response.sessions = records.reply_rows(items)
            total = payload.get("total") if isinstance(payload, dict) else None
            valid_total = isinstance(total, int) and not isinstance(total, bool)
            response.total = total if valid_total else len(response.sessions)
        elif operation is Operation.GET:
            response.session = records.session_from_json(payload)
        elif operation is Operation.CONNECTIONS:
            items = payload.get("connections") if isinstance(payload, dict) else payload
            if not isinstance(items, list):
                raise records.upstream_error("connections p must be an array")
            response.connections = [records.connection_from_json(c) for c in items]
            response.total = len(response.connections)
        elif operation in (Operation.KILL, Operation.KILL_ALL):
            response.affected = count
        elif isinstance(payload, dict) and isinstance(payload.get("user"), str):
            response.caller = CallerInfo(user=payload["user"])
    except (TypeError, AttributeError) as exc:
        raise records.upstream_error(str(exc)) from None
