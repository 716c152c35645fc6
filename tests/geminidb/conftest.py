"""Shared pieces of the GeminiDB tests: the seed's sessions in canonical form, sessions with
string-typed fields, and a server over the local backend preloaded with both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import base_config
from tests.support.servers import ServerProcess, serve

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
SEED_NODE_A = "8436a91546294036b75931e879882200in06"
SEED_NODE_B = "8123sa46294daw13def423fw79882200in06"
PROJECT = "054e292c9880d4992f02c0196d3ea468"
INSTANCE = "e73893ef73754465a8bd2e0857bbf13ein12"


def seed_sessions() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = orjson.loads(
        (HERE / "fixtures" / "seed_sessions.json").read_bytes()
    )
    return loaded


def golden(name: str) -> Any:
    return orjson.loads((GOLDEN / name).read_bytes())


def canonical_bytes(value: Any) -> bytes:
    """Exact comparison, types included (``1`` and ``"1"`` differ; so do ``0`` and ``false``)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def string_typed_sessions() -> list[dict[str, Any]]:
    """Three sessions on node-s, as a GeminiDB that follows its docs (all strings) sent them."""
    sessions = []
    for index, (address, age) in enumerate(
        [("10.0.0.1:5001", "300"), ("10.0.0.1:5002", "100"), ("10.0.9.9:6000", "200")], start=1
    ):
        sessions.append(
            {
                "id": f"90{index}",
                "client_address": address,
                "database": str(index),
                "idle_seconds": 0 if index == 2 else 7,
                "last_command": "hgetall",
                "node_id": "node-s",
                "description": f"app-{index}",
                "connected_at": "2026-01-01T00:00:00Z",
                "extras": {
                    "geminidb": {
                        "int_fields": [],
                        "age": age,
                        "fd": str(20 + index),
                        "sub": "0",
                        "psub": "0",
                        "multi": "-1",
                    }
                },
            }
        )
    return sessions


@pytest.fixture(scope="module")
def gemini_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Every dialect over a local backend preloaded with the seed and string-typed sessions."""
    directory = tmp_path_factory.mktemp("geminidb")
    sessions = directory / "sessions.json"
    sessions.write_bytes(orjson.dumps(seed_sessions() + string_typed_sessions()))
    config = base_config()
    config["backends"]["local"]["sessions_file"] = str(sessions)
    server = serve(directory, config)
    yield server
    server.stop()
