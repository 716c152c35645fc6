"""Read any Rosetta answer in the caller's dialect: check that it is that dialect's envelope
(never a traceback, never HTML, never a bare framework error) and say what it means, as the
canonical outcome ``"ok"`` or an error kind (``"method_not_allowed"`` and
``"unsupported_media_type"`` for the two HTTP-level refusals the dialects document).

Each reader fails with ``EnvelopeError`` and a description when the answer is not a valid
envelope of its dialect, so a test reports the exact reply that broke the contract."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

OK = "ok"
METHOD = "method_not_allowed"
MEDIA = "unsupported_media_type"

#: what garbage may mean: the request is bad, or too large
BAD = frozenset({"bad_request", "payload_too_large", METHOD, MEDIA})
#: what a near-miss may mean: anything a caller can be told about its own request
CLIENT_SIDE = frozenset(
    {
        OK,
        "bad_request",
        "payload_too_large",
        "unauthenticated",
        "forbidden",
        "not_found",
        "unsupported_operation",
        METHOD,
        MEDIA,
    }
)


class EnvelopeError(AssertionError):
    pass


@dataclass(frozen=True)
class Reading:
    outcome: str
    status: int
    code: str | int | None = None


_FAIRCOM = {
    12100: "bad_request",
    12031: "unauthenticated",
    12101: "unauthenticated",
    -1: "unauthenticated",
    12102: "forbidden",
    12103: "not_found",
    12104: "unsupported_operation",
    12105: "payload_too_large",
    12110: "overloaded",
    12106: "upstream_unavailable",
    12107: "upstream_timeout",
    12108: "upstream_error",
    12109: "internal",
}
_BLOBCITY = {
    "DBQEX": "bad_request",
    "APP003": "unauthenticated",
    "INVALID_API_KEY": "unauthenticated",
    "NOT AUTHORISED": "forbidden",
    "SESSION_INVALID": "not_found",
    "UNSUPPORTED_OPERATION": "unsupported_operation",
    "REQUEST_TOO_LARGE": "payload_too_large",
    "TOO_MANY_REQUESTS": "overloaded",
    "UPSTREAM_UNAVAILABLE": "upstream_unavailable",
    "UPSTREAM_TIMEOUT": "upstream_timeout",
    "UPSTREAM_ERROR": "upstream_error",
    "UNKNOWN_ERROR": "internal",
}
_MAXSCALE = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: METHOD,
    413: "payload_too_large",
    415: MEDIA,
    429: "overloaded",
    500: "internal",
    501: "unsupported_operation",
    502: "upstream_error",
    503: "upstream_unavailable",
    504: "upstream_timeout",
}
_GEMINIDB = {
    "DBS.200001": "bad_request",
    "APIGW.0301": "unauthenticated",
    "APIGW.0302": "forbidden",
    "DBS.200002": "not_found",
    "DBS.200013": "not_found",
    "DBS.200004": "unsupported_operation",
    "APIGW.0201": "payload_too_large",
    "APIGW.0308": "overloaded",
    "APIGW.0202": "upstream_unavailable",
    "APIGW.0203": "upstream_timeout",
}
_JUMP = {
    "RSJE0400": "bad_request",
    "RSJE0401": "unauthenticated",
    "RSJE0403": "forbidden",
    "RSJE0404": "not_found",
    "RSJE0405": METHOD,
    "RSJE0413": "payload_too_large",
    "RSJE0500": "internal",
    "RSJE0501": "unsupported_operation",
    "RSJE0502": "upstream_error",
    "RSJE0503": "upstream_unavailable",
    "RSJE0504": "upstream_timeout",
    "": "unsupported_operation",  # unknown sid, as in the seed
}
_ROSETTA_STATUS = {
    "bad_request": {400, 405},
    "unauthenticated": {401},
    "forbidden": {403},
    "not_found": {404},
    "payload_too_large": {413},
    "overloaded": {429},
    "unsupported_operation": {501},
    "upstream_unavailable": {502},
    "upstream_error": {502},
    "upstream_timeout": {504},
    "internal": {500},
}
_JSONP = re.compile(rb"^/\*\*/([A-Za-z_$][A-Za-z0-9_$.]*)\((.*)\);$", re.S)


def _fail(reply: httpx.Response, why: str) -> EnvelopeError:
    body = reply.content[:400]
    return EnvelopeError(f"{why}: HTTP {reply.status_code} {dict(reply.headers)} {body!r}")


def _hygiene(reply: httpx.Response) -> None:
    text = reply.content[:65536].lower()
    if b"traceback (most recent call last)" in text or b'file "/' in text:
        raise _fail(reply, "a traceback reached the caller")
    if b"<html" in text or b"<!doctype" in text:
        raise _fail(reply, "HTML reached the caller")
    if reply.content in (b"Internal Server Error", b"Invalid HTTP request received."):
        raise _fail(reply, "a bare framework error reached the caller")


def _json(reply: httpx.Response, body: bytes | None = None) -> Any:
    ctype = reply.headers.get("content-type", "")
    if body is None and "json" not in ctype:
        raise _fail(reply, "not a JSON content type")
    try:
        return orjson.loads(reply.content if body is None else body)
    except orjson.JSONDecodeError:
        raise _fail(reply, "body is not JSON") from None


def _object(reply: httpx.Response, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(reply, "body is not a JSON object")
    return value


def read_faircom(reply: httpx.Response) -> Reading:
    if reply.status_code not in (200, 405):
        raise _fail(reply, "FairCom answers 200 (405 for a wrong method)")
    data = _object(reply, _json(reply))
    code, message = data.get("errorCode"), data.get("errorMessage")
    if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str):
        raise _fail(reply, "no integer errorCode / string errorMessage")
    if "result" not in data:
        raise _fail(reply, "no result")
    if code == 0:
        if reply.status_code != 200:
            raise _fail(reply, "success with a non-200 status")
        return Reading(OK, 200, 0)
    if not message:
        raise _fail(reply, "empty errorMessage")
    if reply.status_code == 405:
        return Reading(METHOD, 405, code)
    if code not in _FAIRCOM:
        raise _fail(reply, f"undocumented errorCode {code}")
    return Reading(_FAIRCOM[code], 200, code)


def read_blobcity(reply: httpx.Response) -> Reading:
    if reply.status_code not in (200, 405):
        raise _fail(reply, "BlobCity answers 200 (405 for a wrong method)")
    data = _object(reply, _json(reply))
    ack = data.get("ack")
    if ack == "1" and reply.status_code == 200:
        return Reading(OK, 200)
    if ack != "0":
        raise _fail(reply, "ack is neither '1' nor '0'")
    code = data.get("code")
    if not isinstance(code, str) or not code or not data.get("cause"):
        raise _fail(reply, "error without code and cause")
    if reply.status_code == 405:
        return Reading(METHOD, 405, code)
    if code not in _BLOBCITY:
        raise _fail(reply, f"undocumented code {code}")
    return Reading(_BLOBCITY[code], 200, code)


def read_maxscale(reply: httpx.Response, *, jsonapi: bool) -> Reading:
    status = reply.status_code
    if status < 300:
        if status == 204 or not reply.content:
            return Reading(OK, status)
        _json(reply)
        return Reading(OK, status)
    if status not in _MAXSCALE:
        raise _fail(reply, "undocumented MaxScale status")
    data = _object(reply, _json(reply))
    if jsonapi:
        errors = data.get("errors")
        if (
            not isinstance(errors, list)
            or not errors
            or not all(isinstance(e, dict) and isinstance(e.get("detail"), str) for e in errors)
        ):
            raise _fail(reply, "not a JSON:API errors document")
    elif not isinstance(data.get("error"), str) or not isinstance(data.get("description"), str):
        raise _fail(reply, "not a draft {error, description} body")
    return Reading(_MAXSCALE[status], status)


def read_geminidb(reply: httpx.Response) -> Reading:
    status = reply.status_code
    if status == 200:
        _object(reply, _json(reply))
        return Reading(OK, 200)
    data = _object(reply, _json(reply))
    code, message = data.get("error_code"), data.get("error_msg")
    if not isinstance(code, str) or not isinstance(message, str) or not message:
        raise _fail(reply, "no error_code / error_msg")
    if code == "APIGW.0101":
        if status not in (404, 405):
            raise _fail(reply, "APIGW.0101 with a status other than 404/405")
        return Reading(METHOD if status == 405 else "not_found", status, code)
    if code == "DBS.200000" and status in (500, 502):
        return Reading("internal" if status == 500 else "upstream_error", status, code)
    if code not in _GEMINIDB:
        raise _fail(reply, f"undocumented error_code {code}")
    expected = {"upstream_unavailable": 502, "upstream_timeout": 504}.get(_GEMINIDB[code])
    if (expected is None and not 400 <= status < 500) or (expected and status != expected):
        raise _fail(reply, f"{code} with status {status}")
    return Reading(_GEMINIDB[code], status, code)


def read_jump(reply: httpx.Response) -> Reading:
    status = reply.status_code
    if status not in (200, 405):
        raise _fail(reply, "JUMP answers 200 (405 for DELETE/PUT)")
    ctype = reply.headers.get("content-type", "")
    if ctype.startswith("text/plain"):
        if reply.content.startswith(b"Authentication failed.Userid:"):
            return Reading("unauthenticated", status)
        raise _fail(reply, "text/plain that is not the REST login failure")
    body: bytes | None = None
    if "javascript" in ctype:
        found = _JSONP.match(reply.content)
        if found is None:
            raise _fail(reply, "malformed JSONP")
        body = found.group(2)
    data = _object(reply, _json(reply, body))
    for key in ("error", "errorCode", "response"):
        if key not in data:
            raise _fail(reply, f"no {key}")
    error, code = data["error"], data["errorCode"]
    if not isinstance(error, str) or not isinstance(code, str):
        raise _fail(reply, "error / errorCode not strings")
    if not error:
        if status != 200 or code:
            raise _fail(reply, "success with an error code or status")
        return Reading(OK, 200)
    if data["response"] != "":
        raise _fail(reply, "error with a non-empty response")
    if status == 405:
        if code != "RSJE0405":
            raise _fail(reply, "405 without RSJE0405")
        return Reading(METHOD, 405, code)
    if code not in _JUMP or code == "RSJE0405":
        raise _fail(reply, f"undocumented errorCode {code!r}")
    return Reading(_JUMP[code], status, code)


def read_rosetta(reply: httpx.Response) -> Reading:
    status = reply.status_code
    data = _object(reply, _json(reply))
    if status == 200:
        if "error" in data:
            raise _fail(reply, "an error with 200")
        return Reading(OK, 200)
    error = data.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        raise _fail(reply, "no error object")
    kind = error.get("kind")
    if kind not in _ROSETTA_STATUS or status not in _ROSETTA_STATUS[kind]:
        raise _fail(reply, f"kind {kind!r} with status {status}")
    return Reading(METHOD if status == 405 else kind, status, kind)


def read(dialect: str, reply: httpx.Response, path: str = "") -> Reading:
    """The meaning of ``reply`` to a caller of ``dialect`` (``maxscale`` needs the path to
    know which of its two formats applies)."""
    _hygiene(reply)
    if dialect == "faircom":
        return read_faircom(reply)
    if dialect == "blobcity":
        return read_blobcity(reply)
    if dialect == "maxscale":
        return read_maxscale(reply, jsonapi=path.startswith("/v1"))
    if dialect == "geminidb":
        return read_geminidb(reply)
    if dialect == "jump":
        return read_jump(reply)
    if dialect == "rosetta":
        return read_rosetta(reply)
    raise ValueError(dialect)
