"""Start real Rosetta processes (``rosetta serve`` / ``rosetta emulate``) on free loopback
ports, wait until they answer, and capture their logs for assertions."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

STARTUP_SECONDS = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A running server; ``url`` has no trailing slash."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    args: list[str] = field(default_factory=list)
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_process(
    command: list[str],
    port: int,
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    ready_path: str = "/healthz",
    tls: ssl.SSLContext | None = None,
) -> ServerProcess:
    """Run ``rosetta <command>`` and wait for ``ready_path`` to answer 200 (over HTTPS, trusting
    ``tls``, when it is given)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", *command],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=full_env,
    )
    server = ServerProcess(process, port, log_path, command, "http" if tls is None else "https")
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rosetta {' '.join(command)} exited:\n{server.logs()}")
        try:
            reply = httpx.get(server.url + ready_path, timeout=0.5, verify=tls or True)
            if reply.status_code == 200 and _is_ours(reply, process.pid):
                return server
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"rosetta {' '.join(command)} did not start:\n{server.logs()}")


def _is_ours(reply: httpx.Response, pid: int) -> bool:
    """The answer came from ``pid`` or one of its workers, not from another server that took
    the port between ``free_port`` and our bind (the port is free only when it is picked)."""
    served_by = reply.json().get("pid")
    if served_by == pid:
        return True
    try:
        status = Path(f"/proc/{served_by}/status").read_text()
    except (OSError, TypeError):
        return False
    return f"PPid:\t{pid}\n" in status


def write_config(directory: Path, config: dict[str, Any], name: str = "rosetta.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def check_config(directory: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """``rosetta check`` of ``config`` written to ``directory``; its exit code and output."""
    path = write_config(directory, config, "checked.yaml")
    return subprocess.run(
        [sys.executable, "-m", "proxy", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def serve(
    directory: Path,
    config: dict[str, Any],
    *,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    name: str = "rosetta",
    tls: ssl.SSLContext | None = None,
) -> ServerProcess:
    """``rosetta serve`` with ``config`` on a free port (``tls``: see ``start_process``)."""
    port = free_port()
    config = {**config, "server": {**config.get("server", {}), "port": port}}
    path = write_config(directory, config, f"{name}-{port}.yaml")
    return start_process(
        ["serve", "--config", str(path), *(extra_args or [])],
        port,
        directory / f"{name}-{port}.log",
        env=env,
        tls=tls,
    )


def emulate(
    directory: Path,
    dialect: str,
    *,
    sessions: list[dict[str, Any]] | None = None,
    users: list[str] | None = None,
    tokens: list[str] | None = None,
    access_keys: list[str] | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> ServerProcess:
    """``rosetta emulate DIALECT`` on ``port`` (default: a free one), preloaded with canonical
    ``sessions``."""
    port = port or free_port()
    args = ["emulate", dialect, "--port", str(port)]
    if sessions is not None:
        path = directory / f"sessions-{dialect}-{port}.json"
        path.write_bytes(orjson.dumps(sessions))
        args += ["--sessions", str(path)]
    for user in users or []:
        args += ["--user", user]
    for token in tokens or []:
        args += ["--token", token]
    for pair in access_keys or []:
        args += ["--access-key", pair]
    return start_process(args, port, directory / f"emulate-{dialect}-{port}.log", env=env)
