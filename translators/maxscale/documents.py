"""Session records to and from MaxScale's two shapes: the draft objects of the seed and the
JSON:API resources of the released REST API. What MaxScale carries beyond the canonical fields
lives in ``record.extras["maxscale"]``::

    {"parameters": {...},          # session parameters (log_info, ...); PATCH target
     "filters": ["f1", ...],       # filter relationship ids; PATCH target
     "attributes": {...},          # other JSON:API attributes as an upstream sent them
     "relationships": {...},       # other relationships as an upstream sent them
     "draft": {...}}               # unknown draft keys as an upstream sent them

so a MaxScale -> Rosetta -> MaxScale round trip gives back the same document.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from translators.contract import Connection, ErrorKind, RosettaError, SessionRecord
from translators.wire import format_asctime, parse_asctime, parse_http_date

NAME = "maxscale"
DEFAULT_PARAMETERS: dict[str, Any] = {
    "log_debug": False,
    "log_info": False,
    "log_notice": False,
    "log_warning": False,
}
SETTINGS_BASE: dict[str, Any] = {"parameters": DEFAULT_PARAMETERS, "filters": []}
"""The writable document a PATCH applies to, before anything was stored."""

CANONICAL_ATTRIBUTES = frozenset(
    ("state", "user", "remote", "port", "connected", "idle", "connections", "parameters")
)
_DRAFT_KEYS = ("id", "state", "user", "address", "service", "connected", "idle", "parameters")


def extras_of(record: SessionRecord) -> dict[str, Any]:
    value = record.extras.get(NAME)
    return value if isinstance(value, dict) else {}


def split_address(address: str) -> tuple[str, int | None]:
    """``"ip:port"`` -> ``("ip", port)``; IPv6 in brackets; no port -> ``None``."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        return host, int(port) if port.isdigit() else None
    return address, None


def join_address(host: str, port: Any) -> str:
    if isinstance(port, bool) or not isinstance(port, int):
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _draft_id(session_id: str) -> int | str:
    return int(session_id) if session_id.isascii() and session_id.isdigit() else session_id


def _parameters(extras: dict[str, Any]) -> dict[str, Any]:
    stored = extras.get("parameters")
    return {**DEFAULT_PARAMETERS, **(stored if isinstance(stored, dict) else {})}


# draft -----------------------------------------------------------------------------------------
def draft_session(record: SessionRecord) -> dict[str, Any]:
    extras = extras_of(record)
    host, _ = split_address(record.client_address)
    obj: dict[str, Any] = {
        "id": _draft_id(record.id),
        "state": record.state,
        "user": record.user,
        "address": host,
        "service": f"/services/{record.service}" if record.service else None,
        "connected": format_asctime(record.connected_at) if record.connected_at else None,
        "idle": int(record.idle_seconds),
    }
    if "parameters" in extras:
        obj["parameters"] = _parameters(extras)
    unknown = extras.get("draft")
    if isinstance(unknown, dict):
        obj.update({k: v for k, v in unknown.items() if k not in obj})
    return obj


def draft_connection(conn: Connection, service: str) -> dict[str, Any]:
    extras = conn.extras.get(NAME)
    extras = extras if isinstance(extras, dict) else {}
    stats = extras.get("statistics")
    stats = stats if isinstance(stats, dict) else {}
    owner = extras.get("service", f"/services/{service}" if service else None)
    return {
        "state": conn.state,
        "role": conn.role,
        "server": f"/servers/{conn.server}",
        "service": owner,
        "statistics": {
            "reads": conn.reads,
            "writes": conn.writes,
            "buffered_writes": stats.get("buffered_writes", 0),
            "high_water_events": stats.get("high_water_events", 0),
            "low_water_events": stats.get("low_water_events", 0),
        },
    }


def session_from_draft(obj: Any) -> SessionRecord:
    if not isinstance(obj, dict) or isinstance(obj.get("id"), bool):
        raise _garbage("a draft session must be an object with an id")
    raw_id = obj.get("id")
    if not isinstance(raw_id, int | str) or raw_id == "":
        raise _garbage("a draft session needs an integer id")
    service = _text(obj.get("service"))
    connected = obj.get("connected")
    extras: dict[str, Any] = {}
    if isinstance(obj.get("parameters"), dict):
        extras["parameters"] = obj["parameters"]
    unknown = {k: v for k, v in obj.items() if k not in _DRAFT_KEYS}
    if unknown:
        extras["draft"] = unknown
    return SessionRecord(
        id=str(raw_id),
        user=_text(obj.get("user")),
        client_address=_text(obj.get("address")),
        service=service.removeprefix("/services/"),
        state=_text(obj.get("state")),
        connected_at=_moment(connected),
        idle_seconds=_number(obj.get("idle")),
        extras={NAME: extras} if extras else {},
    )


def connection_from_draft(obj: Any) -> Connection:
    if not isinstance(obj, dict):
        raise _garbage("a draft connection must be an object")
    stats = obj.get("statistics") if isinstance(obj.get("statistics"), dict) else {}
    assert isinstance(stats, dict)
    more = {k: stats[k] for k in ("buffered_writes", "high_water_events", "low_water_events")}
    return Connection(
        server=_text(obj.get("server")).removeprefix("/servers/"),
        state=_text(obj.get("state")),
        role=_text(obj.get("role")),
        reads=int(_number(stats.get("reads"))),
        writes=int(_number(stats.get("writes"))),
        extras={NAME: {"statistics": more, "service": obj.get("service")}},
    )


# JSON:API --------------------------------------------------------------------------------------
def jsonapi_session(record: SessionRecord, base: str, now: float | None = None) -> dict[str, Any]:
    """One ``sessions`` resource; ``base`` is ``scheme://host[prefix]``."""
    extras = extras_of(record)
    host, port = split_address(record.client_address)
    now = time.time() if now is None else now
    attributes: dict[str, Any] = {"state": record.state}
    if record.user:
        attributes["user"] = record.user
    connected = record.connected_at
    attributes.update(
        remote=host,
        port=port,
        connected=http_date(connected) if connected else None,
        seconds_alive=round(max(0.0, now - connected.timestamp()), 3) if connected else 0,
        idle=float(record.idle_seconds),
        memory={"total": 0},
        io_activity=sum(c.reads + c.writes for c in record.connections),
        connections=[_jsonapi_connection(c) for c in record.connections],
        client={"cipher": "", "connection_attributes": {}},
        thread=0,
        queries=[],
        log=[],
        parameters=_parameters(extras),
    )
    raw = extras.get("attributes")
    if isinstance(raw, dict):
        for key, value in raw.items():
            if key in CANONICAL_ATTRIBUTES or (key == "seconds_alive" and connected):
                continue
            attributes[key] = value
    self_link = f"{base}/v1/sessions/{record.id}/"
    relationships: dict[str, Any] = {
        "services": {
            "data": [{"id": record.service, "type": "services"}] if record.service else [],
            "links": {
                "self": f"{self_link}relationships/services/",
                "related": f"{base}/v1/services/",
            },
        }
    }
    filters = extras.get("filters")
    if isinstance(filters, list) and filters:
        relationships["filters"] = {
            "data": [{"id": str(f), "type": "filters"} for f in filters],
            "links": {
                "self": f"{self_link}relationships/filters/",
                "related": f"{base}/v1/filters/",
            },
        }
    raw_relationships = extras.get("relationships")
    if isinstance(raw_relationships, dict):
        for key, value in raw_relationships.items():
            relationships.setdefault(key, value)
    return {
        "id": record.id,
        "type": "sessions",
        "attributes": attributes,
        "relationships": relationships,
        "links": {"self": self_link},
    }


def _jsonapi_connection(conn: Connection) -> dict[str, Any]:
    extras = conn.extras.get(NAME)
    extras = extras if isinstance(extras, dict) else {}
    return {
        "server": conn.server,
        "connection_id": extras.get("connection_id"),
        "cipher": extras.get("cipher", ""),
    }


def session_from_jsonapi(resource: Any) -> SessionRecord:
    if not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
        raise _garbage("a JSON:API session resource needs a string id")
    attributes = resource.get("attributes")
    if not isinstance(attributes, dict):
        raise _garbage(f"session {resource['id']} has no attributes object")
    relationships = resource.get("relationships")
    relationships = relationships if isinstance(relationships, dict) else {}
    services = _ids(relationships.get("services"))
    filters = _ids(relationships.get("filters"))
    extras: dict[str, Any] = {}
    if isinstance(attributes.get("parameters"), dict):
        extras["parameters"] = attributes["parameters"]
    if filters:
        extras["filters"] = filters
    other = {k: v for k, v in attributes.items() if k not in CANONICAL_ATTRIBUTES}
    if other:
        extras["attributes"] = other
    others = {k: v for k, v in relationships.items() if k not in ("services", "filters")}
    if others:
        extras["relationships"] = others
    conns = attributes.get("connections")
    return SessionRecord(
        id=resource["id"],
        user=_text(attributes.get("user")),
        client_address=join_address(_text(attributes.get("remote")), attributes.get("port")),
        service=services[0] if services else "",
        state=_text(attributes.get("state")),
        connected_at=_moment(attributes.get("connected")),
        idle_seconds=_number(attributes.get("idle")),
        connections=[connection_from_jsonapi(c) for c in conns or []]
        if isinstance(conns, list)
        else [],
        extras={NAME: extras} if extras else {},
    )


def connection_from_jsonapi(obj: Any) -> Connection:
    if not isinstance(obj, dict):
        raise _garbage("a session connection must be an object")
    extras = {k: obj[k] for k in ("connection_id", "cipher") if k in obj}
    return Connection(server=_text(obj.get("server")), extras={NAME: extras})


def _ids(relationship: Any) -> list[str]:
    if not isinstance(relationship, dict) or not isinstance(relationship.get("data"), list):
        return []
    return [str(d["id"]) for d in relationship["data"] if isinstance(d, dict) and "id" in d]


# helpers ---------------------------------------------------------------------------------------
def _garbage(message: str) -> RosettaError:
    return RosettaError(ErrorKind.UPSTREAM_ERROR, f"maxscale upstream: {message}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0 if value is None else _parse_number(value)
    return value


def _parse_number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _garbage(f"{value!r} is not a number") from None


def _moment(value: Any) -> Any:
    """HTTP-date (MaxScale 23.02+) or asctime (the draft, older MaxScale); ``None`` if absent."""
    if not isinstance(value, str) or not value:
        return None
    moment = canonical_moment(value)
    if moment is not None:
        return moment[0]
    try:
        return parse_http_date(value)
    except RosettaError:
        return parse_asctime(value)


# HTTP-dates ------------------------------------------------------------------------------------
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBERS = {name: number for number, name in enumerate(_MONTHS, 1)}
Moment = tuple[datetime, float]
"""A moment as a UTC datetime and its POSIX timestamp."""
_PARSED_DATES: dict[str, Moment] = {}
_PARSED_DATES_KEPT = 4096
"""HTTP-dates parsed lately: a list reply repeats the connection times of the sessions the
previous one listed, and a dictionary look-up costs a twentieth of parsing one."""


def http_date(moment: datetime) -> str:
    """``Fri, 05 Jan 2024 07:24:06 GMT``: what ``wire.format_http_date`` writes (the standard
    library's ``format_datetime``), several times faster."""
    m = moment.astimezone(UTC)
    return (
        f"{_DAYS[m.weekday()]}, {m.day:02d} {_MONTHS[m.month - 1]} {m.year:04d} "
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d} GMT"
    )


def canonical_moment(text: str) -> Moment | None:
    """The moment of an HTTP-date written exactly as ``http_date`` writes it (the weekday
    right, every field zero-padded), the one ``wire.parse_http_date`` reads from it; ``None``
    for any other text, which the general parser reads or refuses."""
    moment = _PARSED_DATES.get(text)
    if moment is None:
        parsed = _parse_canonical_http_date(text)
        if parsed is None:
            return None
        if len(_PARSED_DATES) >= _PARSED_DATES_KEPT:
            _PARSED_DATES.clear()
        moment = _PARSED_DATES[text] = (parsed, parsed.timestamp())
    return moment


def _parse_canonical_http_date(text: str) -> datetime | None:
    if len(text) != 29:
        return None
    try:
        moment = datetime(
            int(text[12:16]),
            _MONTH_NUMBERS[text[8:11]],
            int(text[5:7]),
            int(text[17:19]),
            int(text[20:22]),
            int(text[23:25]),
            tzinfo=UTC,
        )
    except (KeyError, ValueError):
        return None
    return moment if http_date(moment) == text else None
