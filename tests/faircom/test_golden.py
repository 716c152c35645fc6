"""Golden tests: every example of the FairCom seed and sheet, plus every error case of the
issue, sent over real HTTP to a real Rosetta; the reply must equal the golden file exactly once
tokens, timestamps and fresh session ids are normalised. Set ``FAIRCOM_GOLDEN_REGEN=1`` to
rewrite the expected replies (then review the diff)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_PASSWORD, STATIC_TOKEN, USER_PASSWORD
from tests.faircom.support import (
    GOLDEN,
    call,
    faircom_config,
    login,
    normalise,
    post,
    strings_in,
)
from tests.support.servers import ServerProcess, serve

REGEN = os.environ.get("FAIRCOM_GOLDEN_REGEN") == "1"
CASES = sorted(GOLDEN.glob("*.json"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = serve(tmp_path_factory.mktemp("faircom-golden"), faircom_config())
    yield proc
    proc.stop()


def _reset(server: ServerProcess) -> None:
    """End every admin/alice login so each golden starts from the preloaded sessions only."""
    reply = httpx.post(
        f"{server.url}/rosetta/v1/session.kill_all",
        json={"filters": {"users": ["admin", "alice"]}},
        headers={"authorization": f"Bearer {STATIC_TOKEN}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text


def _session_id(server: ServerProcess, token: str) -> str:
    reply = httpx.post(
        f"{server.url}/rosetta/v1/session.list", json={"credentials": {"token": token}}, timeout=30
    )
    session_id: str = reply.json()["caller"]["session_id"]
    return session_id


def _setup(server: ServerProcess, steps: list[str]) -> dict[str, str]:
    """Placeholder -> live value for the tokens a golden needs."""
    values: dict[str, str] = {}
    for step in steps:
        if step == "admin":
            values["<token>"] = login(server, "admin", ADMIN_PASSWORD, description="golden")
        elif step == "alice":
            token = login(server, "alice", USER_PASSWORD, description="alice's session")
            values["<alice-token>"] = token
            values["<alice-session>"] = "session:" + _session_id(server, token)
        elif step == "dead":
            token = login(server, "admin", ADMIN_PASSWORD)
            gone = call(server, {"api": "admin", "action": "deleteSession", "authToken": token})
            assert gone["errorCode"] == 0
            values["<dead-token>"] = token
        else:
            raise AssertionError(f"unknown setup step {step}")
    return values


def _request_bytes(case: dict[str, Any], values: dict[str, str]) -> bytes:
    text = case["raw"] if "raw" in case else orjson.dumps(case["request"]).decode()
    for placeholder, value in {
        **values,
        "<admin-password>": ADMIN_PASSWORD,
        "<alice-password>": USER_PASSWORD,
    }.items():
        text = text.replace(placeholder, value)
    return text.encode()


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(server: ServerProcess, path: Path) -> None:
    case = orjson.loads(path.read_bytes())
    _reset(server)
    values = _setup(server, case["setup"])
    reply = post(server, _request_bytes(case, values), case["path"])
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    for secret in (ADMIN_PASSWORD, USER_PASSWORD):
        assert secret not in reply.text
    literal = {s: s for s in strings_in(case.get("request"))}
    actual = normalise(body, {**literal, **{v: k for k, v in values.items()}})
    if REGEN:
        case["response"] = actual
        path.write_bytes(orjson.dumps(case, option=orjson.OPT_INDENT_2) + b"\n")
        return
    assert actual == case["response"]
