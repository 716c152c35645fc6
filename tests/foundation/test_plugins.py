"""A third-party package adds a dialect through the ``rosetta.translators`` entry-point group,
without touching this repository: installed with pip, listed, and served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, base_config
from tests.support.servers import serve

PLUGIN = Path(__file__).resolve().parents[1] / "fixtures" / "plugin"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(PLUGIN),
        ],
        check=True,
        timeout=180,
        cwd=build,
    )
    assert list(target.glob("rosetta_echo_dialect-*.dist-info"))
    return target


def test_installed_plugin_is_listed(plugin_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    listed = subprocess.run(
        [sys.executable, "-m", "proxy", "dialects"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert "echo  (rosetta_echo_dialect.EchoTranslator)" in listed.stdout
    assert "/echo/v1/{operation}" in listed.stdout
    plain = subprocess.run(
        [sys.executable, "-m", "proxy", "dialects"], capture_output=True, text=True, timeout=60
    )
    assert "echo" not in plain.stdout


def test_installed_plugin_serves_requests(plugin_path: Path, tmp_path: Path) -> None:
    config = base_config(inbound={"echo": {}})
    server = serve(tmp_path, config, env={"PYTHONPATH": str(plugin_path)})
    try:
        reply = httpx.post(
            f"{server.url}/echo/v1/session.login",
            json={"credentials": {"user": "admin", "password": ADMIN_PASSWORD}},
        )
        assert reply.status_code == 200
        assert reply.json()["session"]["service"] == "echo"
    finally:
        server.stop()
