"""deploy/kubernetes/: every manifest validates offline against the Kubernetes schemas that
kubernetes-validate ships (strict: unknown fields fail), and holds to what a reviewer checks:
non-root, read-only root filesystem, no privilege escalation, probes on /healthz and /readyz,
resources, a preStop drain, ``rosetta serve`` as the command, ports that agree, a ConfigMap
config that passes ``rosetta check``, a Secret of placeholders, and a loopback-only sidecar.
The Deployment's and the sidecar's commands are then run here with their ConfigMaps, and
answer their own probes."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from tests.deploy.artefacts import (
    KUBERNETES,
    KUBERNETES_VERSIONS,
    find_object,
    kubernetes_manifests,
    load_dockerfile,
    local_argv,
    rosetta_check,
    yaml_documents,
)
from tests.support.servers import ServerProcess, free_port, start_process

LABELS = {"app.kubernetes.io/name": "rosetta", "app.kubernetes.io/component": "proxy"}
NOT_IN_KUSTOMIZATION = {"secret.example.yaml", "sidecar-example.yaml"}
TEST_SECRET = "k8s-test-session-secret-0123456789abcdef"


def deployment() -> dict[str, Any]:
    return find_object("Deployment", "rosetta")


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = deployment()["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    [only] = pod_spec()["containers"]
    assert only["name"] == "rosetta"
    return dict(only)


def sidecar_objects() -> tuple[dict[str, Any], dict[str, Any]]:
    documents = yaml_documents(KUBERNETES / "sidecar-example.yaml")
    config_map = next(d for d in documents if d["kind"] == "ConfigMap")
    pod_owner = next(d for d in documents if d["kind"] == "Deployment")
    return config_map, pod_owner


def sidecar() -> dict[str, Any]:
    _, pod_owner = sidecar_objects()
    [rosetta] = pod_owner["spec"]["template"]["spec"]["initContainers"]
    return dict(rosetta)


def option(args: list[str], flag: str) -> str:
    """The value of the last ``flag`` in an argv (argparse: later flags win)."""
    values = [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]
    assert values, f"{flag} missing from {args}"
    return values[-1]


# schemas --------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    manifests = kubernetes_manifests()
    assert set(manifests) >= {
        "configmap.yaml",
        "deployment.yaml",
        "service.yaml",
        "hpa.yaml",
        "pdb.yaml",
        "secret.example.yaml",
        "sidecar-example.yaml",
    }
    kinds = set()
    for name, documents in manifests.items():
        assert documents, f"{name} holds no object"
        for document in documents:
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.ValidationError as exc:  # name file and path
                pytest.fail(f"{name}: {'.'.join(map(str, exc.path))}: {exc.message}")
            kinds.add((document["apiVersion"], document["kind"]))
    assert {
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
    } <= kinds


def test_the_validator_rejects_a_misspelt_field() -> None:
    broken = copy.deepcopy(deployment())
    security = broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    security["readOnlyRootFileSystem"] = security.pop("readOnlyRootFilesystem")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest_but_the_templates() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    listed = set(kustomization["resources"])
    assert all((KUBERNETES / name).is_file() for name in listed)
    assert listed == set(kubernetes_manifests()) - NOT_IN_KUSTOMIZATION
    [image] = kustomization["images"]
    assert image["name"] == container()["image"].split(":")[0]


# the Deployment -------------------------------------------------------------------------------
def test_pod_runs_non_root_read_only_without_privileges() -> None:
    pod = pod_spec()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container()["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security.get("privileged", False) is False


def test_pod_user_is_the_image_user() -> None:
    user = load_dockerfile().final.last("USER")
    assert user is not None
    uid, _, gid = user.value.partition(":")
    for security in (pod_spec()["securityContext"], sidecar()["securityContext"]):
        assert (security["runAsUser"], security["runAsGroup"]) == (int(uid), int(gid))


def test_writable_tmp_is_an_empty_dir_and_the_config_is_read_only() -> None:
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    mounts = {m["mountPath"]: m for m in container()["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    config_mount = mounts["/etc/rosetta"]
    assert config_mount["readOnly"] is True
    assert volumes[config_mount["name"]]["configMap"]["name"] == "rosetta-config"


def test_probes_liveness_healthz_readiness_readyz_on_the_served_port() -> None:
    main = container()
    [port] = main["ports"]
    assert port["containerPort"] == int(option(main["args"], "--port"))
    probes = {kind: main[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in [*probes.values(), main["startupProbe"]["httpGet"]]:
        assert probe["port"] in (port["name"], port["containerPort"])


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (``100m``, ``1``, ``128Mi``) as a number."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|)", str(value))
    assert match, value
    return float(match.group(1)) * units[match.group(2)]


@pytest.mark.parametrize("which", ["deployment", "sidecar"])
def test_resources_have_requests_within_limits(which: str) -> None:
    resources = (container() if which == "deployment" else sidecar())["resources"]
    for resource in ("cpu", "memory"):
        request = quantity(resources["requests"][resource])
        limit = quantity(resources["limits"][resource])
        assert 0 < request <= limit, (resource, request, limit)


def test_pre_stop_drains_before_sigterm_within_the_grace_period() -> None:
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    drain = int(command[1])
    assert drain >= 5
    # the grace period covers the drain and then the in-flight requests
    assert pod_spec()["terminationGracePeriodSeconds"] >= drain + 15


def test_the_container_runs_rosetta_serve_on_all_interfaces() -> None:
    main = container()
    assert main["command"] == ["rosetta", "serve"]
    args = main["args"]
    assert option(args, "--host") == "0.0.0.0"
    assert option(args, "--config") == "/etc/rosetta/rosetta.yaml"


def test_the_service_reaches_the_pods_port() -> None:
    service = find_object("Service", "rosetta")
    assert service["spec"]["selector"] == LABELS
    assert deployment()["spec"]["template"]["metadata"]["labels"] == LABELS
    assert deployment()["spec"]["selector"]["matchLabels"] == LABELS
    [port] = service["spec"]["ports"]
    [container_port] = container()["ports"]
    assert port["targetPort"] in (container_port["name"], container_port["containerPort"])
    assert port["port"] == container_port["containerPort"]


def test_autoscaler_and_disruption_budget_cover_the_deployment() -> None:
    hpa = find_object("HorizontalPodAutoscaler", "rosetta")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        "rosetta",
    )
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pdb = find_object("PodDisruptionBudget", "rosetta")
    assert pdb["spec"]["selector"]["matchLabels"] == LABELS
    # a budget that still lets a drain proceed at the minimum replica count
    if "maxUnavailable" in pdb["spec"]:
        assert pdb["spec"]["maxUnavailable"] >= 1
    else:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


# config and secrets ---------------------------------------------------------------------------
def configmap_text() -> str:
    text: str = find_object("ConfigMap", "rosetta-config")["data"]["rosetta.yaml"]
    return text


def test_secret_template_holds_only_placeholders_for_every_variable_the_config_needs() -> None:
    secret = find_object("Secret", "rosetta-secrets")
    assert "data" not in secret
    assert all(v.startswith("<REPLACE") for v in secret["stringData"].values())
    needed = set(re.findall(r"\$\{(\w+)\}", configmap_text()))  # no default: required
    env = {e["name"]: e for e in container()["env"]}
    assert needed <= set(env)
    for name in needed:
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "rosetta-secrets" and ref["key"] in secret["stringData"]


def test_no_literal_secret_in_the_deployment() -> None:
    for variable in container()["env"]:
        assert "value" not in variable, f"{variable['name']} is written into the manifest"


@pytest.fixture(scope="module")
def configmap_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("configmap") / "rosetta.yaml"
    path.write_text(configmap_text(), encoding="utf-8")
    return path


def test_configmap_config_passes_rosetta_check(configmap_file: Path) -> None:
    env = {"ROSETTA_SESSION_SECRET": TEST_SECRET, "ROSETTA_SESSION_STORE": "memory"}
    result = rosetta_check(configmap_file, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")


def test_configmap_config_passes_rosetta_check_with_a_redis_store(configmap_file: Path) -> None:
    pytest.importorskip("proxy.sessions.redis_store", reason="this build has no Redis store")
    env = {
        "ROSETTA_SESSION_SECRET": TEST_SECRET,
        "ROSETTA_SESSION_STORE": "redis://redis.example.internal:6379/0",
    }
    result = rosetta_check(configmap_file, env)
    assert result.returncode == 0, result.stderr


def test_configmap_config_refuses_to_start_without_its_secrets(configmap_file: Path) -> None:
    result = rosetta_check(configmap_file, {"ROSETTA_SESSION_STORE": "memory"})
    assert result.returncode == 1
    assert "ROSETTA_SESSION_SECRET is not set" in result.stderr


# the sidecar ----------------------------------------------------------------------------------
def test_sidecar_listens_on_loopback_only_and_the_app_talks_to_it_there(tmp_path: Path) -> None:
    config_map, pod_owner = sidecar_objects()
    rosetta = sidecar()
    assert rosetta["restartPolicy"] == "Always"  # a native sidecar: up before the app
    assert rosetta["command"] == ["rosetta", "serve"]
    assert option(rosetta["args"], "--host") == "127.0.0.1"
    config = yaml.safe_load(config_map["data"]["rosetta.yaml"])
    assert config["server"]["host"] == "127.0.0.1"
    assert "ports" not in rosetta  # nothing to publish
    port = option(rosetta["args"], "--port")
    [app] = pod_owner["spec"]["template"]["spec"]["containers"]
    urls = [e["value"] for e in app["env"] if "value" in e]
    assert any(u.startswith(f"http://127.0.0.1:{port}/") for u in urls), urls
    # the kubelet's HTTP probes go to the pod IP, which a loopback listener never answers
    for kind in ("startupProbe", "livenessProbe"):
        assert "httpGet" not in rosetta[kind] and "exec" in rosetta[kind], kind
    path = tmp_path / "sidecar.yaml"
    path.write_text(config_map["data"]["rosetta.yaml"], encoding="utf-8")
    result = rosetta_check(path, {})
    assert result.returncode == 0, result.stderr


def test_sidecar_is_as_locked_down_as_the_deployment() -> None:
    security = sidecar()["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    _, pod_owner = sidecar_objects()
    assert pod_owner["spec"]["template"]["spec"]["securityContext"]["seccompProfile"] == {
        "type": "RuntimeDefault"
    }


# running what the pods run --------------------------------------------------------------------
@pytest.fixture(scope="module")
def deployment_server(
    configmap_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The Deployment's command and args with its ConfigMap, on a free loopback port."""
    main = container()
    port = free_port()
    args = local_argv(
        main["command"] + main["args"], {"/etc/rosetta/rosetta.yaml": str(configmap_file)}
    )
    server = start_process(
        [*args, "--host", "127.0.0.1", "--port", str(port)],
        port,
        tmp_path_factory.mktemp("deployment") / "rosetta.log",
        env={"ROSETTA_SESSION_SECRET": TEST_SECRET, "ROSETTA_SESSION_STORE": "memory"},
    )
    yield server
    server.stop()


def test_the_deployment_command_answers_its_probes(deployment_server: ServerProcess) -> None:
    main = container()
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        path = main[kind]["httpGet"]["path"]
        response = httpx.get(deployment_server.url + path, timeout=10)
        assert response.status_code == 200, (kind, response.text)


def test_the_sidecar_command_answers_its_exec_probe(tmp_path: Path) -> None:
    config_map, _ = sidecar_objects()
    config = tmp_path / "rosetta.yaml"
    config.write_text(config_map["data"]["rosetta.yaml"], encoding="utf-8")
    rosetta = sidecar()
    port = free_port()
    args = local_argv(
        rosetta["command"] + rosetta["args"], {"/etc/rosetta/rosetta.yaml": str(config)}
    )
    server = start_process([*args, "--port", str(port)], port, tmp_path / "sidecar.log")
    try:
        probe = rosetta["livenessProbe"]["exec"]["command"]
        assert probe[:2] == ["python", "-c"]
        code = probe[2].replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr
    finally:
        server.stop()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode != 0  # the probe notices when Rosetta is gone
