"""TLS towards an upstream (``backends.<name>.tls``), over real processes: a ``rosetta serve``
in front of an HTTPS GeminiDB upstream whose certificate comes from a private CA (trustme).
With ``ca_file`` the upstream is reached on every transport; without it the certificate is
refused before any request is sent; a server that asks for a client certificate gets the
configured one; files that do not load fail ``rosetta check`` naming the key."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trustme

from tests.conftest import ADMIN_PASSWORD, base_config
from tests.support.certs import pem_files
from tests.support.scripted import Channel, ScriptedUpstream, reply
from tests.support.servers import check_config, serve

UPSTREAM_TOKEN = "upstream-service-token-51c0"
LIST_REPLY = orjson.dumps(
    {
        "node_sessions": [
            {
                "node_id": "node-a",
                "sessions": [
                    {
                        "addr": "10.0.0.7:51000",
                        "id": 7,
                        "name": "reporting",
                        "cmd": "get",
                        "age": 30,
                        "idle": 2,
                        "db": 0,
                        "fd": 9,
                        "sub": 0,
                        "psub": 0,
                        "multi": -1,
                    }
                ],
            }
        ]
    }
)


@pytest.fixture(scope="module")
def pem(authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The CA certificate and Rosetta's client certificate with its key, as PEM files."""
    return pem_files(authority, tmp_path_factory.mktemp("pem"), "rosetta-client")


def server_context(authority: trustme.CA, *, client_certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    if client_certificate:
        context.verify_mode = ssl.CERT_REQUIRED
        authority.configure_trust(context)
    return context


class GeminiDb:
    """An HTTPS upstream answering every request with one list reply; it notes the
    ``X-Auth-Token`` of each request it read."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.tokens: list[str | None] = []
        self.server = ScriptedUpstream(self.play, tls=context)

    def play(self, channel: Channel) -> None:
        while (request := channel.request()) is not None:
            self.tokens.append(request.header("x-auth-token"))
            channel.send(reply(body=LIST_REPLY, headers=[("content-type", "application/json")]))


@pytest.fixture
def upstream(authority: trustme.CA) -> Iterator[GeminiDb]:
    played = GeminiDb(server_context(authority, client_certificate=False))
    with played.server:
        yield played


@pytest.fixture
def upstream_asking_for_a_client_certificate(authority: trustme.CA) -> Iterator[GeminiDb]:
    played = GeminiDb(server_context(authority, client_certificate=True))
    with played.server:
        yield played


def config(url: str, tls: dict[str, str] | None, transport: str = "httptools") -> dict[str, Any]:
    backend: dict[str, Any] = {
        "type": "upstream",
        "dialect": "geminidb",
        "url": url,
        "transport": transport,
        "auth": {"mode": "static", "token": UPSTREAM_TOKEN},
        "options": {"project_id": "proj", "instance_id": "inst"},
        "timeouts": {"connect": 2.0, "read": 5.0, "total": 8.0},
        "protection": {"breaker_threshold": 0, "retry_attempts": 1},
    }
    if tls is not None:
        backend["tls"] = tls
    return base_config(backends={"legacy": backend}, default_backend="legacy")


def listed(directory: Path, settings: dict[str, Any]) -> httpx.Response:
    """One canonical ``session.list`` through a Rosetta serving ``settings``."""
    proxy = serve(directory, settings)
    try:
        return httpx.post(
            f"{proxy.url}/rosetta/v1/session.list",
            auth=("admin", ADMIN_PASSWORD),
            json={},
            timeout=30,
        )
    finally:
        proxy.stop()


@pytest.mark.parametrize("transport", ["httptools", "aiohttp", "httpx"])
def test_an_upstream_certified_by_a_private_ca_is_reached_with_ca_file(
    transport: str, upstream: GeminiDb, pem: dict[str, str], tmp_path: Path
) -> None:
    answer = listed(tmp_path, config(upstream.server.url, {"ca_file": pem["ca"]}, transport))
    assert answer.status_code == 200, answer.text
    assert [s["id"] for s in answer.json()["sessions"]] == ["7"]
    assert upstream.tokens == [UPSTREAM_TOKEN]


def test_without_ca_file_the_upstream_certificate_is_refused_before_anything_is_sent(
    upstream: GeminiDb, tmp_path: Path
) -> None:
    answer = listed(tmp_path, config(upstream.server.url, None))
    assert answer.status_code == 502
    assert answer.json()["error"]["kind"] == "upstream_unavailable"
    assert upstream.tokens == []


def test_a_server_that_asks_for_a_client_certificate_gets_the_configured_one(
    upstream_asking_for_a_client_certificate: GeminiDb, pem: dict[str, str], tmp_path: Path
) -> None:
    played = upstream_asking_for_a_client_certificate
    mutual = {"ca_file": pem["ca"], "cert_file": pem["cert"], "key_file": pem["key"]}
    answer = listed(tmp_path, config(played.server.url, mutual))
    assert answer.status_code == 200, answer.text
    assert [s["id"] for s in answer.json()["sessions"]] == ["7"]

    refused = listed(tmp_path, config(played.server.url, {"ca_file": pem["ca"]}))
    assert refused.status_code == 502
    assert refused.json()["error"]["kind"].startswith("upstream_")
    assert played.tokens == [UPSTREAM_TOKEN]  # only the request with the certificate


@pytest.mark.parametrize(
    ("tls", "named"),
    [
        ({"ca_file": "{missing}"}, "backends.legacy.tls.ca_file: cannot load"),
        ({"ca_file": "{junk}"}, "backends.legacy.tls.ca_file: cannot load"),
        ({"cert_file": "{junk}", "key_file": "{key}"}, "backends.legacy.tls.cert_file"),
        ({"cert_file": "{cert}"}, "cert_file and key_file go together"),
        (
            {"cert_file": "{cert}", "key_file": "{encrypted_key}"},
            "key_file: {encrypted_key} is encrypted",
        ),
        ({"ca_file": "{ca}", "verify": "false"}, "backends.legacy.tls.verify"),
    ],
    ids=["missing-ca", "junk-ca", "junk-cert", "cert-without-key", "encrypted-key", "no-verify"],
)
def test_tls_files_that_do_not_load_fail_the_check_naming_the_key(
    tls: dict[str, str], named: str, pem: dict[str, str], tmp_path: Path
) -> None:
    files = {**pem, "missing": str(tmp_path / "missing.pem")}
    settings = config("https://legacy.example:8443", {k: v.format(**files) for k, v in tls.items()})
    result = check_config(tmp_path, settings)
    assert result.returncode != 0
    assert named.format(**files) in result.stderr


def test_tls_settings_on_a_plain_http_upstream_fail_the_check(
    pem: dict[str, str], tmp_path: Path
) -> None:
    result = check_config(tmp_path, config("http://legacy.example:8080", {"ca_file": pem["ca"]}))
    assert result.returncode != 0
    assert "tls applies to an https:// url only" in result.stderr


def test_a_good_tls_section_passes_the_check(pem: dict[str, str], tmp_path: Path) -> None:
    mutual = {"ca_file": pem["ca"], "cert_file": pem["cert"], "key_file": pem["key"]}
    result = check_config(tmp_path, config("https://legacy.example:8443", mutual))
    assert result.returncode == 0, result.stderr
