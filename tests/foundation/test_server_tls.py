"""HTTPS for callers (``server.tls``), over real processes: with one worker and with two
(each worker serves HTTPS), a client that trusts the certificate's CA gets answers, a
plain-HTTP request to the same port gets none; with ``client_ca_file`` only callers with a
certificate from that CA get a connection; certificate files that do not load fail
``rosetta check`` naming the key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tests.conftest import ADMIN_PASSWORD, base_config
from tests.support.certs import pem_files, trusting
from tests.support.redis import RedisServer
from tests.support.servers import check_config, serve


@pytest.fixture(scope="module")
def pem(authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return pem_files(authority, tmp_path_factory.mktemp("pem"), "127.0.0.1")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


def https_config(pem: dict[str, str], **server: Any) -> dict[str, Any]:
    config = base_config()
    tls = {"cert_file": pem["cert"], "key_file": pem["key"]}
    config["server"] = {**config["server"], "tls": tls, **server}
    return config


@pytest.mark.parametrize("workers", [1, 2])
def test_callers_that_trust_the_certificate_are_served_over_https(
    workers: int,
    authority: trustme.CA,
    pem: dict[str, str],
    redis_url: str,
    tmp_path: Path,
) -> None:
    config = https_config(pem, workers=workers)
    if workers > 1:
        config["sessions"] = {**config["sessions"], "store": redis_url}
    proxy = serve(tmp_path, config, tls=trusting(authority))
    try:
        assert proxy.url.startswith("https://")
        with httpx.Client(verify=trusting(authority), timeout=30) as client:
            login = client.post(
                f"{proxy.url}/rosetta/v1/session.login",
                json={"credentials": {"user": "admin", "password": ADMIN_PASSWORD}},
            )
            assert login.status_code == 200, login.text
            listed = client.post(
                f"{proxy.url}/rosetta/v1/session.list",
                json={"credentials": {"token": login.json()["token"]}},
            )
            assert listed.status_code == 200 and listed.json()["total"] >= 1
        with pytest.raises(httpx.TransportError):  # plain HTTP on the HTTPS port
            httpx.get(f"http://127.0.0.1:{proxy.port}/healthz", timeout=5)
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA
            httpx.get(f"{proxy.url}/healthz", timeout=5)
    finally:
        proxy.stop()


def test_with_client_ca_file_only_callers_with_a_certificate_from_it_are_served(
    authority: trustme.CA, pem: dict[str, str], tmp_path: Path
) -> None:
    config = https_config(pem)
    config["server"]["tls"] = {**config["server"]["tls"], "client_ca_file": pem["ca"]}
    caller = pem_files(authority, tmp_path, "billing-app")
    with_certificate = trusting(authority)
    with_certificate.load_cert_chain(caller["cert"], caller["key"])
    proxy = serve(tmp_path, config, tls=with_certificate)
    try:
        answer = httpx.post(
            f"{proxy.url}/rosetta/v1/session.list",
            auth=("admin", ADMIN_PASSWORD),
            json={},
            verify=with_certificate,
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        strangers = trustme.CA().issue_cert("intruder")
        other_ca = trusting(authority)
        strangers.configure_cert(other_ca)
        for refused in (trusting(authority), other_ca):  # no certificate; one from another CA
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{proxy.url}/healthz", verify=refused, timeout=5)
    finally:
        proxy.stop()


@pytest.mark.parametrize(
    ("cert", "key", "named"),
    [
        ("{missing}", "{key}", "server.tls.cert_file: cannot load {missing}"),
        ("{junk}", "{key}", "server.tls.cert_file: cannot load {junk}"),
        ("{cert}", "{encrypted_key}", "server.tls.key_file: {encrypted_key} is encrypted"),
        ("{cert}", "{key}", "server.tls.client_ca_file: cannot load {junk}"),
    ],
    ids=["missing", "junk", "encrypted-key", "junk-client-ca"],
)
def test_a_certificate_that_does_not_load_fails_the_check_naming_the_key(
    cert: str, key: str, named: str, pem: dict[str, str], tmp_path: Path
) -> None:
    files = {**pem, "missing": str(tmp_path / "missing.pem")}
    config = base_config()
    tls = {"cert_file": cert.format(**files), "key_file": key.format(**files)}
    if "client_ca_file" in named:
        tls["client_ca_file"] = files["junk"]
    config["server"] = {**config["server"], "tls": tls}
    result = check_config(tmp_path, config)
    assert result.returncode != 0
    assert named.format(**files) in result.stderr


def test_a_good_certificate_passes_the_check(pem: dict[str, str], tmp_path: Path) -> None:
    result = check_config(tmp_path, https_config(pem))
    assert result.returncode == 0, result.stderr
