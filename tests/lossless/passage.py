"""Same dialect on both sides, over real HTTP: the processes, the sessions they hold, and how
two answers are compared.

Processes (started once for the module): one ``rosetta emulate <dialect>`` per dialect, all
preloaded with the same canonical sessions (``passage_sessions``), and one Rosetta whose
inbound dialect D is routed (``inbound.D.backend``) to an upstream backend speaking D at the
emulator of D, with static upstream credentials (``auth.mode: static``: the emulators accept
the same user, password, token and key pair as Rosetta itself, so every caller credential,
GeminiDB's AK/SK signatures included, works on both sides). A second, small Rosetta serves
only MaxScale with a draft-format upstream: one inbound dialect has one backend, and a
MaxScale upstream speaks one format, so draft callers and JSON:API callers each get an
upstream of their own format. 8 processes in all.

A request is sent once to the emulator and once to Rosetta; the two answers (status, headers,
body as JSON, key order irrelevant) must be equal once the differences listed in
``docs/matrix.md`` ("Same dialect on both sides") are normalised away (``normalise``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import sample_sessions
from tests.support.servers import ServerProcess, emulate, serve

ADMIN = "admin"
PASSWORD = "lossless-admin-password-8e21"
TOKEN = "lossless-static-token-4c7f"
ACCESS_KEY = "LOSSLESSAK000001"
SECRET_KEY = "lossless-secret-key-2b9d"
SESSION_SECRET = "lossless-session-secret-0123456789abcdef"
PROJECT_ID = "5f1e2d3c4b5a69788796a5b4c3d2e1f0"
INSTANCE_ID = "losslessinstance01in12"

DIALECTS = ("rosetta", "faircom", "blobcity", "maxscale", "geminidb", "jump")
# Rows: the dialects as callers speak them; each has its own victims for mutating requests.
ROWS = (
    "rosetta",
    "faircom",
    "blobcity json",
    "blobcity form",
    "maxscale jsonapi",
    "maxscale draft",
    "geminidb",
    "jump",
)
POOL = 16  # kill / kill_all twins per row


def row_index(row: str) -> int:
    return ROWS.index(row) + 1


def kill_twins(row: str, n: int) -> tuple[str, str]:
    """Two sessions identical but for their ids: one killed directly, one through Rosetta."""
    base = 700000 + row_index(row) * 1000 + n * 10
    return str(base + 1), str(base + 2)


def sweep_twins(row: str, n: int) -> tuple[str, str]:
    """Users (and nodes) of two identical kill_all targets: ``sw<row>-<n>-a`` / ``-b``."""
    return f"sw{row_index(row)}-{n}-a", f"sw{row_index(row)}-{n}-b"


def sweep_ids(row: str, n: int, side: int) -> list[str]:
    base = 700000 + row_index(row) * 1000 + n * 10 + 3 + side * 2
    return [str(base), str(base + 1)]


def alter_target(row: str) -> str:
    return str(800000 + row_index(row))


# Sessions carrying what each dialect keeps beyond the canonical fields (as an upstream of
# that dialect would have sent it), so the upstream's own unknown fields and JSON types must
# survive the passage through Rosetta.
EXTRA_SESSIONS: list[dict[str, Any]] = [
    {
        "id": "201",
        "user": "ext",
        "client_address": "10.9.8.7:4100",
        "service": "svc-x",
        "database": "3",
        "state": "Session started",
        "connected_at": "2023-05-06T07:08:09Z",
        "idle_seconds": 17,
        "last_command": "info",
        "node_id": "node-x",
        "description": "with extras",
        "connections": [
            {
                "server": "db-x",
                "state": "DCB in the polling loop",
                "role": "Backend Request Handler",
                "reads": 5,
                "writes": 6,
                "extras": {
                    "blobcity": {"latency-ms": 3},
                    "jump": {"pool": "p1"},
                    "maxscale": {"statistics": {"buffered_writes": 4, "high_water_events": 1}},
                },
            }
        ],
        "extras": {
            # id and db as strings, idle an integer; age, fd as strings; unknown fields
            "geminidb": {
                "int_fields": ["idle"],
                "age": "7200",
                "fd": "12",
                "sub": 0,
                "psub": "0",
                "multi": -1,
                "more": {"flags": "N", "events": "r", "omem": 0, "lib-name": None},
            },
            "blobcity": {"priority": "high", "tags": ["a", 1, None], "weight": 2.5},
            "jump": {"locale": "de", "sessionTimeout": "600", "flags": {"x": 1}},
            "maxscale": {
                "parameters": {"log_info": True},
                "filters": ["f1"],
                "attributes": {"thread": 3, "memory": {"total": 12}, "queries": []},
                "draft": {"router": "readwritesplit", "weight": 1},
            },
            "faircom": {"defaultApi": "db", "permanentSession": "true", "custom": [1, "1"]},
            "custom": {"nested": {"int": 1, "str": "1"}},
        },
    },
    {
        "id": "202",
        "user": "ext2",
        "client_address": "10.9.8.8:4101",
        "service": "svc-y",
        "database": "0",
        "state": "Session ready for routing",
        "connected_at": "2023-05-06T07:08:10Z",
        "idle_seconds": 2.5,
        "last_command": "get",
        "node_id": "node-x",
        "description": "",
        "connections": [],
        "extras": {
            # everything an integer, age an integer snapshot, a negative fd
            "geminidb": {"int_fields": ["id", "idle", "db"], "age": 5, "fd": -1, "sub": 1},
            "jump": {"sessionTimeout": 900},
        },
    },
    {
        "id": "abc-301",
        "user": "odd",
        "client_address": "[2001:db8::1]:5432",
        "service": "",
        "database": "",
        "state": "",
        "connected_at": None,
        "idle_seconds": 0,
        "last_command": "",
        "node_id": "",
        "description": "a non-decimal id",
        "connections": [],
        "extras": {},
    },
    {
        "id": "9007199254740993",
        "user": "big",
        "client_address": "10.9.8.9:1",
        "service": "svc-y",
        "database": "15",
        "state": "Session started",
        "connected_at": "2020-01-01T00:00:00Z",
        "idle_seconds": 99999,
        "last_command": "monitor",
        "node_id": "node-x",
        "description": "an id beyond 2^53",
        "connections": [],
        "extras": {},
    },
]


def _victim(session_id: str, user: str, node: str, index: int) -> dict[str, Any]:
    return {
        "id": session_id,
        "user": user,
        "client_address": f"172.20.{index}.9:7000",
        "service": "victims",
        "database": "1",
        "state": "Session started",
        "connected_at": "2024-02-01T10:00:00Z",
        "idle_seconds": 4,
        "last_command": "get",
        "node_id": node,
        "description": "victim",
        "connections": [
            {
                "server": "db-victim",
                "state": "DCB in the polling loop",
                "role": "Backend Request Handler",
                "reads": 11,
                "writes": 7,
                "extras": {},
            }
        ],
        "extras": {"jump": {"tag": "victim"}, "blobcity": {"tag": "victim"}},
    }


def passage_sessions(dialect: str) -> list[dict[str, Any]]:
    """What the emulator of ``dialect`` holds: the sample sessions, the ones with extras, and
    the victims of the rows that speak ``dialect``."""
    records = sample_sessions() + [dict(r) for r in EXTRA_SESSIONS]
    for row in ROWS:
        if row.split()[0] != dialect:
            continue
        index = row_index(row)
        target = _victim(alter_target(row), f"alt{index}", "victims", index)
        target["description"] = ""
        records.append(target)
        for n in range(POOL):
            for twin in kill_twins(row, n):
                records.append(_victim(twin, f"v{index}", "victims", index))
            for side, who in enumerate(sweep_twins(row, n)):
                for session_id in sweep_ids(row, n, side):
                    records.append(_victim(session_id, who, who, index))
    return records


def _backend(dialect: str, url: str, options: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "upstream",
        "dialect": dialect,
        "url": url,
        "timeouts": {"connect": 5, "read": 30, "total": 60},
        "auth": {
            "mode": "static",
            "user": ADMIN,
            "password": PASSWORD,
            "token": TOKEN,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
        },
        "options": options,
    }


def _upstream_options(dialect: str) -> dict[str, Any]:
    if dialect == "geminidb":
        return {"project_id": PROJECT_ID, "instance_id": INSTANCE_ID}
    return {}


def _config(inbound: dict[str, Any], backends: dict[str, Any]) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1"},
        "inbound": inbound,
        "backends": backends,
        "default_backend": next(iter(backends)),
        "sessions": {"store": "memory", "secret": SESSION_SECRET},
        "users": [{"name": ADMIN, "password": PASSWORD, "role": "admin"}],
        "tokens": [{"token": TOKEN, "user": ADMIN}],
        "access_keys": [{"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "user": ADMIN}],
        "logging": {"format": "json", "level": "warning"},
    }


@dataclass
class Passage:
    """Where to send a row's requests directly (``direct``) and through Rosetta (``via``)."""

    emulators: dict[str, ServerProcess]
    rosetta: ServerProcess
    draft: ServerProcess
    processes: list[ServerProcess]

    def direct(self, row: str) -> ServerProcess:
        return self.emulators[row.split()[0]]

    def via(self, row: str) -> ServerProcess:
        return self.draft if row == "maxscale draft" else self.rosetta

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def start_passage(directory: Path) -> Passage:
    started: list[ServerProcess] = []
    try:
        emulators: dict[str, ServerProcess] = {}
        for dialect in DIALECTS:
            emulators[dialect] = emulate(
                directory,
                dialect,
                sessions=passage_sessions(dialect),
                users=[f"{ADMIN}:{PASSWORD}"],
                tokens=[TOKEN],
                access_keys=[f"{ACCESS_KEY}:{SECRET_KEY}"],
            )
            started.append(emulators[dialect])
        backends = {
            f"{d}-upstream": _backend(d, emulators[d].url, _upstream_options(d)) for d in DIALECTS
        }
        inbound = {d: {"backend": f"{d}-upstream"} for d in DIALECTS}
        rosetta = serve(directory, _config(inbound, backends), name="rosetta-same-dialect")
        started.append(rosetta)
        draft_backend = _backend("maxscale", emulators["maxscale"].url, {"format": "draft"})
        draft = serve(
            directory,
            _config({"maxscale": {"backend": "draft"}}, {"draft": draft_backend}),
            name="rosetta-draft",
        )
        started.append(draft)
    except Exception:
        for process in reversed(started):
            process.stop()
        raise
    return Passage(emulators, rosetta, draft, started)


# comparison ---------------------------------------------------------------------------------
# Response headers that legitimately differ between two servers answering the same request
# (content-length follows the body's clock readings and link hosts).
IGNORED_HEADERS = frozenset({"date", "content-length", "server"})

# Keys whose values are read from a clock at the moment of answering: equal when of the same
# JSON type and within CLOCK_SLACK seconds (stopwatch readings: any value of the same type).
CLOCK_SLACK = 5.0
_CLOCKS: dict[str, frozenset[str]] = {
    # FairCom: last access of a preloaded session is "now minus its idle seconds"
    "faircom": frozenset({"sessionLastAccessedTimestamp"}),
    # MaxScale JSON:API: seconds since the session connected
    "maxscale": frozenset({"seconds_alive"}),
    # GeminiDB: a session's age is now minus its connection time (unless a kept age)
    "geminidb": frozenset({"age"}),
    "blobcity": frozenset(),
    "rosetta": frozenset(),
    "jump": frozenset(),
}
_STOPWATCHES: dict[str, frozenset[str]] = {
    "blobcity": frozenset({"time"}),  # the backend's measured milliseconds
    "rosetta": frozenset({"elapsed_ms"}),  # likewise
}
_HOST_PORT = re.compile(r"^(https?://)127\.0\.0\.1:\d+/")


def normalise(value: Any) -> Any:
    """``value`` with the host:port of absolute links (JSON:API ``links``) replaced."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str) and _HOST_PORT.match(value):
        return _HOST_PORT.sub(r"\1HOST/", value)
    return value


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return None


def differences(dialect: str, left: Any, right: Any, path: str = "$") -> Iterator[str]:
    """Where two (normalised) JSON values differ, types included: 1 is not "1", 1.0 or True.
    Clock readings of ``dialect`` may differ by CLOCK_SLACK seconds, stopwatches freely."""
    key = path.rpartition(".")[2]
    if type(left) is not type(right):
        yield f"{path}: {left!r} ({type(left).__name__}) != {right!r} ({type(right).__name__})"
    elif isinstance(left, dict):
        for name in sorted(left.keys() | right.keys()):
            if name not in right:
                yield f"{path}.{name}: only direct ({left[name]!r})"
            elif name not in left:
                yield f"{path}.{name}: only through Rosetta ({right[name]!r})"
            else:
                yield from differences(dialect, left[name], right[name], f"{path}.{name}")
    elif isinstance(left, list):
        if len(left) != len(right):
            yield f"{path}: {len(left)} items != {len(right)} items"
        for i, (a, b) in enumerate(zip(left, right, strict=False)):
            yield from differences(dialect, a, b, f"{path}[{i}]")
    elif left != right:
        if key in _STOPWATCHES.get(dialect, ()):
            return
        if key in _CLOCKS[dialect]:
            a, b = _seconds(left), _seconds(right)
            if a is not None and b is not None and abs(a - b) <= CLOCK_SLACK:
                return
        yield f"{path}: {left!r} != {right!r}"


def parse_body(body: bytes) -> Any:
    """A body as JSON when it is JSON (a JSONP call unwrapped), else its text."""
    text = body.decode("utf-8", errors="replace")
    if text.startswith("/**/") and text.endswith(");"):
        text = text[text.index("(") + 1 : -2]
    try:
        return orjson.loads(text) if text.strip() else None
    except orjson.JSONDecodeError:
        return text


def read_as(value: Any, twins: tuple[str, str] | None) -> Any:
    """An answer about the second twin, read as if it were about the first (the twins of a
    mutating pair differ only in that id, user or node)."""
    if twins is None:
        return value
    first, second = twins

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, str):
            return item.replace(second, first)
        if type(item) is int and second.isdigit() and item == int(second):
            return int(first)
        return item

    return walk(value)
