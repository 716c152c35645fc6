"""Configuration: every shipped config passes ``rosetta check``; a broken one fails naming the
file and the key path; ``${VAR}`` interpolation; unknown dialects fail at start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from proxy.settings import ConfigError, load_settings, parse_settings

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
SHIPPED = sorted(CONFIG_DIR.glob("*.yaml"))


def rosetta(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_the_embedded_default_is_shipped_and_checks() -> None:
    assert CONFIG_DIR / "rosetta.yaml" in SHIPPED
    result = rosetta("check")
    assert result.returncode == 0, result.stderr
    assert "ok: embedded default" in result.stdout


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_checks(path: Path) -> None:
    result = rosetta("check", "--config", str(path))
    assert result.returncode == 0, result.stderr


def test_embedded_default_listens_on_loopback_with_every_dialect() -> None:
    settings = load_settings(None)
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert set(settings.inbound) == {
        "rosetta",
        "faircom",
        "blobcity",
        "maxscale",
        "geminidb",
        "jump",
    }
    assert settings.default_backend == "local"


@pytest.mark.parametrize(
    ("mutate", "key_path"),
    [
        (lambda c: c["server"].update(port="eighty"), "server.port"),
        (
            lambda c: c["backends"].update(bad={"type": "upstream", "dialect": "faircom"}),
            "backends.bad.url",
        ),
        (
            lambda c: c["backends"].update(
                bad={"type": "upstream", "dialect": "faircom", "url": "ftp://x"}
            ),
            "backends.bad.url",
        ),
        (lambda c: c["sessions"].update(store="postgres://x"), "sessions.store"),
        (lambda c: c.update(surprise=1), "surprise"),
        (lambda c: c["users"][0].update(role="root"), "users.0.role"),
    ],
)
def test_broken_config_names_file_and_key_path(tmp_path: Path, mutate, key_path: str) -> None:  # type: ignore[no-untyped-def]
    config = yaml.safe_load((CONFIG_DIR / "rosetta.yaml").read_text())
    mutate(config)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config))
    result = rosetta("check", "--config", str(path))
    assert result.returncode == 1
    assert f"{path}: {key_path}:" in result.stderr


def test_unknown_dialect_fails_at_start_up_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "unknown.yaml"
    path.write_text("inbound:\n  klingon: {}\nusers: [{name: a, password: b}]\n")
    for command in ("check", "serve"):
        result = rosetta(command, "--config", str(path))
        assert result.returncode == 1
        assert "inbound.klingon: unknown dialect 'klingon'" in result.stderr
        assert "installed dialects:" in result.stderr


def test_unreadable_and_invalid_yaml_are_reported(tmp_path: Path) -> None:
    missing = rosetta("check", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [unclosed\n")
    invalid = rosetta("check", "--config", str(bad))
    assert invalid.returncode == 1 and "not valid YAML" in invalid.stderr


def test_invalid_yaml_is_located_without_quoting_the_line(tmp_path: Path) -> None:
    """The offending line may hold a secret: the message names where, not what was there."""
    bad = tmp_path / "bad.yaml"
    bad.write_text('users:\n  - name: a\n    password: "hunter2-secret\n    role: admin\n')
    invalid = rosetta("check", "--config", str(bad))
    assert invalid.returncode == 1
    assert "not valid YAML: while scanning a quoted scalar at line 3, column 15" in invalid.stderr
    assert "hunter2" not in invalid.stderr + invalid.stdout


def test_environment_interpolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROSETTA_TEST_PORT", "9191")
    settings = parse_settings(
        {"server": {"port": "${ROSETTA_TEST_PORT}", "host": "${ROSETTA_TEST_UNSET:-0.0.0.0}"}}, "t"
    )
    assert settings.server.port == 9191 and settings.server.host == "0.0.0.0"
    with pytest.raises(ConfigError, match=r"t: users\.0\.password: environment variable"):
        parse_settings({"users": [{"name": "a", "password": "${ROSETTA_TEST_UNSET}"}]}, "t")


def test_generated_admin_password_is_printed_once_and_works(tmp_path: Path) -> None:
    from tests.support.servers import free_port, start_process

    port = free_port()
    env = {"ROSETTA_ADMIN_PASSWORD": ""}
    server = start_process(["serve", "--port", str(port)], port, tmp_path / "log", env=env)
    try:
        lines = [line for line in server.logs().splitlines() if "generated password" in line]
        assert len(lines) == 1
        password = lines[0].split(": ", 2)[2].split(" ")[0]
        import httpx

        ok = httpx.post(f"{server.url}/rosetta/v1/session.list", json={}, auth=("admin", password))
        assert ok.status_code == 200
    finally:
        server.stop()
