"""JUMP ``params`` -> canonical request fields, per operation.

``params`` may be a positional array, an object of named parameters, or an array holding one
object (JUMP's "one complex object" form). Every operation has an ordered list of positional
names and a table of accepted names (with aliases); values arriving through the REST form are
strings and are coerced the same way. Anything that does not fit is ``bad_request``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from translators.contract import ErrorKind, Filters, Operation, RosettaError


@dataclass(frozen=True, slots=True)
class OpSpec:
    """How one oid takes its parameters. ``open`` specs keep unknown names as settings."""

    operation: Operation
    positional: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    open: bool = False
    variadic: bool = False  # positional values are all one list (kill: several ids)


_ID = {"sessionId": "id", "sessionid": "id", "id": "id", "session": "id"}
_IDS = {"sessionIds": "ids", "ids": "ids"}
_FILTERS = {
    "user": "users",
    "users": "users",
    "userId": "users",
    "node": "node",
    "nodeId": "node",
    "address": "address",
    "clientAddress": "address",
    **_IDS,
}
_SETTINGS = {
    "description": "description",
    "sessionTimeout": "timeout",
    "idleTimeout": "timeout",
    "idleTimeoutSeconds": "timeout",
}
_CREDENTIALS = {
    "username": "user",
    "user": "user",
    "userid": "user",
    "userId": "user",
    "userName": "user",
    "j_username": "user",
    "presto_username": "user",
    "password": "password",
    "j_password": "password",
    "presto_password": "password",
}

SESSION_OIDS: dict[str, OpSpec] = {
    "listSessions": OpSpec(
        Operation.LIST,
        ("users", "offset", "limit"),
        {**_FILTERS, "offset": "offset", "limit": "limit", "fields": "fields"},
    ),
    "getSession": OpSpec(Operation.GET, ("id",), dict(_ID)),
    "getSessionConnections": OpSpec(Operation.CONNECTIONS, ("id",), dict(_ID)),
    "killSession": OpSpec(Operation.KILL, ("ids",), {**_ID, **_IDS}, variadic=True),
    "killAllSessions": OpSpec(Operation.KILL_ALL, ("users",), dict(_FILTERS)),
    "pingSession": OpSpec(Operation.PING),
    "alterSession": OpSpec(Operation.ALTER, ("id", "settings"), {**_ID, **_SETTINGS}, open=True),
}
USER_OIDS: dict[str, OpSpec] = {
    "login": OpSpec(Operation.LOGIN, ("user", "password"), {**_CREDENTIALS, **_SETTINGS}, True),
    "logout": OpSpec(Operation.LOGOUT, (), {}, open=True),
}
# x-p-method: the intent a GET/POST stands for (the server takes no DELETE or PUT)
METHOD_OVERRIDES: dict[str, dict[str, str]] = {
    "delete": {
        "getSession": "killSession",
        "killSession": "killSession",
        "listSessions": "killAllSessions",
        "killAllSessions": "killAllSessions",
        "login": "logout",
        "logout": "logout",
    },
    "put": {"getSession": "alterSession", "alterSession": "alterSession"},
}


def bad(message: str) -> RosettaError:
    return RosettaError(ErrorKind.BAD_REQUEST, message)


@dataclass(slots=True)
class Parsed:
    """Canonical values taken from ``params``."""

    filters: Filters = field(default_factory=Filters)
    offset: int = 0
    limit: int | None = None
    fields: list[str] | None = None
    user: str | None = None
    password: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    dialect_settings: dict[str, Any] = field(default_factory=dict)


def named_params(params: Any, spec: OpSpec, oid: str) -> dict[str, Any]:
    """``params`` as ``{canonical name: value}``; unknown names of open specs under ``"*"``."""
    if params is None:
        return {}
    if isinstance(params, list):
        first_takes_object = spec.positional[:1] == ("settings",)
        if len(params) == 1 and isinstance(params[0], dict) and not first_takes_object:
            return named_params(params[0], spec, oid)
        if spec.variadic:
            return {spec.positional[0]: params} if params else {}
        if len(params) > len(spec.positional):
            raise bad(f"{oid} takes at most {len(spec.positional)} positional parameters")
        result: dict[str, Any] = {}
        for name, value in zip(spec.positional, params, strict=False):
            if name == "settings":
                if value is None:
                    continue
                if not isinstance(value, dict):
                    raise bad(f"{oid}: the settings parameter must be an object")
                result.update(named_params(value, spec, oid))
            else:
                result[name] = value
        return result
    if not isinstance(params, dict):
        raise bad("'params' must be an array or an object")
    result = {}
    extra: dict[str, Any] = {}
    for key, value in params.items():
        canonical = spec.aliases.get(key)
        if canonical is None:
            if not spec.open:
                raise bad(f"{oid} has no parameter {key!r}")
            extra[key] = value
        elif canonical in result:
            raise bad(f"{oid}: parameter {key!r} given twice")
        else:
            result[canonical] = value
    if extra:
        result["*"] = extra
    return result


def _session_id(value: Any, oid: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value in ("", None):
        raise bad(f"{oid}: a session id must be a non-empty string or an integer")
    return str(value)


def _id_list(value: Any, oid: str) -> list[str]:
    if isinstance(value, str) and "," in value:
        value = [v.strip() for v in value.split(",") if v.strip()]
    items = value if isinstance(value, list) else [value]
    if not items:
        raise bad(f"{oid}: no session id given")
    return [_session_id(v, oid) for v in items]


def _names(value: Any, oid: str, what: str) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()] if "," in value else [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise bad(f"{oid}: '{what}' must be a string or a list of strings")


def _text(value: Any, oid: str, what: str) -> str:
    if not isinstance(value, str):
        raise bad(f"{oid}: '{what}' must be a string")
    return value


def _count(value: Any, oid: str, what: str) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad(f"{oid}: '{what}' must be an integer >= 0")
    return value


def _seconds(value: Any, oid: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise bad(f"{oid}: 'sessionTimeout' must be a number of seconds") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise bad(f"{oid}: 'sessionTimeout' must be a number of seconds >= 0")
    return float(value)


def parse(params: Any, spec: OpSpec, oid: str) -> Parsed:
    values = named_params(params, spec, oid)
    out = Parsed()
    for name, value in values.items():
        if name == "*":
            out.dialect_settings.update(value)
        elif value is None:
            continue
        elif name == "id":
            out.filters.ids = [_session_id(value, oid)]
        elif name == "ids":
            out.filters.ids = _id_list(value, oid)
        elif name == "users":
            out.filters.users = _names(value, oid, "user")
        elif name == "node":
            out.filters.node_id = _text(value, oid, "node")
        elif name == "address":
            out.filters.address_prefix = _text(value, oid, "address")
        elif name == "offset":
            out.offset = _count(value, oid, "offset")
        elif name == "limit":
            out.limit = _count(value, oid, "limit")
        elif name == "fields":
            out.fields = _names(value, oid, "fields")
        elif name == "user":
            out.user = _text(value, oid, "username")
        elif name == "password":
            out.password = _text(value, oid, "password")
        elif name == "description":
            out.settings["description"] = _text(value, oid, "description")
        elif name == "timeout":
            out.settings["idle_timeout_seconds"] = _seconds(value, oid)
    if spec.operation in (Operation.GET, Operation.CONNECTIONS) and not out.filters.ids:
        raise bad(f"{oid} needs a session id")
    if spec.operation is Operation.KILL and not out.filters.ids:
        raise bad(f"{oid} needs a session id")
    return out
