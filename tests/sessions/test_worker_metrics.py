"""With several workers, /metrics reports the whole process group: every worker's requests,
whichever worker answers the scrape (Prometheus multi-process mode)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, SESSION_SECRET, base_config
from tests.foundation.test_metrics import sample
from tests.support.redis import RedisServer
from tests.support.servers import ServerProcess, serve


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[ServerProcess]:
    redis_server = RedisServer(tmp_path).start()
    config = base_config(
        server={"host": "127.0.0.1", "workers": 2},
        sessions={"store": redis_server.url, "secret": SESSION_SECRET},
    )
    try:
        server = serve(tmp_path, config)
    except Exception:
        redis_server.stop()
        raise
    yield server
    server.stop()
    redis_server.stop()


def test_metrics_add_up_over_workers(two_workers: ServerProcess) -> None:
    url = two_workers.url
    served_by = set()
    for _ in range(40):
        with httpx.Client() as client:  # a new connection each time: spread over the workers
            reply = client.post(
                f"{url}/rosetta/v1/session.list", json={}, auth=("admin", ADMIN_PASSWORD)
            )
            assert reply.status_code == 200
            served_by.add(client.get(f"{url}/healthz").json()["pid"])
    assert len(served_by) == 2, "the load did not reach both workers"
    for _ in range(4):  # whichever worker answers the scrape, it reports all 40
        with httpx.Client() as client:
            scraped = client.get(f"{url}/metrics").text
        counted = sample(scraped, "rosetta_requests_total", operation="session.list", outcome="ok")
        assert counted == 40
