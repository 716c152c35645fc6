"""Helpers for the FairCom tests: posting FairCom requests, logging in, and normalising the
parts of a response that change from run to run (tokens, timestamps, fresh session ids)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.conftest import FIXTURES, base_config
from tests.support.servers import ServerProcess

GOLDEN = Path(__file__).parent / "golden"
TOKEN_MESSAGE = (
    "'authToken' does not match any existing session. Use a valid 'authToken' or use "
    "'createSession' to create a valid 'authToken'."
)
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{40,}$")
_LOGIN_SESSION = re.compile(r"^session:(\d+)$")
PRELOADED_IDS = {"101", "102", "103", "104"}


def faircom_config(**overrides: Any) -> dict[str, Any]:
    """The shared test config with the sample sessions preloaded into the local backend."""
    config = base_config(**overrides)
    config["backends"]["local"]["sessions_file"] = str(FIXTURES / "sessions.json")
    return config


def post(server: ServerProcess, body: dict[str, Any] | bytes, path: str = "/api") -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(
        server.url + path,
        content=content,
        headers={"content-type": "application/json"},
        timeout=30,
    )


def call(server: ServerProcess, body: dict[str, Any] | bytes, path: str = "/api") -> Any:
    reply = post(server, body, path)
    assert reply.status_code == 200, reply.text
    return reply.json()


def login(server: ServerProcess, user: str, password: str, **params: Any) -> str:
    body = call(
        server,
        {
            "api": "admin",
            "action": "createSession",
            "params": {"username": user, "password": password, **params},
        },
    )
    assert body["errorCode"] == 0, body
    token: str = body["authToken"]
    return token


def normalise(value: Any, tokens: dict[str, str]) -> Any:
    """Replace known tokens by their placeholders (a token mapped to itself is kept), other
    fresh tokens by ``<new-token>``, timestamps of the last day by ``<timestamp>`` and ids of
    login sessions by ``session:<id>``."""
    if isinstance(value, dict):
        return {k: normalise(v, tokens) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, tokens) for v in value]
    if isinstance(value, str):
        if value in tokens:
            return tokens[value]
        if _TIMESTAMP.match(value) and _recent(value):
            return "<timestamp>"
        match = _LOGIN_SESSION.match(value)
        if match and match.group(1) not in PRELOADED_IDS:
            return "session:<id>"
        if _TOKEN.match(value):
            return "<new-token>"
    return value


def _recent(text: str) -> bool:
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return abs(moment.timestamp() - time.time()) < 86400


def strings_in(value: Any) -> set[str]:
    """Every string value in a JSON document (to keep literal tokens a request carried)."""
    if isinstance(value, dict):
        return set().union(*(strings_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(strings_in(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) else set()
