"""The command line: ``translate`` offline, ``dialects``, and serve's refusal of a memory
session store split across workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson


def rosetta(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args], input=stdin, capture_output=True, timeout=60
    )


def test_translate_prints_the_canonical_form_without_secrets() -> None:
    request = b'{"credentials": {"user": "admin", "password": "pw-123"}, "filters": {"ids": ["7"]}}'
    message = b"POST /rosetta/v1/session.get HTTP/1.1\ncontent-type: application/json\n\n" + request
    result = rosetta(
        "translate", "--from", "rosetta", "--to", "rosetta", "--canonical", "-", stdin=message
    )
    assert result.returncode == 0, result.stderr
    canonical = orjson.loads(result.stdout)
    assert canonical["operation"] == "session.get"
    assert canonical["filters"]["ids"] == ["7"]
    assert canonical["principal"] == {
        "kind": "password",
        "user": "admin",
        "has_password": True,
        "has_token": False,
        "access_key": None,
    }
    assert b"pw-123" not in result.stdout


def test_translate_builds_the_upstream_request() -> None:
    message = (
        b'POST /rosetta/v1/session.kill HTTP/1.1\n\n{"filters": {"ids": ["3"]}, "request_id": "r1"}'
    )
    result = rosetta("translate", "--from", "rosetta", "--to", "rosetta", "-", stdin=message)
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.decode().partition("\n\n")
    assert head.splitlines()[0] == "POST /rosetta/v1/session.kill HTTP/1.1"
    assert orjson.loads(body)["filters"]["ids"] == ["3"]


def test_translate_a_response(tmp_path: Path) -> None:
    reply = tmp_path / "reply.json"
    reply.write_bytes(orjson.dumps({"sessions": [{"id": "9", "user": "u"}], "total": 1}))
    result = rosetta("translate", "--from", "rosetta", "--to", "rosetta", "--response", str(reply))
    assert result.returncode == 0, result.stderr
    body = orjson.loads(result.stdout.decode().partition("\n\n")[2])
    assert body["sessions"][0]["id"] == "9" and body["total"] == 1


def test_translate_reports_bad_input_without_a_traceback() -> None:
    result = rosetta(
        "translate",
        "--from",
        "rosetta",
        "--to",
        "rosetta",
        "-",
        stdin=b"POST /nowhere HTTP/1.1\n\n{}",
    )
    assert result.returncode == 1
    assert b"rosetta serves no path /nowhere" in result.stderr
    assert b"Traceback" not in result.stderr


def test_dialects_lists_every_builtin_translator() -> None:
    result = rosetta("dialects")
    assert result.returncode == 0
    names = {
        line.split()[0] for line in result.stdout.decode().splitlines() if not line.startswith(" ")
    }
    assert {"rosetta", "faircom", "blobcity", "maxscale", "geminidb", "jump"} <= names


def test_serve_refuses_memory_store_with_several_workers() -> None:
    result = rosetta("serve", "--workers", "2", "--port", "0")
    assert result.returncode == 1
    assert b"sessions.store" in result.stderr and b"--session-store redis://" in result.stderr
