"""Prometheus metrics with the maintained ``prometheus-client``. One ``Metrics`` object per
process; with ``--workers > 1`` the CLI sets ``PROMETHEUS_MULTIPROC_DIR`` and every worker's
values are merged at scrape time (multi-process mode).

| metric | labels | meaning |
|---|---|---|
| `rosetta_requests_total` | route, inbound, upstream, operation, outcome | requests answered |
| `rosetta_request_duration_seconds` | inbound, upstream | Rosetta's own time per request |
| `rosetta_upstream_duration_seconds` | upstream | time waiting for upstream replies |
| `rosetta_upstream_errors_total` | upstream, kind | upstream failures by canonical kind |
| `rosetta_translator_failures_total` | dialect, stage | translator bugs caught (decode/encode) |
| `rosetta_live_sessions` | — | live sessions in the store, read at scrape time |

``route`` is the dialect and route name (``maxscale:v1-session``), never the raw path, so ids
in paths cannot explode the label space.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # in multi-process mode values go to the shared files, not to a registry
        registry = None if self.multiprocess else CollectorRegistry()
        self._registry = registry
        self.requests = Counter(
            "rosetta_requests_total",
            "Requests answered, by route, dialects, operation and outcome.",
            ["route", "inbound", "upstream", "operation", "outcome"],
            registry=registry,
        )
        self.own_time = Histogram(
            "rosetta_request_duration_seconds",
            "Time spent in Rosetta itself per request (total minus upstream).",
            ["inbound", "upstream"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.upstream_time = Histogram(
            "rosetta_upstream_duration_seconds",
            "Time spent waiting for upstream replies per request.",
            ["upstream"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "rosetta_upstream_errors_total",
            "Upstream failures by canonical error kind.",
            ["upstream", "kind"],
            registry=registry,
        )
        self.translator_failures = Counter(
            "rosetta_translator_failures_total",
            "Unexpected translator failures (bugs), by dialect and stage.",
            ["dialect", "stage"],
            registry=registry,
        )
        self.live_sessions = Gauge(
            "rosetta_live_sessions",
            "Live sessions in the session store.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )

        # labelled children, looked up once per label combination rather than per request
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def count_request(
        self, route: str, inbound: str, upstream: str, operation: str, outcome: str
    ) -> None:
        self._child(self.requests, (route, inbound, upstream, operation, outcome)).inc()

    def observe_own_time(self, inbound: str, upstream: str, seconds: float) -> None:
        self._child(self.own_time, (inbound, upstream)).observe(seconds)

    def observe_upstream_time(self, backend: str, seconds: float) -> None:
        self._child(self.upstream_time, (backend,)).observe(seconds)

    def render(self) -> bytes:
        if self._registry is not None:
            return generate_latest(self._registry)
        collecting = CollectorRegistry()
        multiprocess.MultiProcessCollector(collecting)  # type: ignore[no-untyped-call]
        return generate_latest(collecting)
