"""deploy/k8s/, checked without a cluster: each resource against the Kubernetes schemas
(kubernetes-validate ships them; strict: unknown fields are errors), and agreement with
the code (commands, settings, ports, probes, Services, the production settings check)."""

from __future__ import annotations

import copy
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate
from pydantic import ValidationError

from common.settings import DEFAULT_PORTS, Settings
from tests.deploy.manifests import (
    EDGE,
    K8S_DIR,
    KNOWN_VARS,
    MODULES,
    REPO,
    grpc_service_name,
    k8s_documents,
    k8s_resources,
    module_of,
    settings_from,
)

KUBERNETES_VERSION = "1.30"
DOCUMENTS = k8s_documents()
DEPLOYMENTS = {
    module_of(deployment["spec"]["template"]["spec"]["containers"][0]["command"]): deployment
    for deployment in k8s_resources("Deployment")
}
[CONFIG_MAP] = k8s_resources("ConfigMap")
KUSTOMIZATION_TEXT = (K8S_DIR / "kustomization.yaml").read_text()
# The Secrets the operator creates (never `kubectl apply -k`): taskmgr-secrets from a
# filled-in copy of secrets.env.example, taskmgr-jwt-key from a PEM file.
SECRETS_EXAMPLE = K8S_DIR / "secrets.env.example"
OPERATOR_SECRETS = {
    "taskmgr-secrets": dict(
        line.split("=", 1)
        for line in SECRETS_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ),
    "taskmgr-jwt-key": {"private.pem": "REPLACE_ME"},
}


def filled_in(value: str) -> str:
    """The operator's value for an example entry: each REPLACE_ME a random 32-byte key."""
    return value.replace("REPLACE_ME", secrets.token_urlsafe(32))


def container(module: str) -> dict[str, Any]:
    [only] = DEPLOYMENTS[module]["spec"]["template"]["spec"]["containers"]
    return only


def pod_environment(module: str, fill=filled_in) -> dict[str, str]:
    """What the container's process sees: the ConfigMap, then its own env entries (Secret
    values as the operator created them: `fill` turns the example's entry into one)."""
    spec = container(module)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        assert source["configMapRef"]["name"] == CONFIG_MAP["metadata"]["name"]
        env.update(CONFIG_MAP["data"])
    for entry in spec.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = fill(OPERATOR_SECRETS[ref["name"]][ref["key"]])
    return env


@pytest.mark.parametrize("path", sorted(DOCUMENTS), ids=lambda path: path.name)
def test_each_resource_validates_against_the_kubernetes_schema(path: Path) -> None:
    assert DOCUMENTS[path], f"{path.name} holds no resource"
    for resource in DOCUMENTS[path]:
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(map(str, error.path))
            name = f"{resource['kind']}/{resource['metadata']['name']}"
            pytest.fail(f"{path.name} {name}: {where}: {error.message}")
        # No schema means a typo in kind or apiVersion, not a pass.
        except kubernetes_validate.SchemaNotFoundError as error:
            pytest.fail(error.message)
        assert resource["metadata"].get("namespace", "taskmgr") == "taskmgr"


def test_the_schema_check_rejects_an_unknown_field() -> None:
    """Guards the check above: strict validation does catch a misplaced field."""
    resource = copy.deepcopy(DEPLOYMENTS["user_svc"])
    resource["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(path.name for path in DOCUMENTS)
    assert kustomization["namespace"] == "taskmgr"


def test_every_service_of_the_product_is_deployed_with_replicas() -> None:
    assert set(DEPLOYMENTS) == set(MODULES)
    for module, deployment in DEPLOYMENTS.items():
        assert (REPO / module / "__main__.py").is_file(), f"python -m {module}: no {module}/__main__.py"
        # Stateless, and notify_svc's replicas are competing consumers of one queue. Where a
        # HorizontalPodAutoscaler scales it, the Deployment names none (autoscaling.yaml).
        autoscalers = [h for h in k8s_resources("HorizontalPodAutoscaler")
                       if h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]]
        replicas = autoscalers[0]["spec"]["minReplicas"] if autoscalers else deployment["spec"]["replicas"]
        assert replicas >= 2, module
        assert container(module)["image"] == "taskmgr", "one image (kustomization.yaml names its registry)"


@pytest.mark.parametrize("module", MODULES)
def test_environment_holds_only_real_settings_and_passes_the_production_check(module: str) -> None:
    env = pod_environment(module)
    unknown = set(env) - KNOWN_VARS
    assert not unknown, f"{module}: read neither by common/settings.py nor by the code: {sorted(unknown)}"
    settings = settings_from(env)  # raises as the process would at start
    assert settings.environment == "production"
    assert settings.production_problems(module) == []


def test_applying_the_kustomization_never_overwrites_an_operator_created_secret() -> None:
    """kubectl apply -k replaces what it declares: a declared Secret (even a placeholder)
    would overwrite the real key the operator created by hand."""
    assert k8s_resources("Secret") == []
    kustomization = yaml.safe_load(KUSTOMIZATION_TEXT)
    assert not kustomization.get("secretGenerator"), "a generated Secret is also overwritten on apply"
    for name in OPERATOR_SECRETS:
        assert f"create secret generic {name}" in KUSTOMIZATION_TEXT, f"how to create {name}"


def test_the_secrets_example_holds_placeholders_only_and_every_reference_resolves() -> None:
    for name, data in OPERATOR_SECRETS.items():
        for key, value in data.items():
            assert "REPLACE_ME" in value, f"{name}.{key} must stay a placeholder"
    referenced = set()
    for module in MODULES:
        for entry in container(module).get("env", []):
            if "valueFrom" in entry:
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref["key"] in OPERATOR_SECRETS[ref["name"]], f"{module}: {ref}"
                assert not ref.get("optional"), "a missing key must stop the pod, not run without it"
                referenced.add(ref["key"])
        for volume in DEPLOYMENTS[module]["spec"]["template"]["spec"].get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in OPERATOR_SECRETS
    assert referenced == set(OPERATOR_SECRETS["taskmgr-secrets"]), "the example lists exactly what pods read"


@pytest.mark.parametrize("module", ["user_svc", "task_svc", "notify_svc"])
def test_a_secret_created_from_the_example_unchanged_is_refused_in_production(module: str) -> None:
    with pytest.raises(ValidationError) as refused:
        settings_from(pod_environment(module, fill=lambda value: value))
    message = str(refused.value)
    assert f"{module.upper()}_DATABASE_URL holds a placeholder" in message
    assert "PAGE_TOKEN_KEY is a placeholder" in message


@pytest.mark.parametrize("module", sorted(DEFAULT_PORTS))
def test_grpc_services_are_probed_and_reached_on_their_ports(module: str) -> None:
    spec = container(module)
    env = pod_environment(module)
    port = int(env.get(f"{module.upper()}_PORT", DEFAULT_PORTS[module]))
    assert env["GRPC_HOST"] == "0.0.0.0"
    metrics_port = int(env[f"{module.upper()}_METRICS_PORT"])
    assert env["METRICS_HOST"] == "0.0.0.0"
    ports = [(p["name"], p["containerPort"]) for p in spec["ports"]]
    assert ports == [("grpc", port), ("metrics", metrics_port)]
    scrape = DEPLOYMENTS[module]["spec"]["template"]["metadata"]["annotations"]
    assert (scrape["prometheus.io/port"], scrape["prometheus.io/path"]) == (str(metrics_port), "/metrics")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert spec[probe]["grpc"]["port"] == port, probe
    # Ready means this service (not just the process) serves: the name it registers.
    assert spec["readinessProbe"]["grpc"]["service"] == grpc_service_name(module)
    [service] = [s for s in k8s_resources("Service") if s["metadata"]["name"] == module.replace("_", "-")]
    pod_labels = DEPLOYMENTS[module]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert [p["port"] for p in service["spec"]["ports"]] == [port]
    assert service["spec"]["clusterIP"] == "None", "headless, so gRPC clients balance over the pods"
    host = f"{service['metadata']['name']}.taskmgr.svc.cluster.local"
    assert CONFIG_MAP["data"][f"{module.upper()}_ADDR"] == f"dns:///{host}:{port}"


def test_the_edge_is_probed_over_http_and_exposed() -> None:
    spec = container(EDGE)
    port = int(pod_environment(EDGE).get("EDGE_PORT", Settings().edge_port))
    assert pod_environment(EDGE)["EDGE_HOST"] == "0.0.0.0"
    metrics_port = int(pod_environment(EDGE)["EDGE_METRICS_PORT"])
    ports = [(p["name"], p["containerPort"]) for p in spec["ports"]]
    assert ports == [("http", port), ("metrics", metrics_port)]
    assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    [service] = [s for s in k8s_resources("Service") if s["metadata"]["name"] == "edge-api"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"], "the public Service: http only"
    [ingress] = k8s_resources("Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "edge-api"


@pytest.mark.parametrize("module", MODULES)
def test_pods_run_locked_down_with_bounded_resources(module: str) -> None:
    pod = DEPLOYMENTS[module]["spec"]["template"]["spec"]
    spec = container(module)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= spec["resources"]["requests"].keys()
    assert "memory" in spec["resources"]["limits"]
    # Graceful stop: longer than the server's own grace after SIGTERM.
    settings = settings_from(pod_environment(module))
    stopping = settings.grpc_shutdown_grace_seconds + settings.grpc_shutdown_drain_seconds
    assert pod["terminationGracePeriodSeconds"] > stopping
    # A read-only root filesystem needs a writable /tmp (Python, prometheus_client).
    assert any(m["mountPath"] == "/tmp" for m in spec["volumeMounts"])


def test_only_user_svc_mounts_the_signing_key() -> None:
    key_path = Path(CONFIG_MAP["data"]["JWT_PRIVATE_KEY_FILE"])
    for module in MODULES:
        mounts = [m for m in container(module)["volumeMounts"] if m["name"] == "jwt-key"]
        if module == "user_svc":
            assert [m["mountPath"] for m in mounts] == [str(key_path.parent)]
        else:
            assert not mounts, f"{module} must not hold the signing key"


def test_metrics_are_reached_by_the_cluster_only() -> None:
    """/metrics is served on its own port (EDGE_METRICS_PORT) by a Service no Ingress names."""
    env = pod_environment(EDGE)
    assert env["EDGE_METRICS_HOST"] == "0.0.0.0", "the cluster's scraper reaches the pod IP"
    port = int(env["EDGE_METRICS_PORT"])
    assert port != int(env["EDGE_PORT"])
    [metrics] = [s for s in k8s_resources("Service") if s["metadata"]["name"] == "edge-api-metrics"]
    assert metrics["spec"]["type"] == "ClusterIP"
    assert [(p["name"], p["targetPort"]) for p in metrics["spec"]["ports"]] == [("metrics", "metrics")]
    annotations = metrics["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    routed = {
        path["backend"]["service"]["name"]
        for ingress in k8s_resources("Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert "edge-api-metrics" not in routed
    for service in k8s_resources("Service"):
        if service["metadata"]["name"] in routed:
            assert all(p["targetPort"] not in ("metrics", port) for p in service["spec"]["ports"])


def test_the_service_monitor_selects_the_metrics_service_only() -> None:
    monitor = yaml.safe_load((K8S_DIR / "monitoring" / "servicemonitor.yaml").read_text())
    assert monitor["kind"] == "ServiceMonitor"
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = k8s_resources("Service")
    chosen = [s["metadata"]["name"] for s in services if selector.items() <= s["metadata"]["labels"].items()]
    assert chosen == ["edge-api-metrics"]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


@pytest.mark.parametrize("path", [".env", "deploy/k8s/secrets.env", "secrets.env", "private.pem"])
def test_filled_in_secrets_are_never_committed(path: str) -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO, check=False)  # noqa: S607
    assert ignored.returncode == 0, f"{path} must be git-ignored"
