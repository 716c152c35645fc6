"""deploy/Dockerfile and .dockerignore, read as a reviewer would (no Docker engine runs here):
multi-stage on one slim Python base, the wheel built and installed with the redis and otel
extras in the builder, nothing to build with in the final stage, a numeric non-root USER, a
HEALTHCHECK on /healthz without curl, the same ``rosetta serve`` the tests run. Then the parts
that can run without Docker: the builder's wheel from the filtered build context, and the
image's command and health check against a real server."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.artefacts import (
    REPO,
    Dockerfile,
    Stage,
    excluded_from_context,
    healthcheck_command,
    load_dockerfile,
    local_argv,
)
from tests.support.servers import ServerProcess, free_port, start_process

CONFIG_PATH = "/etc/rosetta/rosetta.yaml"
# the builder's `pip wheel --no-deps`, without fetching setuptools (the test extra has it)
PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
BUILD_TOOLS = ("gcc", "g++", "make", "build-essential", "python3-dev", "libc-dev", "cargo")


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return load_dockerfile()


def copies_from_context(stage: Stage) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY that reads the build context (no --from)."""
    copies = []
    for instruction in stage.all("COPY"):
        words = instruction.words()
        if any(w.startswith("--from=") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        copies.append((paths[:-1], paths[-1]))
    return copies


def runs(stage: Stage) -> str:
    return "\n".join(i.value for i in stage.all("RUN"))


def pip_commands(script: str) -> list[str]:
    """The pip subcommand of each command in a RUN script (``install``, ``wheel``...)."""
    found = []
    for command in re.split(r"&&|\|\||;|\n", script):
        words = shlex.split(command)
        starts = [i for i, w in enumerate(words) if w in ("pip", "pip3") or w.endswith("/pip")]
        if not starts:
            continue
        rest = iter(words[starts[0] + 1 :])
        for word in rest:
            if word in ("--python", "--prefix", "--target"):
                next(rest, None)  # an option with a separate value
            elif not word.startswith("-"):
                found.append(word)
                break
    return found


# structure ------------------------------------------------------------------------------------
def test_two_stages_on_the_same_slim_python_3_11_base(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2
    builder = dockerfile.stage("builder")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", builder.base), builder.base
    # the venv is copied by path: its interpreter link must exist in the final stage too
    assert dockerfile.final.base == builder.base


def test_builder_builds_a_wheel_and_installs_it_with_redis_and_tracing_into_a_venv(
    dockerfile: Dockerfile,
) -> None:
    builder = dockerfile.stage("builder")
    script = runs(builder)
    assert pip_commands(script) == ["wheel", "install"]
    assert "pip wheel --no-deps --wheel-dir /wheels ." in script
    assert "python -m venv --without-pip /opt/rosetta" in script
    installed = r"--python /opt/rosetta/bin/python install \"\$\{wheel\}\[\$\{ROSETTA_EXTRAS\}\]\""
    assert re.search(installed, script)
    # the global default (a stage sees a global ARG only once it declares it again)
    assert dockerfile.args["ROSETTA_EXTRAS"] == "redis,otel"
    assert ["ROSETTA_EXTRAS"] in [i.words() for i in builder.all("ARG")]


def test_final_stage_copies_only_the_venv_and_the_default_config(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    assert copies_from_context(final) == [], "the final stage must not read the source tree"
    copied = [i.words() for i in final.all("COPY")]
    assert copied == [
        ["--from=builder", "/opt/rosetta", "/opt/rosetta"],
        ["--from=builder", "/src/config/rosetta.yaml", CONFIG_PATH],
    ]
    env = " ".join(i.value for i in final.all("ENV"))
    assert "PATH=/opt/rosetta/bin:$PATH" in env


def test_no_build_tools_in_the_final_stage(dockerfile: Dockerfile) -> None:
    script = runs(dockerfile.final)
    assert not re.search(r"\b(apt-get|apt|apk|yum|dnf)\b", script), "installs system packages"
    assert pip_commands(script) == ["uninstall"], "installs Python packages"
    for tool in BUILD_TOOLS:
        assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", script), tool
    # the base image's own installer is removed; the venv was made --without-pip
    assert "pip uninstall --yes --quiet pip setuptools wheel" in script


def test_runs_as_a_numeric_non_root_user(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    user = final.last("USER")
    assert user is not None
    uid, _, gid = user.value.partition(":")
    # numeric, so that Kubernetes can verify runAsNonRoot against the image
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    keywords = [i.keyword for i in final.instructions]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    assert f"--uid {uid} " in runs(final) and f"--gid {gid} " in runs(final)


def test_healthcheck_asks_healthz_with_python_not_curl(dockerfile: Dockerfile) -> None:
    command = healthcheck_command(dockerfile.final)
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2]
    assert "http://127.0.0.1:8080/healthz" in command[2]
    assert not any(tool in " ".join(command) for tool in ("curl", "wget"))


def test_exposes_8080_and_serves_with_the_same_rosetta_serve(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    assert [i.value for i in final.all("EXPOSE")] == ["8080"]
    entrypoint = final.last("ENTRYPOINT")
    cmd = final.last("CMD")
    assert entrypoint is not None and cmd is not None
    assert entrypoint.exec_form() == ["rosetta", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert cmd.exec_form() == ["--config", CONFIG_PATH]


def test_no_secret_is_baked_into_the_image(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        for instruction in stage.all("ENV") + stage.all("ARG"):
            assert not re.search(r"SECRET|PASSWORD|TOKEN|_KEY", instruction.value), instruction


# build context --------------------------------------------------------------------------------
def test_dockerignore_keeps_out_history_environments_caches_and_secrets() -> None:
    for path in (
        ".git/config",
        ".venv/bin/python",
        ".pytest_cache/v/cache",
        ".mypy_cache/3.11/proxy",
        ".ruff_cache/x",
        "proxy/__pycache__/cli.cpython-311.pyc",
        "rosetta_proxy.egg-info/PKG-INFO",
        "bench/results/run-1.json",
        "tests/conftest.py",
        ".env",
        "deploy/.env",
        "config/.env.production",
    ):
        assert excluded_from_context(path), path


def test_everything_the_builder_copies_is_in_the_build_context(dockerfile: Dockerfile) -> None:
    for sources, _ in copies_from_context(dockerfile.stage("builder")):
        for source in sources:
            assert (REPO / source).exists(), source
            assert not excluded_from_context(source), source


def build_context_copy(dockerfile: Dockerfile, into: Path) -> Path:
    """What the builder's COPY lines put in /src, taken from the repository through the
    .dockerignore filter."""
    src = into / "src"
    src.mkdir()
    for sources, destination in copies_from_context(dockerfile.stage("builder")):
        for source in sources:
            origin = REPO / source
            target = src / source if destination.endswith("/") else src / destination
            if origin.is_file():
                shutil.copy2(origin, src / Path(source).name)
                continue
            for path in origin.rglob("*"):
                relative = path.relative_to(REPO).as_posix()
                if path.is_file() and not excluded_from_context(relative):
                    out = target / path.relative_to(origin)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, out)
    return src


def test_the_builder_wheel_holds_the_whole_project(dockerfile: Dockerfile, tmp_path: Path) -> None:
    src = build_context_copy(dockerfile, tmp_path)
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [*PIP_WHEEL, "--wheel-dir", str(wheels), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    [wheel] = wheels.glob("rosetta_proxy-*.whl")  # the name the builder's `ls` expects
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    for package in ("proxy", "translators"):
        for module in (REPO / package).rglob("*.py"):
            assert module.relative_to(REPO).as_posix() in names, module
    assert "config/rosetta.yaml" in names
    assert re.search(r"^rosetta = proxy\.cli:main$", entry_points, re.MULTILINE)
    assert "[rosetta.translators]" in entry_points
    assert "Provides-Extra: redis" in metadata
    assert re.search(r"^Requires-Dist: redis.*extra == \"redis\"", metadata, re.MULTILINE)
    # every extra the image's ROSETTA_EXTRAS names exists in the wheel
    for extra in dockerfile.args["ROSETTA_EXTRAS"].split(","):
        assert re.search(rf"^Provides-Extra: {extra}$", metadata, re.MULTILINE), extra


# the image's command and health check, run here ------------------------------------------------
@pytest.fixture(scope="module")
def image_command_server(
    dockerfile: Dockerfile, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """ENTRYPOINT + CMD with the default config the image copies to /etc/rosetta, listening on
    a free loopback port instead of 0.0.0.0:8080 (later flags win)."""
    final = dockerfile.final
    entrypoint, cmd = final.last("ENTRYPOINT"), final.last("CMD")
    assert entrypoint is not None and cmd is not None
    argv = (entrypoint.exec_form() or []) + (cmd.exec_form() or [])
    port = free_port()
    args = local_argv(argv, {CONFIG_PATH: str(REPO / "config" / "rosetta.yaml")})
    server = start_process(
        [*args, "--host", "127.0.0.1", "--port", str(port)],
        port,
        tmp_path_factory.mktemp("image") / "rosetta.log",
        env={"ROSETTA_ADMIN_PASSWORD": "image-test-password-42"},
    )
    yield server
    server.stop()


def run_healthcheck(dockerfile: Dockerfile, port: int) -> int:
    command = healthcheck_command(dockerfile.final)
    assert command[0] == "python"
    code = command[2].replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, env=dict(os.environ)
    )
    return result.returncode


def test_the_image_command_serves_and_its_healthcheck_passes(
    dockerfile: Dockerfile, image_command_server: ServerProcess
) -> None:
    assert image_command_server.alive()
    assert run_healthcheck(dockerfile, image_command_server.port) == 0


def test_the_healthcheck_fails_when_nothing_answers(dockerfile: Dockerfile) -> None:
    assert run_healthcheck(dockerfile, free_port()) != 0
