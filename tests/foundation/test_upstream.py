"""Rosetta in front of an HTTP upstream: a real ``rosetta emulate`` process as the backend,
the same answers as asking it directly, and every upstream fault mapped to its own
canonical error within the configured time-out, with the server still serving."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, base_config, sample_sessions
from tests.support.faulty import FaultyUpstream
from tests.support.servers import ServerProcess, emulate, free_port, serve

CREDS = {"credentials": {"user": "admin", "password": ADMIN_PASSWORD}}


def call(url: str, operation: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/rosetta/v1/{operation}", json=body, timeout=30)


def upstream_config(url: str, **timeouts: float) -> dict[str, Any]:
    backend: dict[str, Any] = {"type": "upstream", "dialect": "rosetta", "url": url}
    if timeouts:
        backend["timeouts"] = timeouts
    return base_config(backends={"up": backend}, default_backend="up")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    directory = tmp_path_factory.mktemp("upstream")
    backend = emulate(
        directory, "rosetta", sessions=sample_sessions(), users=[f"admin:{ADMIN_PASSWORD}"]
    )
    proxy = serve(directory, upstream_config(backend.url))
    yield proxy, backend
    proxy.stop()
    backend.stop()


def test_emulator_serves_the_preloaded_sessions(pair: tuple[ServerProcess, ServerProcess]) -> None:
    _, backend = pair
    listed = call(backend.url, "session.list", CREDS).json()
    assert [s["id"] for s in listed["sessions"]][:4] == ["101", "102", "103", "104"]
    assert listed["sessions"][0] == sample_sessions()[0]


def test_proxy_answers_as_the_backend_does(pair: tuple[ServerProcess, ServerProcess]) -> None:
    proxy, backend = pair
    for operation, extra in [
        ("session.list", {}),
        ("session.list", {"filters": {"users": ["jdoe"]}, "offset": 1, "limit": 1}),
        ("session.get", {"filters": {"ids": ["103"]}}),
        ("session.connections", {"filters": {"ids": ["101"]}}),
        ("session.get", {"filters": {"ids": ["999"]}}),
    ]:
        direct = call(backend.url, operation, {**CREDS, **extra})
        proxied = call(proxy.url, operation, {**CREDS, **extra})
        assert proxied.status_code == direct.status_code
        strip = ("elapsed_ms", "caller")
        assert {k: v for k, v in proxied.json().items() if k not in strip} == {
            k: v for k, v in direct.json().items() if k not in strip
        }


def test_kill_through_the_proxy_ends_the_backend_session(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    proxy, backend = pair
    killed = call(proxy.url, "session.kill", {**CREDS, "filters": {"ids": ["104"]}})
    assert killed.status_code == 200 and killed.json()["affected"] == 1
    gone = call(backend.url, "session.get", {**CREDS, "filters": {"ids": ["104"]}})
    assert gone.status_code == 404


def test_bad_credentials_pass_through_as_unauthenticated(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    proxy, _ = pair
    reply = call(proxy.url, "session.list", {"credentials": {"user": "admin", "password": "x"}})
    assert reply.status_code == 401 and reply.json()["error"]["kind"] == "unauthenticated"


@pytest.mark.parametrize(
    ("behaviour", "status", "kind"),
    [
        ("hang", 504, "upstream_timeout"),
        ("html500", 502, "upstream_error"),
        ("garbage", 502, "upstream_error"),
        ("close_mid_body", 502, "upstream_error"),
        ("close", 502, "upstream_error"),
    ],
)
def test_upstream_faults_map_to_distinct_errors(
    tmp_path: Path, behaviour: str, status: int, kind: str
) -> None:
    with FaultyUpstream(behaviour) as faulty:
        proxy = serve(tmp_path, upstream_config(faulty.url, connect=1, read=1.5, total=2))
        try:
            started = time.monotonic()
            reply = call(proxy.url, "session.list", CREDS)
            assert time.monotonic() - started < 10
            assert reply.status_code == status, reply.text
            assert reply.json()["error"]["kind"] == kind
            assert "Traceback" not in reply.text and "<html" not in reply.text
            assert httpx.get(f"{proxy.url}/healthz").status_code == 200
        finally:
            proxy.stop()


def test_refused_upstream_is_unavailable_and_recovers(tmp_path: Path) -> None:
    port = free_port()
    proxy = serve(tmp_path, upstream_config(f"http://127.0.0.1:{port}", connect=1))
    try:
        refused = call(proxy.url, "session.list", CREDS)
        assert refused.status_code == 502
        assert refused.json()["error"]["kind"] == "upstream_unavailable"
        backend = emulate(
            tmp_path,
            "rosetta",
            sessions=sample_sessions(),
            users=[f"admin:{ADMIN_PASSWORD}"],
            port=port,
        )
        try:
            recovered = call(proxy.url, "session.list", CREDS)
            assert recovered.status_code == 200
            assert recovered.json()["total"] == len(sample_sessions())
        finally:
            backend.stop()
    finally:
        proxy.stop()


def test_circuit_breaker_opens_fails_fast_and_closes_over_http(tmp_path: Path) -> None:
    port = free_port()
    config = upstream_config(f"http://127.0.0.1:{port}", connect=1)
    config["backends"]["up"]["protection"] = {
        "breaker_threshold": 2,
        "breaker_cool_down_seconds": 1.5,
        "retry_attempts": 1,
    }
    proxy = serve(tmp_path, config)
    try:
        for _ in range(2):
            refused = call(proxy.url, "session.list", CREDS)
            assert refused.json()["error"]["kind"] == "upstream_unavailable"
            assert "circuit open" not in refused.json()["error"]["message"]
        fast = call(proxy.url, "session.list", CREDS)
        assert fast.status_code == 502 and "circuit open" in fast.json()["error"]["message"]
        backend = emulate(
            tmp_path,
            "rosetta",
            sessions=sample_sessions(),
            users=[f"admin:{ADMIN_PASSWORD}"],
            port=port,
        )
        try:
            time.sleep(1.6)  # the cool-down has passed (whatever the emulator's start took)
            probe = call(proxy.url, "session.list", CREDS)  # the half-open probe succeeds
            assert probe.status_code == 200 and probe.json()["total"] == len(sample_sessions())
            assert call(proxy.url, "session.list", CREDS).status_code == 200  # closed again
        finally:
            backend.stop()
    finally:
        proxy.stop()
