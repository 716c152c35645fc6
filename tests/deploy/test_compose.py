"""deploy/docker-compose.yml, its nginx load balancer, Rosetta config, seed and env template.
No Docker engine runs here, so the file is held to its structure (services, replicas, health
checks, shared Redis store, no literal secrets), and the two Rosetta commands it runs, the
legacy FairCom emulator and ``rosetta serve``, are run here with its own files."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.deploy.artefacts import (
    COMPOSE,
    DEPLOY,
    REPO,
    excluded_from_context,
    healthcheck_command,
    load_compose,
    load_dockerfile,
    local_argv,
    rosetta_check,
)
from tests.support.servers import ServerProcess, free_port, start_process
from translators.codec import session_from_json

CONFIG_PATH = "/etc/rosetta/rosetta.yaml"
REDIS_URL = "redis://redis:6379/0"
TEST_SECRET = "compose-test-session-secret-0123456789ab"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY", re.IGNORECASE)
VARIABLE = re.compile(r"\$\{(\w+)(?::[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"][name]
    return found


def image_argv(compose: dict[str, Any], name: str) -> list[str]:
    """What a service built from deploy/Dockerfile runs: its entrypoint (or the image's)
    followed by its command (or, when the entrypoint is the image's, the image's CMD: compose
    drops the image's CMD when a service sets its own entrypoint)."""
    final = load_dockerfile().final
    entrypoint, cmd = final.last("ENTRYPOINT"), final.last("CMD")
    assert entrypoint is not None and cmd is not None
    spec = service(compose, name)
    if "entrypoint" in spec:
        return [*spec["entrypoint"], *spec.get("command", [])]
    return [*(entrypoint.exec_form() or []), *(spec.get("command") or cmd.exec_form() or [])]


def mounts(spec: dict[str, Any]) -> dict[str, tuple[Path, str]]:
    """Container path -> (host path, options) of each bind mount."""
    found = {}
    for volume in spec.get("volumes", []):
        host, container, *options = volume.split(":")
        found[container] = ((COMPOSE.parent / host).resolve(), ",".join(options))
    return found


def env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


# structure ------------------------------------------------------------------------------------
def test_services_tell_the_migration_story(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"lb", "rosetta", "redis", "legacy-faircom"}
    rosetta = service(compose, "rosetta")
    assert rosetta["deploy"]["replicas"] == 2
    assert rosetta["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (COMPOSE.parent / rosetta["build"]["context"] / "deploy" / "Dockerfile").is_file()
    assert "ports" not in rosetta  # reached only through the load balancer
    assert set(rosetta["depends_on"]) == {"redis", "legacy-faircom"}
    assert all(d["condition"] == "service_healthy" for d in rosetta["depends_on"].values())
    assert service(compose, "lb")["depends_on"] == {"rosetta": {"condition": "service_healthy"}}
    legacy = service(compose, "legacy-faircom")
    assert legacy["image"] == rosetta["image"]  # the same image plays the legacy server


def test_replicas_share_one_redis_store_and_one_secret(compose: dict[str, Any]) -> None:
    argv = image_argv(compose, "rosetta")
    assert argv[:2] == ["rosetta", "serve"]
    assert argv[argv.index("--session-store") + 1] == REDIS_URL
    assert argv[argv.index("--config") + 1] == CONFIG_PATH
    config, options = mounts(service(compose, "rosetta"))[CONFIG_PATH]
    assert config == DEPLOY / "compose" / "rosetta.yaml" and options == "ro"
    assert "${ROSETTA_SESSION_SECRET}" in config.read_text(encoding="utf-8")
    environment = service(compose, "rosetta")["environment"]
    assert VARIABLE.fullmatch(environment["ROSETTA_SESSION_SECRET"])


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    image_check = healthcheck_command(load_dockerfile().final)
    assert "/healthz" in image_check[-1]
    for name, spec in compose["services"].items():
        if spec.get("build") or spec.get("image") == service(compose, "rosetta")["image"]:
            # built from deploy/Dockerfile: its HEALTHCHECK (127.0.0.1:8080), not switched off
            assert "healthcheck" not in spec, name
            argv = image_argv(compose, name)
            assert argv[argv.index("--port") + 1] == "8080", name
        else:
            test = spec["healthcheck"]["test"]
            assert test[0] == "CMD" and len(test) > 1, name


def test_containers_are_locked_down(compose: dict[str, Any]) -> None:
    for name in ("rosetta", "legacy-faircom"):
        spec = service(compose, name)
        assert spec["read_only"] is True and spec["tmpfs"] == ["/tmp"], name
        assert spec["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in spec["security_opt"], name


def test_only_loopback_host_ports_are_published(compose: dict[str, Any]) -> None:
    published = {name: spec.get("ports", []) for name, spec in compose["services"].items()}
    assert set(name for name, ports in published.items() if ports) == {"lb", "legacy-faircom"}
    for ports in published.values():
        for mapping in ports:
            assert mapping.startswith("127.0.0.1:") and mapping.endswith(":8080"), mapping


def test_no_literal_secrets(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for name, spec in compose["services"].items():
        for key, value in (spec.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert VARIABLE.fullmatch(value), f"{name}: {key} is written into the file"
        command = spec.get("command") or []
        for at, arg in enumerate(command[:-1]):
            if arg == "--user":  # NAME:PASSWORD
                password = command[at + 1].partition(":")[2]
                assert VARIABLE.fullmatch(password), f"{name}: a password is written literally"
    referenced = set(VARIABLE.findall(text))
    template = env_example()
    assert referenced <= set(template), referenced - set(template)
    for name, value in template.items():
        if SECRET_NAME.search(name):
            assert value == "", f"{name} has a value in the template"


def test_the_filled_in_env_file_stays_out_of_git_and_the_image() -> None:
    assert excluded_from_context("deploy/.env")
    ignored = subprocess.run(
        ["git", "check-ignore", "--quiet", "deploy/.env"], cwd=REPO, timeout=60
    )
    assert ignored.returncode == 0, "deploy/.env is not ignored by git"
    tracked = subprocess.run(
        ["git", "check-ignore", "--quiet", "deploy/.env.example"], cwd=REPO, timeout=60
    )
    assert tracked.returncode == 1, "the template must stay in git"


def test_the_legacy_backend_is_the_faircom_emulator_with_seeded_sessions(
    compose: dict[str, Any],
) -> None:
    argv = image_argv(compose, "legacy-faircom")
    assert argv[:3] == ["rosetta", "emulate", "faircom"]
    seed = argv[argv.index("--sessions") + 1]
    host_dir, options = mounts(service(compose, "legacy-faircom"))["/seed"]
    assert options == "ro"
    records = orjson.loads((host_dir / Path(seed).name).read_bytes())
    assert [session_from_json(r).id for r in records] == ["101", "102"]
    user = argv[argv.index("--user") + 1]
    name, _, password = user.partition(":")
    assert name == "admin" and VARIABLE.fullmatch(password)


def test_nginx_balances_over_the_replicas_and_keeps_metrics_inside(
    compose: dict[str, Any],
) -> None:
    lb = service(compose, "lb")
    config_path, _ = mounts(lb)["/etc/nginx/nginx.conf"]
    nginx = config_path.read_text(encoding="utf-8")
    assert re.search(r"server rosetta:8080 resolve\b", nginx)
    assert re.search(r"listen 8080;", nginx)
    assert re.search(r"location = /metrics \{\s*return 404;", nginx)
    health = lb["healthcheck"]["test"]
    assert health[-1].endswith("/lb-healthz") and "location = /lb-healthz" in nginx
    # Rosetta, not nginx, refuses a large body: in the caller's dialect, not an HTML page
    limit = re.search(r"client_max_body_size (\d+)m;", nginx)
    assert limit and int(limit.group(1)) * 2**20 > 1048576


# the configuration ----------------------------------------------------------------------------
def test_compose_config_passes_rosetta_check() -> None:
    result = rosetta_check(DEPLOY / "compose" / "rosetta.yaml", {"ROSETTA_SESSION_SECRET": "x"})
    assert result.returncode == 0, result.stderr


def test_compose_config_needs_the_session_secret() -> None:
    result = rosetta_check(DEPLOY / "compose" / "rosetta.yaml", {})
    assert result.returncode == 1
    assert "ROSETTA_SESSION_SECRET is not set" in result.stderr


# running what the containers run -------------------------------------------------------------
@pytest.fixture(scope="module")
def legacy(
    compose: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The legacy-faircom service's command with its seed, on a free loopback port."""
    argv = image_argv(compose, "legacy-faircom")
    host_dir, _ = mounts(service(compose, "legacy-faircom"))["/seed"]
    seed = argv[argv.index("--sessions") + 1]
    password_arg = argv[argv.index("--user") + 1]
    port = free_port()
    args = local_argv(
        argv,
        {seed: str(host_dir / Path(seed).name), password_arg: "admin:legacy-test-password-1"},
    )
    server = start_process(
        [*args, "--host", "127.0.0.1", "--port", str(port)],
        port,
        tmp_path_factory.mktemp("legacy") / "legacy.log",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replica(
    compose: dict[str, Any], legacy: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One rosetta replica's command with the compose config, pointed at the emulator; the
    memory store stands in for the compose network's Redis."""
    port = free_port()
    args = local_argv(
        image_argv(compose, "rosetta"),
        {CONFIG_PATH: str(DEPLOY / "compose" / "rosetta.yaml"), REDIS_URL: "memory"},
    )
    server = start_process(
        [*args, "--host", "127.0.0.1", "--port", str(port)],
        port,
        tmp_path_factory.mktemp("replica") / "rosetta.log",
        env={"ROSETTA_SESSION_SECRET": TEST_SECRET, "LEGACY_FAIRCOM_URL": legacy.url},
    )
    yield server
    server.stop()


def test_the_legacy_emulator_starts_with_the_seed(legacy: ServerProcess) -> None:
    assert httpx.get(legacy.url + "/readyz", timeout=10).status_code == 200
    metrics = httpx.get(legacy.url + "/metrics", timeout=10).text
    # the two seeded sessions are live in the emulator's registry
    assert re.search(r"^rosetta_live_sessions 2\.0$", metrics, re.MULTILINE), metrics


def test_a_replica_starts_with_the_compose_config(replica: ServerProcess) -> None:
    assert httpx.get(replica.url + "/readyz", timeout=10).status_code == 200
