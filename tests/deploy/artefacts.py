"""Readers for the deployment artefacts the tests check: a small Dockerfile parser (stages,
instructions, exec-form arguments), Docker's ``.dockerignore`` matching, the Kubernetes and
compose YAML, and the way from a container's ``rosetta ...`` command to the same command run
here as ``python -m proxy ...`` on a free loopback port.

No Docker engine or cluster runs on the test machine: these readers are how the artefacts are
held to their rules."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE = DEPLOY / "docker-compose.yml"

# kubernetes-validate ships schemas for each minor release; these are the ones held to
KUBERNETES_VERSIONS = ("1.30.0", "1.33.0")


# Dockerfile -----------------------------------------------------------------------------------
@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    value: str  # everything after the keyword, continuation lines joined

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, or ``None`` for shell form."""
        text = self.value.strip()
        if not text.startswith("["):
            return None
        parsed = json.loads(text)
        assert isinstance(parsed, list) and all(isinstance(p, str) for p in parsed)
        return parsed

    def words(self) -> list[str]:
        return shlex.split(self.value)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    args: dict[str, str]  # ARGs declared before the first FROM, with their defaults
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def parse_dockerfile(text: str) -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped; stages split at FROM
    with global ``${ARG}``s substituted in the base image."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments may sit inside a continued instruction too
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"

    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, value = line.partition(" ")
        instruction = Instruction(keyword.upper(), value.strip())
        if instruction.keyword == "ARG" and not stages:
            name, _, default = instruction.value.partition("=")
            args[name] = default
        elif instruction.keyword == "FROM":
            words = instruction.words()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        else:
            assert stages, f"{instruction.keyword} before the first FROM"
            stages[-1].instructions.append(instruction)
    return Dockerfile(args, stages)


def load_dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def healthcheck_command(stage: Stage) -> list[str]:
    """The exec-form command of the stage's HEALTHCHECK (options such as --interval skipped)."""
    instruction = stage.last("HEALTHCHECK")
    assert instruction is not None, "no HEALTHCHECK"
    _, cmd, rest = instruction.value.partition("CMD ")
    assert cmd, f"HEALTHCHECK without CMD: {instruction.value}"
    command = Instruction("CMD", rest).exec_form()
    assert command is not None, "HEALTHCHECK CMD must be exec form (no shell in the probe)"
    return command


# .dockerignore --------------------------------------------------------------------------------
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            parts.append(pattern[i : end + 1])
            i = end + 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts))


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(exclude?, regex) per line of .dockerignore, in order; the last match decides."""
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:] if negated else line
        rules.append((not negated, _pattern_regex(pattern.strip("/"))))
    return rules


def excluded_from_context(relative: str) -> bool:
    """Whether Docker leaves ``relative`` (a path from the repository root) out of the build
    context: a path is out when it, or a directory above it, matches an exclusion that no
    later ``!`` pattern takes back."""
    rules = dockerignore_rules()
    parts = relative.strip("/").split("/")
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        verdict = None
        for exclude, regex in rules:
            if regex.fullmatch(prefix):
                verdict = exclude
        if verdict:
            return True
    return False


# YAML -----------------------------------------------------------------------------------------
def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def kubernetes_manifests() -> dict[str, list[dict[str, Any]]]:
    """Every Kubernetes object in deploy/kubernetes/, by file name (kustomization.yaml, a
    kustomize file rather than an object, is left out)."""
    return {
        path.name: yaml_documents(path)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def find_object(kind: str, name: str) -> dict[str, Any]:
    for documents in kubernetes_manifests().values():
        for document in documents:
            if document["kind"] == kind and document["metadata"]["name"] == name:
                return document
    raise AssertionError(f"no {kind} {name} in deploy/kubernetes/")


def load_compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


# running what a container runs ----------------------------------------------------------------
def local_argv(container_argv: list[str], replacements: dict[str, str]) -> list[str]:
    """A container's ``rosetta ...`` argv as the arguments of ``python -m proxy``, with paths
    that exist only in the container replaced by local ones."""
    assert container_argv[0] == "rosetta", container_argv
    return [replacements.get(arg, arg) for arg in container_argv[1:]]


def rosetta_check(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``rosetta check --config FILE`` in a fresh process whose ``ROSETTA_*`` variables are
    exactly those of ``env`` (none inherited from the shell running the tests)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ROSETTA_")}
    return subprocess.run(
        [sys.executable, "-m", "proxy", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**inherited, **env},
    )
