"""``rosetta serve --workers 2`` (proxy.supervisor), as real processes: connections opened at
once are spread over both workers, a worker that dies is replaced, SIGHUP replaces the
workers while requests keep being answered, SIGTERM stops everything, and a port already
taken is a clean error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import SESSION_SECRET, base_config
from tests.sessions.test_replicas import DEADLINE_SECONDS, eventually
from tests.support.redis import RedisServer
from tests.support.servers import ServerProcess, free_port, serve


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = RedisServer(tmp_path).start()
    yield server.url
    server.stop()


@pytest.fixture
def two_workers(tmp_path: Path, redis_url: str) -> Iterator[ServerProcess]:
    config = base_config(
        server={"host": "127.0.0.1", "workers": 2},
        sessions={"store": redis_url, "secret": SESSION_SECRET},
    )
    server = serve(tmp_path, config)
    yield server
    server.stop()


def _pid_on_new_connection(url: str) -> int:
    with httpx.Client() as client:
        pid: int = client.get(f"{url}/healthz").json()["pid"]
        return pid


def _pids(url: str, connections: int = 16) -> set[int]:
    """The workers that hold ``connections`` connections, all opened before any is used (as
    a client pool opens them), each then asked for its worker's pid."""
    host, port = url.removeprefix("http://").split(":")
    sockets = [socket.create_connection((host, int(port)), timeout=10) for _ in range(connections)]
    try:
        pids = set()
        for sock in sockets:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: rosetta\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
            pids.add(orjson.loads(reply.partition(b"\r\n\r\n")[2])["pid"])
        return pids
    finally:
        for sock in sockets:
            sock.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` (``ss -ltn`` counts the same)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def test_each_worker_accepts_on_its_own_socket(two_workers: ServerProcess) -> None:
    # one listening socket per worker, so the kernel spreads new connections over them; with
    # one socket shared by all, the first worker awake took every connection waiting
    eventually(lambda: _listening_sockets(two_workers.port) == 2, "two listening sockets")
    # and 16 connections opened at once reach both (all on one would be a 1 in 30,000 chance)
    assert len(_pids(two_workers.url)) == 2


def test_a_worker_that_dies_is_replaced(two_workers: ServerProcess) -> None:
    before = _pids(two_workers.url)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        try:
            return len(_pids(two_workers.url) - {victim}) == 2
        except OSError:  # a connection queued for the killed worker's socket as it died
            return False

    eventually(replaced, "two live workers again, one new")
    assert two_workers.alive()


def test_sighup_replaces_the_workers_one_at_a_time(two_workers: ServerProcess) -> None:
    before = _pids(two_workers.url)
    two_workers.process.send_signal(signal.SIGHUP)
    # a new worker accepts before its predecessor stops: there is always one to answer
    # (a connection queued for a stopping worker's own socket may be reset; see the module)
    eventually(lambda: not any(_alive(pid) for pid in before), "the old workers gone")
    after = _pids(two_workers.url)
    assert len(after) == 2 and not after & before
    assert two_workers.alive()


def test_sigterm_stops_the_supervisor_and_every_worker(two_workers: ServerProcess) -> None:
    workers = _pids(two_workers.url)
    two_workers.process.send_signal(signal.SIGTERM)
    assert two_workers.process.wait(timeout=DEADLINE_SECONDS) == 0
    eventually(lambda: not any(_alive(pid) for pid in workers), "every worker gone")


def test_a_port_already_taken_is_a_clean_error(redis_url: str) -> None:
    with socket.socket() as taken:
        port = free_port()
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = subprocess.run(
            [
                *(sys.executable, "-m", "proxy", "serve", "--workers", "2"),
                *("--port", str(port), "--session-store", redis_url),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "ROSETTA_SESSION_SECRET": SESSION_SECRET},
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
