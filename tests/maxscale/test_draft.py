"""The seed's draft format on bare /sessions against a real Rosetta over the local backend:
``fields``, 0-based inclusive ``range``, JSON Patch alters and the draft error body."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import ADMIN_PASSWORD, SESSION_SECRET
from tests.support.servers import ServerProcess

ADMIN = ("admin", ADMIN_PASSWORD)
PATCH = {"content-type": "application/json-patch"}


def draft_error(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status
    body: dict[str, Any] = reply.json()
    assert set(body) == {"error", "description"} and all(isinstance(v, str) for v in body.values())
    return body


def test_fields_and_range(sample_server: ServerProcess) -> None:
    url = sample_server.url + "/sessions?fields=id,user&range=1-2"
    assert httpx.get(url, auth=ADMIN).json() == [
        {"id": 102, "user": "dba"},
        {"id": 103, "user": "jdoe"},
    ]
    clipped = httpx.get(sample_server.url + "/sessions?range=3-1000&fields=id", auth=ADMIN).json()
    assert clipped[0] == {"id": 104}
    conns = httpx.get(sample_server.url + "/sessions/101/connections?range=1-1&fields=server")
    assert conns.status_code == 401
    conns = httpx.get(
        sample_server.url + "/sessions/101/connections?range=1-1&fields=server", auth=ADMIN
    )
    assert conns.json() == [{"server": "/servers/db-serv-02"}]


@pytest.mark.parametrize("value", ["2-1", "a-b", "5", "-1-2"])
def test_bad_range_is_400(sample_server: ServerProcess, value: str) -> None:
    draft_error(httpx.get(f"{sample_server.url}/sessions?range={value}", auth=ADMIN), 400)


def test_json_patch(sample_server: ServerProcess) -> None:
    url = sample_server.url + "/sessions/103"
    ops = [
        {"op": "add", "path": "/parameters/log_info", "value": True},
        {"op": "test", "path": "/parameters/log_info", "value": True},
        {"op": "remove", "path": "/parameters/log_debug"},
    ]
    reply = httpx.patch(url, auth=ADMIN, headers=PATCH, json=ops)
    assert reply.status_code == 200
    assert reply.headers["accept-patch"] == "application/json-patch"
    assert reply.json()["parameters"] == {
        "log_info": True,
        "log_notice": False,
        "log_warning": False,
        "log_debug": False,
    }
    failed = [
        {"op": "replace", "path": "/parameters/log_notice", "value": True},
        {"op": "test", "path": "/parameters/log_info", "value": False},
    ]
    draft_error(httpx.patch(url, auth=ADMIN, headers=PATCH, json=failed), 400)
    after = httpx.get(url, auth=ADMIN).json()["parameters"]
    assert after["log_notice"] is False, "a failed patch changes nothing"


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"content-type": "application/json"}, b"[]", 415),
        (PATCH, b"{not json", 400),
        (PATCH, b'{"op":"add"}', 400),
        (PATCH, b'[{"op":"frobnicate","path":"/parameters/x"}]', 400),
        (PATCH, b'[{"op":"replace","path":"/user","value":"x"}]', 403),
        (PATCH, b'[{"op":"copy","from":"/state","path":"/parameters/x"}]', 403),
    ],
)
def test_bad_patches(
    sample_server: ServerProcess, headers: dict[str, str], body: bytes, status: int
) -> None:
    reply = httpx.patch(
        sample_server.url + "/sessions/101", auth=ADMIN, headers=headers, content=body
    )
    draft_error(reply, status)
    assert reply.headers["accept-patch"] == "application/json-patch"


def test_errors_use_the_draft_body(sample_server: ServerProcess) -> None:
    denied = draft_error(httpx.get(sample_server.url + "/sessions"), 401)
    assert denied["error"] == "Unauthorized"
    assert httpx.get(sample_server.url + "/sessions").headers["www-authenticate"] == (
        'Basic realm="maxscale"'
    )
    assert draft_error(httpx.get(sample_server.url + "/sessions/x", auth=ADMIN), 404)
    assert draft_error(httpx.get(sample_server.url + "/sessions/1/y", auth=ADMIN), 404)
    moved = draft_error(httpx.post(sample_server.url + "/sessions", auth=ADMIN), 405)
    assert moved["error"] == "Method Not Allowed"
    draft_error(httpx.put(sample_server.url + "/sessions/101", auth=ADMIN), 405)


def test_delete_is_204_and_ends_the_session(sample_server: ServerProcess) -> None:
    token = httpx.get(sample_server.url + "/v1/auth", auth=ADMIN).json()["meta"]["token"]
    newest = jwt.decode(token, SESSION_SECRET, algorithms=["HS256"])["sid"]
    ids = [s["id"] for s in httpx.get(sample_server.url + "/sessions", auth=ADMIN).json()]
    assert int(newest) in ids
    gone = httpx.delete(f"{sample_server.url}/sessions/{newest}", auth=ADMIN)
    assert gone.status_code == 204 and gone.content == b""
    draft_error(
        httpx.get(sample_server.url + "/sessions", headers={"authorization": f"Bearer {token}"}),
        401,
    )
