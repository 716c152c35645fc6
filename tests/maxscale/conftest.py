"""Servers for the MaxScale tests: emulators preloaded with the seed's sessions (MaxScale's
default ``admin``/``mariadb`` account) and a Rosetta over the local backend with the sample
sessions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import base_config, sample_sessions
from tests.support.servers import ServerProcess, emulate, serve

HERE = Path(__file__).parent
MAXSCALE_USER = ("admin", "mariadb")


def fixture_sessions(name: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = orjson.loads((HERE / "fixtures" / name).read_bytes())
    return loaded


def golden(name: str) -> Any:
    return orjson.loads((HERE / "golden" / name).read_bytes())


@pytest.fixture(scope="module")
def seed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``rosetta emulate maxscale`` with the seed's single-session and connections example."""
    server = emulate(
        tmp_path_factory.mktemp("mx-seed"),
        "maxscale",
        sessions=fixture_sessions("seed_show.json"),
        users=["admin:mariadb"],
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def seed_list_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``rosetta emulate maxscale`` with the seed's list example."""
    server = emulate(
        tmp_path_factory.mktemp("mx-seed-list"),
        "maxscale",
        sessions=fixture_sessions("seed_list.json"),
        users=["admin:mariadb"],
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sample_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Rosetta (every dialect) over the local backend, preloaded with the sample sessions."""
    directory = tmp_path_factory.mktemp("mx-local")
    path = directory / "sessions.json"
    path.write_bytes(orjson.dumps(sample_sessions()))
    config = base_config(
        backends={
            "local": {"type": "local", "node_id": "rosetta-node-1", "sessions_file": str(path)}
        }
    )
    server = serve(directory, config)
    yield server
    server.stop()
