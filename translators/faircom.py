"""FairCom JSON Action API (``jsonAction``) dialect, inbound and outbound.

Transport: ``POST /api`` and ``POST /api/<anything>`` (``sqlalchemy-faircom`` posts to
``/api/db``); everything is in the JSON body. Every answer, errors included, is a FairCom
envelope with HTTP 200: ``{"result": {...}, "errorCode": 0|n, "errorMessage": "...",
"requestId": <echoed, same JSON type>}`` (plus ``authToken`` / ``debugInfo`` where noted).
The only exception is a method other than POST on a FairCom path: the same envelope with
HTTP 405 and ``Allow: POST``.

Actions (under any ``api``; FairCom's own clients use ``"admin"``)::

    createSession     -> session.login    params username/password -> Principal(PASSWORD)
    pingSession       -> session.ping     no authToken: anonymous ping (server alive)
    listSessions      -> session.list     params.usernameFilter -> filters.users
    describeSessions  -> session.list     params.authTokens selects sessions (see below)
    alterSession      -> session.alter    params.authToken "session:<id>" -> filters.ids
    deleteSession     -> session.logout   params.authToken "session:<id>" -> session.kill
    closeSession      -> alias of deleteSession (sent by sqlalchemy-faircom on dispose)

Any other action is ``unsupported_operation``.

Field mapping (FairCom <-> canonical):

| FairCom                                   | canonical                                        |
|-------------------------------------------|--------------------------------------------------|
| ``authToken`` (top level)                 | ``principal.token`` (kind SESSION)               |
| ``params.username`` / ``params.password`` | ``principal.user`` / ``principal.password``      |
| ``requestId``                             | ``request_id`` (echoed with its JSON type)       |
| ``params.description``                    | ``settings.description`` / ``record.description``|
| ``params.idleConnectionTimeoutSeconds``   | ``settings.idle_timeout_seconds`` (0 = never)    |
| other createSession/alterSession params   | ``extras.faircom.settings`` (kept per session)   |
| ``params.usernameFilter``                 | ``filters.users``                                |
| session ``authToken``                     | the caller's own token, else ``session:<id>``    |
| session ``username``                      | ``record.user``                                  |
| session ``sessionStartTimestamp``         | ``record.connected_at`` (UTC, second precision)  |
| session ``sessionLastAccessedTimestamp``  | ``extras.rosetta.last_accessed_at``, else now -  |
|                                           | ``record.idle_seconds``                          |
| session ``idleConnectionTimeoutSeconds``  | ``extras.rosetta.idle_timeout_seconds``          |
| session ``defaultDatabaseName``           | ``record.database`` when no setting carries it   |
| other session fields                      | ``record.extras.faircom``                        |

Session tokens are credentials, so a listing never shows another session's live token: other
sessions appear under the token-shaped id ``session:<canonical id>``, which Rosetta accepts
back wherever FairCom takes a session token as a target (``describeSessions.authTokens``,
``alterSession.params.authToken``, ``deleteSession.params.authToken``). The caller's own
session shows the caller's own token. ``debug: "max"`` echoes the request in
``debugInfo.request`` with the password and live tokens replaced by ``********``; the one
place a token is echoed is the top-level ``authToken`` of a 12031 error, as FairCom does.

Error table (kind -> HTTP status, errorCode). 12031 and its message are FairCom's own; the
12100 block is Rosetta's choice, since FairCom does not document codes for these cases:

| error kind              | HTTP | errorCode | when                                          |
|-------------------------|------|-----------|-----------------------------------------------|
| unauthenticated (token) | 200  | 12031     | unknown, expired, killed or missing authToken |
| unauthenticated (login) | 200  | 12101     | bad username or password on createSession     |
|                         |      |           | (or, with the reason, a password the upstream |
|                         |      |           | cannot take, e.g. a GeminiDB upstream)        |
| bad_request             | 200  | 12100     | not JSON, not an object, missing/non-string   |
|                         |      |           | api/action, parameter of the wrong type       |
| forbidden               | 200  | 12102     |                                               |
| not_found               | 200  | 12103     | a ``session:<id>`` the caller may not see     |
| unsupported_operation   | 200  | 12104     | an action Rosetta does not serve              |
| payload_too_large       | 200  | 12105     | body over ``server.max_body_bytes``           |
| overloaded              | 200  | 12110     | rate limit or upstream concurrency cap        |
| upstream_unavailable    | 200  | 12106     | upstream refused / unreachable                |
| upstream_timeout        | 200  | 12107     | upstream did not answer in time               |
| upstream_error          | 200  | 12108     | upstream answered garbage or an unknown error |
| internal                | 200  | 12109     |                                               |

An error relayed from a FairCom upstream keeps the upstream's own errorCode and message.

Outbound (the upstream speaks FairCom): session.login -> ``createSession``; the other
operations need an upstream ``authToken``: the caller's token when it has one, else a session
created with ``upstream.credentials`` user/password, cached per caller and created again once
when the upstream answers 12031. ``session.list`` is ``listSessions`` followed by
``describeSessions`` for the full objects (filters and paging done here); ``session.get`` and
``session.kill`` / ``session.kill_all`` / ``session.alter`` of another id are composed from the
listing (the target's token, or its ``session:<id>``, as FairCom accepts it);
``session.connections`` is unsupported_operation, and so is a list or kill_all filtered by
node or client address (FairCom sessions carry neither). FairCom errors map back: 12031 and -1 ->
unauthenticated, the 12100 block -> its kind, anything else -> upstream_error, always keeping
``native_code``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any, ClassVar, cast

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
from translators.faircom_typed import ListedEntry, typed_entries
from translators.session_rows import Brief, SessionRows
from translators.wire import dump_json, json_response, parse_json, rows_json

NAME = "faircom"
TOKEN_ERROR = 12031
TOKEN_MESSAGE = (
    "'authToken' does not match any existing session. Use a valid 'authToken' or use "
    "'createSession' to create a valid 'authToken'."
)
LEGACY_TOKEN_ERROR = -1
LEGACY_TOKEN_MESSAGE = "authToken invalid or expired."
LOGIN_ERROR = 12101
SESSION_ID_PREFIX = "session:"
MASK = "********"
DB_SCHEMA = "faircom.com/schemas/db"

CODES: dict[ErrorKind, int] = {
    ErrorKind.BAD_REQUEST: 12100,
    ErrorKind.UNAUTHENTICATED: TOKEN_ERROR,
    ErrorKind.FORBIDDEN: 12102,
    ErrorKind.NOT_FOUND: 12103,
    ErrorKind.UNSUPPORTED_OPERATION: 12104,
    ErrorKind.PAYLOAD_TOO_LARGE: 12105,
    ErrorKind.OVERLOADED: 12110,
    ErrorKind.UPSTREAM_UNAVAILABLE: 12106,
    ErrorKind.UPSTREAM_TIMEOUT: 12107,
    ErrorKind.UPSTREAM_ERROR: 12108,
    ErrorKind.INTERNAL: 12109,
}
_KIND_BY_CODE: dict[int, ErrorKind] = {
    **{code: kind for kind, code in CODES.items()},
    LOGIN_ERROR: ErrorKind.UNAUTHENTICATED,
    LEGACY_TOKEN_ERROR: ErrorKind.UNAUTHENTICATED,
}

_ACTIONS: dict[str, Operation] = {
    "createSession": Operation.LOGIN,
    "pingSession": Operation.PING,
    "listSessions": Operation.LIST,
    "describeSessions": Operation.LIST,
    "alterSession": Operation.ALTER,
    "deleteSession": Operation.LOGOUT,
    "closeSession": Operation.LOGOUT,
}
_DEFAULT_ACTION: dict[Operation, str] = {
    Operation.LOGIN: "createSession",
    Operation.LOGOUT: "deleteSession",
    Operation.PING: "pingSession",
    Operation.LIST: "listSessions",
    Operation.GET: "describeSessions",
    Operation.CONNECTIONS: "describeSessions",
    Operation.KILL: "deleteSession",
    Operation.KILL_ALL: "deleteSession",
    Operation.ALTER: "alterSession",
}
# session settings: canonical ones are mapped, credentials are never kept
_CANONICAL_PARAMS = frozenset({"description", "idleConnectionTimeoutSeconds"})
_SECRET_PARAMS = frozenset({"username", "password", "authToken"})
_STRING_PARAMS = frozenset(
    {
        "defaultApi",
        "defaultDebug",
        "defaultDatabaseName",
        "defaultOwnerName",
        "defaultBinaryFormat",
        "defaultVariantFormat",
        "defaultStringFormat",
        "defaultFixedLengthCharFormat",
    }
)
_INT_PARAMS = frozenset({"idleCursorTimeoutSeconds", "transformBufferInitialBytes"})
# fields of a session object that are computed, not settings
_OBJECT_FIXED = frozenset({"authToken", "username", "description", "password"})
_LIVE_TOKEN_TARGET = "\x00live-token"
_OPTIONS = frozenset({"legacy_db_auth_error", "api", "api_version"})


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def token_id(token: str) -> str:
    """The canonical id of an upstream session known only by its token: ``session:<id>``
    gives ``<id>``; a live token gives a digest of it, never the token itself."""
    if token.startswith(SESSION_ID_PREFIX):
        return token[len(SESSION_ID_PREFIX) :]
    return "fc-" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:20]


def _bad(message: str) -> RosettaError:
    return RosettaError(ErrorKind.BAD_REQUEST, message)


def _number(value: float | int) -> int | float:
    return int(value) if float(value).is_integer() else value


@dataclass(slots=True)
class _Envelope:
    """What encode_response needs from the caller's request body, parsed leniently."""

    body: dict[str, Any]

    @property
    def token(self) -> str | None:
        value = self.body.get("authToken")
        return value if isinstance(value, str) and value else None

    @property
    def action(self) -> str | None:
        value = self.body.get("action")
        return value if isinstance(value, str) else None


def _mask(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request as ``debugInfo.request`` shows it: password and live tokens masked."""
    shown = dict(body)
    if isinstance(shown.get("authToken"), str) and shown["authToken"]:
        shown["authToken"] = MASK
    params = shown.get("params")
    if isinstance(params, dict):
        params = dict(params)
        if "password" in params:
            params["password"] = MASK
        if isinstance(params.get("authToken"), str):
            params["authToken"] = _mask_token(params["authToken"])
        if isinstance(params.get("authTokens"), list):
            params["authTokens"] = [
                _mask_token(t) if isinstance(t, str) else t for t in params["authTokens"]
            ]
        shown["params"] = params
    return shown


def _mask_token(token: str) -> str:
    return token if token.startswith(SESSION_ID_PREFIX) or not token else MASK


class FairComTranslator(Translator):
    """FairCom JSON Action: see the module docstring for mappings and the error table."""

    name = NAME
    routes = (Route("/api", ("POST",), "api"), Route("/api/{rest:path}", ("POST",), "api"))
    inbound_operations = frozenset(
        {
            Operation.LOGIN,
            Operation.LOGOUT,
            Operation.PING,
            Operation.LIST,
            Operation.KILL,
            Operation.ALTER,
        }
    )
    # get, kill, kill_all and alter of another session are composed from the listing (the
    # target's token or its "session:<id>"); a listing is listSessions + describeSessions,
    # filtered and paged here; FairCom has no connections
    outbound_operations = {
        Operation.LOGIN: "native",
        Operation.LOGOUT: "native",
        Operation.PING: "native",
        Operation.LIST: "composed",
        Operation.GET: "composed",
        Operation.KILL: "composed",
        Operation.KILL_ALL: "composed",
        Operation.ALTER: "composed",
    }
    error_table: ClassVar[Mapping[ErrorKind, tuple[int, str | int]]] = {
        kind: (200, code) for kind, code in CODES.items()
    }

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        unknown = set(self.options) - _OPTIONS
        if unknown:
            raise ValueError(f"unknown faircom option(s): {', '.join(sorted(unknown))}")
        legacy = self.options.get("legacy_db_auth_error", False)
        if not isinstance(legacy, bool):
            raise ValueError("legacy_db_auth_error must be true or false")
        api = self.options.get("api", "admin")
        version = self.options.get("api_version", "1.0")
        if not isinstance(api, str) or not api or not isinstance(version, str) or not version:
            raise ValueError("api and api_version must be non-empty strings")
        self.legacy_db_auth_error: bool = legacy
        self.api: str = api
        self.api_version: str = version

    # inbound ------------------------------------------------------------------------------
    def decode_request(self, request: HttpRequest) -> CanonicalRequest:
        body = parse_json(request.body) if request.body.strip() else None
        if body is None and not request.body.strip():
            raise _bad("request body is empty; expected a JSON object")
        if not isinstance(body, dict):
            raise _bad("request body must be a JSON object")
        request_id = body.get("requestId")
        try:
            return self._decode(body, request_id)
        except RosettaError as error:
            error.request_id = request_id
            raise

    def _decode(self, body: dict[str, Any], request_id: Any) -> CanonicalRequest:
        api, action = body.get("api"), body.get("action")
        if not isinstance(api, str) or not api:
            raise _bad("'api' must be a non-empty string, e.g. \"admin\"")
        if not isinstance(action, str) or not action:
            raise _bad("'action' must be a non-empty string, e.g. \"pingSession\"")
        operation = _ACTIONS.get(action)
        if operation is None:
            raise RosettaError(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"action '{action}' of api '{api}' is not supported by Rosetta",
            )
        params = body.get("params")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise _bad("'params' must be an object")
        token = body.get("authToken")
        if token is not None and not isinstance(token, str):
            raise _bad("'authToken' must be a string")
        for key in ("debug", "apiVersion"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise _bad(f"'{key}' must be a string")
        if body.get("responseOptions") is not None and not isinstance(
            body["responseOptions"], dict
        ):
            raise _bad("'responseOptions' must be an object")
        principal = Principal(PrincipalKind.SESSION, token=token) if token else Principal()
        extras: dict[str, Any] = {"action": action, "api": api}
        request = CanonicalRequest(
            operation=operation,
            dialect=self.name,
            request_id=request_id,
            principal=principal,
            extras={self.name: extras},
        )
        if operation is Operation.LOGIN:
            self._decode_login(request, params)
        elif operation is Operation.LIST:
            self._decode_list(request, params, action, token)
        elif operation is Operation.ALTER:
            request.filters = self._target(params, token)
            if request.filters.ids == [_LIVE_TOKEN_TARGET]:
                # whoever holds a live token may alter its session, as with a top-level one
                request.filters = Filters()
                request.principal = Principal(PrincipalKind.SESSION, token=params["authToken"])
            self._decode_settings(request, params)
        elif operation is Operation.LOGOUT:
            self._decode_delete(request, params, token)
        return request

    def _decode_login(self, request: CanonicalRequest, params: dict[str, Any]) -> None:
        user, password = params.get("username"), params.get("password")
        if user is not None and not isinstance(user, str):
            raise _bad("'params.username' must be a string")
        if password is not None and not isinstance(password, str):
            raise _bad("'params.password' must be a string")
        if user and password is not None:
            request.principal = Principal(PrincipalKind.PASSWORD, user=user, password=password)
        self._decode_settings(request, params)

    def _decode_settings(self, request: CanonicalRequest, params: dict[str, Any]) -> None:
        if "description" in params:
            description = params["description"]
            if description is not None and not isinstance(description, str):
                raise _bad("'params.description' must be a string")
            request.settings["description"] = description or ""
        if "idleConnectionTimeoutSeconds" in params:
            idle = params["idleConnectionTimeoutSeconds"]
            if isinstance(idle, bool) or not isinstance(idle, int) or idle < 0:
                raise _bad("'params.idleConnectionTimeoutSeconds' must be an integer >= 0")
            request.settings["idle_timeout_seconds"] = idle
        settings: dict[str, Any] = {}
        for key, value in params.items():
            if key in _CANONICAL_PARAMS or key in _SECRET_PARAMS:
                continue
            if key in _STRING_PARAMS and not isinstance(value, str):
                raise _bad(f"'params.{key}' must be a string")
            if key in _INT_PARAMS and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise _bad(f"'params.{key}' must be an integer >= 0")
            if key == "defaultResponseOptions" and not isinstance(value, dict):
                raise _bad("'params.defaultResponseOptions' must be an object")
            if key == "permanentSession" and not isinstance(value, bool | str):
                raise _bad("'params.permanentSession' must be a boolean")
            settings[key] = value
        if settings:
            request.extras[self.name]["settings"] = settings

    def _decode_list(
        self, request: CanonicalRequest, params: dict[str, Any], action: str, token: str | None
    ) -> None:
        if action == "listSessions":
            users = params.get("usernameFilter")
            if users is not None:
                if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
                    raise _bad("'params.usernameFilter' must be an array of strings")
                request.filters = Filters(users=list(users))
            return
        tokens = params.get("authTokens")
        if tokens is None:
            return
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise _bad("'params.authTokens' must be an array of strings")
        ids = [t[len(SESSION_ID_PREFIX) :] for t in tokens if t.startswith(SESSION_ID_PREFIX)]
        request.extras[self.name]["select"] = {
            "ids": ids,
            "self": bool(token) and token in tokens,
        }

    def _target(self, params: dict[str, Any], token: str | None) -> Filters:
        target = params.get("authToken")
        if target is None or target == "" or target == token:
            return Filters()
        if not isinstance(target, str):
            raise _bad("'params.authToken' must be a string")
        if target.startswith(SESSION_ID_PREFIX):
            return Filters(ids=[target[len(SESSION_ID_PREFIX) :]])
        return Filters(ids=[_LIVE_TOKEN_TARGET])

    def _decode_delete(
        self, request: CanonicalRequest, params: dict[str, Any], token: str | None
    ) -> None:
        target = params.get("authToken")
        if target is not None and not isinstance(target, str):
            raise _bad("'params.authToken' must be a string")
        if not target or target == token:
            return
        if target.startswith(SESSION_ID_PREFIX):
            request.operation = Operation.KILL
            request.filters = Filters(ids=[target[len(SESSION_ID_PREFIX) :]])
            return
        # whoever holds a live token may end its session, as with a top-level authToken
        request.principal = Principal(PrincipalKind.SESSION, token=target)

    def encode_response(
        self, response: CanonicalResponse, request: CanonicalRequest | None, http: HttpRequest
    ) -> HttpResponse:
        envelope = _Envelope(self._lenient_body(http.body))
        body: dict[str, Any] = {}
        if "requestId" in envelope.body:
            body["requestId"] = envelope.body["requestId"]
        elif response.request_id is not None:
            body["requestId"] = response.request_id
        db_variant = envelope.body.get("api") == "db"
        debug_max = envelope.body.get("debug") == "max"
        if db_variant or debug_max:
            shown = _mask(envelope.body)
            if db_variant:
                body["schema"] = DB_SCHEMA
                body.update(
                    (k, shown[k]) for k in ("api", "apiVersion", "action", "params") if k in shown
                )
                body["debugInfo"] = {}
            if debug_max:
                body["debugInfo"] = {"request": shown}
        error = response.error
        headers: list[tuple[str, str]] = []
        status = 200
        if error is not None:
            code, message = self._error_code(error, request, envelope, db_variant)
            body["result"] = {}
            body["errorCode"] = code
            body["errorMessage"] = message or error.kind.value
            if code in (TOKEN_ERROR, LEGACY_TOKEN_ERROR) and envelope.token:
                body["authToken"] = envelope.token
            if error.context.get("http_status") == 405:
                status = 405
                headers.append(("allow", "POST"))
            return json_response(status, body, headers)
        action = (
            request.extras.get(self.name, {}).get("action") if request is not None else None
        ) or envelope.action
        operation = request.operation if request is not None else response.operation
        if not isinstance(action, str) or _ACTIONS.get(action) not in (operation, None):
            action = _DEFAULT_ACTION[operation]
        own_token = response.token or (request.principal.token if request is not None else None)
        body["result"] = self._result(action, response, request, own_token)
        if operation is Operation.LOGIN and response.token:
            body["authToken"] = response.token
        body["errorCode"] = 0
        body["errorMessage"] = ""
        return json_response(status, body, headers)

    @staticmethod
    def _lenient_body(raw: bytes) -> dict[str, Any]:
        try:
            value = parse_json(raw) if raw.strip() else None
        except RosettaError:
            return {}
        return value if isinstance(value, dict) else {}

    def _error_code(
        self,
        error: RosettaError,
        request: CanonicalRequest | None,
        envelope: _Envelope,
        db_variant: bool,
    ) -> tuple[int, str]:
        relayed = error.context.get(self.name)
        if isinstance(relayed, dict) and isinstance(relayed.get("errorCode"), int):
            return relayed["errorCode"], str(relayed.get("errorMessage") or error.message)
        if error.kind is ErrorKind.UNAUTHENTICATED:
            login = (
                request is not None and request.operation is Operation.LOGIN
            ) or envelope.action == "createSession"
            if login and error.context.get("credentials_not_convertible"):
                # the password may be right: the upstream cannot take one (say which)
                return LOGIN_ERROR, error.message
            if login:
                return LOGIN_ERROR, "invalid username or password"
            if db_variant and self.legacy_db_auth_error:
                return LEGACY_TOKEN_ERROR, LEGACY_TOKEN_MESSAGE
            return TOKEN_ERROR, TOKEN_MESSAGE
        return CODES[error.kind], error.message

    def _result(
        self,
        action: str,
        response: CanonicalResponse,
        request: CanonicalRequest | None,
        own_token: str | None,
    ) -> dict[str, Any]:
        now = time.time()
        own_id = response.caller.session_id if response.caller is not None else None
        if action == "createSession":
            record = response.session
            if record is None:
                user = response.caller.user if response.caller else ""
                return {"authToken": response.token or "", "username": user}
            return self.session_object(record, response.token or "", now)
        if action == "alterSession":
            if response.session is None:
                return {}
            token = own_token if own_token and response.session.id == own_id else None
            return self.session_object(response.session, token, now)
        if action in ("listSessions", "describeSessions"):
            records: Sequence[SessionRecord] = response.sessions or []
            if response.session is not None and not records:
                records = [response.session]
            select = request.extras.get(self.name, {}).get("select") if request else None
            ids: set[str] | None = None
            if isinstance(select, dict):
                ids = set(select.get("ids") or ())
                if select.get("self") and own_id is not None:
                    ids.add(own_id)
            if not own_token:
                own_id = None  # no token to show for the caller's own session
            if action == "listSessions":
                return {"sessions": _list_rows(records, ids, own_id, own_token)}
            return {
                "sessions": [
                    self.session_object(r, own_token if r.id == own_id else None, now)
                    for r in records
                    if ids is None or r.id in ids
                ]
            }
        return {}

    def session_object(
        self, record: SessionRecord, token: str | None, now: float
    ) -> dict[str, Any]:
        """A canonical session as a full FairCom session object (``describeSessions``)."""
        carried = record.extras.get(self.name)
        life = record.extras.get("rosetta")
        obj: dict[str, Any] = {
            "authToken": token or SESSION_ID_PREFIX + record.id,
            "username": record.user,
            "description": record.description,
        }
        if record.database:
            obj["defaultDatabaseName"] = record.database
        if isinstance(carried, dict):
            obj.update((k, v) for k, v in carried.items() if k not in _OBJECT_FIXED)
        obj.setdefault("idleConnectionTimeoutSeconds", 0)
        if record.connected_at is not None:
            obj["sessionStartTimestamp"] = _ts(record.connected_at)
        if "sessionLastAccessedTimestamp" not in obj:
            last = datetime.fromtimestamp(now - record.idle_seconds, UTC)
            obj["sessionLastAccessedTimestamp"] = _ts(last)
        if isinstance(life, dict):
            idle = life.get("idle_timeout_seconds")
            if isinstance(idle, int | float) and not isinstance(idle, bool):
                obj["idleConnectionTimeoutSeconds"] = _number(idle)
            accessed = _parse_ts(life.get("last_accessed_at"))
            if accessed is not None:
                obj["sessionLastAccessedTimestamp"] = _ts(accessed)
        return obj

    # outbound -----------------------------------------------------------------------------
    def encode_request(self, request: CanonicalRequest, upstream: UpstreamChannel) -> HttpRequest:
        creds = upstream.credentials
        op = request.operation
        if op is Operation.LOGIN:
            return self.build(
                "createSession", self._login_params(request, creds.user, creds.password)
            )
        if op is Operation.PING:
            return self.build("pingSession", {}, creds.token, request.request_id)
        if op is Operation.LOGOUT:
            return self.build("deleteSession", {}, creds.token, request.request_id)
        if op is Operation.LIST:
            params: dict[str, Any] = {}
            if request.filters.users is not None:
                params["usernameFilter"] = request.filters.users
            return self.build("listSessions", params, creds.token, request.request_id)
        if op is Operation.ALTER and request.target_id is None:
            return self.build(
                "alterSession", self._settings_params(request), creds.token, request.request_id
            )
        raise RosettaError(
            ErrorKind.UNSUPPORTED_OPERATION,
            f"a FairCom upstream cannot express {op.value} in one request",
        )

    def build(
        self,
        action: str,
        params: dict[str, Any],
        token: str | None = None,
        request_id: Any = None,
    ) -> HttpRequest:
        """One FairCom request to the upstream."""
        body: dict[str, Any] = {
            "api": self.api,
            "action": action,
            "apiVersion": self.api_version,
            "params": params,
        }
        if token:
            body["authToken"] = token
        if isinstance(request_id, str | int) and not isinstance(request_id, bool):
            body["requestId"] = request_id
        return HttpRequest(
            "POST", "/api", headers={"content-type": "application/json"}, body=dump_json(body)
        )

    def _login_params(
        self, request: CanonicalRequest, user: str | None, password: str | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"username": user or "", "password": password or ""}
        params.update(self._settings_params(request))
        return params

    def _settings_params(self, request: CanonicalRequest) -> dict[str, Any]:
        if "json_patch" in request.settings or "parameters" in request.settings:
            # another dialect's session parameters (MaxScale): FairCom cannot carry them
            raise RosettaError(
                ErrorKind.UNSUPPORTED_OPERATION,
                "a FairCom upstream cannot alter session parameters",
            )
        params: dict[str, Any] = {}
        carried = request.extras.get(self.name)
        if isinstance(carried, dict) and isinstance(carried.get("settings"), dict):
            params.update((k, v) for k, v in carried["settings"].items() if k not in _SECRET_PARAMS)
        settings = request.settings
        if settings.get("description") is not None:
            params["description"] = str(settings["description"])
        idle = settings.get("idle_timeout_seconds")
        if isinstance(idle, int | float) and not isinstance(idle, bool):
            params["idleConnectionTimeoutSeconds"] = int(idle)
        return params

    def decode_response(
        self, response: HttpResponse, request: CanonicalRequest
    ) -> CanonicalResponse:
        own = request.principal.token
        op = request.operation
        decoded = CanonicalResponse(operation=op, request_id=request.request_id)
        if op is Operation.LIST:
            typed = typed_rows(response.body)
            if typed is not None:  # the usual reply, read in one pass
                records, keys = typed
                decoded.sessions = records
                decoded.total = len(records)
                decoded.caller = _caller_by_key(records, keys, own)
                return decoded
        result = self.result_of(response)
        if op is Operation.LOGIN:
            token = result.get("authToken")
            if not isinstance(token, str) or not token:
                raise RosettaError(ErrorKind.UPSTREAM_ERROR, "createSession returned no authToken")
            record = self.record_of(result, token)
            decoded.token = token
            decoded.session = record
            decoded.caller = CallerInfo(user=record.user, session_id=record.id)
        elif op is Operation.LIST:
            records, keys = self.reply_rows(result)
            decoded.sessions = records
            decoded.total = len(records)
            decoded.caller = _caller_by_key(records, keys, own)
        elif op is Operation.ALTER:
            if result:
                decoded.session = self.record_of(result, own)
                decoded.caller = _caller_from([decoded.session], own)
        elif op is Operation.LOGOUT:
            decoded.affected = 1
        return decoded

    def result_of(self, response: HttpResponse) -> dict[str, Any]:
        """The ``result`` of a FairCom reply; a non-zero errorCode raises its canonical kind."""
        try:
            data = parse_json(response.body, what="upstream reply")
        except RosettaError:
            raise RosettaError(
                ErrorKind.UPSTREAM_ERROR,
                f"FairCom upstream answered HTTP {response.status} without a JSON body",
            ) from None
        code = data.get("errorCode") if isinstance(data, dict) else None
        if isinstance(code, bool) or not isinstance(code, int):
            raise RosettaError(
                ErrorKind.UPSTREAM_ERROR,
                f"FairCom upstream answered HTTP {response.status} without an errorCode",
            )
        assert isinstance(data, dict)
        if code != 0:
            message = data.get("errorMessage")
            text = message if isinstance(message, str) and message else f"errorCode {code}"
            kind = _KIND_BY_CODE.get(code, ErrorKind.UPSTREAM_ERROR)
            raise RosettaError(
                kind,
                text,
                native_code=code,
                context={self.name: {"errorCode": code, "errorMessage": text}},
            )
        result = data.get("result")
        if result is None:
            return {}
        if not isinstance(result, dict):
            raise RosettaError(ErrorKind.UPSTREAM_ERROR, "FairCom 'result' is not an object")
        return result

    @staticmethod
    def sessions_of(result: dict[str, Any]) -> list[dict[str, Any]]:
        sessions = result.get("sessions", [])
        if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
            raise RosettaError(ErrorKind.UPSTREAM_ERROR, "FairCom 'sessions' is not a list")
        return sessions

    def reply_rows(
        self, result: dict[str, Any], now: float | None = None
    ) -> tuple[SessionRows, list[str]]:
        """The sessions of a list reply, and the key ``session:<id>`` of each: objects of the
        listed shape (``is_listed``) are kept as received, any other is decoded at once, so a
        malformed reply still fails here, as an upstream_error. ``now`` is when the reply
        came (default: the current time)."""
        sessions = result.get("sessions", [])
        keys = listed_tokens(sessions) if type(sessions) is list else None
        if keys is not None and all(keys):  # the usual reply: every object kept
            undecoded: list[SessionRecord | None] = [None] * len(keys)
            rows = SessionRows(_LISTED_ROWS, sessions, [None] * len(keys), undecoded)
            return rows, cast("list[str]", keys)  # all(keys): no None
        sessions = self.sessions_of(result)  # refuses what is not a list of objects
        assert keys is not None
        now = time.time() if now is None else now
        records = [
            None if key is not None else self.record_of(obj, None, now)
            for key, obj in zip(keys, sessions, strict=True)
        ]
        ids = [
            SESSION_ID_PREFIX + record.id if record is not None else key or ""
            for key, record in zip(keys, records, strict=True)
        ]
        return SessionRows(_LISTED_ROWS, sessions, [None] * len(keys), records), ids

    def record_of(
        self, obj: dict[str, Any], own_token: str | None, now: float | None = None
    ) -> SessionRecord:
        """A FairCom session object as a canonical record (id from its token, see token_id);
        ``now`` (default: the current time) is when the reply came, for ``idle_seconds``."""
        token = obj.get("authToken")
        if not isinstance(token, str) or not token:
            raise RosettaError(ErrorKind.UPSTREAM_ERROR, "FairCom session without an authToken")
        user, description = obj.get("username"), obj.get("description")
        started = _parse_ts(obj.get("sessionStartTimestamp"))
        accessed = _parse_ts(obj.get("sessionLastAccessedTimestamp"))
        if accessed is None:
            idle = 0.0
        else:
            idle = max(0.0, (time.time() if now is None else now) - accessed.timestamp())
        database = obj.get("defaultDatabaseName")
        return SessionRecord(
            id=token_id(token),
            user=user if isinstance(user, str) else "",
            description=description if isinstance(description, str) else "",
            connected_at=started,
            idle_seconds=round(idle, 3),
            database=database if isinstance(database, str) else "",
            state="active",
            extras={self.name: {k: v for k, v in obj.items() if k not in _OBJECT_FIXED}},
        )

    async def call_upstream(
        self, request: CanonicalRequest, upstream: UpstreamChannel
    ) -> CanonicalResponse:
        return await _Call(self, request, upstream).run()


_LISTED_KEYS = frozenset({"authToken", "username", "description"})
_PREFIX_LENGTH = len(SESSION_ID_PREFIX)


def is_listed(obj: Any) -> bool:
    """Whether a session object has the listed shape: what ``listSessions`` answers for a
    session that is not the caller's, exactly ``authToken``, ``username`` and
    ``description``, all strings, the token a ``session:<id>``. Such an object decodes
    without error, to ``_record_of_listed``, and equals the object ``listSessions`` renders
    for that record (``_list_rows``)."""
    if type(obj) is not dict or obj.keys() != _LISTED_KEYS:
        return False
    token, user, description = obj["authToken"], obj["username"], obj["description"]
    return (
        type(token) is str
        and type(user) is str
        and type(description) is str
        and token.startswith(SESSION_ID_PREFIX)
    )


def listed_tokens(sessions: list[Any]) -> list[str | None]:
    """The ``authToken`` of each session object that ``is_listed``, else ``None``. One pass
    over the usual reply, where every object has that shape; a pass with ``is_listed`` when
    some object is not even a dict with the three keys."""
    try:
        return [
            token
            if len(obj) == 3
            and str is type(token := obj["authToken"]) is type(obj["username"])
            and type(obj["description"]) is str
            and token[:_PREFIX_LENGTH] == SESSION_ID_PREFIX
            else None
            for obj in sessions
        ]
    except (KeyError, TypeError):  # a non-object, or three keys but not these
        return [obj["authToken"] if is_listed(obj) else None for obj in sessions]


def _record_of_listed(obj: dict[str, Any]) -> SessionRecord:
    """The record of an entry of the listed shape: what ``record_of`` gives, built directly
    (``tests/faircom/test_records.py`` holds the two to the same results)."""
    return _listed_record(obj["authToken"], obj["username"], obj["description"])


def _listed_record(token: str, user: str, description: str) -> SessionRecord:
    """The record of a listed entry given as its three values."""
    # id, user, client_address, service, database, state, connected_at, idle_seconds,
    # last_command, node_id, description, connections, extras
    return SessionRecord(
        token[_PREFIX_LENGTH:], user, "", "", "", "active", None, 0.0, "", "", description, [],
        {NAME: {}},
    )  # fmt: skip


def _listed_brief_fields(field: str) -> Mapping[str, str]:
    """``RowCodec.brief_fields`` of listed entries whose key ``k`` reads as
    ``field.format(k)`` (``'row["{}"]'`` for dicts, ``"row.{}"`` for structs)."""
    return {
        "id": f"{field.format('authToken')}[{_PREFIX_LENGTH}:]",
        "user": field.format("username"),
        "client_address": '""',
        "service": '""',
        "database": '""',
        "state": '"active"',
        "idle_seconds": "0.0",
        "last_command": '""',
        "node_id": '""',
        "description": field.format("description"),
    }


class ListedRows:
    """How entries of the listed shape kept undecoded are read later: the ``RowCodec`` of the
    ``SessionRows`` of a FairCom list reply."""

    __slots__ = ()
    brief_fields = _listed_brief_fields('row["{}"]')
    token_of = staticmethod(itemgetter("authToken"))

    def decode(self, row: dict[str, Any], context: Any) -> SessionRecord:
        return _record_of_listed(row)


class TypedListedRows:
    """How the ``ListedEntry`` structs of a list reply read in one typed pass
    (``translators/faircom_typed.py``) are read later: the ``RowCodec`` of their
    ``SessionRows``."""

    __slots__ = ()
    brief_fields = _listed_brief_fields("row.{}")
    token_of = staticmethod(attrgetter("authToken"))

    def decode(self, row: ListedEntry, context: Any) -> SessionRecord:
        return _listed_record(row.authToken, row.username, row.description)


def typed_rows(body: bytes) -> tuple[SessionRows, list[str]] | None:
    """``reply_rows`` of a ``listSessions`` reply of the usual shape read in one typed pass
    (``translators/faircom_typed.py``), every token a ``session:<id>``; ``None`` otherwise."""
    entries = typed_entries(body)
    if entries is None:
        return None
    keys = list(map(TypedListedRows.token_of, entries))
    if not all(key[:_PREFIX_LENGTH] == SESSION_ID_PREFIX for key in keys):
        return None
    count = len(entries)
    return SessionRows(_TYPED_LISTED_ROWS, entries, [None] * count, [None] * count), keys


_TYPED_LISTED_ROWS = TypedListedRows()
_LISTED_ROWS = ListedRows()
_LIST_FIELDS = Brief("id", "user", "description")


def _list_rows(
    records: Sequence[SessionRecord], ids: set[str] | None, own_id: str | None, own_token: Any
) -> Any:
    """``listSessions`` entries, as a value ``dump_json`` writes: each session's id (the
    caller's own session shows its token), user and description; only the sessions in
    ``ids`` when it is given."""
    if (
        ids is None
        and type(records) is SessionRows
        and isinstance(records.codec, ListedRows | TypedListedRows)
    ):
        kept = _kept_list_rows(records, records.codec, own_id, own_token)
        return rows_json(kept, ListedEntry)
    rows = _LIST_FIELDS(records)
    if ids is not None:
        rows = [row for row in rows if row[0] in ids]
    return [
        {
            "authToken": own_token if id_ == own_id else SESSION_ID_PREFIX + id_,
            "username": user,
            "description": description,
        }
        for id_, user, description in rows
    ]


def _kept_list_rows(
    records: SessionRows,
    codec: ListedRows | TypedListedRows,
    own_id: str | None,
    own_token: Any,
) -> list[Any]:
    """``_list_rows`` of a FairCom list reply's sessions (kept by ``codec``): an entry kept as
    received is sent on as it came, since it equals the entry its record renders to (the same
    keys and values; only an upstream that orders the three keys differently sees them in its
    order), but the caller's own session, which shows the caller's token, and entries decoded
    on arrival are rendered."""

    def rendered(record: SessionRecord) -> dict[str, Any]:
        return {
            "authToken": own_token if record.id == own_id else SESSION_ID_PREFIX + record.id,
            "username": record.user,
            "description": record.description,
        }

    if own_id is None:
        return [row if record is None else rendered(record) for row, _, record in records.entries()]
    own_key = SESSION_ID_PREFIX + own_id
    token_of = codec.token_of
    return [
        row
        if record is None and token_of(row) != own_key
        else rendered(record or codec.decode(row, None))
        for row, _, record in records.entries()
    ]


def _caller_by_key(
    records: Sequence[SessionRecord], keys: list[str], own_token: str | None
) -> CallerInfo | None:
    """``_caller_from`` for a list reply whose sessions' keys (``session:<id>``) are known,
    without decoding the sessions that are not the caller's."""
    if not own_token:
        return None
    own_id = token_id(own_token)
    own_key = SESSION_ID_PREFIX + own_id
    if own_key not in keys:
        return None
    return CallerInfo(user=records[keys.index(own_key)].user, session_id=own_id)


def _caller_from(records: list[SessionRecord], own_token: str | None) -> CallerInfo | None:
    if not own_token:
        return None
    own_id = token_id(own_token)
    for record in records:
        if record.id == own_id:
            return CallerInfo(user=record.user, session_id=own_id)
    return None


class _Call:
    """One canonical operation against a FairCom upstream: token handling and composition."""

    def __init__(
        self, translator: FairComTranslator, request: CanonicalRequest, upstream: UpstreamChannel
    ) -> None:
        self.tr = translator
        self.request = request
        self.upstream = upstream
        creds = upstream.credentials
        self.fixed_token = creds.token
        self.can_login = creds.user is not None and creds.password is not None
        self.retried = False
        self._token: str | None = None

    async def run(self) -> CanonicalResponse:
        op = self.request.operation
        if op is Operation.LOGIN:
            return await self._login_op()
        if op is Operation.PING:
            await self.call("pingSession", {}, anonymous_ok=True)
            return self._done()
        if op is Operation.LOGOUT:
            return await self._logout()
        if op is Operation.LIST:
            return await self._list()
        if op is Operation.GET:
            record = await self._find(self._target())
            response = self._done()
            response.session = record
            return response
        if op is Operation.KILL:
            ids = self.request.filters.ids or []
            if not ids:
                raise RosettaError(ErrorKind.BAD_REQUEST, "no session id given")
            return await self._kill(ids)
        if op is Operation.KILL_ALL:
            records = self._filtered(await self._sessions(describe=False))
            return await self._kill([r.id for r in records], listed=records)
        if op is Operation.ALTER:
            return await self._alter()
        raise RosettaError(
            ErrorKind.UNSUPPORTED_OPERATION,
            f"a FairCom upstream has no equivalent of {op.value}",
        )

    # token handling ---------------------------------------------------------------------
    async def token(self) -> str | None:
        if self._token is not None:
            return self._token
        if self.fixed_token:
            self._token = self.fixed_token
        elif self.can_login:
            self._token = await self.upstream.cached("token") or await self._new_session()
        return self._token

    async def _new_session(self) -> str:
        creds = self.upstream.credentials
        params = {"username": creds.user or "", "password": creds.password or ""}
        result = await self._send("createSession", params, None)
        token = result.get("authToken")
        if not isinstance(token, str) or not token:
            raise RosettaError(ErrorKind.UPSTREAM_ERROR, "createSession returned no authToken")
        await self.upstream.remember("token", token)
        return token

    async def call(
        self,
        action: str,
        params: dict[str, Any],
        *,
        token: str | None = None,
        anonymous_ok: bool = False,
    ) -> dict[str, Any]:
        """One action with the caller's upstream token; on 12031 a cached login is renewed
        once and the action repeated."""
        use = token or await self.token()
        if use is None and not anonymous_ok:
            raise RosettaError(ErrorKind.UNAUTHENTICATED, "no credentials for the upstream")
        try:
            return await self._send(action, params, use)
        except RosettaError as error:
            renewable = token is None and self.can_login and not self.fixed_token
            if error.kind is not ErrorKind.UNAUTHENTICATED or not renewable or self.retried:
                raise
            self.retried = True
            await self.upstream.remember("token", None)
            self._token = await self._new_session()
            return await self._send(action, params, self._token)

    async def _send(self, action: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        http = self.tr.build(action, params, token, self.request.request_id)
        return self.tr.result_of(await self.upstream.send(http))

    # operations -------------------------------------------------------------------------
    def _done(self, affected: int | None = None) -> CanonicalResponse:
        return CanonicalResponse(
            operation=self.request.operation,
            request_id=self.request.request_id,
            affected=affected,
        )

    async def _login_op(self) -> CanonicalResponse:
        creds = self.upstream.credentials
        params = self.tr._login_params(self.request, creds.user, creds.password)
        result = await self._send("createSession", params, None)
        token = result.get("authToken")
        if not isinstance(token, str) or not token:
            raise RosettaError(ErrorKind.UPSTREAM_ERROR, "createSession returned no authToken")
        record = self.tr.record_of(result, token)
        response = self._done()
        response.token = token
        response.session = record
        response.caller = CallerInfo(user=record.user, session_id=record.id)
        return response

    async def _logout(self) -> CanonicalResponse:
        token = self.fixed_token or (
            await self.upstream.cached("token") if self.can_login else None
        )
        if not token:
            raise RosettaError(ErrorKind.UNAUTHENTICATED, "this operation needs a session token")
        await self._send("deleteSession", {}, token)
        if not self.fixed_token:
            await self.upstream.remember("token", None)
        return self._done(affected=1)

    async def _sessions(self, *, describe: bool = True) -> list[SessionRecord]:
        params: dict[str, Any] = {}
        if self.request.filters.users is not None:
            params["usernameFilter"] = self.request.filters.users
        listed = self.tr.sessions_of(await self.call("listSessions", params))
        tokens = [s["authToken"] for s in listed if isinstance(s.get("authToken"), str)]
        objects: dict[str, dict[str, Any]] = {t: s for t, s in zip(tokens, listed, strict=False)}
        if describe and tokens:
            try:
                described = self.tr.sessions_of(
                    await self.call("describeSessions", {"authTokens": tokens})
                )
            except RosettaError as error:
                if error.kind is not ErrorKind.NOT_FOUND:
                    raise
                described = []
            for obj in described:
                token = obj.get("authToken")
                if isinstance(token, str) and token in objects:
                    objects[token] = {**objects[token], **obj}
        own, now = self._token, time.time()
        return [self.tr.record_of(obj, own, now) for obj in objects.values()]

    def _filtered(self, records: list[SessionRecord]) -> list[SessionRecord]:
        f = self.request.filters
        if f.node_id is not None or f.address_prefix is not None:
            # FairCom sessions carry neither: the filter would silently match nothing
            raise RosettaError(
                ErrorKind.UNSUPPORTED_OPERATION,
                "a FairCom upstream has no node ids or client addresses to filter by",
            )
        kept = []
        for r in records:
            if f.ids is not None and r.id not in f.ids:
                continue
            if f.users is not None and r.user not in f.users:
                continue
            if f.node_id is not None and r.node_id != f.node_id:
                continue
            if f.address_prefix is not None and not r.client_address.startswith(f.address_prefix):
                continue
            kept.append(r)
        return kept

    async def _list(self) -> CanonicalResponse:
        records = self._filtered(await self._sessions())
        response = self._done()
        end = None if self.request.limit is None else self.request.offset + self.request.limit
        response.sessions = records[self.request.offset : end]
        response.total = len(records)
        response.caller = _caller_from(records, self._token)
        return response

    def _target(self) -> str:
        target = self.request.target_id
        if target is None:
            raise RosettaError(ErrorKind.BAD_REQUEST, "exactly one session id is needed")
        return target

    async def _find(self, session_id: str) -> SessionRecord:
        for record in await self._sessions():
            if record.id == session_id:
                return record
        raise RosettaError(ErrorKind.NOT_FOUND, f"session {session_id} does not exist")

    async def _kill(
        self, ids: list[str], listed: list[SessionRecord] | None = None
    ) -> CanonicalResponse:
        records = listed if listed is not None else await self._sessions(describe=False)
        by_id = {r.id: r for r in records}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise RosettaError(ErrorKind.NOT_FOUND, f"session {missing[0]} does not exist")
        mine = await self.token()
        own_id = token_id(mine) if mine else None
        ordered = [i for i in ids if i != own_id] + [i for i in ids if i == own_id]
        for session_id in ordered:
            await self._delete(session_id, mine)
        if own_id in ids and not self.fixed_token:
            await self.upstream.remember("token", None)
        return self._done(affected=len(ordered))

    async def _delete(self, session_id: str, mine: str | None) -> None:
        if mine is not None and session_id == token_id(mine):
            await self._send("deleteSession", {}, mine)
        elif session_id.startswith("fc-"):
            # a live upstream token: whoever holds it may end the session
            victim = await self._token_for(session_id)
            await self._send("deleteSession", {}, victim)
        else:
            await self.call("deleteSession", {"authToken": SESSION_ID_PREFIX + session_id})

    async def _token_for(self, session_id: str) -> str:
        params: dict[str, Any] = {}
        listed = self.tr.sessions_of(await self.call("listSessions", params))
        for obj in listed:
            token = obj.get("authToken")
            if isinstance(token, str) and token_id(token) == session_id:
                return token
        raise RosettaError(ErrorKind.NOT_FOUND, f"session {session_id} does not exist")

    async def _alter(self) -> CanonicalResponse:
        params = self.tr._settings_params(self.request)
        target = self.request.target_id
        mine = await self.token()
        if target is None or (mine is not None and target == token_id(mine)):
            result = await self.call("alterSession", params)
        elif target.startswith("fc-"):
            result = await self._send("alterSession", params, await self._token_for(target))
        else:
            result = await self.call(
                "alterSession", {**params, "authToken": SESSION_ID_PREFIX + target}
            )
        response = self._done()
        if result:
            response.session = self.tr.record_of(result, self._token)
            response.caller = _caller_from([response.session], self._token)
        return response
