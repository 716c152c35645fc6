"""Secrets never reach a log line: after logins, token use, Basic and Bearer authentication
and failed attempts, the captured logs of a real server contain none of the secrets; and the
redaction processor masks secret-named keys at any depth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import orjson

from tests.conftest import ADMIN_PASSWORD, SECRET_KEY, SESSION_SECRET, STATIC_TOKEN, base_config
from tests.support.servers import serve


def test_server_logs_hold_no_secrets(tmp_path: Path) -> None:
    server = serve(tmp_path, base_config())
    try:
        url = f"{server.url}/rosetta/v1"
        login = httpx.post(
            f"{url}/session.login",
            json={"credentials": {"user": "admin", "password": ADMIN_PASSWORD}},
        )
        token = login.json()["token"]
        httpx.post(f"{url}/session.list", json={"credentials": {"token": token}})
        httpx.post(f"{url}/session.list", json={}, auth=("admin", ADMIN_PASSWORD))
        httpx.post(
            f"{url}/session.list", json={}, headers={"authorization": f"Bearer {STATIC_TOKEN}"}
        )
        httpx.post(
            f"{url}/session.list", json={"credentials": {"user": "admin", "password": "wrong-pw-x"}}
        )
        httpx.post(f"{url}/session.list", content=b'{"credentials": {"password": "' + b"p" * 20)
    finally:
        server.stop()
    captured = server.logs()
    assert '"event":"request"' in captured  # the access log is there...
    for secret in (ADMIN_PASSWORD, token, STATIC_TOKEN, SECRET_KEY, SESSION_SECRET, "wrong-pw-x"):
        assert secret not in captured  # ...and no secret is


def test_access_log_line_has_the_documented_fields(tmp_path: Path) -> None:
    server = serve(tmp_path, base_config())
    try:
        httpx.post(
            f"{server.url}/rosetta/v1/session.list",
            json={},
            auth=("admin", ADMIN_PASSWORD),
            headers={"x-request-id": "trace-42"},
        )
    finally:
        server.stop()
    lines = [orjson.loads(text) for text in server.logs().splitlines() if text.startswith("{")]
    access = [entry for entry in lines if entry.get("request_id") == "trace-42"]
    assert len(access) == 1
    line = access[0]
    assert line["route"] == "/rosetta/v1/session.list"
    assert line["inbound"] == "rosetta" and line["upstream"] == "local"
    assert line["operation"] == "session.list" and line["status"] == 200
    assert line["duration_ms"] > 0


REDACTION_SCRIPT = """
import structlog
from proxy import logs
logs.configure("json", "info")
structlog.get_logger("t").info(
    "oops",
    password="hunter2",
    authToken="tok-1",
    headers={"Authorization": "Basic abc", "X-Auth-Token": "tok-2", "accept": "json"},
    params=[{"presto_password": "pp"}, {"secret_key": "sk"}],
)
"""


def test_redaction_masks_secret_keys_at_any_depth() -> None:
    # in a child process: configuring structlog here would leak into other tests
    result = subprocess.run(
        [sys.executable, "-c", REDACTION_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    line = orjson.loads(result.stderr.strip().splitlines()[-1])
    assert line["password"] == "***" and line["authToken"] == "***"
    assert line["headers"] == {"Authorization": "***", "X-Auth-Token": "***", "accept": "json"}
    assert line["params"] == [{"presto_password": "***"}, {"secret_key": "***"}]
    for secret in ("hunter2", "tok-1", "tok-2", "Basic abc"):
        assert secret not in result.stderr
