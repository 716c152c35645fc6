"""Shared fixtures: the sample sessions, a config with known secrets, and real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme

from tests.support.servers import ServerProcess, serve

FIXTURES = Path(__file__).parent / "fixtures"
ADMIN_PASSWORD = "admin-test-password-7f3a"
USER_PASSWORD = "user-test-password-91bc"
SESSION_SECRET = "test-session-secret-0123456789abcdef"
ACCESS_KEY = "TESTAK0000000001"
SECRET_KEY = "test-secret-key-5e8d1c"
STATIC_TOKEN = "static-test-token-4b2f9e"


def sample_sessions() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = orjson.loads((FIXTURES / "sessions.json").read_bytes())
    return loaded


def base_config(**overrides: Any) -> dict[str, Any]:
    """The embedded default's shape with known secrets, plus an unprivileged user."""
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1"},
        "inbound": {
            name: {} for name in ("rosetta", "faircom", "blobcity", "maxscale", "geminidb", "jump")
        },
        "backends": {"local": {"type": "local", "node_id": "rosetta-node-1"}},
        "default_backend": "local",
        "sessions": {"store": "memory", "secret": SESSION_SECRET},
        "users": [
            {"name": "admin", "password": ADMIN_PASSWORD, "role": "admin"},
            {"name": "alice", "password": USER_PASSWORD, "role": "user"},
        ],
        "tokens": [{"token": STATIC_TOKEN, "user": "admin"}],
        "access_keys": [{"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "user": "admin"}],
        "logging": {"format": "json", "level": "info"},
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One Rosetta with every dialect over the local backend, shared by a test module."""
    server = serve(tmp_path_factory.mktemp("local"), base_config())
    yield server
    server.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def authority() -> trustme.CA:
    """A private certificate authority for TLS tests (``tests/support/certs.py``)."""
    return trustme.CA()
