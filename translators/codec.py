"""Canonical values to and from plain JSON-able dicts: the ``rosetta`` dialect's body format,
the session files ``rosetta emulate --sessions`` loads, and what session stores persist."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from translators.contract import (
    CallerInfo,
    CanonicalRequest,
    CanonicalResponse,
    Connection,
    ErrorKind,
    Filters,
    Operation,
    RosettaError,
    SessionRecord,
)
from translators.session_rows import BRIEF_FIELDS, SessionRows, rendered

SESSION_KEYS = tuple(f.name for f in fields(SessionRecord))
"""The keys of a session as ``session_to_json`` writes it: the record's fields, in order."""
CONNECTION_KEYS = tuple(f.name for f in fields(Connection))
"""The keys of a connection as ``connection_to_json`` writes it: its fields, in order."""
_TWO_DIGITS = tuple(f"{n:02d}" for n in range(100))
# where ``format_rfc3339`` puts the separators of a whole-second time: 2025-12-23T07:36:00Z
_WHOLE_SECOND_MARKS = ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "Z"))
_HOUR = itemgetter(slice(11, 13))


def format_rfc3339(moment: datetime | None) -> str | None:
    """UTC, second precision with fractional part only when present, ``Z`` suffix. The UTC
    times records hold are written field by field (``isoformat`` costs microseconds); any
    other time is converted to UTC and written by ``isoformat``."""
    if moment is None:
        return None
    if moment.tzinfo is not UTC:
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    two = _TWO_DIGITS
    year = moment.year
    text = (
        f"{year if year >= 1000 else f'{year:04d}'}-{two[moment.month]}-{two[moment.day]}"
        f"T{two[moment.hour]}:{two[moment.minute]}:{two[moment.second]}"
    )
    micro = moment.microsecond
    return f"{text}.{micro:06d}Z" if micro else f"{text}Z"


def is_rfc3339_as_written(text: str) -> bool:
    """Whether ``text`` is a timestamp exactly as ``format_rfc3339`` writes one, so that
    ``format_rfc3339(parse_rfc3339(text)) == text`` and ``datetime.fromisoformat`` reads it
    as ``parse_rfc3339`` does: ``YYYY-MM-DDTHH:MM:SSZ``, or ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
    with a fraction that is not zero, ASCII, and a date and time ``fromisoformat`` accepts
    (which parses ASCII digits only and refuses year 0, month 13, a 30th of February, ...).
    Cheaper than a regular expression: the separators are compared as one slice."""
    if len(text) == 20:
        if text[4::3] != "--T::Z":
            return False
    elif len(text) != 27 or text[4:20:3] != "--T::." or text[26] != "Z" or text[20:26] == "000000":
        return False
    if text[11:13] > "23" or not text.isascii():  # never written; not left to fromisoformat
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def all_whole_seconds(moments: Sequence[str]) -> bool:
    """Whether every one of these strings is a timestamp as ``format_rfc3339`` writes one of
    whole seconds (``is_rfc3339_as_written`` of each, answered for a whole list at once): 20
    ASCII characters, the separators in place (read a column at a time from their
    concatenation), an hour below 24, and a date and time ``datetime.fromisoformat`` reads.
    ``False`` for an empty list."""
    if set(map(len, moments)) != {20}:
        return False
    joined, count = "".join(moments), len(moments)
    if not joined.isascii() or any(
        joined[column::20] != mark * count for column, mark in _WHOLE_SECOND_MARKS
    ):
        return False
    if max(map(_HOUR, moments)) > "23":  # never written; not left to fromisoformat
        return False
    try:
        deque(map(datetime.fromisoformat, moments), maxlen=0)
    except ValueError:  # no such day
        return False
    return True


def parse_rfc3339(text: Any) -> datetime | None:
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise RosettaError(ErrorKind.BAD_REQUEST, "timestamps must be RFC 3339 strings")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RosettaError(ErrorKind.BAD_REQUEST, f"not an RFC 3339 timestamp: {text!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def connection_to_json(conn: Connection) -> dict[str, Any]:
    return {
        "server": conn.server,
        "state": conn.state,
        "role": conn.role,
        "reads": conn.reads,
        "writes": conn.writes,
        "extras": conn.extras,
    }


def connection_from_json(data: Any) -> Connection:
    if not isinstance(data, dict):
        raise RosettaError(ErrorKind.BAD_REQUEST, "a connection must be an object")
    return Connection(
        server=_str(data, "server"),
        state=_str(data, "state"),
        role=_str(data, "role"),
        reads=_int(data, "reads"),
        writes=_int(data, "writes"),
        extras=_dict(data, "extras"),
    )


def session_to_json(record: SessionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "user": record.user,
        "client_address": record.client_address,
        "service": record.service,
        "database": record.database,
        "state": record.state,
        "connected_at": format_rfc3339(record.connected_at),
        "idle_seconds": record.idle_seconds,
        "last_command": record.last_command,
        "node_id": record.node_id,
        "description": record.description,
        "connections": [connection_to_json(c) for c in record.connections],
        "extras": record.extras,
    }


def session_from_json(data: Any) -> SessionRecord:
    """A canonical session (as ``session_to_json`` writes it, or any looser shape) as a
    record. A session exactly as written (``is_usual_session``) takes ``_session_of_usual``,
    any other ``_session_of_any_shape``; both give the same record."""
    if is_usual_session(data):
        return _session_of_usual(data)
    return _session_of_any_shape(data)


def is_usual_session(data: Any) -> bool:
    """Whether ``data`` is a session exactly as ``session_to_json`` writes one: a dict with
    ``SESSION_KEYS`` in that order, a non-empty string id, string fields, a number of idle
    seconds, ``connected_at`` as ``format_rfc3339`` writes it (or null), connections each as
    ``connection_to_json`` writes one, and an extras object. Such a session decodes without
    error, fast, and ``session_to_json`` of its record is equal to it, key order included."""
    if type(data) is not dict or tuple(data) != SESSION_KEYS:
        return False
    (session_id, user, address, service, database, state, connected_at, idle, command,
     node_id, description, connections, extras) = data.values()  # fmt: skip
    return (
        type(session_id) is str
        and session_id != ""
        and type(user) is str
        and type(address) is str
        and type(service) is str
        and type(database) is str
        and type(state) is str
        and type(command) is str
        and type(node_id) is str
        and type(description) is str
        and (type(idle) is int or type(idle) is float)
        and type(extras) is dict
        and type(connections) is list
        and (not connections or all(map(is_usual_connection, connections)))
        and (
            connected_at is None
            or (type(connected_at) is str and is_rfc3339_as_written(connected_at))
        )
    )


def is_usual_connection(data: Any) -> bool:
    """Whether ``data`` is a connection exactly as ``connection_to_json`` writes one."""
    if type(data) is not dict or tuple(data) != CONNECTION_KEYS:
        return False
    server, state, role, reads, writes, extras = data.values()
    return (
        type(server) is str
        and type(state) is str
        and type(role) is str
        and type(reads) is int
        and type(writes) is int
        and type(extras) is dict
    )


def _session_of_usual(data: dict[str, Any]) -> SessionRecord:
    """The record of a session that ``is_usual_session``: the same as
    ``_session_of_any_shape`` gives, without per-field type dispatch and built positionally
    in ``SessionRecord`` field order."""
    (session_id, user, address, service, database, state, connected_at, idle, command,
     node_id, description, connections, extras) = data.values()  # fmt: skip
    return SessionRecord(
        session_id, user, address, service, database, state,
        None if connected_at is None else datetime.fromisoformat(connected_at), idle, command,
        node_id, description, [_connection_of_usual(c) for c in connections] if connections else [],
        extras or {},
    )  # fmt: skip


def _connection_of_usual(data: dict[str, Any]) -> Connection:
    """The connection of one that ``is_usual_connection``, as ``connection_from_json``."""
    server, state, role, reads, writes, extras = data.values()
    return Connection(server, state, role, reads, writes, extras or {})


def _session_of_any_shape(data: Any) -> SessionRecord:
    """The general decoding: fields may be missing, null, or of the wrong type (refused)."""
    if not isinstance(data, dict):
        raise RosettaError(ErrorKind.BAD_REQUEST, "a session must be an object")
    raw_id = data.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or raw_id == "":
        raise RosettaError(ErrorKind.BAD_REQUEST, "a session needs a non-empty string 'id'")
    idle = data.get("idle_seconds", 0)
    if isinstance(idle, bool) or not isinstance(idle, int | float):
        raise RosettaError(ErrorKind.BAD_REQUEST, "'idle_seconds' must be a number")
    connections = data.get("connections") or []
    if not isinstance(connections, list):
        raise RosettaError(ErrorKind.BAD_REQUEST, "'connections' must be a list")
    return SessionRecord(
        id=str(raw_id),
        user=_str(data, "user"),
        client_address=_str(data, "client_address"),
        service=_str(data, "service"),
        database=_str(data, "database"),
        state=_str(data, "state"),
        connected_at=parse_rfc3339(data.get("connected_at")),
        idle_seconds=idle,
        last_command=_str(data, "last_command"),
        node_id=_str(data, "node_id"),
        description=_str(data, "description"),
        connections=[connection_from_json(c) for c in connections],
        extras=_dict(data, "extras"),
    )


class UsualRows:
    """How the sessions of a canonical list that were kept undecoded (each
    ``is_usual_session``) are read later: the ``RowCodec`` of their ``SessionRows``."""

    __slots__ = ()
    brief_fields: Mapping[str, str] = {name: f"row[{name!r}]" for name in BRIEF_FIELDS}

    def decode(self, row: dict[str, Any], context: None) -> SessionRecord:
        return _session_of_usual(row)


_USUAL_ROWS = UsualRows()


def sessions_from_json(data: Any) -> Sequence[SessionRecord]:
    """The sessions of a canonical list (a JSON array): what decoding each with
    ``session_from_json`` gives, as ``SessionRows`` that keep the sessions exactly as
    ``session_to_json`` writes them undecoded until read; any other session is decoded, or
    refused, at once."""
    if type(data) is not list:
        return [session_from_json(s) for s in data]
    records = [None if is_usual_session(s) else _session_of_any_shape(s) for s in data]
    return SessionRows(_USUAL_ROWS, data, [None] * len(data), records)


def sessions_to_json(sessions: Sequence[SessionRecord]) -> list[dict[str, Any]]:
    """``session_to_json`` of each session; a session ``sessions_from_json`` kept undecoded
    is sent on as it came, since rendering its record gives an equal dict in the same key
    order (``tests/foundation/test_codec.py``)."""
    return rendered(sessions, UsualRows, session_to_json)


def request_to_json(request: CanonicalRequest) -> dict[str, Any]:
    """The canonical request without secrets (for ``rosetta translate --canonical`` and logs)."""
    principal = request.principal
    return {
        "operation": request.operation.value,
        "dialect": request.dialect,
        "request_id": request.request_id,
        "principal": {
            "kind": principal.kind.value,
            "user": principal.user,
            "has_password": principal.password is not None,
            "has_token": principal.token is not None,
            "access_key": principal.signature.access_key if principal.signature else None,
        },
        "filters": {
            "ids": request.filters.ids,
            "users": request.filters.users,
            "node_id": request.filters.node_id,
            "address_prefix": request.filters.address_prefix,
        },
        "fields": request.fields,
        "offset": request.offset,
        "limit": request.limit,
        "settings": request.settings,
        "extras": request.extras,
    }


def filters_from_json(data: Any) -> Filters:
    if data is None:
        return Filters()
    if not isinstance(data, dict):
        raise RosettaError(ErrorKind.BAD_REQUEST, "'filters' must be an object")
    return Filters(
        ids=_str_list(data, "ids"),
        users=_str_list(data, "users"),
        node_id=_opt_str(data, "node_id"),
        address_prefix=_opt_str(data, "address_prefix"),
    )


def response_to_json(response: CanonicalResponse) -> dict[str, Any]:
    """A canonical response as JSON; the error, when there is one, as ``{kind, message, code}``."""
    body: dict[str, Any] = {"operation": response.operation.value}
    if response.request_id is not None:
        body["request_id"] = response.request_id
    if response.error is not None:
        body["error"] = error_to_json(response.error)
        return body
    if response.sessions is not None:
        body["sessions"] = sessions_to_json(response.sessions)
    if response.session is not None:
        body["session"] = session_to_json(response.session)
    if response.connections is not None:
        body["connections"] = [connection_to_json(c) for c in response.connections]
    if response.token is not None:
        body["token"] = response.token
    if response.total is not None:
        body["total"] = response.total
    if response.affected is not None:
        body["affected"] = response.affected
    body["elapsed_ms"] = response.elapsed_ms
    if response.caller is not None:
        body["caller"] = {
            "user": response.caller.user,
            "session_id": response.caller.session_id,
            "expires_in": response.caller.expires_in,
        }
    if response.extras:
        body["extras"] = response.extras
    return body


def response_from_json(data: Any, operation: Operation) -> CanonicalResponse:
    if not isinstance(data, dict):
        raise RosettaError(ErrorKind.UPSTREAM_ERROR, "canonical response must be an object")
    response = CanonicalResponse(operation=operation, request_id=data.get("request_id"))
    if "error" in data:
        response.error = error_from_json(data["error"])
        return response
    try:
        if data.get("sessions") is not None:
            response.sessions = sessions_from_json(data["sessions"])
        if data.get("session") is not None:
            response.session = session_from_json(data["session"])
        if data.get("connections") is not None:
            response.connections = [connection_from_json(c) for c in data["connections"]]
        response.token = _opt_str(data, "token")
        response.total = _opt_count(data, "total")
        response.affected = _opt_count(data, "affected")
        response.elapsed_ms = float(_opt_number(data, "elapsed_ms") or 0.0)
        caller = data.get("caller")
        if isinstance(caller, dict) and isinstance(caller.get("user"), str):
            response.caller = CallerInfo(
                user=caller["user"],
                session_id=_opt_str(caller, "session_id"),
                expires_in=_opt_number(caller, "expires_in"),
            )
        response.extras = _dict(data, "extras")
    except (RosettaError, TypeError) as exc:
        raise RosettaError(
            ErrorKind.UPSTREAM_ERROR, f"malformed canonical response: {exc}"
        ) from exc
    return response


def error_to_json(error: RosettaError) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": error.kind.value, "message": error.message}
    if error.native_code is not None:
        body["native_code"] = error.native_code
    return body


def error_from_json(data: Any) -> RosettaError:
    if not isinstance(data, dict):
        return RosettaError(ErrorKind.UPSTREAM_ERROR, "malformed error from upstream")
    try:
        kind = ErrorKind(str(data.get("kind")))
    except ValueError:
        kind = ErrorKind.UPSTREAM_ERROR
    return RosettaError(kind, str(data.get("message", "")), native_code=data.get("native_code"))


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RosettaError(ErrorKind.BAD_REQUEST, f"'{key}' must be a string")
    return value


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise RosettaError(ErrorKind.BAD_REQUEST, f"'{key}' must be a string")
    return value


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RosettaError(ErrorKind.BAD_REQUEST, f"'{key}' must be an integer")
    return value


def _opt_count(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise RosettaError(ErrorKind.BAD_REQUEST, f"'{key}' must be an integer")
    return value


def _opt_number(data: dict[str, Any], key: str) -> int | float | None:
    value = data.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise RosettaError(ErrorKind.BAD_REQUEST, f"'{key}' must be a number")
    return value


def _dict(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise RosettaError(ErrorKind.BAD_REQUEST, f"'{key}' must be an object")
    return value


def _str_list(data: dict[str, Any], key: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RosettaError(ErrorKind.BAD_REQUEST, f"'{key}' must be a list of strings")
    return value
