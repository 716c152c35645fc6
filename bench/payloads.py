"""The benchmark's fixed data: 100 Redis-style sessions, rendered as the static GeminiDB
list-sessions reply nginx serves, as the canonical (``rosetta`` dialect) list reply, and as
the canonical session file the local backend preloads. Deterministic: the same bytes on
every run, so every row translates exactly the same payload.

Run ``python bench/payloads.py DIR`` to write the three files into DIR."""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

SESSION_COUNT = 100
NODE_IDS = ("8436a91546294036b75931e879882200in06", "8123sa46294daw13def423fw79882200in06")
PROJECT_ID = "0549b4a43100d4f32f51c01c2fe4acdb"
INSTANCE_ID = "1236a915462940xxx1234a2b3c4d5e6fin06"
# a fixed "now" so the canonical timestamps never change between runs
REFERENCE_TIME = datetime(2026, 1, 1, tzinfo=UTC)

GEMINIDB_FILE = "geminidb-sessions.json"
CANONICAL_FILE = "rosetta-sessions.json"
SESSIONS_FILE = "local-sessions.json"

_COMMANDS = ("get", "set", "hgetall", "ping", "client", "info", "scan", "mget", "exec", "eval")
_NAMES = ("cli", "app-web", "app-worker", "cache-warmer", "reporting", "")


def geminidb_sessions(count: int = SESSION_COUNT) -> list[tuple[str, dict[str, Any]]]:
    """``(node_id, session)`` pairs with the fields of Redis ``CLIENT LIST``, integer-typed
    as in the vendor's own example."""
    rng = random.Random(20260101)
    sessions = []
    for index in range(count):
        age = rng.randint(10, 9_000_000)
        sessions.append(
            (
                NODE_IDS[index % len(NODE_IDS)],
                {
                    "addr": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                    f":{rng.randint(1024, 65535)}",
                    "id": 54000 + index,
                    "name": rng.choice(_NAMES),
                    "cmd": rng.choice(_COMMANDS),
                    "age": age,
                    "idle": rng.randint(0, age),
                    "db": rng.randint(0, 15),
                    "fd": 1000 + index,
                    "sub": 0,
                    "psub": 0,
                    "multi": -1,
                },
            )
        )
    return sessions


def geminidb_list_reply(count: int = SESSION_COUNT) -> dict[str, Any]:
    """``GET /v3/{project_id}/instances/{instance_id}/sessions`` 200 body."""
    by_node: dict[str, list[dict[str, Any]]] = {node: [] for node in NODE_IDS}
    for node, session in geminidb_sessions(count):
        by_node[node].append(session)
    return {
        "node_sessions": [
            {"node_id": node, "total_count": len(items), "sessions": items}
            for node, items in by_node.items()
        ]
    }


def canonical_sessions(count: int = SESSION_COUNT) -> list[dict[str, Any]]:
    """The same sessions as canonical records (``translators.codec.session_to_json`` shape)."""
    records = []
    for node, s in geminidb_sessions(count):
        connected = REFERENCE_TIME - timedelta(seconds=s["age"])
        records.append(
            {
                "id": str(s["id"]),
                "user": s["name"],
                "client_address": s["addr"],
                "service": "geminidb",
                "database": str(s["db"]),
                "state": "active",
                "connected_at": connected.isoformat().replace("+00:00", "Z"),
                "idle_seconds": s["idle"],
                "last_command": s["cmd"],
                "node_id": node,
                "description": "",
                "connections": [],
                "extras": {
                    "geminidb": {k: s[k] for k in ("fd", "sub", "psub", "multi")},
                },
            }
        )
    return records


def canonical_list_reply(count: int = SESSION_COUNT) -> dict[str, Any]:
    """The ``rosetta`` dialect's ``session.list`` reply for the same sessions."""
    sessions = canonical_sessions(count)
    return {"operation": "session.list", "sessions": sessions, "total": len(sessions)}


def write_all(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        GEMINIDB_FILE: orjson.dumps(geminidb_list_reply()),
        CANONICAL_FILE: orjson.dumps(canonical_list_reply()),
        SESSIONS_FILE: orjson.dumps(canonical_sessions()),
    }
    written = {}
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o644)
        written[name] = path
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: payloads.py DIR")
    for path in write_all(Path(sys.argv[1])).values():
        print(f"{path} ({path.stat().st_size} bytes)")
