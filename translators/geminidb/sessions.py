"""GeminiDB (Redis ``CLIENT LIST``) session objects to and from canonical session records.

| GeminiDB | canonical                          | notes                                          |
|----------|------------------------------------|------------------------------------------------|
| ``id``   | ``id``                             | integer when the id is decimal (see below)     |
| ``name`` | ``description`` (else ``user``)    | the connection name                            |
| ``cmd``  | ``last_command``                   |                                                |
| ``age``  | ``connected_at`` = now - age       | the reported age is kept in extras             |
| ``idle`` | ``idle_seconds``                   | whole seconds                                  |
| ``db``   | ``database``                       | ``0`` when the record has none                 |
| ``addr`` | ``client_address``                 | ``ip:port``                                    |
| ``fd``   | ``extras.geminidb.fd``             | default -1 (no socket of its own)              |
| ``sub`` ``psub`` | ``extras.geminidb``        | default 0 (no pub/sub)                         |
| ``multi``| ``extras.geminidb.multi``          | default -1 (no MULTI transaction)              |
| (node)   | ``node_id``                        | from the ``node_sessions`` group               |

Types: GeminiDB documents every field as a string but answers with integers. A decoded record
remembers, in ``extras.geminidb.int_fields``, which of ``id``/``idle``/``db`` came as JSON
integers, and keeps ``age``/``fd``/``sub``/``psub``/``multi`` exactly as received, so the
same dialect on both sides gets back what came in. Records from elsewhere are rendered with
integers (option ``number_format: string`` renders strings). Integers are never turned into
floats, whatever their size.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from translators.contract import ErrorKind, RosettaError, SessionRecord
from translators.session_rows import SessionRows

NAME = "geminidb"
FIELDS = ("addr", "id", "name", "cmd", "age", "idle", "db", "fd", "sub", "psub", "multi")
RAW_FIELDS = ("age", "fd", "sub", "psub", "multi")  # kept as received in extras
TYPED_FIELDS = ("id", "idle", "db")  # canonical values; their JSON type kept in extras
DEFAULTS: Mapping[str, int] = {"fd": -1, "sub": 0, "psub": 0, "multi": -1}
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)$")
_SAFE_INTEGER = 2**53  # larger ids of foreign records stay strings (JavaScript-safe)
_KNOWN = frozenset(FIELDS)
AGE_LIMIT = 10**10  # seconds, about 317 years: ``now - age`` is always a date
_MISSING = object()
_USUAL_VALUES = itemgetter(*FIELDS)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_decimal(text: str) -> int | None:
    """The integer a canonical decimal string spells, or ``None``."""
    return int(text) if _DECIMAL.match(text) else None


def _number(value: Any, field: str) -> int | float:
    if type(value) is int:  # the common case first: GeminiDB answers with integers
        return value
    if _is_int(value) or (isinstance(value, float) and value == value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        text = value.strip()
        exact = _as_decimal(text)
        if exact is not None:
            return exact
        try:
            return float(text)
        except ValueError:
            pass
    raise RosettaError(ErrorKind.UPSTREAM_ERROR, f"session field {field!r} is not a number")


def _text(value: Any, field: str) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return value
    if _is_int(value):
        return str(value)
    if value is None:
        return ""
    raise RosettaError(ErrorKind.UPSTREAM_ERROR, f"session field {field!r} must be a string")


def session_from_wire(data: Any, node_id: str, now: datetime) -> SessionRecord:
    """A GeminiDB session object (from an upstream) as a canonical record.

    Real GeminiDB answers every field, as an integer where it can: that shape
    (``is_usual``) takes ``_record_of_usual``; anything else (missing fields, strings,
    unknown keys) ``_record_of_any_shape``. Both give the same record."""
    if type(data) is not dict and not isinstance(data, dict):
        raise RosettaError(ErrorKind.UPSTREAM_ERROR, "a GeminiDB session must be an object")
    if is_usual(data):
        return _record_of_usual(data, node_id, now)
    return _record_of_any_shape(data, node_id, now)


def is_usual(data: dict[str, Any]) -> bool:
    """Whether a session object has the shape real servers send: exactly the eleven fields,
    ``id``, ``idle``, ``db`` and ``age`` integers (``age`` within ``AGE_LIMIT``), ``addr``,
    ``cmd`` and ``name`` strings. Such a session decodes without error, and fast."""
    try:
        age = data["age"]
        typed = (
            type(data["id"]) is int
            and type(data["idle"]) is int
            and type(data["db"]) is int
            and type(data["addr"]) is str
            and type(data["cmd"]) is str
            and type(data["name"]) is str
        )
    except KeyError:
        return False
    return (
        typed
        and type(age) is int
        and -AGE_LIMIT < age < AGE_LIMIT
        and len(data) == len(FIELDS)
        and "fd" in data
        and "sub" in data
        and "psub" in data
        and "multi" in data
    )


def _record_of_any_shape(data: dict[str, Any], node_id: str, now: datetime) -> SessionRecord:
    """The general decoding: any field may be missing, a string or unknown."""
    get = data.get
    int_fields: list[str] = []
    raw_id = get("id")
    if type(raw_id) is int:
        int_fields.append("id")
        session_id = str(raw_id)
    else:
        session_id = _text(raw_id, "id")
    if not session_id:
        raise RosettaError(ErrorKind.UPSTREAM_ERROR, "a GeminiDB session has no id")
    raw_idle = get("idle")
    if type(raw_idle) is int:
        int_fields.append("idle")
        idle: int | float = raw_idle
    else:
        idle = 0 if raw_idle is None else _number(raw_idle, "idle")
    raw_db = get("db")
    if type(raw_db) is int:
        int_fields.append("db")
        database = str(raw_db)
    else:
        database = _text(raw_db, "db")
    extras: dict[str, Any] = {"int_fields": int_fields}
    for field in RAW_FIELDS:
        value = get(field, _MISSING)
        if value is not _MISSING:
            extras[field] = value
    if not data.keys() <= _KNOWN:
        extras["more"] = {k: v for k, v in data.items() if k not in _KNOWN}
    age = get("age")
    connected_at = None
    if age is not None:
        seconds = age if type(age) is int else float(_number(age, "age"))
        try:
            connected_at = now - timedelta(seconds=seconds)
        except (OverflowError, ValueError):  # beyond the calendar, or NaN
            raise RosettaError(
                ErrorKind.UPSTREAM_ERROR, "session field 'age' is out of range"
            ) from None
    addr, cmd, name = get("addr"), get("cmd"), get("name")
    return SessionRecord(
        id=session_id,
        client_address=addr if type(addr) is str else _text(addr, "addr"),
        database=database,
        connected_at=connected_at,
        idle_seconds=idle,
        last_command=cmd if type(cmd) is str else _text(cmd, "cmd"),
        node_id=node_id,
        description=name if type(name) is str else _text(name, "name"),
        extras={NAME: extras},
    )


def _record_of_usual(data: dict[str, Any], node_id: str, now: datetime) -> SessionRecord:
    """The record of a session that ``is_usual``: the same as the general path, about three
    times faster (no per-field type dispatch, the record built positionally in
    ``SessionRecord`` field order). ``tests/geminidb/test_records.py`` holds the two paths to
    the same results."""
    return usual_record(_USUAL_VALUES(data), node_id, now)


def usual_record(values: tuple[Any, ...], node_id: str, now: datetime) -> SessionRecord:
    """The record of a usual session given as its values in ``FIELDS`` order."""
    addr, session_id, name, cmd, age, idle, db, fd, sub, psub, multi = values
    extras = {
        "int_fields": ["id", "idle", "db"],
        "age": age,
        "fd": fd,
        "sub": sub,
        "psub": psub,
        "multi": multi,
    }
    # id, user, client_address, service, database, state, connected_at, idle_seconds,
    # last_command, node_id, description, connections, extras
    return SessionRecord(
        str(session_id), "", addr, "", str(db), "", now - timedelta(0, age), idle, cmd, node_id,
        name, [], {NAME: extras},
    )  # fmt: skip


_BRIEF_TEMPLATES = {
    "id": "str({id})",
    "user": '""',
    "client_address": "{addr}",
    "service": '""',
    "database": "str({db})",
    "state": '""',
    "idle_seconds": "{idle}",
    "last_command": "{cmd}",
    "node_id": "context",
    "description": "{name}",
}


def brief_fields_of(field: str) -> Mapping[str, str]:
    """``RowCodec.brief_fields`` of GeminiDB rows whose field ``f`` reads as
    ``field.format(f)`` (``'row["{}"]'`` for dicts, ``"row.{}"`` for structs)."""
    reads = {name: field.format(name) for name in FIELDS}
    return {brief: template.format(**reads) for brief, template in _BRIEF_TEMPLATES.items()}


class UsualRows:
    """How the sessions of one list reply that were kept undecoded (each ``is_usual``) are
    read later: the ``RowCodec`` of their ``SessionRows``. ``now`` is when the reply came."""

    __slots__ = ("now",)
    brief_fields = brief_fields_of('row["{}"]')
    row_age = staticmethod(itemgetter("age"))

    def __init__(self, now: datetime) -> None:
        self.now = now

    def decode(self, row: dict[str, Any], node_id: str) -> SessionRecord:
        return _record_of_usual(row, node_id, self.now)


class ReplyRows:
    """Collects the sessions of one list reply, group by group, as ``SessionRows``: sessions
    of the usual shape are kept as received, any other is decoded (or refused) at once."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.rows: list[Any] = []
        self.contexts: list[Any] = []
        self.records: list[SessionRecord | None] = []

    def add(self, sessions: list[Any], node_id: str) -> None:
        now = self.now
        self.records += [
            None if type(s) is dict and is_usual(s) else session_from_wire(s, node_id, now)
            for s in sessions
        ]
        self.rows += sessions
        self.contexts += [node_id] * len(sessions)

    def result(self) -> SessionRows:
        return SessionRows(UsualRows(self.now), self.rows, self.contexts, self.records)


class SessionEncoder:
    """Renders canonical records as GeminiDB session objects; built once per translator."""

    def __init__(self, integers: bool) -> None:
        self.integers = integers

    def _typed(self, text: str, as_int: bool, known: bool) -> int | str:
        """``known``: the record came from GeminiDB with this field as an integer."""
        if as_int:
            value = _as_decimal(text)
            if value is not None and (known or abs(value) < _SAFE_INTEGER):
                return value
        return text

    def _count(self, value: int, as_int: bool) -> int | str:
        return value if as_int else str(value)

    def encode(self, record: SessionRecord, now: datetime) -> dict[str, Any]:
        carried = record.extras.get(NAME)
        ours: Mapping[str, Any] = carried if isinstance(carried, dict) else {}
        int_fields = ours.get("int_fields")
        typed = set(int_fields) if isinstance(int_fields, list) else None

        def as_int(field: str) -> bool:
            return field in typed if typed is not None else self.integers

        if "age" in ours:
            age: Any = ours["age"]
        else:
            seconds = 0
            if record.connected_at is not None:
                seconds = max(0, int((now - record.connected_at.astimezone(UTC)).total_seconds()))
            age = self._count(seconds, self.integers)
        idle_value = record.idle_seconds
        idle_whole = idle_value if isinstance(idle_value, int) else int(max(0.0, idle_value))
        body: dict[str, Any] = {
            "addr": record.client_address,
            "id": self._typed(record.id, as_int("id"), typed is not None),
            "name": record.description or record.user,
            "cmd": record.last_command,
            "age": age,
            "idle": self._count(idle_whole, as_int("idle")),
            "db": self._typed(record.database or "0", as_int("db"), typed is not None),
        }
        for field, default in DEFAULTS.items():
            body[field] = ours[field] if field in ours else self._count(default, self.integers)
        more = ours.get("more")
        if isinstance(more, dict):
            for key, value in more.items():
                body.setdefault(key, value)
        return body

    def age_of(self, record: SessionRecord, now: datetime) -> float:
        """Seconds since the session connected (for newest-first ordering)."""
        carried = record.extras.get(NAME)
        if isinstance(carried, dict) and "age" in carried:
            try:
                return float(_number(carried["age"], "age"))
            except RosettaError:
                return 0.0
        if record.connected_at is None:
            return 0.0
        return (now - record.connected_at.astimezone(UTC)).total_seconds()


def client_ip(address: str) -> str:
    """``10.0.0.1:5000`` -> ``10.0.0.1``; ``[::1]:5000`` -> ``::1``."""
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    host, sep, port = address.rpartition(":")
    if not sep or host.count(":") or not port.isdigit():
        return address
    return host
