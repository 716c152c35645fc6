"""Rosetta in front of a GeminiDB upstream (``rosetta emulate geminidb``), over real HTTP:
AK/SK-signed and token-authenticated upstream calls, the seed surviving a GeminiDB-to-GeminiDB
round trip with its types, canonical operations composed from the listing, and upstream
errors mapped to canonical kinds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, STATIC_TOKEN, base_config
from tests.geminidb.conftest import (
    SEED_NODE_A,
    SEED_NODE_B,
    canonical_bytes,
    golden,
    seed_sessions,
    string_typed_sessions,
)
from tests.support.servers import ServerProcess, emulate, serve

UP_AK, UP_SK, UP_TOKEN = "UPSTREAMAK000001", "upstream-secret-9f1e", "upstream-token-77c1"
UP_OPTIONS = {"project_id": "up-project", "instance_id": "up-instance"}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = emulate(
        tmp_path_factory.mktemp("upstream"),
        "geminidb",
        sessions=seed_sessions() + string_typed_sessions(),
        users=["admin:pw"],
        tokens=[UP_TOKEN],
        access_keys=[f"{UP_AK}:{UP_SK}"],
    )
    yield server
    server.stop()


def backend(url: str, **auth: str) -> dict[str, Any]:
    return {
        "type": "upstream",
        "dialect": "geminidb",
        "url": url,
        "auth": {"mode": "static", **auth},
        "options": UP_OPTIONS,
    }


@pytest.fixture(scope="module")
def proxy(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """GeminiDB and rosetta callers, answered by the upstream with AK/SK-signed requests."""
    config = base_config()
    config["backends"].update(signed=backend(upstream.url, access_key=UP_AK, secret_key=UP_SK))
    config["default_backend"] = "signed"
    config["inbound"] = {"geminidb": {}, "rosetta": {}}
    server = serve(tmp_path_factory.mktemp("proxy"), config)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def other_proxy(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    config = base_config()
    config["backends"].update(
        tokened=backend(upstream.url, token=UP_TOKEN),
        wrong=backend(upstream.url, access_key=UP_AK, secret_key="wrong-secret"),
    )
    config["inbound"] = {
        "rosetta": {"backend": "tokened"},
        "geminidb": {"backend": "wrong"},
    }
    server = serve(tmp_path_factory.mktemp("other"), config)
    yield server
    server.stop()


def rosetta(server: ServerProcess, operation: str, **body: Any) -> httpx.Response:
    body.setdefault("credentials", {"user": "admin", "password": ADMIN_PASSWORD})
    return httpx.post(f"{server.url}/rosetta/v1/{operation}", json=body, timeout=15)


def test_same_dialect_round_trip_keeps_the_seed_exactly(proxy: ServerProcess) -> None:
    reply = httpx.get(
        f"{proxy.url}/v3/my-project/instances/my-instance/sessions",
        params={"node_id": SEED_NODE_A},
        headers={"X-Auth-Token": STATIC_TOKEN},
        timeout=15,
    )
    assert reply.status_code == 200, reply.text
    expected = golden("seed_list_instance_sessions.json")["node_sessions"][0]
    assert canonical_bytes(reply.json()) == canonical_bytes({"node_sessions": [expected]})
    strings = httpx.get(
        f"{proxy.url}/v3/my-project/redis/nodes/node-s/sessions",
        params={"offset": "1", "limit": "1", "addr_prefix": "10.0.0.1:"},
        headers={"X-Auth-Token": STATIC_TOKEN},
        timeout=15,
    )
    assert canonical_bytes(strings.json()) == canonical_bytes(golden("node_s_sessions_page.json"))


def test_signed_listing_decodes_into_canonical_records(proxy: ServerProcess) -> None:
    reply = rosetta(proxy, "session.list", filters={"node_id": SEED_NODE_B})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["total"] == 1
    record = body["sessions"][0]
    assert record["id"] == "54488" and record["node_id"] == SEED_NODE_B
    assert record["description"] == "cli" and record["last_command"] == "get"
    assert record["idle_seconds"] == 4414141 and record["database"] == "0"
    assert record["client_address"] == "127.0.0.1:8080"
    assert record["extras"]["geminidb"]["fd"] == 1312
    assert record["connected_at"] is not None


def test_get_and_connections_are_composed_from_the_list(proxy: ServerProcess) -> None:
    got = rosetta(proxy, "session.get", filters={"ids": ["902"]}).json()
    assert got["session"]["description"] == "app-2"
    assert got["session"]["extras"]["geminidb"]["age"] == "100"  # a string stays a string
    conns = rosetta(proxy, "session.connections", filters={"ids": ["902"]}).json()
    assert conns["connections"][0]["server"] == "node-s"
    missing = rosetta(proxy, "session.get", filters={"ids": ["nope"]})
    assert missing.status_code == 404


def test_paging_and_filters_are_applied_by_rosetta(proxy: ServerProcess) -> None:
    body = rosetta(
        proxy, "session.list", filters={"address_prefix": "10.0.0.1:"}, offset=1, limit=1
    ).json()
    assert body["total"] == 2 and len(body["sessions"]) == 1


def test_login_is_answered_by_rosetta_not_the_service_account(proxy: ServerProcess) -> None:
    # GeminiDB has no login; with static upstream credentials Rosetta issues its own session
    reply = rosetta(proxy, "session.login")
    assert reply.status_code == 200, reply.text
    token = reply.json()["token"]
    listed = rosetta(proxy, "session.list", credentials={"token": token})
    assert listed.status_code == 200 and listed.json()["total"] >= 1
    assert (
        rosetta(proxy, "session.login", credentials={"user": "admin", "password": "x"}).status_code
        == 401
    )


def test_wrong_upstream_secret_maps_to_unauthenticated(other_proxy: ServerProcess) -> None:
    reply = httpx.get(
        f"{other_proxy.url}/v3/p/instances/i/sessions",
        headers={"X-Auth-Token": STATIC_TOKEN},
        timeout=15,
    )
    assert reply.status_code == 401
    body = reply.json()
    assert body["error_code"] == "APIGW.0301"
    assert "signature does not match" in body["error_msg"]


def test_unknown_upstream_node_maps_to_not_found(other_proxy: ServerProcess) -> None:
    reply = rosetta(other_proxy, "session.kill", filters={"ids": ["1"], "node_id": "nowhere"})
    assert reply.status_code == 404
    assert reply.json()["error"]["kind"] == "not_found"


def test_kill_and_kill_all_reach_the_upstream(
    proxy: ServerProcess, other_proxy: ServerProcess, upstream: ServerProcess
) -> None:
    # token-authenticated upstream: kill one session by id (its node is looked up)
    killed = rosetta(other_proxy, "session.kill", filters={"ids": ["903"]})
    assert killed.status_code == 200 and killed.json()["affected"] == 1
    direct = httpx.get(
        f"{upstream.url}/v3/x/redis/nodes/node-s/sessions",
        headers={"X-Auth-Token": UP_TOKEN},
        timeout=15,
    ).json()
    assert [s["id"] for s in direct["sessions"]] == ["902", "901"]

    # kill_all narrowed by address: per-node closes by id
    narrowed = rosetta(proxy, "session.kill_all", filters={"address_prefix": "10.0.0.1:5002"})
    assert narrowed.json()["affected"] == 1
    # kill_all of a node: the instance-wide close with node_id
    node_wide = rosetta(proxy, "session.kill_all", filters={"node_id": SEED_NODE_B})
    assert node_wide.json()["affected"] == 1
    left = rosetta(proxy, "session.list").json()
    assert sorted(s["id"] for s in left["sessions"]) == ["54487", "901"]
    # everything, through the GeminiDB dialect on both sides
    reply = httpx.request(
        "DELETE",
        f"{proxy.url}/v3/p/instances/i/sessions",
        headers={"X-Auth-Token": STATIC_TOKEN},
        timeout=15,
    )
    assert reply.status_code == 200 and reply.json() == {}
    assert rosetta(proxy, "session.list").json()["sessions"] == []
