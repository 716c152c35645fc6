"""JUMP session and connection objects <-> canonical ``SessionRecord`` / ``Connection``.

A JUMP session object carries the canonical fields under camelCase names; anything else it
carries (and what a login stored as dialect settings) lives in ``extras["jump"]`` and is
merged back into the object on the way out, so a JUMP-to-JUMP round trip loses nothing.

Sessions of the shape JUMP servers send (``is_usual``: the canonical keys in the order JUMP
writes them, plain strings, an RFC 3339 ``connectedAt`` as Rosetta writes it) take a fast
path: decoded by ``_record_of_usual``, and in a list reply kept undecoded as ``SessionRows``
(``session_rows``) and sent on unchanged to a JUMP caller (``session_objects``), since
rendering their records gives the same objects. ``tests/jump/test_records.py`` holds the fast
paths to the general ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import Any

import msgspec

from translators.codec import (
    all_whole_seconds,
    format_rfc3339,
    is_rfc3339_as_written,
    parse_rfc3339,
)
from translators.contract import Connection, ErrorKind, RosettaError, SessionRecord
from translators.session_rows import BRIEF_FIELDS, SessionRows, rendered

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
_NOTHING: Mapping[str, Any] = {}

# the keys of a session object as JUMP writes them (``session_to_jump``), without and with
# the session's time-out
_USUAL_KEYS = (*(key for _, key in SESSION_KEYS), "connections")
_USUAL_TIMED_KEYS = (*(key for _, key in SESSION_KEYS), TIMEOUT_KEY, "connections")
_USUAL_TEXTS = itemgetter(
    "sessionId", "user", "clientAddress", "service", "database", "state", "lastCommand",
    "nodeId", "description",
)  # fmt: skip
# the value types of a usual session in its commonest form: a ``connectedAt``, integer
# ``idleSeconds`` (``_all_plain``)
_PLAIN_TYPES = (str, str, str, str, str, str, str, int, str, str, str, list)
_ID_MOMENT_CONNECTIONS = itemgetter("sessionId", "connectedAt", "connections")
_astuple = msgspec.structs.astuple


def _carried(extras: Mapping[str, Any]) -> Mapping[str, Any]:
    value = extras.get(DIALECT)
    return value if isinstance(value, dict) else _NOTHING


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
    """The JUMP session object of a record: its fields under the keys of ``SESSION_KEYS`` in
    that order, ``sessionTimeout`` when known, ``connections``, then what it carried."""
    connected_at = record.connected_at
    out: dict[str, Any] = {
        "sessionId": record.id,
        "user": record.user,
        "clientAddress": record.client_address,
        "service": record.service,
        "database": record.database,
        "state": record.state,
        "connectedAt": None if connected_at is None else format_rfc3339(connected_at),
        "idleSeconds": record.idle_seconds,
        "lastCommand": record.last_command,
        "nodeId": record.node_id,
        "description": record.description,
    }
    extras = record.extras
    carried = _carried(extras) if extras else _NOTHING
    remaining = remaining_seconds(record) if extras else None
    if remaining is not None:
        out[TIMEOUT_KEY] = str(remaining)
    elif TIMEOUT_KEY in carried:
        out[TIMEOUT_KEY] = carried[TIMEOUT_KEY]
    connections = record.connections
    out["connections"] = [connection_to_jump(c) for c in connections] if connections else []
    for key, value in carried.items():
        out.setdefault(key, value)
    return out


def connection_to_jump(conn: Connection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "server": conn.server,
        "state": conn.state,
        "role": conn.role,
        "reads": conn.reads,
        "writes": conn.writes,
    }
    if conn.extras:
        for key, value in _carried(conn.extras).items():
            out.setdefault(key, value)
    return out


def session_objects(records: Sequence[SessionRecord]) -> list[dict[str, Any]]:
    """The JUMP session object of each record. A session a JUMP upstream sent in the usual
    shape and that nothing has decoded since is sent on as it came: rendering its record
    gives the same object, keys in the same order (``tests/jump/test_records.py``)."""
    return rendered(records, (UsualRows, TypedRows), session_to_jump)


def _bad(message: str) -> RosettaError:
    return RosettaError(ErrorKind.UPSTREAM_ERROR, f"malformed JUMP session: {message}")


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if type(value) is str:
        return value
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
    """A JUMP session object (from an upstream) as a canonical record: sessions of the usual
    shape by ``_record_of_usual``, any other by ``_record_of_any_shape`` (same records)."""
    if type(data) is dict and is_usual(data):
        return _record_of_usual(data)
    return _record_of_any_shape(data)


def is_usual(data: dict[str, Any]) -> bool:
    """Whether a session object has the shape JUMP servers (and Rosetta) write: exactly the
    keys of ``session_to_jump`` in its order (``sessionTimeout`` optional, no other extras),
    the text fields strings, a non-empty ``sessionId``, ``idleSeconds`` a number,
    ``connectedAt`` null or written as ``format_rfc3339`` writes it, and connections of the
    usual shape. Such a session decodes without error, and rendering its record gives it back
    unchanged."""
    keys = tuple(data)
    if keys != _USUAL_KEYS and keys != _USUAL_TIMED_KEYS:
        return False
    try:
        "".join(_USUAL_TEXTS(data))  # every text field a string, else TypeError
    except TypeError:
        return False
    idle = data["idleSeconds"]
    moment = data["connectedAt"]
    connections = data["connections"]
    return (
        data["sessionId"] != ""
        and (type(idle) is int or type(idle) is float)
        and (moment is None or (type(moment) is str and is_rfc3339_as_written(moment)))
        and type(connections) is list
        and (not connections or all(_is_usual_connection(c) for c in connections))
    )


def _all_plain(items: list[Any]) -> bool:
    """Whether every session of a list reply is usual in its commonest form: ``_USUAL_KEYS``
    in order with values of ``_PLAIN_TYPES``, a non-empty id, a whole-second ``connectedAt``
    and no connections, which is what servers send for most lists. Checked a property at a
    time over the whole list in C-speed passes, about a third cheaper than ``is_usual`` row
    by row (which still checks any list that is not all plain)."""
    if set(map(type, items)) != {dict} or set(map(tuple, items)) != {_USUAL_KEYS}:
        return False
    value_types = tuple(map(type, chain.from_iterable(map(dict.values, items))))
    if value_types != _PLAIN_TYPES * len(items):
        return False
    ids, moments, connections = zip(*map(_ID_MOMENT_CONNECTIONS, items), strict=True)
    return "" not in ids and not any(connections) and all_whole_seconds(moments)


def all_as_written(moments: Sequence[str | None]) -> bool:
    """Whether every one of these ``connectedAt`` values is null or a string written as
    ``format_rfc3339`` writes one (``is_usual``'s check of each)."""
    written = [moment for moment in moments if moment is not None]
    return all_whole_seconds(written) or all(map(is_rfc3339_as_written, written))


def _is_usual_connection(data: Any) -> bool:
    """A connection object with exactly ``CONNECTION_KEYS`` in that order, the first three
    strings and the counters integers."""
    return (
        type(data) is dict
        and tuple(data) == CONNECTION_KEYS
        and type(data["server"]) is str
        and type(data["state"]) is str
        and type(data["role"]) is str
        and type(data["reads"]) is int
        and type(data["writes"]) is int
    )


NO_TIMEOUT: Any = msgspec.UNSET
"""The time-out of a usual session that has none, in ``usual_record``'s values."""


def _record_of_usual(data: dict[str, Any]) -> SessionRecord:
    """The record of a session that ``is_usual``: the same as the general path, several
    times faster (no per-field type dispatch, the record built positionally, the timestamp
    read by ``datetime.fromisoformat``)."""
    values = tuple(data.values())  # in ``_USUAL_KEYS`` or ``_USUAL_TIMED_KEYS`` order
    if len(values) == len(_USUAL_KEYS):
        values = (*values[:-1], NO_TIMEOUT, values[-1])
    connections = [
        (c["server"], c["state"], c["role"], c["reads"], c["writes"]) for c in values[-1]
    ]
    return usual_record(values, connections)


ConnectionValues = tuple[str, str, str, int, int]
"""A usual connection's values in ``CONNECTION_KEYS`` order."""


def usual_record(values: Sequence[Any], connections: list[ConnectionValues]) -> SessionRecord:
    """The record of a usual session given as its values in ``_USUAL_TIMED_KEYS`` order (the
    time-out ``NO_TIMEOUT`` when it has none) and each connection's values in
    ``CONNECTION_KEYS`` order."""
    sid, user, address, service, database, state, moment, idle, command, node, text = values[:11]
    timeout = values[11]
    # id, user, client_address, service, database, state, connected_at, idle_seconds,
    # last_command, node_id, description, connections, extras
    return SessionRecord(
        sid, user, address, service, database, state,
        None if moment is None else datetime.fromisoformat(moment),
        idle, command, node, text,
        [Connection(*c, {}) for c in connections] if connections else [],
        {} if timeout is NO_TIMEOUT else {DIALECT: {TIMEOUT_KEY: timeout}},
    )  # fmt: skip


def _record_of_any_shape(data: Any) -> SessionRecord:
    """The general decoding: any key may be missing, of another type, or unknown (kept)."""
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


def brief_fields_of(field: str) -> Mapping[str, str]:
    """``RowCodec.brief_fields`` of JUMP rows whose key ``k`` reads as ``field.format(k)``
    (``'row["{}"]'`` for dicts, ``"row.{}"`` for structs)."""
    return {name: field.format(key) for name, key in SESSION_KEYS if name in BRIEF_FIELDS}


class UsualRows:
    """How the sessions of a JUMP list reply kept undecoded (each ``is_usual``) are read
    later: the ``RowCodec`` of their ``SessionRows``."""

    __slots__ = ()
    brief_fields = brief_fields_of('row["{}"]')

    def decode(self, row: dict[str, Any], context: Any) -> SessionRecord:
        return _record_of_usual(row)


class TypedRows:
    """How the ``UsualSession`` structs of a list reply read in one typed pass
    (``translators/jump/typed.py``) are read later: the ``RowCodec`` of their
    ``SessionRows``."""

    __slots__ = ()
    brief_fields = brief_fields_of("row.{}")

    def decode(self, row: Any, context: Any) -> SessionRecord:
        return usual_record(_astuple(row), list(map(_astuple, row.connections)))


_USUAL_ROWS = UsualRows()


def session_rows(items: list[Any]) -> SessionRows:
    """The sessions of a list reply: those of the usual shape kept as received, any other
    decoded (or refused, as an upstream_error) at once."""
    records: list[SessionRecord | None]
    if _all_plain(items):
        records = [None] * len(items)
    else:
        records = [
            None if type(item) is dict and is_usual(item) else _record_of_any_shape(item)
            for item in items
        ]
    return SessionRows(_USUAL_ROWS, items, [None] * len(items), records)
