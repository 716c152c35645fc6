"""Golden tests: every example of the seed and the sheet, sent over real HTTP to
``rosetta emulate blobcity``; the reply must equal the golden envelope exactly, with only the
measured ``time`` normalised to the golden's value."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.blobcity.client import envelope, normalised, post_raw
from tests.conftest import sample_sessions
from tests.support.servers import ServerProcess, emulate

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*.json"))


def ten_sessions() -> list[dict[str, Any]]:
    return [
        {"id": str(200 + n), "user": f"user{n}", "client_address": f"10.9.0.{n}:5000"}
        for n in range(10)
    ]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    directory = tmp_path_factory.mktemp("blobcity-golden")
    started: dict[str, ServerProcess] = {}
    try:
        for name, sessions in (("sample", sample_sessions()), ("ten_sessions", ten_sessions())):
            started[name] = emulate(directory, "blobcity", sessions=sessions, users=["root:rootpw"])
        yield started
    finally:
        for process in started.values():
            process.stop()


def test_every_golden_file_is_used() -> None:
    assert {p.name for p in CASES} >= {"seed_success.json", "seed_failure.json"}


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(servers: dict[str, ServerProcess], path: Path) -> None:
    case = orjson.loads(path.read_bytes())
    request = case["request"]
    body = orjson.dumps(request["json"]) if "json" in request else request["text"].encode()
    reply = envelope(post_raw(servers[case["server"]].url, body, request["content_type"]))
    expected = case["response"]
    assert list(reply) == list(expected)  # key order as the seed shows it
    assert normalised(reply, expected.get("time", 0)) == expected
