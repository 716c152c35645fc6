"""Upstream faults in every caller dialect x every upstream dialect, over real processes.

For each upstream dialect: a ``rosetta emulate <dialect>`` process (the good upstream), a
``FaultyUpstream`` on its own port that either relays to the emulator (``good``,
``gzip_good``) or misbehaves, and one Rosetta serving all six inbound dialects whose backend
is an upstream of that dialect pointed at the faulty port (``auth.mode: static``, so every
caller dialect, GeminiDB's included, reaches it). Every fault is fired from every caller
dialect and must give the right canonical error in the caller's own envelope, within the
configured time-out; then a good request must succeed through the same port, the proxy's
open sockets must not grow and the faulty server must see no lingering connections.

    refuse            -> upstream_unavailable
    hang              -> upstream_timeout
    close, close_mid_body, html500, garbage, wrong_envelope, gzip_corrupt, huge (30 MB)
                      -> upstream_error
    gzip_good         -> success
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import (
    ACCESS_KEY,
    ADMIN_PASSWORD,
    SECRET_KEY,
    STATIC_TOKEN,
    base_config,
    sample_sessions,
)
from tests.hostile.envelopes import read
from tests.support.faulty import HUGE_BYTES, FaultyUpstream
from tests.support.servers import ServerProcess, emulate, serve

UPSTREAMS = ("faircom", "blobcity", "maxscale", "geminidb", "jump", "rosetta")
CALLERS = ("faircom", "blobcity", "maxscale", "maxscale-draft", "geminidb", "jump", "rosetta")
TIMEOUTS = {"connect": 1.0, "read": 2.0, "total": 3.0}
#: a request must be answered within the total time-out plus this (a loaded 2-core machine
#: runs several suites at once; the client gives up at CLIENT_TIMEOUT whatever happens)
SLACK = 12.0
CLIENT_TIMEOUT = 40.0
FAULTS = {
    "refuse": "upstream_unavailable",
    "hang": "upstream_timeout",
    "close": "upstream_error",
    "close_mid_body": "upstream_error",
    "html500": "upstream_error",
    "garbage": "upstream_error",
    "wrong_envelope": "upstream_error",
    "gzip_corrupt": "upstream_error",
    "huge": "upstream_error",
}
BASIC = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()


@dataclass
class Rig:
    upstream_dialect: str
    emulator: ServerProcess
    faulty: FaultyUpstream
    proxy: ServerProcess
    client: httpx.Client
    faircom_token: str = ""

    def ask(self, caller: str) -> tuple[str, httpx.Response, float]:
        """session.list from ``caller``; (outcome, reply, seconds)."""
        method, path, headers, body = self.request(caller)
        started = time.monotonic()
        reply = self.client.request(method, path, headers=headers, content=body)
        spent = time.monotonic() - started
        dialect = "maxscale" if caller.startswith("maxscale") else caller
        return read(dialect, reply, path).outcome, reply, spent

    def request(self, caller: str) -> tuple[str, str, dict[str, str], bytes | None]:
        json = {"content-type": "application/json"}
        if caller == "faircom":
            body = {"api": "admin", "action": "listSessions", "authToken": self.faircom_token}
            return "POST", "/api", json, _dump(body)
        if caller == "blobcity":
            body = {"username": "admin", "password": ADMIN_PASSWORD, "q": "list-sessions"}
            return "POST", "/rest/bquery", json, _dump(body)
        if caller == "maxscale":
            return "GET", "/v1/sessions", {"authorization": BASIC}, None
        if caller == "maxscale-draft":
            return "GET", "/sessions", {"authorization": BASIC}, None
        if caller == "geminidb":
            path = "/v3/proj/instances/inst/sessions"
            return "GET", path, {"x-auth-token": STATIC_TOKEN}, None
        if caller == "jump":
            body = {"sid": "SessionService", "oid": "listSessions", "params": []}
            creds = {"presto_username": "admin", "presto_password": ADMIN_PASSWORD}
            return "POST", "/presto/edge/api", {**json, **creds}, _dump(body)
        body = {"credentials": {"user": "admin", "password": ADMIN_PASSWORD}}
        return "POST", "/rosetta/v1/session.list", json, _dump(body)


def _dump(value: Any) -> bytes:
    return orjson.dumps(value)


def upstream_backend(dialect: str, url: str) -> dict[str, Any]:
    backend: dict[str, Any] = {
        "type": "upstream",
        "dialect": dialect,
        "url": url,
        "timeouts": TIMEOUTS,
        "max_connections": 8,
        # these tests map each fault to its error; fail-fast after repeated faults (the circuit
        # breaker) and retries would hide that, and have tests of their own
        "protection": {"breaker_threshold": 0, "retry_attempts": 1},
    }
    if dialect == "geminidb":
        backend["auth"] = {"mode": "static", "access_key": ACCESS_KEY, "secret_key": SECRET_KEY}
        backend["options"] = {"project_id": "proj", "instance_id": "inst"}
    else:
        backend["auth"] = {"mode": "static", "user": "admin", "password": ADMIN_PASSWORD}
    return backend


@pytest.fixture(scope="module", params=UPSTREAMS)
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    dialect: str = request.param
    directory = tmp_path_factory.mktemp(f"faults-{dialect}")
    emulator = emulate(
        directory,
        dialect,
        sessions=sample_sessions(),
        users=[f"admin:{ADMIN_PASSWORD}"],
        access_keys=[f"{ACCESS_KEY}:{SECRET_KEY}"],
    )
    try:
        with FaultyUpstream("good", relay_to=emulator.url, hang_seconds=20) as faulty:
            config = base_config(
                backends={"up": upstream_backend(dialect, faulty.url)}, default_backend="up"
            )
            proxy = serve(directory, config, name=f"proxy-{dialect}")
            client = httpx.Client(base_url=proxy.url, timeout=CLIENT_TIMEOUT)
            try:
                rig = Rig(dialect, emulator, faulty, proxy, client)
                login = {
                    "api": "admin",
                    "action": "createSession",
                    "params": {"username": "admin", "password": ADMIN_PASSWORD},
                }
                created = client.post("/api", json=login).json()
                assert created["errorCode"] == 0, created
                rig.faircom_token = created["authToken"]
                yield rig
            finally:
                client.close()
                proxy.stop()
    finally:
        emulator.stop()


def sockets_of(pid: int) -> int:
    """Open sockets of a process, from /proc (no psutil)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:  # closed meanwhile
            continue
    return count


def ask_all(rig: Rig) -> list[tuple[str, httpx.Response, float]]:
    """Every caller at once (a hanging upstream costs one time-out, not seven)."""
    with ThreadPoolExecutor(len(CALLERS)) as pool:
        return list(pool.map(rig.ask, CALLERS))


def assert_good(rig: Rig, callers: tuple[str, ...] = CALLERS) -> None:
    for caller in callers:
        outcome, reply, _ = rig.ask(caller)
        assert outcome == "ok", (
            f"{caller} -> {rig.upstream_dialect}: {reply.status_code} {reply.text[:400]}"
        )


def test_good_upstream_answers_every_caller(rig: Rig) -> None:
    rig.faulty.set("good")
    assert_good(rig)


def test_gzip_encoded_reply_succeeds(rig: Rig) -> None:
    rig.faulty.set("gzip_good")
    try:
        assert_good(rig)
    finally:
        rig.faulty.set("good")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_gives_its_error_in_every_caller_dialect(rig: Rig, fault: str) -> None:
    expected = FAULTS[fault]
    rig.faulty.set("good")
    assert_good(rig, ("rosetta",))  # warm: the pool holds a connection, the login is cached
    baseline = sockets_of(rig.proxy.process.pid)
    rig.faulty.set(fault)
    failures = []
    for caller, (outcome, reply, spent) in zip(CALLERS, ask_all(rig), strict=True):
        assert spent < TIMEOUTS["total"] + SLACK, f"{caller}: answered after {spent:.1f}s"
        if outcome != expected:
            failures.append(f"{caller}: {outcome} ({reply.status_code} {reply.text[:300]})")
        assert b"Traceback" not in reply.content and b"<html" not in reply.content
    assert not failures, f"{fault} via {rig.upstream_dialect}, expected {expected}:\n" + "\n".join(
        failures
    )
    if fault == "huge":
        # the proxy stopped reading at its 16 MiB cap instead of buffering 30 MB
        assert rig.faulty.huge_sent < HUGE_BYTES
    # nothing leaks: the faulty server sees its connections closed, the proxy's sockets
    # come back to where they were, and the next good request succeeds
    rig.faulty.set("good")
    assert rig.faulty.wait_idle(at_most=0) == 0
    assert_good(rig)
    assert rig.faulty.wait_idle(at_most=8) <= 8  # at most the pool's keep-alive connections
    deadline = time.monotonic() + 10
    while sockets_of(rig.proxy.process.pid) > baseline + 8 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sockets_of(rig.proxy.process.pid) <= baseline + 8


def test_repeated_faults_do_not_leak(rig: Rig) -> None:
    """Many faulty requests in a row: the proxy's open sockets stay flat."""
    rig.faulty.set("good")
    assert_good(rig, ("rosetta",))
    baseline = sockets_of(rig.proxy.process.pid)
    for fault in ("close_mid_body", "garbage", "gzip_corrupt", "close"):
        rig.faulty.set(fault)
        for _ in range(10):
            outcome, _, _ = rig.ask("rosetta")
            assert outcome == "upstream_error"
    rig.faulty.set("good")
    assert rig.faulty.wait_idle(at_most=0) == 0
    assert_good(rig, ("rosetta",))
    assert sockets_of(rig.proxy.process.pid) <= baseline + 8
    logs = rig.proxy.logs()
    assert "Traceback" not in logs and "backend_failure" not in logs, logs[-3000:]
