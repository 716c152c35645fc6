"""Secrets never reach a log line: after logins, token use, Basic and Bearer authentication
and failed attempts, the captured logs of a real server contain none of the secrets; and the
redaction processor masks secret-named keys at any depth."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy import logs
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
    # every key is one the access writer knows holds no secret, so it skips the secret scan
    assert set(line) == logs.ACCESS_FIELDS


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


ACCESS_LINES_SCRIPT = """
import sys, structlog
from proxy import logs
logs.configure(sys.argv[1], sys.argv[2])
fields = {
    "request_id": "r-1", "method": "POST", "route": "/api", "client": "127.0.0.1:5",
    "inbound": "faircom", "backend": None, "status": 200, "duration_ms": 1.5,
    "session_token": "tok-9", "params": {"password": "pw-9"},
}
logs.access(dict(fields))
structlog.get_logger("t").info("request", **fields)
"""


def _access_lines(fmt: str, level: str) -> list[str]:
    # in a child process: configuring structlog here would leak into other tests
    result = subprocess.run(
        [sys.executable, "-c", ACCESS_LINES_SCRIPT, fmt, level],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "tok-9" not in result.stderr and "pw-9" not in result.stderr
    return result.stderr.splitlines()


def test_the_access_line_is_the_line_structlog_writes() -> None:
    """The access log's own JSON writer gives the same line as the configured structlog
    chain: same keys in the same order, same values, secrets masked; only the time differs."""
    fast, chained = (orjson.loads(line) for line in _access_lines("json", "info"))
    assert list(fast) == list(chained)
    assert {**fast, "timestamp": ""} == {**chained, "timestamp": ""}
    assert fast["event"] == "request" and fast["level"] == "info"
    assert fast["session_token"] == "***" and fast["params"] == {"password": "***"}
    assert fast["timestamp"].startswith("20") and fast["timestamp"].endswith("Z")


@given(st.lists(st.integers(0, 4_102_444_800 * 10**9), min_size=1, max_size=6))
def test_access_line_timestamps_are_structlogs_iso_utc_form(instants: list[int]) -> None:
    """Whatever the instants, in whatever order (the date part is cached per second), the
    stamp is the one structlog's ISO UTC stamper writes for that instant."""
    stamp = logs.UtcTimestamp()
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    for nanos in instants:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(logs.time, "time_ns", lambda nanos=nanos: nanos)
            written = stamp()
        moment = epoch + datetime.timedelta(microseconds=nanos // 1000)
        assert written == moment.isoformat().replace("+00:00", "Z")


def test_access_lines_follow_the_configured_format_and_level() -> None:
    console = _access_lines("console", "info")
    assert len(console) == 2 and all("request" in line and "r-1" in line for line in console)
    assert _access_lines("json", "warning") == []


BATCHED_LINES_SCRIPT = """
import asyncio, sys
from proxy import logs
logs.configure("json", "info")
writes = []
real_write = sys.stderr.write
sys.stderr.write = lambda text: writes.append(text) or real_write(text)

async def main():
    logs.access({"request_id": "a"})
    logs.access({"request_id": "b"})
    assert writes == [], writes  # nothing written before the turn ends
    await asyncio.sleep(0)
    assert len(writes) == 1 and writes[0].count(chr(10)) == 2, writes

asyncio.run(main())
loop = asyncio.new_event_loop()

def last():
    logs.access({"request_id": "c"})
    if sys.argv[1] == "exit":
        loop.stop()  # the loop ends before the turn that would write the line

loop.call_soon(last)
if sys.argv[1] == "exit":
    loop.run_forever()
else:
    loop.run_until_complete(asyncio.sleep(0.01))
"""


def _batched(mode: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-c", BATCHED_LINES_SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stderr.splitlines()]


@pytest.mark.parametrize("mode", ["run", "exit"])
def test_access_lines_of_one_loop_turn_go_out_in_one_write_and_none_is_lost(mode: str) -> None:
    lines = _batched(mode)
    assert [line["request_id"] for line in lines] == ["a", "b", "c"]
    assert all(line["event"] == "request" for line in lines)
