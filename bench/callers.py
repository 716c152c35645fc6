"""The callers the benchmark plays, one per inbound dialect: how wrk sends a list-sessions
request in that dialect, and a one-off check (standard library HTTP) that the server answers
it with the 100 sessions before anything is measured."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import payloads
from bench.nginx import CANONICAL_PATH, GEMINIDB_PATH
from bench.procs import WrkTarget, http

WRK_DIR = Path(__file__).resolve().parent / "wrk"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "bench-admin-password-5d1e"
CALLER_TOKEN = "bench-caller-token-8c4f2a"
UPSTREAM_TOKEN = "bench-upstream-token-3b7e91"


class CheckFailed(Exception):
    """The server did not answer the benchmark's request correctly; the row is not measured."""


@dataclass(frozen=True)
class Answer:
    sessions: int
    body: Any  # the parsed reply, for comparing rows that must answer alike


def _json(status: int, body: bytes, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise CheckFailed(f"{what}: HTTP {status}, not JSON: {body[:200]!r}") from None


def _enough(count: int, what: str, body: bytes) -> None:
    if count < payloads.SESSION_COUNT:
        raise CheckFailed(
            f"{what}: {count} sessions, expected >= {payloads.SESSION_COUNT}: {body[:300]!r}"
        )


class Caller:
    """One dialect's benchmark request: ``check`` sends it once (logging in first where the
    dialect needs it) and ``target`` is what wrk then repeats, so ``check`` comes first."""

    dialect = ""

    def target(self, base_url: str) -> WrkTarget:
        raise NotImplementedError

    def check(self, base_url: str) -> Answer:
        raise NotImplementedError


class GeminiDbCaller(Caller):
    """``GET /v3/{project}/instances/{instance}/sessions`` with ``X-Auth-Token``."""

    dialect = "geminidb"

    def __init__(self, token: str = CALLER_TOKEN) -> None:
        self.token = token

    def target(self, base_url: str) -> WrkTarget:
        return WrkTarget(base_url + GEMINIDB_PATH, headers=[f"X-Auth-Token: {self.token}"])

    def check(self, base_url: str) -> Answer:
        status, body = http("GET", base_url + GEMINIDB_PATH, headers={"X-Auth-Token": self.token})
        data = _json(status, body, "geminidb list")
        if status != 200 or not isinstance(data, dict) or "node_sessions" not in data:
            raise CheckFailed(f"geminidb list: HTTP {status}: {body[:300]!r}")
        count = sum(len(node.get("sessions", [])) for node in data["node_sessions"])
        _enough(count, "geminidb list", body)
        return Answer(count, data)


class FairComCaller(Caller):
    """``POST /api`` listSessions with an ``authToken``. ``login``: the token is the one
    Rosetta issued to the ``createSession`` that ``check`` sends first, so every wrk connection
    then uses that one session, as a client that logs in once does, and the list the local
    backend answers stays the same size all run. Otherwise: the fixed caller token the
    hand-written proxies accept."""

    dialect = "faircom"
    script = WRK_DIR / "post.lua"

    def __init__(self, login: bool) -> None:
        self.login = login
        self.token: str | None = None if login else CALLER_TOKEN

    def target(self, base_url: str) -> WrkTarget:
        if self.token is None:
            raise CheckFailed("faircom: no authToken yet; check() logs in first")
        body = orjson.dumps(self._list_request(self.token)).decode()
        return WrkTarget(base_url + "/api", self.script, [body])

    @staticmethod
    def _list_request(token: str) -> dict[str, Any]:
        return {
            "api": "admin",
            "action": "listSessions",
            "params": {},
            "authToken": token,
            "requestId": 1,
        }

    def _post(self, base_url: str, body: dict[str, Any], what: str) -> Any:
        status, raw = http(
            "POST", base_url + "/api", orjson.dumps(body), {"Content-Type": "application/json"}
        )
        data = _json(status, raw, what)
        if status != 200 or not isinstance(data, dict) or data.get("errorCode") != 0:
            raise CheckFailed(f"faircom {what}: HTTP {status}: {raw[:300]!r}")
        return data

    def check(self, base_url: str) -> Answer:
        if self.login and self.token is None:
            params = {"username": ADMIN_USER, "password": ADMIN_PASSWORD, "description": "wrk"}
            created = self._post(
                base_url,
                {"api": "admin", "action": "createSession", "params": params, "requestId": 0},
                "createSession",
            )
            token = created.get("authToken") or created.get("result", {}).get("authToken")
            if not isinstance(token, str):
                raise CheckFailed(f"faircom createSession: no authToken in {created!r}")
            self.token = token
        assert self.token is not None
        data = self._post(base_url, self._list_request(self.token), "listSessions")
        sessions = data.get("result", {}).get("sessions")
        if not isinstance(sessions, list):
            raise CheckFailed(f"faircom listSessions: no result.sessions in {data!r}"[:400])
        _enough(len(sessions), "faircom listSessions", orjson.dumps(data))
        return Answer(len(sessions), data)


class RosettaCaller(Caller):
    """``POST /rosetta/v1/session.list`` with Basic credentials (verified once, then cached
    by Rosetta's authenticator)."""

    dialect = "rosetta"
    script = WRK_DIR / "post.lua"

    @property
    def authorization(self) -> str:
        pair = f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def target(self, base_url: str) -> WrkTarget:
        return WrkTarget(
            base_url + CANONICAL_PATH,
            self.script,
            ["{}"],
            [f"Authorization: {self.authorization}"],
        )

    def check(self, base_url: str) -> Answer:
        status, body = http(
            "POST",
            base_url + CANONICAL_PATH,
            b"{}",
            {"Authorization": self.authorization, "Content-Type": "application/json"},
        )
        data = _json(status, body, "rosetta session.list")
        sessions = data.get("sessions") if isinstance(data, dict) else None
        if status != 200 or not isinstance(sessions, list):
            raise CheckFailed(f"rosetta session.list: HTTP {status}: {body[:300]!r}")
        _enough(len(sessions), "rosetta session.list", body)
        return Answer(len(sessions), data)


def caller_for(dialect: str, *, rosetta_issues_tokens: bool) -> Caller:
    """The caller speaking ``dialect`` to Rosetta."""
    if dialect == "faircom":
        return FairComCaller(login=rosetta_issues_tokens)
    if dialect == "geminidb":
        return GeminiDbCaller()
    if dialect == "rosetta":
        return RosettaCaller()
    raise ValueError(f"the benchmark has no {dialect} caller (it has faircom, geminidb, rosetta)")
