"""Session records and connections as BlobCity JSON (kebab-case keys, the style of BlobCity's
own ``address-prefix``-like names), both ways.

A record's ``extras["blobcity"]`` keys are written at the top level beside the known keys
(so unknown fields of a BlobCity upstream come back unchanged); other dialects' extras go
under ``"extras"``. Reading does the reverse: unknown top-level keys land in
``extras["blobcity"]``.

Sessions as Rosetta itself writes them (``is_usual``: every known key, in the order written,
with the types written, and nothing else) are read by a fast path, and a list reply keeps
them as received (``reply_rows``) until something needs their records: rendering such a
record gives back the session as received, so ``sessions_to_json`` sends a kept session on
unchanged. ``tests/blobcity/test_records.py`` holds the fast paths to the general ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from translators.codec import format_rfc3339, is_rfc3339_as_written, parse_rfc3339
from translators.contract import Connection, ErrorKind, RosettaError, SessionRecord
from translators.session_rows import SessionRows, rendered

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

# the keys ``session_to_json`` / ``connection_to_json`` write, in the order written, without
# and with other dialects' ``extras``
USUAL_SESSION_KEYS = (
    "id",
    "user",
    "client-address",
    "service",
    "ds",
    "state",
    "connected-at",
    "idle-seconds",
    "last-command",
    "node",
    "description",
    "connections",
)
_USUAL_SESSION_KEYS_AND_EXTRAS = (*USUAL_SESSION_KEYS, "extras")
USUAL_CONNECTION_KEYS = ("server", "state", "role", "reads", "writes")
_USUAL_CONNECTION_KEYS_AND_EXTRAS = (*USUAL_CONNECTION_KEYS, "extras")
_from_iso = datetime.fromisoformat


def _split_extras(extras: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    own = extras.get(NAME)
    others = {k: v for k, v in extras.items() if k != NAME}
    return (own if isinstance(own, dict) else {}), others


def connection_to_json(conn: Connection) -> dict[str, Any]:
    body: dict[str, Any] = {
        "server": conn.server,
        "state": conn.state,
        "role": conn.role,
        "reads": conn.reads,
        "writes": conn.writes,
    }
    extras = conn.extras
    if extras:
        _add_extras(body, extras)
    return body


def session_to_json(record: SessionRecord) -> dict[str, Any]:
    """The BlobCity session object of a record. It may share containers with the record (it
    is built to be serialised, not kept)."""
    body: dict[str, Any] = {
        "id": record.id,
        "user": record.user,
        "client-address": record.client_address,
        "service": record.service,
        "ds": record.database,
        "state": record.state,
        "connected-at": format_rfc3339(record.connected_at),
        "idle-seconds": record.idle_seconds,
        "last-command": record.last_command,
        "node": record.node_id,
        "description": record.description,
        "connections": [connection_to_json(c) for c in record.connections]
        if record.connections
        else [],
    }
    extras = record.extras
    if extras:
        _add_extras(body, extras)
    return body


def _add_extras(body: dict[str, Any], extras: dict[str, Any]) -> None:
    """Our own extras at the top level (known keys win), other dialects' under ``extras``."""
    if NAME not in extras:
        body["extras"] = extras
        return
    own, others = _split_extras(extras)
    for key, value in own.items():
        body.setdefault(key, value)
    if others:
        body["extras"] = others


def sessions_to_json(sessions: Sequence[SessionRecord]) -> list[dict[str, Any]]:
    """The session objects of a list: a session a BlobCity upstream sent in the usual shape
    and nothing has decoded is sent on as it came, which is what rendering its record gives
    (``tests/blobcity/test_records.py``)."""
    return rendered(sessions, UsualRows, session_to_json)


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
    """A session record from an upstream's ``p``; malformed input is upstream_error. A
    session of the usual shape takes the fast path; both paths give the same record."""
    if type(data) is dict and is_usual(data):
        return _record_of_usual(data)
    return _record_of_any_shape(data)


def _record_of_any_shape(data: Any) -> SessionRecord:
    """The general decoding: any key may be missing, of another JSON type, or unknown."""
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


# the usual shape --------------------------------------------------------------------------
def is_usual(data: dict[str, Any]) -> bool:
    """Whether a session object has exactly the shape ``session_to_json`` writes: the known
    keys in that order (then ``extras`` of other dialects, if any, and no unknown key), a
    non-empty string ``id``, string text fields, an integer (or non-zero float)
    ``idle-seconds``, usual connections, and ``connected-at`` null or a UTC time written as
    ``format_rfc3339`` writes it. Such a session decodes without error, and rendering its
    record gives it back unchanged. Checked for every session of a list reply, so written
    for speed: the values unpacked in key order, no per-field calls."""
    if len(data) == len(USUAL_SESSION_KEYS):
        if tuple(data) != USUAL_SESSION_KEYS:
            return False
        (
            session_id, user, address, service, database, state,
            connected_at, idle, command, node, description, connections,
        ) = data.values()  # fmt: skip
    else:
        if tuple(data) != _USUAL_SESSION_KEYS_AND_EXTRAS:
            return False
        (
            session_id, user, address, service, database, state,
            connected_at, idle, command, node, description, connections, extras,
        ) = data.values()  # fmt: skip
        if type(extras) is not dict or not extras or NAME in extras:
            return False  # rendering would drop empty extras, and lift our own
    return (
        type(session_id) is str
        and session_id != ""
        and type(user) is str
        and type(address) is str
        and type(service) is str
        and type(database) is str
        and type(state) is str
        and type(command) is str
        and type(node) is str
        and type(description) is str
        and (type(idle) is int or (type(idle) is float and idle != 0))
        and type(connections) is list
        and (not connections or all(map(_is_usual_connection, connections)))
        and (
            connected_at is None
            or (type(connected_at) is str and is_rfc3339_as_written(connected_at))
        )
    )


def _usual_extras(extras: Any) -> bool:
    """Other dialects' extras as ``connection_to_json`` writes them: a non-empty object
    without our own name (ours are written at the top level)."""
    return type(extras) is dict and bool(extras) and NAME not in extras


def _is_usual_connection(data: Any) -> bool:
    """A connection exactly as ``connection_to_json`` writes it (see ``is_usual``)."""
    if type(data) is not dict:
        return False
    keys = tuple(data)
    if keys != USUAL_CONNECTION_KEYS and (
        keys != _USUAL_CONNECTION_KEYS_AND_EXTRAS or not _usual_extras(data["extras"])
    ):
        return False
    return (
        type(data["server"]) is str
        and type(data["state"]) is str
        and type(data["role"]) is str
        and type(data["reads"]) is int
        and type(data["writes"]) is int
    )


def _connection_of_usual(data: dict[str, Any]) -> Connection:
    extras = data.get("extras")
    return Connection(
        data["server"], data["state"], data["role"], data["reads"], data["writes"],
        {} if extras is None else dict(extras),
    )  # fmt: skip


def _record_of_usual(data: dict[str, Any]) -> SessionRecord:
    """The record of a session that ``is_usual``: the same as the general path, several
    times faster (no per-field type dispatch, the record built positionally in
    ``SessionRecord`` field order, the time read by ``datetime.fromisoformat``)."""
    extras = data.get("extras")
    connected_at = data["connected-at"]
    connections = data["connections"]
    # id, user, client_address, service, database, state, connected_at, idle_seconds,
    # last_command, node_id, description, connections, extras
    return SessionRecord(
        data["id"], data["user"], data["client-address"], data["service"], data["ds"],
        data["state"], None if connected_at is None else _from_iso(connected_at),
        data["idle-seconds"], data["last-command"], data["node"], data["description"],
        [_connection_of_usual(c) for c in connections] if connections else [],
        {} if extras is None else dict(extras),
    )  # fmt: skip


class UsualRows:
    """How the sessions a list reply kept undecoded (each ``is_usual``) are read later: the
    ``RowCodec`` of their ``SessionRows``. Kept rows have no context."""

    __slots__ = ()
    brief_fields: Mapping[str, str] = {
        "id": 'row["id"]',
        "user": 'row["user"]',
        "client_address": 'row["client-address"]',
        "service": 'row["service"]',
        "database": 'row["ds"]',
        "state": 'row["state"]',
        "idle_seconds": 'row["idle-seconds"]',
        "last_command": 'row["last-command"]',
        "node_id": 'row["node"]',
        "description": 'row["description"]',
    }

    def decode(self, row: dict[str, Any], context: None) -> SessionRecord:
        return _record_of_usual(row)


_USUAL_ROWS = UsualRows()


def reply_rows(items: list[Any]) -> SessionRows:
    """The sessions of a list reply: those of the usual shape kept as received, any other
    decoded at once, so a malformed session fails the reply on arrival (upstream_error)."""
    records: list[SessionRecord | None] = [
        None if type(row) is dict and is_usual(row) else _record_of_any_shape(row) for row in items
    ]
    return SessionRows(_USUAL_ROWS, items, [None] * len(items), records)
