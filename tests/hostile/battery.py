"""What every hostile-input module shares: the server (one Rosetta, all dialects, the local
backend preloaded with the sample sessions), the hypothesis runner with fixed CI settings, and
the fixed battery fired at each body-reading path: 10 000-deep nesting, huge and non-finite
numbers, invalid UTF-8, content types, oversized bodies (declared, chunked, and a lying
``Content-Length`` over raw sockets)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES, base_config
from tests.hostile.envelopes import BAD, CLIENT_SIDE
from tests.hostile.harness import (
    MAX_BODY,
    TALLY,
    Case,
    Firing,
    parse_raw,
    raw_exchange,
)
from tests.hostile.strategies import BAD_STRINGS, CONTENT_TYPES, HUGE_TOKENS, Raw, deep, encode
from tests.support.servers import ServerProcess, serve

#: generated requests per dialect in CI (the sum of a module's hypothesis batches)
PER_DIALECT = 1000
TOO_LARGE = frozenset({"payload_too_large"})
SEED = 20261123


def hostile_server(directory: Path) -> ServerProcess:
    config = base_config()
    config["backends"]["local"]["sessions_file"] = str(FIXTURES / "sessions.json")
    return serve(directory, config, name="hostile")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = hostile_server(tmp_path_factory.mktemp("hostile"))
    yield process
    process.stop()


def run_generated(
    firing: Firing, cases: st.SearchStrategy[Case], examples: int, *, chunked: bool = False
) -> None:
    """Fire ``examples`` generated cases (hypothesis with a fixed seed: the same cases every
    run), then check the server is healthy."""
    before = TALLY[firing.dialect]["generated"]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @seed(SEED)
    @given(cases)
    def fire(case: Case) -> None:
        firing.fire(case, chunked=chunked)

    fire()
    sent = TALLY[firing.dialect]["generated"] - before
    # hypothesis may stop short only when it runs out of distinct cases; ours do not
    assert sent >= examples * 0.95, f"only {sent} of {examples} generated cases were sent"
    firing.healthy()


@dataclass
class BodyPath:
    """A path that reads a body, with a valid request of the dialect to spoil."""

    method: str
    target: str
    headers: dict[str, str]
    seed: dict[str, Any]
    #: field (a path into ``seed``) where a spoiled value keeps the rest of the request valid
    slot: tuple[str, ...]
    #: what a spoiled value in ``slot`` may mean (the dialect may refuse it or ignore it)
    slot_allowed: frozenset[str] = CLIENT_SIDE
    #: what a body that is not the dialect's JSON at all may mean
    garbage_allowed: frozenset[str] = BAD
    #: what a UTF-16 body may mean beyond garbage (a dialect reading JSON as RFC 7159 allows)
    utf16_allowed: frozenset[str] = frozenset()
    encode_body: Callable[[Any], bytes] = field(default=encode)
    label: str = ""


def _put(seed: dict[str, Any], slot: tuple[str, ...], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(seed))
    target = copy
    for key in slot[:-1]:
        target = target.setdefault(key, {})
    target[slot[-1]] = value
    return copy


def fixed_cases(bp: BodyPath) -> list[tuple[Case, bool]]:
    """The fixed battery for one path: (case, send chunked)."""
    base = Case(bp.method, bp.target, dict(bp.headers), label=f"{bp.label} fixed")
    out: list[tuple[Case, bool]] = []

    def add(body: bytes, allowed: frozenset[str], what: str, chunked: bool = False) -> None:
        out.append(
            (replace(base, body=body, allowed=allowed, label=f"{base.label}: {what}"), chunked)
        )

    for kind in ("array", "object"):
        add(deep(10_000, kind=kind), bp.garbage_allowed, f"10000-deep {kind}")
        spoiled = bp.encode_body(_put(bp.seed, bp.slot, Raw(deep(10_000, kind=kind))))
        add(spoiled, bp.slot_allowed | BAD, f"10000-deep {kind} in {bp.slot}")
    for token in HUGE_TOKENS + BAD_STRINGS:
        add(token, bp.garbage_allowed, f"bare {token[:20]!r}")
        spoiled = bp.encode_body(_put(bp.seed, bp.slot, Raw(token)))
        add(spoiled, bp.slot_allowed | BAD, f"{token[:20]!r} in {bp.slot}")
    add(b"\xff\xfe\xfd" + encode(bp.seed), bp.garbage_allowed, "invalid UTF-8 prefix")
    utf16 = encode(bp.seed).decode().encode("utf-16")
    add(utf16, bp.garbage_allowed | bp.utf16_allowed, "UTF-16 body")
    add(b"", bp.garbage_allowed, "empty body")
    for ctype in CONTENT_TYPES:
        headers = {k: v for k, v in bp.headers.items() if k != "content-type"}
        if ctype is not None:
            headers["content-type"] = ctype
        out.append(
            (
                replace(
                    base,
                    headers=headers,
                    body=bp.encode_body(bp.seed),
                    allowed=CLIENT_SIDE,
                    label=f"{base.label}: content-type {ctype!r}",
                ),
                False,
            )
        )
    big = b'{"pad":"' + b"x" * MAX_BODY + b'"}'
    add(big, TOO_LARGE, "oversized, Content-Length")
    add(big, TOO_LARGE, "oversized, chunked", chunked=True)
    return out


def fire_fixed(firing: Firing, bp: BodyPath) -> int:
    sent = 0
    for case, chunked in fixed_cases(bp):
        firing.fire(case, source="fixed", chunked=chunked)
        sent += 1
    sent += fire_raw(firing, bp)
    firing.healthy()
    return sent


def fire_raw(firing: Firing, bp: BodyPath) -> int:
    """Requests an HTTP library will not send: a Content-Length that lies."""
    server = firing.server
    path = bp.target
    headers = "".join(f"\r\n{k}: {v}" for k, v in bp.headers.items())
    body = bp.encode_body(bp.seed)
    head = f"{bp.method} {path} HTTP/1.1\r\nhost: 127.0.0.1{headers}\r\nconnection: close"
    cases = [
        # declares far more than the limit, sends a little: refused before reading
        (f"{head}\r\ncontent-length: {MAX_BODY * 64}", body[:10], TOO_LARGE),
        # declares less than it sends: the request is the truncated prefix
        (f"{head}\r\ncontent-length: {max(1, len(body) // 2)}", body, bp.garbage_allowed),
    ]
    for raw_head, raw_body, allowed in cases:
        reply = parse_raw(raw_exchange(server, raw_head, raw_body))
        TALLY[firing.dialect]["fixed"] += 1
        firing.check(
            Case(bp.method, path, allowed=allowed, label=f"{bp.label}: lying length"), reply
        )
    # declares more than it sends, under the limit, then gives up: the server must not care
    raw_exchange(server, f"{head}\r\ncontent-length: {len(body) + 100}", body, read_reply=False)
    TALLY[firing.dialect]["fixed"] += 1
    return 3
