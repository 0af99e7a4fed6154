"""The deployment files in deploy/ configure OpenTicket as it reads its settings: every
variable they set is a setting with a value it accepts, and the workers they start
prefer every partition between them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from openticket.entrypoints.settings import Settings, unknown_variables
from openticket.entrypoints.worker import parse_partitions, replica_partitions

DEPLOY = Path(__file__).parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
SECRET = {  # what deploy/README.md says to put in the Secret
    "OPENTICKET_JWT_SECRET": "a-signing-secret-of-more-than-32-bytes",
    "PGPASSWORD": "a-database-password",
}


def compose() -> dict[str, Any]:
    """deploy/compose.yaml with its values' ${VARIABLE...} interpolated as Compose does,
    the variables its comment says to export given and every other one unset."""
    given = {"POSTGRES_PASSWORD": "a-database-password", **SECRET}

    def value(match: re.Match[str]) -> str:
        found = re.fullmatch(r"(\w+)(:-|:\?)?(.*)", match.group(1), flags=re.DOTALL)
        assert found is not None, match.group(0)
        name, operator, rest = found.groups()
        if name in given:
            return given[name]
        assert operator != ":?", f"compose.yaml requires {name}, which the README does not set"
        return str(rest) if operator == ":-" else ""

    def interpolated(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: interpolated(item) for key, item in node.items()}
        if isinstance(node, list):
            return [interpolated(item) for item in node]
        return re.sub(r"\$\{([^}]+)\}", value, node) if isinstance(node, str) else node

    loaded: dict[str, Any] = interpolated(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))
    return loaded


def manifests() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(KUBERNETES.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def pod_specs() -> list[dict[str, Any]]:
    return [m["spec"]["template"]["spec"] for m in manifests() if "template" in m.get("spec", {})]


def configmap() -> dict[str, str]:
    (data,) = [m["data"] for m in manifests() if m["kind"] == "ConfigMap"]
    return dict(data)


def accepted(env: dict[str, str]) -> Settings:
    assert unknown_variables(env) == []
    return Settings.from_env(env)


@pytest.mark.parametrize("service", ["migrate", "worker-1", "worker-2", "api-1", "api-2"])
def test_each_compose_service_gets_settings_openticket_accepts(service: str) -> None:
    env = {k: str(v) for k, v in compose()["services"][service]["environment"].items()}
    settings = accepted(env)
    assert (settings.storage, settings.locks, settings.messaging) == ("postgres", "redis", "nats")


def test_the_compose_workers_split_every_partition_and_serve_metrics_to_prometheus() -> None:
    services = compose()["services"]
    workers = [name for name in services if name.startswith("worker-")]
    count = int(services["worker-1"]["environment"]["OPENTICKET_PARTITIONS"])
    preferred: list[int] = []
    for name in workers:
        command = services[name]["command"]
        preferred += parse_partitions(command[command.index("--partitions") + 1], count)
        env = services[name]["environment"]
        assert env["OPENTICKET_WORKER_METRICS_HOST"] == "0.0.0.0"  # noqa: S104
        assert (
            f"{name}:{env['OPENTICKET_WORKER_METRICS_PORT']}"
            in (DEPLOY / "prometheus" / "prometheus.yaml").read_text()
        )
    assert sorted(preferred) == list(range(count))


def test_the_compose_services_wait_for_the_migration_to_succeed() -> None:
    services = compose()["services"]
    for name in ("worker-1", "worker-2", "api-1", "api-2"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_the_kubernetes_configmap_with_the_secret_is_settings_openticket_accepts() -> None:
    settings = accepted({**configmap(), **SECRET})
    assert (settings.storage, settings.locks, settings.messaging) == ("postgres", "redis", "nats")
    assert settings.payment_providers == ()  # no free tickets until a provider's keys are set


def test_the_worker_statefulset_pods_split_every_partition_by_their_ordinals() -> None:
    (workers,) = [m for m in manifests() if m["kind"] == "StatefulSet"]
    (container,) = workers["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--replica") + 1] == "auto"
    replicas = int(args[args.index("--replicas") + 1])
    assert replicas == workers["spec"]["replicas"]
    count = int(configmap()["OPENTICKET_PARTITIONS"])
    shares = [replica_partitions(n, replicas, count) for n in range(replicas)]
    assert sorted(p for share in shares for p in share) == list(range(count))
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OPENTICKET_WORKER_METRICS_HOST"] == "0.0.0.0"  # noqa: S104
    assert container["ports"][0]["containerPort"] == int(env["OPENTICKET_WORKER_METRICS_PORT"])


def test_every_kubernetes_container_is_limited_and_unprivileged() -> None:
    for pod in pod_specs():
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert set(container["resources"]) == {"requests", "limits"}
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["envFrom"] == [
                {"configMapRef": {"name": "openticket"}},
                {"secretRef": {"name": "openticket"}},
            ]


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_the_image_runs_openticket_serve_on_every_address_by_default() -> None:
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    assert 'ENTRYPOINT ["openticket"]' in lines
    (cmd,) = [json.loads(line.removeprefix("CMD ")) for line in lines if line.startswith("CMD ")]
    assert cmd == ["serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104
