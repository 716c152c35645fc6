"""The ``rosetta`` dialect: the canonical model itself as JSON over HTTP, inbound and outbound.

Requests: ``POST /rosetta/v1/<operation>`` where ``<operation>`` is a canonical operation
name (``session.list``, ``session.kill``, ...). Body (all keys optional)::

    {"request_id": <any JSON>, "credentials": {"user": "...", "password": "..."}
                                             | {"token": "..."},
     "filters": {"ids": [...], "users": [...], "node_id": "...", "address_prefix": "..."},
     "fields": [...], "offset": 0, "limit": 50, "settings": {...}, "extras": {...}}

Credentials may instead come as ``Authorization: Basic ...`` or ``Authorization: Bearer ...``.

Responses: the canonical response as JSON (``translators.codec.response_to_json``). Errors::

    {"operation": "...", "request_id": ..., "error": {"kind": "...", "message": "...",
     "native_code": ...}}

| error kind            | HTTP |
|-----------------------|------|
| bad_request           | 400  |
| unauthenticated       | 401  |
| forbidden             | 403  |
| not_found             | 404  |
| payload_too_large     | 413  |
| overloaded            | 429  |
| unsupported_operation | 501  |
| upstream_unavailable  | 502  |
| upstream_error        | 502  |
| internal              | 500  |
| upstream_timeout      | 504  |

``error.kind`` is what distinguishes upstream_unavailable from upstream_error.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import fields
from typing import Any

from translators.codec import (
    filters_from_json,
    request_to_json,
    response_from_json,
    response_to_json,
)
from translators.contract import (
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
from translators.wire import dump_json, json_response, parse_json

PREFIX = "/rosetta/v1/"
_STATUS: dict[ErrorKind, int] = {
    ErrorKind.BAD_REQUEST: 400,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.PAYLOAD_TOO_LARGE: 413,
    ErrorKind.OVERLOADED: 429,
    ErrorKind.UNSUPPORTED_OPERATION: 501,
    ErrorKind.UPSTREAM_UNAVAILABLE: 502,
    ErrorKind.UPSTREAM_ERROR: 502,
    ErrorKind.INTERNAL: 500,
    ErrorKind.UPSTREAM_TIMEOUT: 504,
}
# the keys of a canonical reply (translators.codec writes CanonicalResponse's fields by name)
_REPLY_KEYS = frozenset(f.name for f in fields(CanonicalResponse)) - {"error"}
_KIND_BY_STATUS = {
    400: ErrorKind.BAD_REQUEST,
    401: ErrorKind.UNAUTHENTICATED,
    403: ErrorKind.FORBIDDEN,
    404: ErrorKind.NOT_FOUND,
    413: ErrorKind.PAYLOAD_TOO_LARGE,
    429: ErrorKind.OVERLOADED,
    501: ErrorKind.UNSUPPORTED_OPERATION,
}


class RosettaTranslator(Translator):
    name = "rosetta"
    routes = (Route(PREFIX + "{operation}", ("POST",), "operation"),)
    error_table = {kind: (status, kind.value) for kind, status in _STATUS.items()}
    inbound_operations = frozenset(Operation)
    outbound_operations = dict.fromkeys(Operation, "native")

    # inbound ------------------------------------------------------------------------------
    def decode_request(self, request: HttpRequest) -> CanonicalRequest:
        name = request.path_params.get("operation", "")
        try:
            operation = Operation(name)
        except ValueError:
            raise RosettaError(ErrorKind.BAD_REQUEST, f"unknown operation {name!r}") from None
        body: Any = parse_json(request.body) if request.body.strip() else {}
        if not isinstance(body, dict):
            raise RosettaError(ErrorKind.BAD_REQUEST, "request body must be a JSON object")
        request_id = body.get("request_id")
        try:
            return CanonicalRequest(
                operation=operation,
                dialect=self.name,
                request_id=request_id,
                principal=_principal(body.get("credentials"), request.headers.get("authorization")),
                filters=filters_from_json(body.get("filters")),
                fields=_optional_list(body, "fields"),
                offset=_int(body, "offset", 0),
                limit=_int(body, "limit", None),
                settings=_object(body, "settings"),
                extras=_object(body, "extras"),
            )
        except RosettaError as error:
            error.request_id = request_id
            raise

    def encode_response(
        self, response: CanonicalResponse, request: CanonicalRequest | None, http: HttpRequest
    ) -> HttpResponse:
        if request is not None:
            response.operation = request.operation
        elif response.error is not None:
            body = {"request_id": response.request_id, "error": response_to_json(response)["error"]}
            return json_response(_status(response.error), body)
        status = 200 if response.error is None else _status(response.error)
        return json_response(status, response_to_json(response))

    # outbound -----------------------------------------------------------------------------
    def encode_request(self, request: CanonicalRequest, upstream: UpstreamChannel) -> HttpRequest:
        body = request_to_json(request)
        for key in ("principal", "dialect", "operation"):
            body.pop(key)
        creds = upstream.credentials
        headers = {"content-type": "application/json"}
        if creds.token:
            headers["authorization"] = f"Bearer {creds.token}"
        elif creds.user is not None:
            pair = f"{creds.user}:{creds.password or ''}".encode()
            headers["authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return HttpRequest(
            "POST", PREFIX + request.operation.value, headers=headers, body=dump_json(body)
        )

    def decode_response(
        self, response: HttpResponse, request: CanonicalRequest
    ) -> CanonicalResponse:
        try:
            data = parse_json(response.body, what="upstream reply")
        except RosettaError:
            raise RosettaError(
                ErrorKind.UPSTREAM_ERROR,
                f"upstream answered HTTP {response.status} without a rosetta JSON body",
            ) from None
        if not isinstance(data, dict) or ("error" not in data and response.status >= 400):
            kind = _KIND_BY_STATUS.get(response.status, ErrorKind.UPSTREAM_ERROR)
            raise RosettaError(kind, f"upstream answered HTTP {response.status}")
        operation = request.operation.value
        if "error" not in data and (
            not data.keys() & _REPLY_KEYS or data.get("operation", operation) != operation
        ):
            # a reply with none of the canonical keys, or naming another operation, is some
            # other envelope (a reply file without "operation" is still read offline)
            raise RosettaError(
                ErrorKind.UPSTREAM_ERROR,
                f"upstream answered HTTP {response.status} with a body that is not a rosetta "
                f"{request.operation.value} reply",
            )
        decoded = response_from_json(data, request.operation)
        decoded.request_id = request.request_id
        return decoded


def _status(error: RosettaError) -> int:
    override = error.context.get("http_status")
    return override if isinstance(override, int) else _STATUS[error.kind]


def _principal(credentials: Any, authorization: str | None) -> Principal:
    if isinstance(credentials, dict):
        user, password, token = (
            credentials.get("user"),
            credentials.get("password"),
            credentials.get("token"),
        )
        if isinstance(token, str) and token:
            return Principal(PrincipalKind.SESSION, token=token)
        if isinstance(user, str) and isinstance(password, str):
            return Principal(PrincipalKind.PASSWORD, user=user, password=password)
        raise RosettaError(ErrorKind.BAD_REQUEST, "credentials need user and password, or token")
    if credentials is not None:
        raise RosettaError(ErrorKind.BAD_REQUEST, "'credentials' must be an object")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value:
            return Principal(PrincipalKind.BEARER, token=value.strip())
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise RosettaError(ErrorKind.BAD_REQUEST, "malformed Basic credentials") from None
            return Principal(PrincipalKind.PASSWORD, user=user, password=password)
    return Principal()


def _int(body: dict[str, Any], key: str, default: int | None) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RosettaError(ErrorKind.BAD_REQUEST, f"'{key}' must be an integer >= 0")
    return value


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise RosettaError(ErrorKind.BAD_REQUEST, f"'{key}' must be an object")
    return value


def _optional_list(body: dict[str, Any], key: str) -> list[str] | None:
    value = body.get(key)
    if value is not None and (
        not isinstance(value, list) or not all(isinstance(v, str) for v in value)
    ):
        raise RosettaError(ErrorKind.BAD_REQUEST, f"'{key}' must be a list of strings")
    return value
