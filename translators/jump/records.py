"""JUMP session and connection objects <-> canonical ``SessionRecord`` / ``Connection``.

A JUMP session object carries the canonical fields under camelCase names; anything else it
carries (and what a login stored as dialect settings) lives in ``extras["jump"]`` and is
merged back into the object on the way out, so a JUMP-to-JUMP round trip loses nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from translators.codec import format_rfc3339, parse_rfc3339
from translators.contract import Connection, ErrorKind, RosettaError, SessionRecord

DIALECT = "jump"

# canonical attribute -> JUMP key, in the order the keys are written
SESSION_KEYS: tuple[tuple[str, str], ...] = (
    ("id", "sessionId"),
    ("user", "user"),
    ("client_address", "clientAddress"),
    ("service", "service"),
    ("database", "database"),
    ("state", "state"),
    ("connected_at", "connectedAt"),
    ("idle_seconds", "idleSeconds"),
    ("last_command", "lastCommand"),
    ("node_id", "nodeId"),
    ("description", "description"),
)
CONNECTION_KEYS: tuple[str, ...] = ("server", "state", "role", "reads", "writes")
TIMEOUT_KEY = "sessionTimeout"
_RESERVED = frozenset({key for _, key in SESSION_KEYS} | {"connections", TIMEOUT_KEY, "id"})


def _carried(extras: dict[str, Any]) -> dict[str, Any]:
    value = extras.get(DIALECT)
    return value if isinstance(value, dict) else {}


def remaining_seconds(record: SessionRecord) -> int | None:
    """Seconds until a login session idles out, from the local backend's lifecycle extras."""
    life = record.extras.get("rosetta")
    if not isinstance(life, dict):
        return None
    timeout = life.get("idle_timeout_seconds")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        return None
    return max(0, round(timeout - record.idle_seconds))


def session_to_jump(record: SessionRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, key in SESSION_KEYS:
        value = getattr(record, attr)
        out[key] = format_rfc3339(value) if attr == "connected_at" else value
    carried = _carried(record.extras)
    remaining = remaining_seconds(record)
    if remaining is not None:
        out[TIMEOUT_KEY] = str(remaining)
    elif TIMEOUT_KEY in carried:
        out[TIMEOUT_KEY] = carried[TIMEOUT_KEY]
    out["connections"] = [connection_to_jump(c) for c in record.connections]
    for key, value in carried.items():
        out.setdefault(key, value)
    return out


def connection_to_jump(conn: Connection) -> dict[str, Any]:
    out: dict[str, Any] = {key: getattr(conn, key) for key in CONNECTION_KEYS}
    for key, value in _carried(conn.extras).items():
        out.setdefault(key, value)
    return out


def _bad(message: str) -> RosettaError:
    return RosettaError(ErrorKind.UPSTREAM_ERROR, f"malformed JUMP session: {message}")


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _bad(f"'{key}' must be a string")


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{key}' must be an integer")
    return value


def _moment(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)  # Java epoch milliseconds
    try:
        return parse_rfc3339(value)
    except RosettaError as exc:
        raise _bad(exc.message) from None


def session_from_jump(data: Any) -> SessionRecord:
    if not isinstance(data, dict):
        raise _bad("a session must be an object")
    raw_id = data.get("sessionId", data.get("id"))
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or raw_id == "":
        raise _bad("'sessionId' is missing")
    idle = data.get("idleSeconds", 0)
    if idle is None:
        idle = 0
    if isinstance(idle, bool) or not isinstance(idle, int | float):
        raise _bad("'idleSeconds' must be a number")
    connections = data.get("connections") or []
    if not isinstance(connections, list):
        raise _bad("'connections' must be a list")
    extras = {k: v for k, v in data.items() if k not in _RESERVED}
    if TIMEOUT_KEY in data:
        extras[TIMEOUT_KEY] = data[TIMEOUT_KEY]
    return SessionRecord(
        id=str(raw_id),
        user=_text(data, "user"),
        client_address=_text(data, "clientAddress"),
        service=_text(data, "service"),
        database=_text(data, "database"),
        state=_text(data, "state"),
        connected_at=_moment(data.get("connectedAt")),
        idle_seconds=idle,
        last_command=_text(data, "lastCommand"),
        node_id=_text(data, "nodeId"),
        description=_text(data, "description"),
        connections=[connection_from_jump(c) for c in connections],
        extras={DIALECT: extras} if extras else {},
    )


def connection_from_jump(data: Any) -> Connection:
    if not isinstance(data, dict):
        raise _bad("a connection must be an object")
    extras = {k: v for k, v in data.items() if k not in CONNECTION_KEYS}
    return Connection(
        server=_text(data, "server"),
        state=_text(data, "state"),
        role=_text(data, "role"),
        reads=_count(data, "reads"),
        writes=_count(data, "writes"),
        extras={DIALECT: extras} if extras else {},
    )
