"""The GeminiDB dialect over real HTTP against real servers on the local backend: the seed's
example as a golden file, paging and filters, statistics, validation and auth failures in
GeminiDB's error envelope, project/instance pinning, and sessions shared with other dialects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import (
    ACCESS_KEY,
    ADMIN_PASSWORD,
    SECRET_KEY,
    STATIC_TOKEN,
    USER_PASSWORD,
    base_config,
)
from tests.geminidb.conftest import (
    INSTANCE,
    PROJECT,
    SEED_NODE_A,
    SEED_NODE_B,
    canonical_bytes,
    golden,
    seed_sessions,
)
from tests.support.servers import ServerProcess, emulate, serve
from translators.geminidb import GeminiDbTranslator, signing

TOKEN = {"X-Auth-Token": STATIC_TOKEN}
INSTANCE_URL = f"/v3/{PROJECT}/instances/{INSTANCE}/sessions"


def node_url(node: str, tail: str = "sessions") -> str:
    return f"/v3/{PROJECT}/redis/nodes/{node}/{tail}"


def get(server: ServerProcess, path: str, **kw: Any) -> httpx.Response:
    kw.setdefault("headers", TOKEN)
    return httpx.get(server.url + path, timeout=10, **kw)


def delete(server: ServerProcess, path: str, **kw: Any) -> httpx.Response:
    kw.setdefault("headers", TOKEN)
    return httpx.request("DELETE", server.url + path, timeout=10, **kw)


def rosetta_login(
    server: ServerProcess, user: str = "admin", password: str = ADMIN_PASSWORD
) -> str:
    reply = httpx.post(
        f"{server.url}/rosetta/v1/session.login",
        json={"credentials": {"user": user, "password": password}},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["token"]
    return token


def rosetta_ping(server: ServerProcess, token: str) -> int:
    reply = httpx.post(
        f"{server.url}/rosetta/v1/session.ping", json={"credentials": {"token": token}}, timeout=10
    )
    return reply.status_code


def assert_error(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert body["error_code"] == code
    assert isinstance(body["error_msg"], str) and body["error_msg"]
    assert reply.headers["x-request-id"]
    if code.startswith("APIGW."):
        assert body["request_id"] == reply.headers["x-request-id"]
    else:
        assert set(body) == {"error_code", "error_msg"}
    return body


@pytest.fixture(scope="module")
def seed_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = emulate(
        tmp_path_factory.mktemp("seed"),
        "geminidb",
        sessions=seed_sessions(),
        users=["admin:pw"],
        tokens=[STATIC_TOKEN],
    )
    yield server
    server.stop()


# the seed -------------------------------------------------------------------------------------
def test_seed_example_response_is_reproduced_exactly(seed_emulator: ServerProcess) -> None:
    reply = get(seed_emulator, INSTANCE_URL)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert canonical_bytes(reply.json()) == canonical_bytes(
        golden("seed_list_instance_sessions.json")
    )


def test_seed_node_filter_keeps_one_group(seed_emulator: ServerProcess) -> None:
    reply = get(seed_emulator, INSTANCE_URL, params={"node_id": SEED_NODE_B})
    expected = golden("seed_list_instance_sessions.json")["node_sessions"][1]
    assert canonical_bytes(reply.json()) == canonical_bytes({"node_sessions": [expected]})


# listing, paging, statistics ------------------------------------------------------------------
def test_node_sessions_page_newest_first_with_prefix(gemini_server: ServerProcess) -> None:
    reply = get(
        gemini_server,
        node_url("node-s"),
        params={"offset": "1", "limit": "1", "addr_prefix": "10.0.0.1:"},
    )
    assert reply.status_code == 200, reply.text
    assert canonical_bytes(reply.json()) == canonical_bytes(golden("node_s_sessions_page.json"))


def test_node_sessions_default_paging(gemini_server: ServerProcess) -> None:
    body = get(gemini_server, node_url("node-s")).json()
    assert body["total_count"] == 3
    assert [s["id"] for s in body["sessions"]] == ["902", "903", "901"]  # youngest first
    assert all(
        set(s) == {"addr", "id", "name", "cmd", "age", "idle", "db", "fd", "sub", "psub", "multi"}
        for s in body["sessions"]
    )


def test_node_statistics_are_composed_from_the_list(gemini_server: ServerProcess) -> None:
    reply = get(gemini_server, node_url("node-s", "session-statistics"))
    assert reply.status_code == 200, reply.text
    assert canonical_bytes(reply.json()) == canonical_bytes(golden("node_s_statistics.json"))


def test_instance_listing_groups_every_node(gemini_server: ServerProcess) -> None:
    groups = get(gemini_server, INSTANCE_URL).json()["node_sessions"]
    by_node = {g["node_id"]: g for g in groups}
    assert {SEED_NODE_A, SEED_NODE_B, "node-s"} <= set(by_node)
    assert by_node["node-s"]["total_count"] == 3
    for group in groups:
        assert group["total_count"] == len(group["sessions"])


# validation -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"offset": "-1"},
        {"offset": "x"},
        {"limit": ""},
    ],
)
def test_bad_paging_is_a_parameter_error(
    gemini_server: ServerProcess, params: dict[str, str]
) -> None:
    assert_error(get(gemini_server, node_url("node-s"), params=params), 400, "DBS.200001")


def test_limit_bounds_are_inclusive(gemini_server: ServerProcess) -> None:
    for limit in ("1", "100"):
        assert get(gemini_server, node_url("node-s"), params={"limit": limit}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"is_all": false}',
        b'{"is_all": false, "session_ids": []}',
        b'{"session_ids": ["1"]}',
        b'{"is_all": "yes"}',
        b'{"is_all": false, "session_ids": "1"}',
        b"[1]",
        b"not json",
        b"",
    ],
)
def test_bad_close_bodies_are_parameter_errors(gemini_server: ServerProcess, body: bytes) -> None:
    reply = delete(
        gemini_server,
        node_url("node-s"),
        content=body,
        headers={**TOKEN, "Content-Type": "application/json"},
    )
    assert_error(reply, 400, "DBS.200001")


def test_unknown_node_is_404(gemini_server: ServerProcess) -> None:
    assert_error(get(gemini_server, node_url("no-such-node")), 404, "DBS.200013")
    assert_error(
        get(gemini_server, node_url("no-such-node", "session-statistics")), 404, "DBS.200013"
    )
    assert_error(get(gemini_server, INSTANCE_URL, params={"node_id": "nope"}), 404, "DBS.200013")
    closing = delete(gemini_server, node_url("no-such-node"), json={"is_all": True})
    assert_error(closing, 404, "DBS.200013")


def test_closing_an_unknown_session_is_404(gemini_server: ServerProcess) -> None:
    reply = delete(
        gemini_server, node_url("node-s"), json={"is_all": False, "session_ids": ["777777"]}
    )
    assert_error(reply, 404, "DBS.200013")


def test_unknown_paths_and_methods(gemini_server: ServerProcess) -> None:
    assert_error(get(gemini_server, f"/v3/{PROJECT}/instances"), 404, "APIGW.0101")
    reply = httpx.post(gemini_server.url + INSTANCE_URL, headers=TOKEN, timeout=10)
    assert_error(reply, 405, "APIGW.0101")
    reply = delete(gemini_server, node_url("node-s", "session-statistics"))
    assert_error(reply, 405, "APIGW.0101")


# authentication -------------------------------------------------------------------------------
def test_missing_or_wrong_credentials_are_401(gemini_server: ServerProcess) -> None:
    assert_error(get(gemini_server, INSTANCE_URL, headers={}), 401, "APIGW.0301")
    assert_error(
        get(gemini_server, INSTANCE_URL, headers={"X-Auth-Token": "nope"}), 401, "APIGW.0301"
    )
    bad_sig = {
        "Authorization": "SDK-HMAC-SHA256 Access=TESTAK0000000001, "
        "SignedHeaders=host;x-sdk-date, Signature=" + "0" * 64,
        "X-Sdk-Date": "20261123T090452Z",
    }
    body = assert_error(get(gemini_server, INSTANCE_URL, headers=bad_sig), 401, "APIGW.0301")
    assert body["error_msg"].startswith("Incorrect IAM authentication information")


def signed_headers(server: ServerProcess, path: str, when: datetime, secret: str) -> dict[str, str]:
    return signing.sign(
        method="GET",
        path=path,
        pairs=[],
        headers={"content-type": "application/json", "host": urlsplit(server.url).netloc},
        body=b"",
        access_key=ACCESS_KEY,
        secret_key=secret,
        now=when,
    )


def test_signatures_verify_within_the_clock_window_only(gemini_server: ServerProcess) -> None:
    now = datetime.now(UTC)
    fresh = signed_headers(gemini_server, INSTANCE_URL, now, SECRET_KEY)
    assert get(gemini_server, INSTANCE_URL, headers=fresh).status_code == 200
    for skew in (timedelta(hours=-1), timedelta(hours=1)):
        stale = signed_headers(gemini_server, INSTANCE_URL, now + skew, SECRET_KEY)
        body = assert_error(get(gemini_server, INSTANCE_URL, headers=stale), 401, "APIGW.0301")
        assert "window" in body["error_msg"]
    wrong = signed_headers(gemini_server, INSTANCE_URL, now, "not-the-secret")
    assert_error(get(gemini_server, INSTANCE_URL, headers=wrong), 401, "APIGW.0301")
    # a signature for one path does not open another
    assert_error(get(gemini_server, node_url("node-s"), headers=fresh), 401, "APIGW.0301")


@pytest.mark.parametrize(
    "options",
    [
        {"number_format": "float"},
        {"default_node_id": ""},
        {"nodes": "a"},
        {"project_id": "a/b"},
        {"colour": "blue"},
    ],
)
def test_bad_options_are_rejected_at_start_up(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GeminiDbTranslator(options)


def test_caller_request_id_is_echoed(gemini_server: ServerProcess) -> None:
    reply = get(gemini_server, INSTANCE_URL, headers={"X-Request-Id": "abc-123"})
    body = assert_error(reply, 401, "APIGW.0301")
    assert body["request_id"] == "abc-123" == reply.headers["x-request-id"]


def test_a_rosetta_session_token_works_and_non_admins_see_their_own(
    gemini_server: ServerProcess,
) -> None:
    token = rosetta_login(gemini_server, "alice", USER_PASSWORD)
    groups = get(gemini_server, INSTANCE_URL, headers={"X-Auth-Token": token}).json()
    sessions = [s for g in groups["node_sessions"] for s in g["sessions"]]
    assert sessions and {s["name"] for s in sessions} == {"alice"}
    assert {g["node_id"] for g in groups["node_sessions"]} == {"rosetta-node-1"}


# shared sessions --------------------------------------------------------------------------------
def test_logins_elsewhere_appear_and_closing_them_here_ends_them(
    gemini_server: ServerProcess,
) -> None:
    first, second = rosetta_login(gemini_server), rosetta_login(gemini_server)
    node = get(gemini_server, node_url("rosetta-node-1")).json()
    mine = [s for s in node["sessions"] if s["name"] == "admin"]
    assert len(mine) >= 2
    ids = {s["id"] for s in mine}
    assert all(isinstance(i, int) for i in ids)
    assert all(s["addr"].startswith("127.0.0.1:") for s in mine)
    assert {s["cmd"] for s in mine} <= {"session.login", "session.ping", "session.list"}

    # close one by id: its token is dead everywhere, the other still works
    listed = httpx.post(
        f"{gemini_server.url}/rosetta/v1/session.list",
        json={"credentials": {"token": first}},
        timeout=10,
    ).json()
    first_id = listed["caller"]["session_id"]
    reply = delete(
        gemini_server, node_url("rosetta-node-1"), json={"is_all": False, "session_ids": [first_id]}
    )
    assert reply.status_code == 200 and reply.json() == {}
    assert rosetta_ping(gemini_server, first) == 401
    assert rosetta_ping(gemini_server, second) == 200

    # close the whole node
    reply = delete(gemini_server, node_url("rosetta-node-1"), json={"is_all": True})
    assert reply.status_code == 200 and reply.json() == {}
    assert rosetta_ping(gemini_server, second) == 401
    assert get(gemini_server, node_url("rosetta-node-1")).json() == {
        "total_count": 0,
        "sessions": [],
    }


# pinned project and instance ------------------------------------------------------------------
@pytest.fixture(scope="module")
def pinned_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = base_config()
    config["backends"]["local"].update(project_id=PROJECT, instance_id=INSTANCE)
    server = serve(tmp_path_factory.mktemp("pinned"), config)
    yield server
    server.stop()


def test_pinned_ids_accept_only_themselves(pinned_server: ServerProcess) -> None:
    assert get(pinned_server, INSTANCE_URL).status_code == 200
    assert get(pinned_server, node_url("rosetta-node-1")).status_code == 200
    other_instance = f"/v3/{PROJECT}/instances/other-instance/sessions"
    assert_error(get(pinned_server, other_instance), 404, "DBS.200002")
    assert_error(delete(pinned_server, other_instance), 404, "DBS.200002")
    other_project = "/v3/other-project/redis/nodes/rosetta-node-1/sessions"
    assert_error(get(pinned_server, other_project), 404, "DBS.200002")
    # authentication comes first
    assert_error(get(pinned_server, other_instance, headers={}), 401, "APIGW.0301")


def test_any_ids_are_accepted_when_not_pinned(gemini_server: ServerProcess) -> None:
    reply = get(gemini_server, "/v3/any-project/instances/any-instance/sessions")
    assert reply.status_code == 200
