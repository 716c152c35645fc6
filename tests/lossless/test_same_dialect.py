"""A request and its response passing through Rosetta with the same dialect on both sides are
unchanged, apart from the differences documented in ``docs/matrix.md`` ("Same dialect on
both sides"): every row's generated requests (``tests.lossless.requests``) are sent once to
the emulator of the dialect and once through Rosetta (``tests.lossless.passage``), and the
answers compared: status, headers, and the body as JSON (key order irrelevant, JSON types
significant)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest

from tests.lossless.passage import (
    ACCESS_KEY,
    IGNORED_HEADERS,
    ROWS,
    SECRET_KEY,
    Passage,
    differences,
    normalise,
    parse_body,
    read_as,
    start_passage,
)
from tests.lossless.requests import Call, exchanges
from tests.support.servers import ServerProcess
from translators.geminidb import signing

SEED = 20240915
PER_ROW = 120


@pytest.fixture(scope="module")
def passage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Passage]:
    started = start_passage(tmp_path_factory.mktemp("same-dialect"))
    yield started
    started.stop()


def _send(
    client: httpx.Client, server: ServerProcess, call: Call, request_id: str
) -> httpx.Response:
    # a caller's X-Request-Id comes back unchanged from both (a generated one would differ)
    headers = {**call.headers, "x-request-id": request_id}
    if call.sign:
        host = urlsplit(server.url).netloc
        headers = signing.sign(
            method=call.method,
            path=call.path,
            pairs=signing.query_pairs(call.query),
            headers={**headers, "host": host},
            body=call.body,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            now=datetime.now(UTC),
        )
    url = server.url + call.path + (f"?{call.query}" if call.query else "")
    return client.request(call.method, url, headers=headers, content=call.body, timeout=60)


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in IGNORED_HEADERS}


@pytest.mark.parametrize("row", ROWS)
def test_same_dialect_on_both_sides_changes_nothing(passage: Passage, row: str) -> None:
    dialect = row.split()[0]
    failures: list[str] = []
    with httpx.Client() as client:
        for n, exchange in enumerate(exchanges(row, PER_ROW, SEED)):
            request_id = f"lossless-{row.replace(' ', '-')}-{n}"
            direct = _send(client, passage.direct(row), exchange.direct, request_id)
            through = _send(client, passage.via(row), exchange.through, request_id)
            found: list[str] = []
            if direct.status_code != through.status_code:
                found.append(f"status {direct.status_code} != {through.status_code}")
            twins = exchange.twins
            found += differences(
                dialect, _headers(direct), read_as(_headers(through), twins), "headers"
            )
            found += differences(
                dialect,
                normalise(parse_body(direct.content)),
                normalise(read_as(parse_body(through.content), twins)),
                "body",
            )
            if found:
                failures.append(
                    f"#{n} {exchange.label} {exchange.direct.method} {exchange.direct.path}"
                    f"?{exchange.direct.query} {exchange.direct.body[:300]!r}\n    "
                    + "\n    ".join(found[:12])
                )
    assert not failures, f"{len(failures)} of {PER_ROW} differ:\n" + "\n".join(failures)
