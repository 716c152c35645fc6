"""``/metrics`` speaks Prometheus and its numbers move as requests flow."""

from __future__ import annotations

import re

import httpx

from tests.conftest import ADMIN_PASSWORD
from tests.support.servers import ServerProcess


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_move_as_requests_flow(local_server: ServerProcess) -> None:
    before = httpx.get(f"{local_server.url}/metrics")
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain")
    ok_before = sample(before.text, "rosetta_requests_total", inbound="rosetta", outcome="ok")
    denied_before = sample(
        before.text, "rosetta_requests_total", inbound="rosetta", outcome="unauthenticated"
    )
    login = httpx.post(
        f"{local_server.url}/rosetta/v1/session.login",
        json={"credentials": {"user": "admin", "password": ADMIN_PASSWORD}},
    )
    assert login.status_code == 200
    for _ in range(3):
        httpx.post(
            f"{local_server.url}/rosetta/v1/session.list", json={}, auth=("admin", ADMIN_PASSWORD)
        )
    httpx.post(f"{local_server.url}/rosetta/v1/session.list", json={}, auth=("admin", "bad"))
    after = httpx.get(f"{local_server.url}/metrics").text
    assert sample(after, "rosetta_requests_total", inbound="rosetta", outcome="ok") == ok_before + 4
    assert (
        sample(after, "rosetta_requests_total", inbound="rosetta", outcome="unauthenticated")
        == denied_before + 1
    )
    assert (
        sample(after, "rosetta_requests_total", route="rosetta:operation", operation="session.list")
        >= 4
    )
    assert sample(after, "rosetta_live_sessions") >= 1
    assert re.search(r'rosetta_request_duration_seconds_count\{inbound="rosetta"', after)


def test_a_path_no_dialect_serves_is_counted_as_not_found(local_server: ServerProcess) -> None:
    def unmatched(text: str) -> float:
        return sample(text, "rosetta_requests_total", route="unmatched", outcome="not_found")

    before = unmatched(httpx.get(f"{local_server.url}/metrics").text)
    reply = httpx.get(f"{local_server.url}/no/such/dialect")
    assert reply.status_code == 404
    assert reply.json()["error"]["kind"] == "not_found"
    assert unmatched(httpx.get(f"{local_server.url}/metrics").text) == before + 1
