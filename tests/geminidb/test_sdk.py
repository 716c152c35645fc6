"""The official Huawei Cloud Python SDK (huaweicloudsdkgaussdbfornosql + huaweicloudsdkcore),
unmodified, against a real Rosetta on loopback: AK/SK-signed calls, an X-Auth-Token added
through the SDK's invoker, and the SDK's own error handling for a wrong secret key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkgaussdbfornosql.v3 import (
    ClearInstanceSessionsRequest,
    DeleteInstancesSessionRequest,
    DeleteInstancesSessionRequestBody,
    ListInstanceSessionsRequest,
    ListInstancesSessionRequest,
    ListInstancesSessionStatisticsRequest,
)
from huaweicloudsdkgaussdbfornosql.v3.gaussdbfornosql_client import GaussDBforNoSQLClient

from tests.conftest import ACCESS_KEY, ADMIN_PASSWORD, SECRET_KEY, STATIC_TOKEN, base_config
from tests.geminidb.conftest import INSTANCE, PROJECT, SEED_NODE_A, SEED_NODE_B, seed_sessions
from tests.support.servers import ServerProcess, serve


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    import orjson

    directory = tmp_path_factory.mktemp("sdk")
    sessions = seed_sessions()
    for index in range(5):  # five more on node A, from two client hosts
        sessions.append(
            {
                "id": str(60001 + index),
                "client_address": f"10.8.{index % 2}.7:{40000 + index}",
                "database": "0",
                "idle_seconds": index,
                "last_command": "set",
                "node_id": SEED_NODE_A,
                "description": "worker",
                "connected_at": f"2026-01-01T00:00:0{index}Z",
            }
        )
    path = directory / "sessions.json"
    path.write_bytes(orjson.dumps(sessions))
    config = base_config()
    config["backends"]["local"]["sessions_file"] = str(path)
    process = serve(directory, config)
    yield process
    process.stop()


def client(server: ServerProcess, secret_key: str = SECRET_KEY) -> Any:
    return (
        GaussDBforNoSQLClient.new_builder()
        .with_credentials(BasicCredentials(ACCESS_KEY, secret_key, PROJECT))
        .with_endpoints([server.url])
        .build()
    )


def node_ids(response: Any) -> dict[str, list[str]]:
    return {g.node_id: [s.id for s in g.sessions] for g in response.node_sessions}


def test_sdk_lists_instance_sessions(server: ServerProcess) -> None:
    response = client(server).list_instance_sessions(
        ListInstanceSessionsRequest(instance_id=INSTANCE)
    )
    groups = node_ids(response)
    assert groups[SEED_NODE_B] == ["54488"]
    assert "54487" in groups[SEED_NODE_A] and len(groups[SEED_NODE_A]) == 6
    first = response.node_sessions[0].sessions[0]
    assert (first.addr, first.name, first.cmd, first.age, first.fd, first.multi) == (
        "127.0.0.1:8080",
        "cli",
        "get",
        "8888581",
        "1311",
        "-1",
    )
    only_b = client(server).list_instance_sessions(
        ListInstanceSessionsRequest(instance_id=INSTANCE, node_id=SEED_NODE_B)
    )
    assert list(node_ids(only_b)) == [SEED_NODE_B]


def test_sdk_pages_node_sessions_with_prefix(server: ServerProcess) -> None:
    sdk = client(server)
    page = sdk.list_instances_session(
        ListInstancesSessionRequest(node_id=SEED_NODE_A, offset=1, limit=2, addr_prefix="10.8.0.")
    )
    # 10.8.0.x holds workers 60001, 60003, 60005; youngest first -> 60005, 60003, 60001
    assert page.total_count == 3
    assert [s.id for s in page.sessions] == ["60003", "60001"]
    everything = sdk.list_instances_session(
        ListInstancesSessionRequest(node_id=SEED_NODE_A, offset=0, limit=100)
    )
    assert everything.total_count == 6 and len(everything.sessions) == 6
    stats = sdk.list_instances_session_statistics(
        ListInstancesSessionStatisticsRequest(node_id=SEED_NODE_A)
    )
    assert stats.total_connection_count == 6
    assert stats.active_connection_count == 1
    assert [(t.client_ip, t.connection_count) for t in stats.top_source_ips] == [
        ("10.8.0.7", 3),
        ("10.8.1.7", 2),
        ("127.0.0.1", 1),
    ]


def test_sdk_bad_limit_is_a_client_error(server: ServerProcess) -> None:
    with pytest.raises(ClientRequestException) as caught:
        client(server).list_instances_session(
            ListInstancesSessionRequest(node_id=SEED_NODE_A, limit=101)
        )
    assert caught.value.status_code == 400
    assert caught.value.error_code == "DBS.200001"


def test_sdk_wrong_secret_key_is_401(server: ServerProcess) -> None:
    with pytest.raises(ClientRequestException) as caught:
        client(server, "not-the-secret").list_instance_sessions(
            ListInstanceSessionsRequest(instance_id=INSTANCE)
        )
    error = caught.value
    assert error.status_code == 401
    assert error.error_code == "APIGW.0301"
    assert error.request_id  # from the X-Request-Id header


def test_sdk_with_x_auth_token_through_the_invoker(server: ServerProcess) -> None:
    # the secret key is wrong, so only the token can authenticate this call
    invoker = client(server, "not-the-secret").list_instance_sessions_invoker(
        ListInstanceSessionsRequest(instance_id=INSTANCE)
    )
    response = invoker.add_header("X-Auth-Token", STATIC_TOKEN).invoke()
    assert SEED_NODE_B in node_ids(response)
    with pytest.raises(ClientRequestException) as caught:
        client(server).list_instance_sessions_invoker(
            ListInstanceSessionsRequest(instance_id=INSTANCE)
        ).add_header("X-Auth-Token", "expired-token").invoke()
    assert caught.value.status_code == 401


def test_sdk_closes_sessions_by_id_by_node_and_instance(server: ServerProcess) -> None:
    sdk = client(server)
    login = httpx.post(
        f"{server.url}/rosetta/v1/session.login",
        json={"credentials": {"user": "admin", "password": ADMIN_PASSWORD}},
        timeout=10,
    ).json()
    token, login_id = login["token"], login["session"]["id"]
    listed = node_ids(sdk.list_instance_sessions(ListInstanceSessionsRequest(instance_id=INSTANCE)))
    assert login_id in listed["rosetta-node-1"]

    sdk.delete_instances_session(
        DeleteInstancesSessionRequest(
            node_id=SEED_NODE_A,
            body=DeleteInstancesSessionRequestBody(is_all=False, session_ids=["60001", "60002"]),
        )
    )
    page = sdk.list_instances_session(ListInstancesSessionRequest(node_id=SEED_NODE_A))
    assert page.total_count == 4 and {"60001", "60002"}.isdisjoint(s.id for s in page.sessions)

    sdk.delete_instances_session(
        DeleteInstancesSessionRequest(
            node_id=SEED_NODE_A, body=DeleteInstancesSessionRequestBody(is_all=True)
        )
    )
    assert SEED_NODE_A not in node_ids(
        sdk.list_instance_sessions(ListInstanceSessionsRequest(instance_id=INSTANCE))
    )

    sdk.clear_instance_sessions(
        ClearInstanceSessionsRequest(instance_id=INSTANCE, node_id="rosetta-node-1")
    )
    ping = httpx.post(
        f"{server.url}/rosetta/v1/session.ping", json={"credentials": {"token": token}}, timeout=10
    )
    assert ping.status_code == 401  # the login made elsewhere has ended
    remaining = node_ids(
        sdk.list_instance_sessions(ListInstanceSessionsRequest(instance_id=INSTANCE))
    )
    assert remaining == {SEED_NODE_B: ["54488"]}

    sdk.clear_instance_sessions(ClearInstanceSessionsRequest(instance_id=INSTANCE))
    empty = sdk.list_instance_sessions(ListInstanceSessionsRequest(instance_id=INSTANCE))
    assert empty.node_sessions == []
