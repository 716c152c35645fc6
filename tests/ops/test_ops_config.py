"""The ``rate_limit`` and ``tracing`` config sections: defaults are off, bad values and
impossible combinations are refused at start-up with the key path named."""

from __future__ import annotations

import sys

import pytest

from proxy.app import build_runtime
from proxy.settings import ConfigError, Settings, parse_settings
from tests.conftest import base_config


def test_both_are_off_by_default() -> None:
    settings = Settings()
    assert not settings.rate_limit.enabled and not settings.tracing.enabled
    runtime = build_runtime(parse_settings(base_config(), "<test>"))
    assert runtime.rate_limit is None and runtime.tracing is None


@pytest.mark.parametrize(
    ("section", "value", "where"),
    [
        ("rate_limit", {"requests_per_second": 0}, "rate_limit.requests_per_second"),
        ("rate_limit", {"burst": 0}, "rate_limit.burst"),
        ("rate_limit", {"store": "redis"}, "rate_limit.store"),
        ("rate_limit", {"key": "user"}, "rate_limit.key"),
        ("tracing", {"exporter": "jaeger"}, "tracing.exporter"),
        ("tracing", {"sample_ratio": 2}, "tracing.sample_ratio"),
        ("tracing", {"endpont": "x"}, "tracing.endpont"),
    ],
)
def test_bad_values_name_their_key(section: str, value: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        parse_settings(base_config(**{section: value}), "<test>")


def test_a_shared_limit_needs_a_redis_session_store() -> None:
    settings = parse_settings(
        base_config(rate_limit={"enabled": True, "store": "sessions"}), "<test>"
    )
    with pytest.raises(ConfigError, match=r"rate_limit\.store: 'sessions'.*redis://"):
        build_runtime(settings)


def test_tracing_without_the_otel_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "proxy.tracing", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    settings = parse_settings(base_config(tracing={"enabled": True}), "<test>")
    with pytest.raises(ConfigError, match=r"rosetta-proxy\[otel\]"):
        build_runtime(settings)
