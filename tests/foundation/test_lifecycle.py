"""Process lifecycle over real signals: SIGTERM lets a slow upstream call finish before the
process exits; SIGHUP reloads the config under concurrent load without dropping a request,
keeps sessions, and keeps serving the old config when the new one is bad."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.conftest import ADMIN_PASSWORD, base_config
from tests.support.servers import ServerProcess, free_port, start_process, write_config

SLOW_SECONDS = 2.0
LIST_REPLY = b'{"operation": "session.list", "sessions": [], "total": 0, "elapsed_ms": 1}'


class _Slow(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(SLOW_SECONDS)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(LIST_REPLY)))
        self.end_headers()
        self.wfile.write(LIST_REPLY)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def slow_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def serve_file(tmp_path: Path, config: dict[str, Any]) -> tuple[ServerProcess, Path]:
    port = free_port()
    config = {**config, "server": {**config["server"], "port": port}}
    path = write_config(tmp_path, config, "live.yaml")
    server = start_process(["serve", "--config", str(path)], port, tmp_path / "live.log")
    return server, path


def test_sigterm_lets_a_slow_upstream_call_finish(tmp_path: Path, slow_upstream: str) -> None:
    config = base_config(
        backends={"up": {"type": "upstream", "dialect": "rosetta", "url": slow_upstream}},
        default_backend="up",
    )
    server, _ = serve_file(tmp_path, config)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            httpx.post,
            f"{server.url}/rosetta/v1/session.list",
            json={},
            auth=("admin", ADMIN_PASSWORD),
            timeout=30,
        )
        time.sleep(SLOW_SECONDS / 3)
        server.process.send_signal(signal.SIGTERM)
        reply = pending.result(timeout=30)
    assert reply.status_code == 200 and reply.json()["total"] == 0
    # uvicorn re-raises the signal once shut down, so supervisors see "terminated by SIGTERM"
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Traceback" not in server.logs()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=2)


def test_sighup_reloads_without_dropping_requests(tmp_path: Path) -> None:
    first = base_config(inbound={"rosetta": {}})
    server, path = serve_file(tmp_path, first)
    try:
        login = httpx.post(
            f"{server.url}/rosetta/v1/session.login",
            json={"credentials": {"user": "admin", "password": ADMIN_PASSWORD}},
        )
        token = login.json()["token"]
        assert httpx.post(f"{server.url}/api", json={}).status_code == 404  # no FairCom yet

        statuses: list[int] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    reply = client.post(
                        f"{server.url}/rosetta/v1/session.list",
                        json={},
                        auth=("admin", ADMIN_PASSWORD),
                    )
                    statuses.append(reply.status_code)

        workers = [threading.Thread(target=load) for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(0.5)
        second = base_config(inbound={"rosetta": {}, "faircom": {}})
        second["server"]["port"] = server.port
        path.write_text(yaml.safe_dump(second))
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if (
                httpx.post(
                    f"{server.url}/api", json={"api": "admin", "action": "pingSession"}
                ).status_code
                == 200
            ):
                break
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)

        assert statuses and set(statuses) == {200}, f"dropped: {set(statuses)}"
        faircom = httpx.post(f"{server.url}/api", json={"api": "admin", "action": "pingSession"})
        assert faircom.json()["errorCode"] == 0  # the new route is live
        kept = httpx.post(
            f"{server.url}/rosetta/v1/session.ping", json={"credentials": {"token": token}}
        )
        assert kept.status_code == 200  # the session survived the reload

        path.write_text("inbound: [this is not a mapping\n")
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "reload_rejected" not in server.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "reload_rejected" in server.logs()
        still = httpx.post(f"{server.url}/api", json={"api": "admin", "action": "pingSession"})
        assert still.json()["errorCode"] == 0  # still serving the last good config
        assert server.alive()
    finally:
        server.stop()


def test_a_reload_that_changes_the_listening_server_says_it_needs_a_restart(
    tmp_path: Path,
) -> None:
    first = base_config(inbound={"rosetta": {}})
    server, path = serve_file(tmp_path, first)
    try:
        second = base_config(inbound={"rosetta": {}, "faircom": {}})
        second["server"] = {**second["server"], "port": server.port, "shutdown_grace_seconds": 5}
        path.write_text(yaml.safe_dump(second))
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "server_settings_need_restart" not in server.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        warning = next(
            orjson.loads(line)
            for line in server.logs().splitlines()
            if "server_settings_need_restart" in line
        )
        assert warning["keys"] == ["server.shutdown_grace_seconds"]
        assert warning["level"] == "warning"
        faircom = httpx.post(f"{server.url}/api", json={"api": "admin", "action": "pingSession"})
        assert faircom.json()["errorCode"] == 0  # everything else was switched
    finally:
        server.stop()
