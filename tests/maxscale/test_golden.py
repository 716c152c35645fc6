"""The seed's examples, byte-for-byte in meaning (exact JSON), from ``rosetta emulate maxscale``;
and the JSON:API rendering of the same sessions, with the request host and the clock-dependent
``seconds_alive`` normalised."""

from __future__ import annotations

from typing import Any

import httpx

from tests.maxscale.conftest import MAXSCALE_USER, golden
from tests.maxscale.jsonapi import v1
from tests.support.servers import ServerProcess


def get(server: ServerProcess, path: str) -> httpx.Response:
    return httpx.get(server.url + path, auth=MAXSCALE_USER, timeout=20)


def normalised(doc: Any, server: ServerProcess) -> Any:
    """Host -> ``http://HOST``; ``seconds_alive`` -> 0 (it grows with the clock)."""
    if isinstance(doc, dict):
        return {k: 0 if k == "seconds_alive" else normalised(v, server) for k, v in doc.items()}
    if isinstance(doc, list):
        return [normalised(v, server) for v in doc]
    if isinstance(doc, str):
        return doc.replace(server.url, "http://HOST")
    return doc


def test_seed_get_a_session(seed_server: ServerProcess) -> None:
    reply = get(seed_server, "/sessions/1")
    assert reply.status_code == 200
    assert reply.json() == golden("draft_get_session.json")
    assert reply.headers["accept-patch"] == "application/json-patch"


def test_seed_get_all_sessions(seed_list_server: ServerProcess) -> None:
    reply = get(seed_list_server, "/sessions")
    assert reply.status_code == 200
    assert reply.json() == golden("draft_list_sessions.json")


def test_seed_get_all_connections_of_a_session(seed_server: ServerProcess) -> None:
    reply = get(seed_server, "/sessions/1/connections")
    assert reply.status_code == 200
    assert reply.json() == golden("draft_connections.json")


def test_seed_close_a_session(seed_list_server: ServerProcess) -> None:
    reply = httpx.delete(seed_list_server.url + "/sessions/2", auth=MAXSCALE_USER)
    assert reply.status_code == 204 and reply.content == b""
    assert get(seed_list_server, "/sessions/2").status_code == 404
    assert [s["id"] for s in get(seed_list_server, "/sessions").json()] == [1]


def test_jsonapi_rendering_of_the_seed_sessions(seed_server: ServerProcess) -> None:
    listed = v1("GET", seed_server.url + "/v1/sessions", auth=MAXSCALE_USER)
    assert normalised(listed.json(), seed_server) == golden("v1_list_sessions.json")
    one = v1("GET", seed_server.url + "/v1/sessions/1", auth=MAXSCALE_USER)
    assert normalised(one.json(), seed_server) == golden("v1_get_session.json")


def test_error_envelopes(seed_server: ServerProcess) -> None:
    denied = v1("GET", seed_server.url + "/v1/sessions", auth=("admin", "wrong"))
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == 'Basic realm="maxscale"'
    assert denied.json() == golden("v1_access_denied.json")
    draft = httpx.get(seed_server.url + "/sessions/999", auth=MAXSCALE_USER)
    assert draft.status_code == 404
    assert draft.json() == golden("draft_not_found.json")
