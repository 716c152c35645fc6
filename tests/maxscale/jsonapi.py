"""A JSON:API 1.0 validity check for every /v1 response the MaxScale tests see, plus the HTTP
helpers that apply it: top-level members, resource objects, relationships, absolute links and
error objects."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

TOP_LEVEL = {"data", "errors", "meta", "links", "included", "jsonapi"}
RESOURCE = {"id", "type", "attributes", "relationships", "links", "meta"}
ERROR = {"id", "links", "status", "code", "title", "detail", "source", "meta"}
RESERVED_IN_ATTRIBUTES = {"id", "type", "relationships", "links"}
SESSION_ATTRIBUTES = {
    "state",
    "remote",
    "port",
    "connected",
    "seconds_alive",
    "idle",
    "memory",
    "io_activity",
    "connections",
    "client",
    "parameters",
}


def check_document(doc: Any) -> None:
    assert isinstance(doc, dict), f"a JSON:API document is an object: {doc!r}"
    assert set(doc) <= TOP_LEVEL, f"unknown top-level members {set(doc) - TOP_LEVEL}"
    assert {"data", "errors", "meta"} & set(doc), "needs one of data, errors, meta"
    assert not ({"data", "errors"} <= set(doc)), "data and errors must not coexist"
    if "links" in doc:
        check_links(doc["links"])
    if "errors" in doc:
        errors = doc["errors"]
        assert isinstance(errors, list) and errors, "errors is a non-empty array"
        for error in errors:
            assert isinstance(error, dict) and set(error) <= ERROR, error
            assert isinstance(error.get("detail"), str) and error["detail"]
    if "data" in doc:
        data = doc["data"]
        if isinstance(data, list):
            for resource in data:
                check_resource(resource)
        elif data is not None:
            check_resource(data)


def check_resource(resource: Any) -> None:
    assert isinstance(resource, dict) and set(resource) <= RESOURCE, resource
    assert isinstance(resource.get("id"), str) and resource["id"], "id is a non-empty string"
    assert isinstance(resource.get("type"), str) and resource["type"]
    attributes = resource.get("attributes", {})
    assert isinstance(attributes, dict)
    assert not (set(attributes) & RESERVED_IN_ATTRIBUTES), "reserved names in attributes"
    for name, relationship in resource.get("relationships", {}).items():
        assert name not in attributes, f"{name} is both an attribute and a relationship"
        assert isinstance(relationship, dict)
        assert {"links", "data", "meta"} & set(relationship), relationship
        if "links" in relationship:
            check_links(relationship["links"])
        linked = relationship.get("data")
        for identifier in linked if isinstance(linked, list) else [linked] if linked else []:
            assert set(identifier) <= {"id", "type", "meta"}
            assert isinstance(identifier["id"], str) and isinstance(identifier["type"], str)
    if "links" in resource:
        check_links(resource["links"])


def check_links(links: Any) -> None:
    assert isinstance(links, dict)
    for value in links.values():
        href = value["href"] if isinstance(value, dict) else value
        parts = urlsplit(href)
        assert parts.scheme in ("http", "https") and parts.netloc, f"not absolute: {href!r}"


def v1(
    method: str, url: str, *, auth: tuple[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    """One /v1 request; the reply must be empty or a valid JSON:API document (errors too)."""
    reply = httpx.request(method, url, auth=auth, timeout=20, **kwargs)
    if reply.content:
        assert reply.headers["content-type"] == "application/json"
        check_document(reply.json())
    if reply.status_code >= 400:
        assert reply.content, "errors come as a JSON:API errors document"
        assert "errors" in reply.json()
    return reply


def session_resource_is_complete(resource: dict[str, Any]) -> None:
    assert resource["type"] == "sessions"
    missing = SESSION_ATTRIBUTES - set(resource["attributes"])
    assert not missing, f"attributes missing: {missing}"
    assert "total" in resource["attributes"]["memory"]
    assert "services" in resource["relationships"]
    assert resource["links"]["self"].endswith(f"/v1/sessions/{resource['id']}/")
