"""Session records and connections as BlobCity JSON (kebab-case keys, the style of BlobCity's
own ``address-prefix``-like names), both ways.

A record's ``extras["blobcity"]`` keys are written at the top level beside the known keys
(so unknown fields of a BlobCity upstream come back unchanged); other dialects' extras go
under ``"extras"``. Reading does the reverse: unknown top-level keys land in
``extras["blobcity"]``.
"""

from __future__ import annotations

from typing import Any

from translators.codec import format_rfc3339, parse_rfc3339
from translators.contract import Connection, ErrorKind, RosettaError, SessionRecord

NAME = "blobcity"

# BlobCity key -> SessionRecord attribute (string-valued fields)
SESSION_TEXT_FIELDS: tuple[tuple[str, str], ...] = (
    ("user", "user"),
    ("client-address", "client_address"),
    ("service", "service"),
    ("ds", "database"),
    ("state", "state"),
    ("last-command", "last_command"),
    ("node", "node_id"),
    ("description", "description"),
)
CONNECTION_TEXT_FIELDS: tuple[str, ...] = ("server", "state", "role")
_SESSION_KEYS = frozenset(
    {"id", "connected-at", "idle-seconds", "connections", "extras"}
    | {key for key, _ in SESSION_TEXT_FIELDS}
)
_CONNECTION_KEYS = frozenset({*CONNECTION_TEXT_FIELDS, "reads", "writes", "extras"})


def _split_extras(extras: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    own = extras.get(NAME)
    others = {k: v for k, v in extras.items() if k != NAME}
    return (own if isinstance(own, dict) else {}), others


def connection_to_json(conn: Connection) -> dict[str, Any]:
    own, others = _split_extras(conn.extras)
    body: dict[str, Any] = {
        "server": conn.server,
        "state": conn.state,
        "role": conn.role,
        "reads": conn.reads,
        "writes": conn.writes,
    }
    for key, value in own.items():
        body.setdefault(key, value)
    if others:
        body["extras"] = others
    return body


def session_to_json(record: SessionRecord) -> dict[str, Any]:
    own, others = _split_extras(record.extras)
    body: dict[str, Any] = {"id": record.id}
    for key, attribute in SESSION_TEXT_FIELDS[:5]:
        body[key] = getattr(record, attribute)
    body["connected-at"] = format_rfc3339(record.connected_at)
    body["idle-seconds"] = record.idle_seconds
    for key, attribute in SESSION_TEXT_FIELDS[5:]:
        body[key] = getattr(record, attribute)
    body["connections"] = [connection_to_json(c) for c in record.connections]
    for key, value in own.items():
        body.setdefault(key, value)
    if others:
        body["extras"] = others
    return body


def upstream_error(message: str) -> RosettaError:
    return RosettaError(ErrorKind.UPSTREAM_ERROR, f"malformed blobcity session: {message}")


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise upstream_error(f"{key!r} must be a string")
    return str(value)


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise upstream_error(f"{key!r} must be an integer")
    return value


def _extras(data: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    others = data.get("extras")
    extras: dict[str, Any] = dict(others) if isinstance(others, dict) else {}
    own = {k: v for k, v in data.items() if k not in known}
    if own:
        extras[NAME] = own
    return extras


def connection_from_json(data: Any) -> Connection:
    if not isinstance(data, dict):
        raise upstream_error("a connection must be an object")
    return Connection(
        server=_text(data, "server"),
        state=_text(data, "state"),
        role=_text(data, "role"),
        reads=_count(data, "reads"),
        writes=_count(data, "writes"),
        extras=_extras(data, _CONNECTION_KEYS),
    )


def session_from_json(data: Any) -> SessionRecord:
    """A session record from an upstream's ``p``; malformed input is upstream_error."""
    if not isinstance(data, dict):
        raise upstream_error("a session must be an object")
    raw_id = data.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or raw_id == "":
        raise upstream_error("'id' must be a non-empty string")
    idle = data.get("idle-seconds", 0) or 0
    if isinstance(idle, bool) or not isinstance(idle, int | float):
        raise upstream_error("'idle-seconds' must be a number")
    connections = data.get("connections") or []
    if not isinstance(connections, list):
        raise upstream_error("'connections' must be a list")
    try:
        connected_at = parse_rfc3339(data.get("connected-at"))
    except RosettaError as exc:
        raise upstream_error(exc.message) from None
    record = SessionRecord(
        id=str(raw_id),
        connected_at=connected_at,
        idle_seconds=idle,
        connections=[connection_from_json(c) for c in connections],
        extras=_extras(data, _SESSION_KEYS),
    )
    for key, attribute in SESSION_TEXT_FIELDS:
        setattr(record, attribute, _text(data, key))
    return record
