"""BlobCity inbound over real HTTP against a real Rosetta on the local backend, preloaded with
the sample sessions: every query code in the JSON form, the Java adapter's unencoded form and a
URL-encoded form gives the same envelope; every malformed request gets the failure envelope
with HTTP 200, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.blobcity.client import (
    java_form_body,
    normalised,
    post_form,
    post_json,
    post_raw,
    post_urlencoded,
)
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, base_config, sample_sessions
from tests.support.servers import ServerProcess, serve

TRICKY_USER = "carol"
TRICKY_PASSWORD = "p&ss+w%rd word=x&y"  # every character the unencoded form makes ambiguous


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("blobcity-inbound")
    sessions = Path(directory) / "sessions.json"
    sessions.write_bytes(orjson.dumps(sample_sessions()))
    config = base_config()
    config["backends"]["local"]["sessions_file"] = str(sessions)
    config["users"].append({"name": TRICKY_USER, "password": TRICKY_PASSWORD, "role": "admin"})
    process = serve(directory, config)
    yield process
    process.stop()


def all_forms(url: str, user: str | None, password: str | None, code: str, p: Any) -> list[Any]:
    return [
        normalised(post(url, user, password, code, p))
        for post in (post_json, post_form, post_urlencoded)
    ]


SAME_ANSWER_CASES: list[tuple[str, str, Any]] = [
    ("list all", "list-sessions", None),
    ("list by user", "list-sessions", {"user": "jdoe"}),
    ("list by users, node", "list-sessions", {"users": ["jdoe", "app"], "node": "node-b"}),
    ("list prefix paged", "list-sessions", {"address-prefix": "10.1.", "offset": 1, "limit": 9}),
    ("list by ids", "list-sessions", {"ids": ["101", 104]}),
    ("describe", "describe-session", {"id": "101"}),
    ("describe integer id", "DESCRIBE_SESSION", {"id": 103}),
    ("connections", "list-session-connections", {"id": "101"}),
    ("connections none", "list-session-connections", {"ids": ["102"]}),
    ("ping", "ping", None),
    ("verify", "Verify-Credentials", None),
    ("describe missing", "describe-session", {"id": "999"}),
    ("kill missing", "kill-session", {"ids": ["998", "999"]}),
    ("unknown code", "list-ds", None),
    ("unknown p key", "kill-all-sessions", {"usr": "jdoe"}),
    ("wrong id type", "describe-session", {"id": True}),
    ("wrong limit type", "list-sessions", {"limit": "10"}),
    ("negative offset", "list-sessions", {"offset": -1}),
    ("two ids for describe", "describe-session", {"ids": ["101", "102"]}),
    ("kill without id", "kill-session", None),
    ("wrong user type", "list-sessions", {"user": 7}),
    ("ping with payload", "ping", {"id": "1"}),
]


@pytest.mark.parametrize(
    ("code", "p"), [c[1:] for c in SAME_ANSWER_CASES], ids=[c[0] for c in SAME_ANSWER_CASES]
)
def test_every_request_form_gives_the_same_envelope(
    server: ServerProcess, code: str, p: Any
) -> None:
    answers = all_forms(server.url, "admin", ADMIN_PASSWORD, code, p)
    assert answers[0]["ack"] in ("0", "1")
    assert answers[1] == answers[0]
    assert answers[2] == answers[0]


def test_list_sessions_payload_and_rows(server: ServerProcess) -> None:
    body = post_json(server.url, "admin", ADMIN_PASSWORD, "list-sessions", {"user": "jdoe"})
    assert body["ack"] == "1"
    assert list(body) == ["ack", "time", "rows", "p"]
    assert body["rows"] == 2 and body["p"]["total"] == 2
    first = body["p"]["sessions"][0]
    assert first == {
        "id": "101",
        "user": "jdoe",
        "client-address": "192.168.0.200:50412",
        "service": "my-service",
        "ds": "0",
        "connected-at": "2016-08-31T03:03:12Z",
        "idle-seconds": 260,
        "state": "Session ready for routing",
        "last-command": "get",
        "node": "node-a",
        "description": "reporting job",
        "connections": [
            {
                "server": "db-serv-01",
                "state": "DCB in the polling loop",
                "role": "Backend Request Handler",
                "reads": 2197,
                "writes": 1562,
            },
            {
                "server": "db-serv-02",
                "state": "DCB in the polling loop",
                "role": "Backend Request Handler",
                "reads": 0,
                "writes": 0,
            },
        ],
    }
    paged = post_json(
        server.url, "admin", ADMIN_PASSWORD, "list-sessions", {"offset": 1, "limit": 2}
    )
    assert paged["rows"] == 2 and paged["p"]["total"] >= 4
    assert [s["id"] for s in paged["p"]["sessions"]] == ["102", "103"]


def test_describe_and_connections_shapes(server: ServerProcess) -> None:
    one = post_json(server.url, "admin", ADMIN_PASSWORD, "describe-session", {"id": "103"})
    assert one["rows"] == 1 and one["p"]["id"] == "103" and one["p"]["ds"] == "2"
    conns = post_json(server.url, "admin", ADMIN_PASSWORD, "list-session-connections", {"id": 101})
    assert conns["rows"] == 2 and isinstance(conns["p"], list)
    assert conns["p"][0]["reads"] == 2197


def test_ping_and_verify_credentials(server: ServerProcess) -> None:
    assert normalised(post_json(server.url, None, None, "ping")) == {
        "ack": "1",
        "time": 0,
        "rows": 0,
        "p": {},
    }
    verified = post_json(server.url, "alice", USER_PASSWORD, "verify-credentials")
    assert normalised(verified) == {"ack": "1", "time": 0, "rows": 0, "p": {"user": "alice"}}
    for user, password in (("alice", "wrong"), ("nobody", "x"), (None, None)):
        failed = post_json(server.url, user, password, "verify-credentials")
        assert failed["ack"] == "0" and failed["code"] == "APP003", failed
        assert failed["cause"] == "Invalid credentials"
    assert post_json(server.url, "alice", "wrong", "ping")["code"] == "APP003"


def test_credentials_are_checked_on_every_request(server: ServerProcess) -> None:
    for code, p in (
        ("list-sessions", None),
        ("describe-session", {"id": "101"}),
        ("list-session-connections", {"id": "101"}),
        ("kill-session", {"id": "101"}),
        ("kill-all-sessions", None),
    ):
        for post in (post_json, post_form, post_urlencoded):
            wrong = post(server.url, "admin", "not-the-password", code, p)
            assert wrong["code"] == "APP003", (code, post.__name__, wrong)
            missing = post(server.url, None, None, code, p)
            assert missing["code"] == "APP003", (code, post.__name__, missing)
    still = post_json(server.url, "admin", ADMIN_PASSWORD, "describe-session", {"id": "101"})
    assert still["ack"] == "1"


def test_unprivileged_user_sees_only_own_sessions(server: ServerProcess) -> None:
    listed = post_form(server.url, "alice", USER_PASSWORD, "list-sessions")
    assert all(s["user"] == "alice" for s in listed["p"]["sessions"])
    hidden = post_form(server.url, "alice", USER_PASSWORD, "describe-session", {"id": "101"})
    assert hidden["code"] == "SESSION_INVALID"
    refused = post_form(server.url, "alice", USER_PASSWORD, "kill-session", {"id": "101"})
    assert refused["code"] == "SESSION_INVALID"


def test_unencoded_java_form_with_tricky_password(server: ServerProcess) -> None:
    """&, +, %, space and = inside an unencoded password and inside the raw q JSON."""
    body = java_form_body(TRICKY_USER, TRICKY_PASSWORD, "verify-credentials")
    assert TRICKY_PASSWORD.encode() in body
    reply = post_raw(server.url, body).json()
    assert normalised(reply) == {"ack": "1", "time": 0, "rows": 0, "p": {"user": TRICKY_USER}}
    assert post_json(server.url, TRICKY_USER, TRICKY_PASSWORD, "verify-credentials")["ack"] == "1"
    encoded = post_urlencoded(server.url, TRICKY_USER, TRICKY_PASSWORD, "verify-credentials")
    assert encoded["ack"] == "1"


def test_form_fields_alone_carry_credentials(server: ServerProcess) -> None:
    """URL-encoded plain fields and a q without credentials (p null)."""
    from urllib.parse import urlencode

    fields = {
        "username": TRICKY_USER,
        "password": TRICKY_PASSWORD,
        "q": '{"q":"verify-credentials","p":null}',
    }
    reply = post_raw(server.url, urlencode(fields).encode()).json()
    assert reply["ack"] == "1" and reply["p"] == {"user": TRICKY_USER}


def test_disagreeing_credentials_are_refused(server: ServerProcess) -> None:
    query = orjson.dumps(
        {"q": "list-sessions", "username": "admin", "password": ADMIN_PASSWORD, "p": None}
    ).decode()
    for outer in (f"username=alice&password={USER_PASSWORD}", "username=admin&password=other"):
        reply = post_raw(server.url, f"{outer}&q={query}".encode()).json()
        assert reply["ack"] == "0" and reply["code"] == "APP003", reply
        assert "disagree" in reply["message"]
    nested = {
        "username": "alice",
        "password": USER_PASSWORD,
        "q": {"q": "list-sessions", "username": "admin", "password": ADMIN_PASSWORD},
    }
    reply = post_raw(server.url, orjson.dumps(nested), "application/json").json()
    assert reply["code"] == "APP003"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", "application/json", "Invalid query format"),
        (b"q=", "application/x-www-form-urlencoded", "Invalid query format"),
        (b"username=admin&password=x", "application/x-www-form-urlencoded", None),
        (b"q=not-json", "application/x-www-form-urlencoded", None),
        (b"q={not json", "application/x-www-form-urlencoded", None),
        (b'q=["list-sessions"]', "application/x-www-form-urlencoded", None),
        (b'q={"q":""}', "application/x-www-form-urlencoded", "Invalid query format"),
        (b'q={"q":7}', "application/x-www-form-urlencoded", None),
        (b'{"username":"admin","password":"x"}', "application/json", "Invalid query format"),
        (b'{"q":"list-sessions"', "application/json", None),
        (b"[1,2]", "application/json", None),
        (b'{"q":["ping"]}', "application/json", None),
        (b'{"q":"ping","p":[1]}', "application/json", None),
        (b'{"q":"ping","p":"x"}', "application/json", None),
        (b'{"q":"ping","username":7}', "application/json", None),
        (b"\xff\xfe=\x00", "application/x-www-form-urlencoded", None),
        (b"%%%&&&===", "application/x-www-form-urlencoded", None),
        (b"q=a&q=b", "application/x-www-form-urlencoded", None),
    ],
)
def test_malformed_requests_get_dbqex_with_http_200(
    server: ServerProcess, body: bytes, content_type: str, message: str | None
) -> None:
    reply = post_raw(server.url, body, content_type)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert list(data) == ["ack", "code", "cause", "message"]
    assert data["ack"] == "0" and data["code"] == "DBQEX", data
    if message is not None:
        assert data["cause"] == data["message"] == message


def test_wrong_method_is_an_envelope_too(server: ServerProcess) -> None:
    reply = httpx.get(server.url + "/rest/bquery", timeout=30)
    assert reply.status_code == 405
    assert reply.json()["ack"] == "0" and reply.json()["code"] == "DBQEX"


def test_oversized_body_is_an_envelope(server: ServerProcess) -> None:
    reply = post_raw(server.url, b"q=" + b"x" * (1024 * 1024 + 10))
    assert reply.status_code == 200
    assert reply.json()["code"] == "REQUEST_TOO_LARGE"


def test_query_string_form_on_post(server: ServerProcess) -> None:
    from urllib.parse import urlencode

    query = orjson.dumps(
        {"q": "describe-session", "username": "admin", "password": ADMIN_PASSWORD, "p": {"id": 1}}
    ).decode()
    reply = httpx.post(
        server.url + "/rest/bquery?" + urlencode({"q": query}), content=b"", timeout=30
    ).json()
    assert reply["ack"] == "0" and reply["code"] == "SESSION_INVALID"
    query = query.replace('"id":1', '"id":102')
    reply = httpx.post(
        server.url + "/rest/bquery?" + urlencode({"q": query}), content=b"", timeout=30
    ).json()
    assert reply["ack"] == "1" and reply["p"]["id"] == "102"


def test_passwords_never_echoed(server: ServerProcess) -> None:
    body = java_form_body("admin", "secret-guess-123", "list-sessions")
    reply = post_raw(server.url, body)
    assert b"secret-guess-123" not in reply.content
    assert "secret-guess-123" not in server.logs()
