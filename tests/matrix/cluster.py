"""The processes of the conformance matrix and the clients that ask them questions.

Backends (the matrix's columns): ``local`` (Rosetta's own registry, preloaded from a sessions
file) and one ``rosetta emulate <dialect>`` per dialect, all holding the same canonical
sessions. In front of each backend runs one Rosetta serving every inbound dialect, with static
upstream credentials (``auth.mode: static``) so that every inbound dialect works against
every upstream, GeminiDB's access-key signatures included.

Rows: every inbound dialect, MaxScale twice (draft paths and ``/v1`` JSON:API paths).

Sessions: the four canonical ones of ``tests/fixtures/sessions.json`` plus, per row, its own
victims for the mutating operations, so no row disturbs another (ids are positive integers,
as MaxScale needs)::

    5r1  kill target           user v<r>     node victims
    5r2  alter target          user v<r>     node victims
    5r3, 5r4  kill_all targets user sweep<r>  node sweep-<r>
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import sample_sessions
from tests.support.dialect_client import DialectClient
from tests.support.servers import ServerProcess, emulate, serve
from translators.contract import Operation, UpstreamCredentials

ADMIN = "admin"
PASSWORD = "matrix-admin-password-3c9e"
TOKEN = "matrix-static-token-7d1a0b"
ACCESS_KEY = "MATRIXAK00000001"
SECRET_KEY = "matrix-secret-key-51f0c2"
SESSION_SECRET = "matrix-session-secret-0123456789abcdef"
PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
INSTANCE_ID = "matrixinstance01in12"

DIALECTS = ("rosetta", "faircom", "blobcity", "maxscale", "geminidb", "jump")
BACKENDS = ("local", *DIALECTS)


@dataclass(frozen=True)
class Row:
    """One inbound dialect as callers speak it."""

    name: str
    dialect: str
    index: int
    options: dict[str, Any] = field(default_factory=dict)
    # operations this row's callers can send (``None``: the translator's inbound_operations)
    operations: frozenset[Operation] | None = None
    # whether the row's callers can send a users filter (MaxScale and GeminiDB clients fetch
    # everything and filter themselves)
    user_filter: bool = True

    @property
    def kill_id(self) -> str:
        return f"5{self.index}1"

    @property
    def alter_id(self) -> str:
        return f"5{self.index}2"

    @property
    def sweep_ids(self) -> list[str]:
        return [f"5{self.index}3", f"5{self.index}4"]

    @property
    def sweep_user(self) -> str:
        return f"sweep{self.index}"

    @property
    def sweep_node(self) -> str:
        return f"sweep-{self.index}"


# The draft paths carry no login and no ping (those are /v1 paths of the released API).
_DRAFT_OPERATIONS = frozenset({Operation.LIST, Operation.GET, Operation.KILL, Operation.ALTER})

ROWS = (
    Row("rosetta", "rosetta", 0),
    Row("faircom", "faircom", 1),
    Row("blobcity", "blobcity", 2),
    Row("maxscale draft", "maxscale", 3, {"format": "draft"}, _DRAFT_OPERATIONS, False),
    Row("maxscale JSON:API", "maxscale", 4, {"format": "jsonapi"}, None, False),
    Row(
        "geminidb",
        "geminidb",
        5,
        {"project_id": PROJECT_ID, "instance_id": INSTANCE_ID},
        None,
        False,
    ),
    Row("jump", "jump", 6),
)


def matrix_sessions() -> list[dict[str, Any]]:
    """The canonical sessions plus every row's victims."""
    records = sample_sessions()
    for row in ROWS:
        for session_id in (row.kill_id, row.alter_id):
            records.append(_victim(session_id, f"v{row.index}", "victims", row.index))
        for session_id in row.sweep_ids:
            records.append(_victim(session_id, row.sweep_user, row.sweep_node, row.index))
    return records


def _victim(session_id: str, user: str, node: str, index: int) -> dict[str, Any]:
    return {
        "id": session_id,
        "user": user,
        "client_address": f"172.16.{index}.{session_id[-1]}:{6000 + int(session_id)}",
        "service": "victims",
        "database": "0",
        "state": "Session started",
        "connected_at": "2024-02-01T10:00:00Z",
        "idle_seconds": 5,
        "last_command": "get",
        "node_id": node,
        "description": "",
        "connections": [
            {
                "server": f"db-victim-{session_id}",
                "state": "DCB in the polling loop",
                "role": "Backend Request Handler",
                "reads": int(session_id),
                "writes": 7,
                "extras": {},
            }
        ],
        "extras": {},
    }


def client_credentials(dialect: str) -> UpstreamCredentials:
    """What a client of ``dialect`` presents: the static token where the dialect carries one
    (no login session is opened, so listings stay comparable), a password where it wants
    one, GeminiDB's access-key signature."""
    if dialect == "geminidb":
        return UpstreamCredentials(access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    if dialect in ("blobcity", "maxscale"):
        return UpstreamCredentials(user=ADMIN, password=PASSWORD)
    return UpstreamCredentials(token=TOKEN)


def client(dialect: str, url: str, options: dict[str, Any] | None = None) -> DialectClient:
    if dialect == "geminidb" and not options:
        options = {"project_id": PROJECT_ID, "instance_id": INSTANCE_ID}
    return DialectClient(dialect, url, client_credentials(dialect), options)


def row_client(row: Row, url: str, credentials: UpstreamCredentials | None = None) -> DialectClient:
    return DialectClient(
        row.dialect, url, credentials or client_credentials(row.dialect), row.options
    )


def upstream_options(dialect: str) -> dict[str, Any]:
    if dialect == "geminidb":
        return {"project_id": PROJECT_ID, "instance_id": INSTANCE_ID}
    return {}


def rosetta_config(backend: dict[str, Any]) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1"},
        "inbound": {name: {} for name in DIALECTS},
        "backends": {"b": backend},
        "default_backend": "b",
        "sessions": {"store": "memory", "secret": SESSION_SECRET},
        "users": [{"name": ADMIN, "password": PASSWORD, "role": "admin"}],
        "tokens": [{"token": TOKEN, "user": ADMIN}],
        "access_keys": [{"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "user": ADMIN}],
        "logging": {"format": "json", "level": "info"},
    }


def static_backend(dialect: str, url: str) -> dict[str, Any]:
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
        "options": upstream_options(dialect),
    }


@dataclass
class Column:
    """One backend: where to ask it directly (``direct``, in ``dialect``) and the Rosetta in
    front of it (``rosetta``)."""

    name: str
    dialect: str
    direct: ServerProcess
    rosetta: ServerProcess


@dataclass
class Cluster:
    columns: dict[str, Column]
    processes: list[ServerProcess]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def start_cluster(directory: Path) -> Cluster:
    sessions = matrix_sessions()
    sessions_file = directory / "matrix-sessions.json"
    sessions_file.write_bytes(orjson.dumps(sessions))
    started: list[ServerProcess] = []
    columns: dict[str, Column] = {}
    try:
        local = serve(
            directory,
            rosetta_config(
                {"type": "local", "node_id": "rosetta-node-1", "sessions_file": str(sessions_file)}
            ),
            name="rosetta-local",
        )
        started.append(local)
        # the local backend's own dialect is the canonical one, asked on the same server
        columns["local"] = Column("local", "rosetta", local, local)
        for dialect in DIALECTS:
            emulator = emulate(
                directory,
                dialect,
                sessions=sessions,
                users=[f"{ADMIN}:{PASSWORD}"],
                tokens=[TOKEN],
                access_keys=[f"{ACCESS_KEY}:{SECRET_KEY}"],
            )
            started.append(emulator)
            front = serve(
                directory,
                rosetta_config(static_backend(dialect, emulator.url)),
                name=f"rosetta-{dialect}",
            )
            started.append(front)
            columns[dialect] = Column(dialect, dialect, emulator, front)
    except Exception:
        for process in reversed(started):
            process.stop()
        raise
    return Cluster(columns, started)
