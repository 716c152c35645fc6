"""Where a MaxScale request goes: the draft format on bare ``/sessions...`` paths or the released
JSON:API format on ``/v1/...``, which resource, which session id and which methods it takes.

Both the inbound decoder and encoder parse the path with ``parse_endpoint`` (the gateway only
says which translator owns a path), so a request with a wrong method or an unknown resource is
still answered in the right format. A mount prefix (``inbound.maxscale.prefix``) is kept so
absolute links point back at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from translators.contract import ErrorKind, RosettaError

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class Format(StrEnum):
    DRAFT = "draft"
    JSONAPI = "jsonapi"


class Resource(StrEnum):
    ROOT = "root"  # GET /v1/
    MAXSCALE = "maxscale"  # GET /v1/maxscale
    AUTH = "auth"  # GET /v1/auth
    SESSIONS = "sessions"  # GET /sessions, GET /v1/sessions
    SESSION = "session"  # GET/DELETE/PATCH /sessions/:id, /v1/sessions/:id
    CONNECTIONS = "connections"  # GET /sessions/:id/connections
    RESTART = "restart"  # POST /v1/sessions/:id/restart
    RESTART_ALL = "restart_all"  # POST /v1/sessions/restart
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Endpoint:
    format: Format
    resource: Resource
    methods: tuple[str, ...]
    prefix: str = ""  # mount prefix before ``/v1`` or ``/sessions``
    raw_id: str | None = None

    def session_id(self) -> str:
        """The canonical session id: an unsigned decimal integer > 0, else not_found."""
        raw = self.raw_id or ""
        if not _UNSIGNED.match(raw) or int(raw) == 0:
            raise RosettaError(ErrorKind.NOT_FOUND, f"Session '{raw}' not found")
        return str(int(raw))


_UNSIGNED = re.compile(r"^[0-9]{1,19}\Z")
_V1 = re.compile(r"^(?P<prefix>.*?)/v1(?P<rest>/.*)?\Z", re.S)
_DRAFT = re.compile(r"^(?P<prefix>.*?)/sessions(?P<rest>/.*)?\Z", re.S)
_GET = ("GET",)
_ONE = ("GET", "DELETE", "PATCH")
_V1_TABLE: tuple[tuple[re.Pattern[str], Resource, tuple[str, ...]], ...] = (
    (re.compile(r"^/?\Z"), Resource.ROOT, _GET),
    (re.compile(r"^/maxscale/?\Z"), Resource.MAXSCALE, _GET),
    (re.compile(r"^/auth/?\Z"), Resource.AUTH, _GET),
    (re.compile(r"^/sessions/?\Z"), Resource.SESSIONS, _GET),
    (re.compile(r"^/sessions/restart/?\Z"), Resource.RESTART_ALL, ("POST",)),
    (re.compile(r"^/sessions/(?P<id>[^/]+)/?\Z"), Resource.SESSION, _ONE),
    (re.compile(r"^/sessions/(?P<id>[^/]+)/restart/?\Z"), Resource.RESTART, ("POST",)),
)
_DRAFT_TABLE: tuple[tuple[re.Pattern[str], Resource, tuple[str, ...]], ...] = (
    (re.compile(r"^/?\Z"), Resource.SESSIONS, _GET),
    (re.compile(r"^/(?P<id>[^/]+)/?\Z"), Resource.SESSION, _ONE),
    (re.compile(r"^/(?P<id>[^/]+)/connections/?\Z"), Resource.CONNECTIONS, _GET),
)


def parse_endpoint(path: str) -> Endpoint:
    found = _V1.match(path)
    if found is not None:
        fmt, table = Format.JSONAPI, _V1_TABLE
    else:
        found = _DRAFT.match(path)
        if found is None:
            return Endpoint(Format.DRAFT, Resource.UNKNOWN, ())
        fmt, table = Format.DRAFT, _DRAFT_TABLE
    prefix, rest = found.group("prefix"), found.group("rest") or ""
    for pattern, resource, methods in table:
        hit = pattern.match(rest)
        if hit is not None:
            return Endpoint(fmt, resource, methods, prefix, hit.groupdict().get("id"))
    return Endpoint(fmt, Resource.UNKNOWN, (), prefix)
