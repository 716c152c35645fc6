"""JUMP at the byte level: the error-code table, the response envelope, JSONP wrapping with a
strictly validated callback name, the XML result format (built with ``xml.etree``, every
value escaped, characters XML 1.0 cannot carry replaced), and the session cookie."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, unquote

from translators.contract import ErrorKind

ANONYMOUS_USER = "anonymousUser"
LOGOUT_SUCCESS = "JBPSASCE0741 - Logout Success"
ERROR_PREFIX = "Failed to handle given request. Error = "
AUTH_FAILED_TEXT = "Authentication failed.Userid:{user}."

# kind -> errorCode. The unknown-service error keeps the seed's empty errorCode instead.
ERROR_CODES: dict[ErrorKind, str] = {
    ErrorKind.BAD_REQUEST: "RSJE0400",
    ErrorKind.UNAUTHENTICATED: "RSJE0401",
    ErrorKind.FORBIDDEN: "RSJE0403",
    ErrorKind.NOT_FOUND: "RSJE0404",
    ErrorKind.PAYLOAD_TOO_LARGE: "RSJE0413",
    ErrorKind.OVERLOADED: "RSJE0429",
    ErrorKind.INTERNAL: "RSJE0500",
    ErrorKind.UNSUPPORTED_OPERATION: "RSJE0501",
    ErrorKind.UPSTREAM_ERROR: "RSJE0502",
    ErrorKind.UPSTREAM_UNAVAILABLE: "RSJE0503",
    ErrorKind.UPSTREAM_TIMEOUT: "RSJE0504",
}
METHOD_NOT_ALLOWED_CODE = "RSJE0405"
UNKNOWN_SERVICE_CODE = ""
KIND_BY_CODE: dict[str, ErrorKind] = {code: kind for kind, code in ERROR_CODES.items()}
KIND_BY_CODE[METHOD_NOT_ALLOWED_CODE] = ErrorKind.BAD_REQUEST

_AUTH_MESSAGE = re.compile(
    r"authenticat|not logged in|login required|session (has )?(expired|timed out)|"
    r"access denied|unauthori[sz]ed|invalid credentials",
    re.IGNORECASE,
)


def looks_like_auth_failure(message: str) -> bool:
    return bool(_AUTH_MESSAGE.search(message))


@dataclass(slots=True)
class Envelope:
    """What a response echoes of its request, and how it is to be rendered."""

    sid: str = ""
    oid: str = ""
    version: str = "1.0"
    svc_version: str = "0.1"
    inv_id: Any = ""
    app_id: Any = None
    result_format: str = "json"
    callback: str | None = None
    rest: bool = False
    login_user: str | None = None
    session_cookie: bool = False  # the request presented a session cookie

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        if not isinstance(data, dict):
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**known)
        except TypeError:
            return cls()


def header_map(user: str, timeout: str, service: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "map": {
            "currentUser": user,
            "sessionTimeout": timeout,
            "serviceHeader": {"map": service or {}},
        }
    }


def success_body(env: Envelope, header: dict[str, Any], response: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sid": env.sid,
        "oid": env.oid,
        "svcVersion": env.svc_version,
        "invId": env.inv_id,
        "version": env.version,
        "header": header,
        "error": "",
        "errorCode": "",
        "response": response,
    }
    if env.app_id is not None:
        body["appId"] = env.app_id
    return body


def error_body(env: Envelope, header: dict[str, Any], message: str, code: str) -> dict[str, Any]:
    """The seed's error layout (``appId`` included), plus the session header."""
    return {
        "sid": env.sid,
        "appId": env.app_id if env.app_id is not None else "",
        "oid": env.oid,
        "svcVersion": env.svc_version,
        "header": header,
        "error": message,
        "errorCode": code,
        "invId": env.inv_id,
        "response": "",
        "version": env.version,
    }


# JSONP ----------------------------------------------------------------------------------------
_CALLBACK = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*")
_MAX_CALLBACK = 128


def valid_callback(name: str) -> bool:
    """A dotted JavaScript identifier path and nothing else (no brackets, quotes, spaces)."""
    return len(name) <= _MAX_CALLBACK and _CALLBACK.fullmatch(name) is not None


def jsonp(callback: str, json_bytes: bytes) -> bytes:
    """``/**/cb({...});`` — the leading comment defeats content-sniffing tricks; U+2028/9 and
    ``<`` are escaped so the payload is valid, inert JavaScript in every engine."""
    safe = (
        json_bytes.replace("\u2028".encode(), b"\\u2028")
        .replace("\u2029".encode(), b"\\u2029")
        .replace(b"<", b"\\u003c")
    )
    return b"/**/" + callback.encode("ascii") + b"(" + safe + b");"


# XML ------------------------------------------------------------------------------------------
_XML_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_SINGULAR = {"sessions": "session", "connections": "connection", "fields": "field"}


def _clean(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)


def _fill(element: ET.Element, value: Any, item: str) -> None:
    if isinstance(value, dict):
        for key, child_value in value.items():
            name = str(key)
            if _XML_NAME.fullmatch(name) and not name.lower().startswith("xml"):
                child = ET.SubElement(element, name)
            else:
                child = ET.SubElement(element, "entry", {"key": _clean(name)})
            _fill(child, child_value, _SINGULAR.get(name, "item"))
    elif isinstance(value, list):
        for child_value in value:
            _fill(ET.SubElement(element, item), child_value, "item")
    elif value is None:
        element.set("null", "true")
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = _clean(str(value))


def to_xml(value: Any, item: str = "item") -> str:
    """``value`` as an XML document rooted at ``<response>``; lists become repeated ``item``."""
    root = ET.Element("response")
    _fill(root, value, item)
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")


# cookies --------------------------------------------------------------------------------------
_COOKIE_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"


def cookie_value(token: str) -> str:
    return quote(token, safe=_COOKIE_SAFE)


def read_cookie(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` request header (last one wins)."""
    found = None
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key.strip() == name:
            found = unquote(value.strip().strip('"'))
    return found or None


def set_cookie_from_reply(set_cookie: str, name: str) -> str | None:
    """The value ``name`` is set to in (possibly comma-joined) ``Set-Cookie`` headers."""
    match = re.search(rf"(?:^|[,;]\s*){re.escape(name)}=([^;,\s]*)", set_cookie)
    if match is None or not match.group(1):
        return None
    return unquote(match.group(1).strip('"'))
