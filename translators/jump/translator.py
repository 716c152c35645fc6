"""The JUMP translator class: inbound (decode a caller's JUMP request, render the answer in a
JUMP envelope) and outbound (speak JUMP to a JUMP upstream, with login and cookie handling)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from translators.contract import (
    CallerInfo,
    CanonicalRequest,
    CanonicalResponse,
    ErrorKind,
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
from translators.jump import params as jparams
from translators.jump.records import (
    DIALECT,
    connection_from_jump,
    connection_to_jump,
    session_from_jump,
    session_objects,
    session_rows,
    session_to_jump,
)
from translators.jump.typed import TypedList, UsualSession, typed_list
from translators.jump.wire import (
    ANONYMOUS_USER,
    AUTH_FAILED_TEXT,
    ERROR_CODES,
    ERROR_PREFIX,
    KIND_BY_CODE,
    LOGOUT_SUCCESS,
    METHOD_NOT_ALLOWED_CODE,
    UNKNOWN_SERVICE_CODE,
    Envelope,
    cookie_value,
    error_body,
    header_map,
    jsonp,
    looks_like_auth_failure,
    read_cookie,
    set_cookie_from_reply,
    success_body,
    to_xml,
    valid_callback,
)
from translators.wire import dump_json, parse_json, rows_as_dicts, rows_json

_OPTIONS = {
    "session_service",
    "user_service",
    "cookie_name",
    "cookie_samesite",
    "default_session_timeout",
    "path",
}
_SERVICE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
_COOKIE_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
_REST_RESERVED = frozenset(
    {
        "callback",
        "inputstream",
        "presto_username",
        "presto_password",
        "x-p-anonymous",
        "x-p-method",
        "x-p-resultformat",
        "x-presto-resultformat",
        "_",
    }
)
_FALSE = frozenset({"false", "0", "no", "off"})
_FORMATS = frozenset({"json", "xml"})
_OID_BY_OPERATION: dict[Operation, str] = {
    Operation.LIST: "listSessions",
    Operation.GET: "getSession",
    Operation.CONNECTIONS: "getSessionConnections",
    Operation.KILL: "killSession",
    Operation.KILL_ALL: "killAllSessions",
    Operation.PING: "pingSession",
    Operation.ALTER: "alterSession",
}


class JumpTranslator(Translator):
    """JUMP — JackBe Universal Message Protocol (Presto, MashZone NextGen).

    **Paths.** ``/presto/edge/api`` and ``/mashzone/edge/api``: a JUMP request as the JSON body
    of a POST (or a form field ``inputStream``), or ``GET ?inputStream=<json>[&callback=fn]``
    (JSONP, ``application/javascript``). REST form: ``.../edge/api/rest/{sid}/{oid}?name=value``
    (parameters by name; a JSON body on POST is taken as ``params``).

    **Services and operations** (``sid`` / ``oid`` -> canonical operation)::

        UserManagerService   login                  session.login   [user, password]
        UserManagerService   logout                 session.logout  []
                             (answers "JBPSASCE0741 - Logout Success")
        <session_service>    listSessions           session.list    [user, offset, limit]
                             getSession             session.get     [sessionId]
                             getSessionConnections  session.connections [sessionId]
                             killSession            session.kill    [sessionId, ...]
                             killAllSessions        session.kill_all [user]
                             pingSession            session.ping    []
                             alterSession           session.alter   [sessionId, {settings}]

    ``<session_service>`` is the option ``session_service`` (default ``SessionService``).
    ``x-p-method: delete`` turns getSession/killSession into kill, listSessions into
    killAllSessions, login/logout into logout; ``x-p-method: put`` turns getSession into
    alterSession. Named parameters: ``sessionId|id``, ``sessionIds|ids``, ``user|users``,
    ``node|nodeId``, ``address|clientAddress`` (prefix), ``offset``, ``limit``, ``fields``,
    ``description``, ``sessionTimeout`` (seconds), ``username|userid|j_username``,
    ``password|j_password``; other names on login/alterSession are kept as dialect settings.

    **Field mapping** (JUMP session object <-> ``SessionRecord``)::

        sessionId      <-> id (string; integers accepted)
        user           <-> user
        clientAddress  <-> client_address ("ip:port")
        service        <-> service
        database       <-> database
        state          <-> state
        connectedAt    <-> connected_at (RFC 3339; epoch milliseconds accepted)
        idleSeconds    <-> idle_seconds
        lastCommand    <-> last_command
        nodeId         <-> node_id
        description    <-> description
        sessionTimeout  -> seconds before the session idles out (string), when known
        connections    <-> connections [{server, state, role, reads, writes}]
        other keys     <-> extras["jump"]

    Envelope: ``sid``, ``oid``, ``svcVersion``, ``version``, ``invId`` (and ``appId``) are
    echoed; ``header.map.currentUser`` is ``response.caller.user`` (``anonymousUser`` when
    there is no caller) and ``header.map.sessionTimeout`` is ``caller.expires_in`` as a
    string (``default_session_timeout`` when the caller has no expiring session).
    listSessions reports ``totalCount`` in ``header.map.serviceHeader.map``.

    **Auth.** Login answers with the session cookie (option ``cookie_name``, default
    ``JSESSIONID``; HttpOnly, SameSite=``cookie_samesite``, Secure over https) and
    ``response.authToken``. Per request: ``presto_username``/``presto_password`` (header, URL
    or JUMP header) -> password principal; ``x-p-anonymous`` -> anonymous; else the cookie.

    **Errors** (in-band: HTTP 200, ``error`` = ``"Failed to handle given request. Error = "``
    + message, ``errorCode`` below, ``response`` = ``""``)::

        kind                   HTTP  errorCode
        bad_request            200   RSJE0400
        unauthenticated        200   RSJE0401
        forbidden              200   RSJE0403
        not_found              200   RSJE0404
        payload_too_large      200   RSJE0413
        overloaded             200   RSJE0429  (rate limit, upstream concurrency cap)
        internal               200   RSJE0500
        unsupported_operation  200   RSJE0501  ("" for an unknown sid, as in the seed)
        upstream_error         200   RSJE0502
        upstream_unavailable   200   RSJE0503
        upstream_timeout       200   RSJE0504
        (method not allowed)   405   RSJE0405  (DELETE/PUT: use x-p-method)

    A failed REST-form login answers ``text/plain`` ``Authentication failed.Userid:<user>.``
    (HTTP 200). Outbound, those codes map back to their kinds (the native code is kept);
    unknown codes are ``upstream_error`` unless the message says authentication failed.
    """

    name = "jump"
    routes = (
        Route("/presto/edge/api", ("GET", "POST"), "api"),
        Route("/mashzone/edge/api", ("GET", "POST"), "api"),
        Route("/presto/edge/api/{rest:path}", ("GET", "POST"), "rest"),
        Route("/mashzone/edge/api/{rest:path}", ("GET", "POST"), "rest"),
    )
    error_table = {
        kind: (405 if code == METHOD_NOT_ALLOWED_CODE else 200, code)
        for kind, code in ERROR_CODES.items()
    }
    inbound_operations = frozenset(Operation)
    outbound_operations = dict.fromkeys(Operation, "native")

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        opts = dict(self.options)
        unknown = sorted(set(opts) - _OPTIONS)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}; known: {sorted(_OPTIONS)}")
        self.session_service = _service_id(opts, "session_service", "SessionService")
        self.user_service = _service_id(opts, "user_service", "UserManagerService")
        if self.session_service == self.user_service:
            raise ValueError("session_service and user_service must differ")
        self.cookie_name = str(opts.get("cookie_name", "JSESSIONID"))
        if not _COOKIE_NAME.fullmatch(self.cookie_name):
            raise ValueError(f"cookie_name {self.cookie_name!r} is not a valid cookie name")
        samesite = str(opts.get("cookie_samesite", "Lax")).capitalize()
        if samesite not in ("Lax", "Strict", "None"):
            raise ValueError("cookie_samesite must be Lax, Strict or None")
        self.cookie_samesite = samesite
        timeout = opts.get("default_session_timeout", 1800)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise ValueError("default_session_timeout must be an integer >= 0 (seconds)")
        self.default_timeout = str(timeout)
        path = str(opts.get("path", "/presto/edge/api"))
        if not path.startswith("/") or "?" in path:
            raise ValueError("path must be an absolute path such as /presto/edge/api")
        self.path = path.rstrip("/")
        self._services: dict[str, dict[str, jparams.OpSpec]] = {
            self.user_service: jparams.USER_OIDS,
            self.session_service: jparams.SESSION_OIDS,
        }
        self._clear_cookie = f"{self.cookie_name}=; Path=/; Max-Age=0; HttpOnly"

    # inbound ------------------------------------------------------------------------------
    def decode_request(self, request: HttpRequest) -> CanonicalRequest:
        env = Envelope()
        try:
            return self._decode(request, env)
        except RosettaError as error:
            error.context.setdefault(DIALECT, env.to_dict())
            raise

    def _decode(self, http: HttpRequest, env: Envelope) -> CanonicalRequest:
        form: list[tuple[str, str]] = []
        body = http.body.strip()
        json_body = body[:1] in (b"{", b"[")  # JSON even when sent as form-encoded (curl -d)
        if http.content_type == "application/x-www-form-urlencoded" and body and not json_body:
            form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        url_params = [*http.query, *form]
        lowered = {k.lower(): v for k, v in reversed(url_params)}  # first value wins

        callback = lowered.get("callback")
        if callback is not None and http.method == "GET":
            if not valid_callback(callback):
                raise jparams.bad("callback must be a JavaScript identifier such as jQuery1_2")
            env.callback = callback

        rest = http.path_params.get("rest")
        if rest is None:
            message = self._message(http, form, lowered)
        else:
            env.rest = True
            message = self._rest_message(rest, http, url_params)
        if not isinstance(message, dict):
            raise jparams.bad("a JUMP request must be a JSON object")
        raw_header = message.get("header")
        header: dict[str, Any] = raw_header if isinstance(raw_header, dict) else {}
        raw_map = header.get("map")
        header_values: dict[str, Any] = raw_map if isinstance(raw_map, dict) else {}
        presto_header = {k.lower(): v for k, v in {**header_values, **header}.items()}

        env.version = _echo(message.get("version"), "1.0")
        env.svc_version = _echo(message.get("svcVersion"), "0.1")
        env.inv_id = _echo(header.get("invId", message.get("invId")), "")
        if "appId" in message:
            env.app_id = _echo(message.get("appId"), "")
        sid, oid = message.get("sid"), message.get("oid")
        if isinstance(sid, str):
            env.sid = sid
        if isinstance(oid, str):
            env.oid = oid
        if not (isinstance(sid, str) and sid and isinstance(oid, str) and oid):
            raise jparams.bad("a JUMP request needs string 'sid' and 'oid'")

        def option(name: str) -> str | None:
            value = http.headers.get(name)
            if value is None:
                value = lowered.get(name)
            if value is None:
                found = presto_header.get(name)
                value = found if isinstance(found, str) else None
            return value

        fmt = (option("x-presto-resultformat") or option("x-p-resultformat") or "json").lower()
        if fmt not in _FORMATS:
            raise jparams.bad(f"unsupported result format {fmt!r}; use json or xml")
        env.result_format = fmt

        spec, oid = self._operation(sid, oid, option("x-p-method"))
        operation = spec.operation
        parsed = (
            jparams.Parsed()
            if operation is Operation.LOGOUT
            else jparams.parse(message.get("params"), spec, oid)
        )
        principal = self._principal(http, operation, parsed, option, env)
        extras: dict[str, Any] = {"envelope": env.to_dict()}
        if parsed.dialect_settings:
            extras["settings"] = parsed.dialect_settings
        return CanonicalRequest(
            operation=operation,
            dialect=self.name,
            request_id=env.inv_id if env.inv_id != "" else None,
            principal=principal,
            filters=parsed.filters,
            fields=parsed.fields,
            offset=parsed.offset,
            limit=parsed.limit,
            settings=parsed.settings,
            extras={DIALECT: extras},
        )

    def _message(
        self, http: HttpRequest, form: list[tuple[str, str]], lowered: dict[str, str]
    ) -> Any:
        if http.method == "POST" and http.body.strip() and not form:
            return parse_json(http.body)
        stream = lowered.get("inputstream")
        if stream is None or not stream.strip():
            raise jparams.bad("no JUMP request: POST a JSON body or GET ?inputStream=<json>")
        return parse_json(stream, what="inputStream")

    def _rest_message(
        self, rest: str, http: HttpRequest, url_params: list[tuple[str, str]]
    ) -> dict[str, Any]:
        parts = rest.split("/")
        if len(parts) != 3 or parts[0] != "rest" or not parts[1] or not parts[2]:
            raise RosettaError(
                ErrorKind.NOT_FOUND, f"no JUMP resource at {http.path}; use .../rest/<sid>/<oid>"
            )
        params: Any
        if http.method == "POST" and http.body.strip()[:1] in (b"{", b"["):
            params = parse_json(http.body)
        else:
            named: dict[str, Any] = {}
            for key, value in url_params:
                if key.lower() in _REST_RESERVED:
                    continue
                previous = named.get(key)
                if previous is None:
                    named[key] = value
                elif isinstance(previous, list):
                    previous.append(value)
                else:
                    named[key] = [previous, value]
            params = named
        return {"sid": parts[1], "oid": parts[2], "params": params}

    def _operation(self, sid: str, oid: str, method: str | None) -> tuple[jparams.OpSpec, str]:
        service = self._services.get(sid)
        if service is None:
            raise RosettaError(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"Unable to find service using ({sid})",
                context={"errorCode": UNKNOWN_SERVICE_CODE},
            )
        if method and method.lower() not in ("get", "post"):
            overrides = jparams.METHOD_OVERRIDES.get(method.lower())
            if overrides is None:
                raise jparams.bad(f"x-p-method must be get, post, put or delete, not {method!r}")
            target = overrides.get(oid)
            if target is None or target not in service:
                raise jparams.bad(f"x-p-method {method.lower()} does not apply to {sid}.{oid}")
            oid = target
        spec = service.get(oid)
        if spec is None:
            raise RosettaError(
                ErrorKind.UNSUPPORTED_OPERATION,
                f"Unable to find operation using ({oid}) in service ({sid})",
            )
        return spec, oid

    def _principal(
        self,
        http: HttpRequest,
        operation: Operation,
        parsed: jparams.Parsed,
        option: Any,
        env: Envelope,
    ) -> Principal:
        user, password = option("presto_username"), option("presto_password")
        if operation is Operation.LOGIN:
            user = parsed.user if parsed.user is not None else user
            password = parsed.password if parsed.password is not None else password
            env.login_user = user or ""
            if user is not None and password is not None:
                return Principal(PrincipalKind.PASSWORD, user=user, password=password)
            return Principal()
        if user is not None or password is not None:
            if user is None or password is None:
                raise jparams.bad("presto_username and presto_password go together")
            return Principal(PrincipalKind.PASSWORD, user=user, password=password)
        anonymous = option("x-p-anonymous")
        if anonymous is not None and anonymous.strip().lower() not in _FALSE:
            return Principal()
        token = read_cookie(http.headers.get("cookie", ""), self.cookie_name)
        if token:
            env.session_cookie = True
            return Principal(PrincipalKind.SESSION, token=token)
        return Principal()

    def encode_response(
        self, response: CanonicalResponse, request: CanonicalRequest | None, http: HttpRequest
    ) -> HttpResponse:
        try:
            return self._encode(response, request, http)
        except Exception:  # never raise: fall back to a bare internal-error envelope
            env = Envelope()
            body = error_body(
                env,
                header_map(ANONYMOUS_USER, self.default_timeout),
                ERROR_PREFIX + "internal error; see the server log",
                ERROR_CODES[ErrorKind.INTERNAL],
            )
            return HttpResponse(200, [("content-type", "application/json")], dump_json(body))

    def _encode(
        self, response: CanonicalResponse, request: CanonicalRequest | None, http: HttpRequest
    ) -> HttpResponse:
        error = response.error
        if request is not None:
            carried = request.extras.get(DIALECT)
            env = Envelope.from_dict(carried.get("envelope") if isinstance(carried, dict) else None)
        else:
            env = Envelope.from_dict(error.context.get(DIALECT) if error else None)
        headers: list[tuple[str, str]] = []
        caller = response.caller
        if error is not None:
            context_caller = error.context.get("caller")
            caller = context_caller if isinstance(context_caller, CallerInfo) else None
            status = 405 if error.context.get("http_status") == 405 else 200
            if status == 405:
                headers.append(("allow", "GET, POST"))
            if (
                env.rest
                and env.oid == "login"
                and env.sid == self.user_service
                and error.kind is ErrorKind.UNAUTHENTICATED
            ):
                text = AUTH_FAILED_TEXT.format(user=_printable(env.login_user or ""))
                return HttpResponse(
                    200,
                    [("content-type", "text/plain; charset=utf-8"), *_NOSNIFF],
                    text.encode("utf-8"),
                )
            if error.kind is ErrorKind.UNAUTHENTICATED and env.session_cookie:
                headers.append(("set-cookie", self._clear_cookie))
            code = error.context.get("errorCode")
            if not isinstance(code, str):
                code = METHOD_NOT_ALLOWED_CODE if status == 405 else ERROR_CODES[error.kind]
            message = error.message
            if not message.startswith(ERROR_PREFIX):
                message = ERROR_PREFIX + message
            body = error_body(env, self._header(caller), message, code)
            return self._render(status, body, env, headers)
        assert request is not None
        operation = request.operation
        if operation is Operation.LOGIN and response.token:
            headers.append(("set-cookie", self._cookie(response.token, http)))
        elif operation is Operation.LOGOUT:
            headers.append(("set-cookie", self._clear_cookie))
        xml = env.result_format == "xml"
        data, item, service = self._data(response, request, xml=xml)
        if xml:
            data = to_xml(data, item)
        body = success_body(env, self._header(caller, service), data)
        return self._render(200, body, env, headers)

    def _data(
        self, response: CanonicalResponse, request: CanonicalRequest, *, xml: bool
    ) -> tuple[Any, str, dict[str, Any]]:
        """The ``response`` property (plain values for ``to_xml`` when ``xml``, else what
        ``dump_json`` writes), the XML name of its list items, and service headers."""
        operation = request.operation
        service: dict[str, Any] = {}
        data: Any
        item = "item"
        if operation is Operation.LOGIN:
            session = response.session
            data = {
                "authToken": response.token or "",
                "user": response.caller.user if response.caller else "",
                "sessionId": session.id if session else None,
                "session": session_to_jump(session) if session else None,
            }
        elif operation is Operation.LOGOUT:
            data = LOGOUT_SUCCESS
        elif operation is Operation.LIST:
            sessions = response.sessions or []
            objects = session_objects(sessions)  # kept rows may be typed ones
            if request.fields or xml:
                data = rows_as_dicts(objects, UsualSession)
                if request.fields:
                    data = [_project(item, request.fields) for item in data]
            else:
                data = rows_json(objects, UsualSession)
            total = response.total if response.total is not None else len(sessions)
            service["totalCount"] = str(total)
            item = "session"
        elif operation is Operation.CONNECTIONS:
            data = [connection_to_jump(c) for c in response.connections or []]
            item = "connection"
        elif operation in (Operation.KILL, Operation.KILL_ALL):
            data = {"killed": response.affected or 0}
        elif operation is Operation.PING:
            session = response.session
            data = {"alive": True, "session": session_to_jump(session) if session else None}
        else:  # GET, ALTER
            data = session_to_jump(response.session) if response.session else None
        return data, item, service

    def _header(self, caller: CallerInfo | None, service: dict[str, Any] | None = None) -> Any:
        if caller is None:
            return header_map(ANONYMOUS_USER, self.default_timeout, service)
        timeout = (
            self.default_timeout if caller.expires_in is None else str(round(caller.expires_in))
        )
        return header_map(caller.user, timeout, service)

    def _cookie(self, token: str, http: HttpRequest) -> str:
        cookie = f"{self.cookie_name}={cookie_value(token)}; Path=/; HttpOnly"
        cookie += f"; SameSite={self.cookie_samesite}"
        if http.scheme == "https":
            cookie += "; Secure"
        return cookie

    def _render(
        self, status: int, body: dict[str, Any], env: Envelope, headers: list[tuple[str, str]]
    ) -> HttpResponse:
        payload = dump_json(body)
        if env.callback:
            return HttpResponse(
                status,
                [("content-type", "application/javascript; charset=utf-8"), *_NOSNIFF, *headers],
                jsonp(env.callback, payload),
            )
        return HttpResponse(status, [("content-type", "application/json"), *headers], payload)

    # outbound -----------------------------------------------------------------------------
    def encode_request(self, request: CanonicalRequest, upstream: UpstreamChannel) -> HttpRequest:
        creds = upstream.credentials
        if request.operation is Operation.LOGIN:
            return self._login_request(creds.user, creds.password, request)
        return self._session_request(request, creds.token)

    def _session_request(self, request: CanonicalRequest, token: str | None) -> HttpRequest:
        operation = request.operation
        if operation is Operation.LOGOUT:
            message = self._jump(self.user_service, "logout", [], request)
        elif operation is Operation.LOGIN:
            raise RosettaError(ErrorKind.INTERNAL, "login is built by _login_request")
        else:
            message = self._jump(
                self.session_service,
                _OID_BY_OPERATION[operation],
                _outbound_params(request),
                request,
            )
        headers = {"content-type": "application/json", "accept": "application/json"}
        if token:
            headers["cookie"] = f"{self.cookie_name}={cookie_value(token)}"
        return HttpRequest("POST", self.path, headers=headers, body=dump_json(message))

    def _login_request(
        self, user: str | None, password: str | None, request: CanonicalRequest | None
    ) -> HttpRequest:
        if user is None or password is None:
            raise RosettaError(
                ErrorKind.UNAUTHENTICATED, "a JUMP upstream login needs a user name and password"
            )
        params: Any = [user, password]
        if request is not None:
            extra = _login_settings(request)
            if extra:
                params = {"username": user, "password": password, **extra}
        message = self._jump(self.user_service, "login", params, request)
        headers = {"content-type": "application/json", "accept": "application/json"}
        return HttpRequest("POST", self.path, headers=headers, body=dump_json(message))

    def _jump(
        self, sid: str, oid: str, params: Any, request: CanonicalRequest | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "version": "1.0",
            "sid": sid,
            "svcVersion": "0.1",
            "oid": oid,
            "params": params,
        }
        request_id = request.request_id if request is not None else None
        if isinstance(request_id, str | int) and not isinstance(request_id, bool):
            message["header"] = {"invId": str(request_id)}
        return message

    def decode_response(
        self, response: HttpResponse, request: CanonicalRequest
    ) -> CanonicalResponse:
        if request.operation is Operation.LIST and response.status == 200:
            listed = typed_list(response.body)
            if listed is not None:  # the usual reply, read in one pass
                return _typed_listing(listed, request)
        return self._decode_any(response, request)

    def _decode_any(self, response: HttpResponse, request: CanonicalRequest) -> CanonicalResponse:
        """The general decoding of a reply: any body gives its answer or error."""
        data = self._envelope(response)
        caller = _caller_of(data)
        self._raise_error(data, caller)
        result: Any = data.get("response")
        decoded = CanonicalResponse(request.operation, request.request_id, caller=caller)
        operation = request.operation
        try:
            if operation is Operation.LOGIN:
                token = result.get("authToken") if isinstance(result, dict) else None
                if not token:
                    token = set_cookie_from_reply(
                        response.header("set-cookie") or "", self.cookie_name
                    )
                if not isinstance(token, str) or not token:
                    raise RosettaError(
                        ErrorKind.UPSTREAM_ERROR, "JUMP login answered without a session"
                    )
                decoded.token = token
                if isinstance(result, dict) and result.get("session") is not None:
                    decoded.session = session_from_jump(result["session"])
            elif operation is Operation.LOGOUT:
                decoded.affected = 1
                decoded.caller = None
            elif operation is Operation.LIST:
                items = result.get("sessions") if isinstance(result, dict) else result
                if not isinstance(items, list):
                    raise RosettaError(ErrorKind.UPSTREAM_ERROR, "listSessions answered no list")
                decoded.sessions = session_rows(items)
                total = _service_header(data).get("totalCount")
                decoded.total = _listed_total(total, len(decoded.sessions))
            elif operation is Operation.CONNECTIONS:
                if not isinstance(result, list):
                    raise RosettaError(ErrorKind.UPSTREAM_ERROR, "connections must be a list")
                decoded.connections = [connection_from_jump(c) for c in result]
                decoded.total = len(decoded.connections)
            elif operation in (Operation.KILL, Operation.KILL_ALL):
                killed = result.get("killed") if isinstance(result, dict) else None
                if isinstance(killed, bool) or not isinstance(killed, int):
                    raise RosettaError(ErrorKind.UPSTREAM_ERROR, "kill did not say how many")
                decoded.affected = killed
            elif operation is Operation.PING:
                session = result.get("session") if isinstance(result, dict) else None
                decoded.session = session_from_jump(session) if session is not None else None
            else:  # GET, ALTER
                decoded.session = session_from_jump(result)
        except (AttributeError, TypeError, ValueError) as exc:
            raise RosettaError(ErrorKind.UPSTREAM_ERROR, f"malformed JUMP reply: {exc}") from None
        return decoded

    def _envelope(self, response: HttpResponse) -> dict[str, Any]:
        text = response.body[:200].decode("utf-8", "replace")
        if text.startswith("Authentication failed."):
            raise RosettaError(ErrorKind.UNAUTHENTICATED, text.strip())
        if response.status != 200:
            raise RosettaError(
                ErrorKind.UPSTREAM_ERROR, f"JUMP upstream answered HTTP {response.status}"
            )
        try:
            data = parse_json(response.body, what="JUMP upstream reply")
        except RosettaError:
            raise RosettaError(
                ErrorKind.UPSTREAM_ERROR, "JUMP upstream answered without a JSON envelope"
            ) from None
        if (
            not isinstance(data, dict)
            or "sid" not in data
            or not ("response" in data or "error" in data)
        ):
            raise RosettaError(ErrorKind.UPSTREAM_ERROR, "JUMP upstream reply is not an envelope")
        return data

    def _raise_error(self, data: dict[str, Any], caller: CallerInfo | None) -> None:
        message = data.get("error")
        if message in (None, "") or message is False:
            return
        text = message if isinstance(message, str) else str(message)
        if text.startswith(ERROR_PREFIX):
            text = text[len(ERROR_PREFIX) :]
        raw_code = data.get("errorCode")
        code = "" if raw_code is None else str(raw_code)
        kind = KIND_BY_CODE.get(code)
        if kind is None:
            if text.startswith(("Unable to find service", "Unable to find operation")):
                kind = ErrorKind.UNSUPPORTED_OPERATION
            elif looks_like_auth_failure(text):
                kind = ErrorKind.UNAUTHENTICATED
            else:
                kind = ErrorKind.UPSTREAM_ERROR
        context: dict[str, Any] = {"errorCode": code}
        if caller is not None:
            context["caller"] = caller
        raise RosettaError(kind, text, native_code=code or None, context=context)

    async def call_upstream(
        self, request: CanonicalRequest, upstream: UpstreamChannel
    ) -> CanonicalResponse:
        creds = upstream.credentials
        if request.operation is Operation.LOGIN:
            login = self._login_request(creds.user, creds.password, request)
            return self.decode_response(await upstream.send(login), request)
        token = creds.token
        relogin = False
        if not token and creds.user is not None and creds.password is not None:
            token = await upstream.cached("cookie") or await self._fresh_login(upstream)
            relogin = True
        if request.operation is Operation.LOGOUT:
            try:
                reply = await upstream.send(self._session_request(request, token))
                return self.decode_response(reply, request)
            finally:
                if relogin:
                    await upstream.remember("cookie", None)
        reply = await upstream.send(self._session_request(request, token))
        if token and relogin and _session_expired(reply):
            token = await self._fresh_login(upstream)
            reply = await upstream.send(self._session_request(request, token))
        return self.decode_response(reply, request)

    async def _fresh_login(self, upstream: UpstreamChannel) -> str:
        """Log the caller in to the upstream and remember the session for its next requests."""
        creds = upstream.credentials
        await upstream.remember("cookie", None)
        reply = await upstream.send(self._login_request(creds.user, creds.password, None))
        login = self.decode_response(reply, CanonicalRequest(Operation.LOGIN, self.name))
        assert login.token is not None
        await upstream.remember("cookie", login.token)
        return login.token


_NOSNIFF = (("x-content-type-options", "nosniff"),)


def _service_id(opts: dict[str, Any], key: str, default: str) -> str:
    value = opts.get(key, default)
    if not isinstance(value, str) or not _SERVICE_ID.fullmatch(value):
        raise ValueError(f"{key} must be a service id such as {default!r}")
    return value


def _echo(value: Any, default: str) -> Any:
    """A value to echo back: strings and numbers as given, anything else the default."""
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    return default


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:256]


def _project(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields:
        return item
    wanted = set(fields) | {"sessionId"}
    return {k: v for k, v in item.items() if k in wanted}


def _login_settings(request: CanonicalRequest) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    carried = request.extras.get(request.dialect)
    if isinstance(carried, dict) and isinstance(carried.get("settings"), dict):
        extra.update(carried["settings"])
    if request.settings.get("description") is not None:
        extra["description"] = request.settings["description"]
    if request.settings.get("idle_timeout_seconds") is not None:
        extra["sessionTimeout"] = request.settings["idle_timeout_seconds"]
    return extra


def _outbound_params(request: CanonicalRequest) -> dict[str, Any]:
    f = request.filters
    operation = request.operation
    params: dict[str, Any] = {}
    if operation in (Operation.GET, Operation.CONNECTIONS):
        if request.target_id is None:
            raise RosettaError(ErrorKind.BAD_REQUEST, "exactly one session id is needed")
        return {"sessionId": request.target_id}
    if operation is Operation.KILL:
        if not f.ids:
            raise RosettaError(ErrorKind.BAD_REQUEST, "no session id given")
        return {"sessionId": f.ids[0]} if len(f.ids) == 1 else {"sessionIds": f.ids}
    if operation is Operation.ALTER:
        if "json_patch" in request.settings or "parameters" in request.settings:
            # another dialect's session parameters (MaxScale): JUMP cannot carry them
            raise RosettaError(
                ErrorKind.UNSUPPORTED_OPERATION, "a JUMP upstream cannot alter session parameters"
            )
        if request.target_id is not None:
            params["sessionId"] = request.target_id
        params.update(_login_settings(request))
        return params
    if operation in (Operation.LIST, Operation.KILL_ALL):
        if f.users is not None:
            params["users"] = f.users
        if f.ids is not None:
            params["ids"] = f.ids
        if f.node_id is not None:
            params["nodeId"] = f.node_id
        if f.address_prefix is not None:
            params["address"] = f.address_prefix
    if operation is Operation.LIST:
        if request.offset:
            params["offset"] = request.offset
        if request.limit is not None:
            params["limit"] = request.limit
        if request.fields:
            params["fields"] = request.fields
    return params


def _header_values(data: dict[str, Any]) -> dict[str, Any]:
    header = data.get("header")
    values = header.get("map") if isinstance(header, dict) else None
    return values if isinstance(values, dict) else {}


def _service_header(data: dict[str, Any]) -> dict[str, Any]:
    service = _header_values(data).get("serviceHeader")
    values = service.get("map") if isinstance(service, dict) else None
    return values if isinstance(values, dict) else {}


def _listed_total(total: Any, count: int) -> int:
    """A list's ``totalCount`` service header when it is a whole number, else ``count``."""
    if isinstance(total, str | int) and str(total).isdecimal():
        return int(total)
    return count


def _typed_listing(listed: TypedList, request: CanonicalRequest) -> CanonicalResponse:
    """The list a usual reply read in one pass holds (``translators/jump/typed.py``): what
    the general path of ``decode_response`` gives for it."""
    caller = _caller(listed.current_user, listed.session_timeout)
    decoded = CanonicalResponse(request.operation, request.request_id, caller=caller)
    decoded.sessions = listed.sessions
    decoded.total = _listed_total(listed.total_count, len(listed.sessions))
    return decoded


def _caller_of(data: dict[str, Any]) -> CallerInfo | None:
    values = _header_values(data)
    return _caller(values.get("currentUser"), values.get("sessionTimeout"))


def _caller(user: Any, timeout: Any) -> CallerInfo | None:
    """Who the upstream says we are (``header.map``): nobody when ``anonymousUser``."""
    if not isinstance(user, str) or not user or user == ANONYMOUS_USER:
        return None
    try:
        expires = float(timeout) if timeout not in (None, "") else None
    except (TypeError, ValueError):
        expires = None
    return CallerInfo(user=user, expires_in=expires)


def _session_expired(reply: HttpResponse) -> bool:
    """The upstream no longer knows our session: an auth error, or (on a request that carried
    the cookie) ``currentUser`` back to ``anonymousUser`` without another documented error."""
    if reply.status != 200:
        return False
    try:
        data = parse_json(reply.body, what="JUMP upstream reply")
    except RosettaError:
        return False
    if not isinstance(data, dict):
        return False
    error = data.get("error")
    code = str(data.get("errorCode") or "")
    if error not in (None, "", False):
        if code in KIND_BY_CODE:
            return KIND_BY_CODE[code] is ErrorKind.UNAUTHENTICATED
        if looks_like_auth_failure(str(error)):
            return True
    return _header_values(data).get("currentUser") == ANONYMOUS_USER
