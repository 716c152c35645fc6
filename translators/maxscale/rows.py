"""The session resources of a JSON:API list reply from a MaxScale upstream, kept as received
when they have the usual shape (``usual_moment``) and decoded into records only when
something reads them as records (``translators.session_rows``).

A usual resource is what Rosetta's rendering (``jsonapi_session``) sends: a string ``id``;
the attributes ``state``, ``user`` (optional), ``remote``, ``port``, ``connected``,
``seconds_alive``, ``idle``, ``memory``, ``io_activity``, ``connections``, ``client``,
``thread``, ``queries``, ``log``, ``parameters``, in this order and no others; ``connected``
an HTTP-date exactly as ``format_http_date`` writes it; a ``services`` and optionally a
``filters`` relationship, each with a ``data`` list of identifiers with string ids. Such a
resource decodes without error, so it can wait; every other resource (the same attributes in
another order too) is decoded, or refused, on arrival.

Two fast paths, each held to the general one by ``tests/maxscale/test_rows.py``:
``record_of_usual`` gives the record ``session_from_jsonapi`` gives, and ``resource_of_usual``
the resource ``jsonapi_session`` renders from that record, without building the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from translators.contract import SessionRecord
from translators.maxscale.documents import (
    CANONICAL_ATTRIBUTES,
    DEFAULT_PARAMETERS,
    NAME,
    Moment,
    canonical_moment,
    connection_from_jsonapi,
    session_from_jsonapi,
)
from translators.session_rows import SessionRows

_ATTRIBUTES_WITH_USER = (
    "state",
    "user",
    "remote",
    "port",
    "connected",
    "seconds_alive",
    "idle",
    "memory",
    "io_activity",
    "connections",
    "client",
    "thread",
    "queries",
    "log",
    "parameters",
)
"""The attributes of a usual resource, in the order ``jsonapi_session`` renders them."""
_ATTRIBUTES = tuple(name for name in _ATTRIBUTES_WITH_USER if name != "user")
"""The same without ``user`` (which is not rendered when empty)."""


def _usual_relationships(relationships: Any) -> bool:
    """``services`` and optionally ``filters``, nothing else, each an object whose ``data``
    lists identifiers with string ids."""
    if type(relationships) is not dict:
        return False
    for name, relationship in relationships.items():
        if name != "services" and name != "filters":
            return False
        data = relationship.get("data") if type(relationship) is dict else None
        if type(data) is not list:
            return False
        for identifier in data:
            if type(identifier) is not dict or type(identifier.get("id")) is not str:
                return False
    return "services" in relationships


def usual_moment(resource: Any) -> Moment | None:
    """When the session of a resource of the usual shape connected; ``None`` for any other
    resource (which the general path decodes)."""
    if type(resource) is not dict:
        return None
    attributes = resource.get("attributes")
    if type(attributes) is not dict or type(resource.get("id")) is not str:
        return None
    names = tuple(attributes)
    if names != _ATTRIBUTES_WITH_USER and names != _ATTRIBUTES:
        return None
    remote, port, idle = attributes["remote"], attributes["port"], attributes["idle"]
    connections, connected = attributes["connections"], attributes["connected"]
    if (
        type(attributes["state"]) is str
        and type(attributes.get("user", "")) is str
        # a remote and port that join_address then split_address give back
        and type(remote) is str
        and type(port) is int
        and port >= 0
        and "[" not in remote
        and "]" not in remote
        and (type(idle) is float or type(idle) is int)
        and type(attributes["parameters"]) is dict
        and type(connections) is list
        and (not connections or all(type(c) is dict for c in connections))
        and type(connected) is str
        and _usual_relationships(resource.get("relationships"))
    ):
        return canonical_moment(connected)
    return None


def _ids(relationship: dict[str, Any]) -> list[str]:
    return [identifier["id"] for identifier in relationship["data"]]


def record_of_usual(resource: dict[str, Any], moment: Moment) -> SessionRecord:
    """The record of a resource whose ``usual_moment`` is ``moment``: the one
    ``session_from_jsonapi`` gives, built without its per-field type dispatch."""
    attributes, relationships = resource["attributes"], resource["relationships"]
    services = _ids(relationships["services"])
    extras: dict[str, Any] = {"parameters": attributes["parameters"]}
    if "filters" in relationships:
        filters = _ids(relationships["filters"])
        if filters:
            extras["filters"] = filters
    extras["attributes"] = {k: v for k, v in attributes.items() if k not in CANONICAL_ATTRIBUTES}
    remote, port = attributes["remote"], attributes["port"]
    address = f"[{remote}]:{port}" if ":" in remote else f"{remote}:{port}"
    connections = attributes["connections"]
    # id, user, client_address, service, database, state, connected_at, idle_seconds, ...
    return SessionRecord(
        resource["id"], attributes.get("user", ""), address, services[0] if services else "",
        "", attributes["state"], moment[0], attributes["idle"],
        connections=[connection_from_jsonapi(c) for c in connections] if connections else [],
        extras={NAME: extras},
    )  # fmt: skip


def resource_of_usual(
    resource: dict[str, Any], moment: Moment, base: str, now: float
) -> dict[str, Any]:
    """What ``jsonapi_session(record_of_usual(resource, moment), base, now)`` renders, read
    straight from the resource: its attributes as they came (they are in the rendered order,
    ``connected`` is written the way it is rendered) but for ``seconds_alive``, counted to
    ``now``, and the few that are rendered differently; its links pointing at ``base``."""
    attributes, relationships = resource["attributes"], resource["relationships"]
    alive = now - moment[1]
    rendered = attributes.copy()
    rendered["seconds_alive"] = round(alive if alive > 0.0 else 0.0, 3)
    rendered["parameters"] = {**DEFAULT_PARAMETERS, **attributes["parameters"]}
    idle, connections = attributes["idle"], attributes["connections"]
    if type(idle) is int:
        rendered["idle"] = float(idle)
    if connections:
        rendered["connections"] = [
            {
                "server": _text(c.get("server")),
                "connection_id": c.get("connection_id"),
                "cipher": c.get("cipher", ""),
            }
            for c in connections
        ]
    if "user" in attributes and not attributes["user"]:
        del rendered["user"]
    self_link = f"{base}/v1/sessions/{resource['id']}/"
    services = relationships["services"]["data"]
    service = services[0]["id"] if services else ""
    linked: dict[str, Any] = {
        "services": {
            "data": [{"id": service, "type": "services"}] if service else [],
            "links": {
                "self": f"{self_link}relationships/services/",
                "related": f"{base}/v1/services/",
            },
        }
    }
    filters = relationships.get("filters")
    if filters is not None and filters["data"]:
        linked["filters"] = {
            "data": [{"id": f["id"], "type": "filters"} for f in filters["data"]],
            "links": {
                "self": f"{self_link}relationships/filters/",
                "related": f"{base}/v1/filters/",
            },
        }
    return {
        "id": resource["id"],
        "type": "sessions",
        "attributes": rendered,
        "relationships": linked,
        "links": {"self": self_link},
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


class UsualRows:
    """How the kept resources of one list reply are read later: the ``RowCodec`` of their
    ``SessionRows``; each row's context is its ``usual_moment``."""

    __slots__ = ()
    brief_fields: Mapping[str, str] = {
        "id": 'row["id"]',
        "user": 'row["attributes"].get("user", "")',
        "client_address": (
            "f\"[{row['attributes']['remote']}]:{row['attributes']['port']}\""
            ' if ":" in row["attributes"]["remote"]'
            " else f\"{row['attributes']['remote']}:{row['attributes']['port']}\""
        ),
        "service": (
            'row["relationships"]["services"]["data"][0]["id"]'
            ' if row["relationships"]["services"]["data"] else ""'
        ),
        "database": '""',
        "state": 'row["attributes"]["state"]',
        "idle_seconds": 'row["attributes"]["idle"]',
        "last_command": '""',
        "node_id": '""',
        "description": '""',
    }

    def decode(self, row: dict[str, Any], moment: Moment) -> SessionRecord:
        return record_of_usual(row, moment)


USUAL_ROWS = UsualRows()


def reply_rows(resources: list[Any]) -> SessionRows:
    """The sessions of a JSON:API list reply: usual resources kept as received, any other
    decoded (or refused, as an upstream_error) at once."""
    moments = [usual_moment(resource) for resource in resources]
    records: list[SessionRecord | None] = [
        None if moment is not None else session_from_jsonapi(resource)
        for resource, moment in zip(resources, moments, strict=True)
    ]
    return SessionRows(USUAL_ROWS, resources, moments, records)
