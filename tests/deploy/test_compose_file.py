"""docker-compose.yml, checked without a Docker engine: the Compose Specification schema,
and agreement with the code (commands, settings, ports, health checks, dependencies)."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from common.settings import DEFAULT_PORTS, Settings
from tests.deploy.manifests import (
    COMPOSE_FILE,
    EDGE,
    KNOWN_VARS,
    REPO,
    REQUIRED_PLACEHOLDER,
    interpolate,
    load_compose,
    module_of,
    settings_from,
)

COMPOSE = load_compose()
SERVICES = COMPOSE["services"]
# Compose service name -> the taskmgr package it runs (python -m PACKAGE).
TASKMGR = {
    name: module for name, svc in SERVICES.items() if (module := module_of(svc.get("command"))) is not None
}
BY_MODULE = {module: name for name, module in TASKMGR.items()}


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    assert isinstance(env, dict), f"{service}: write environment as a mapping"
    return {key: interpolate(str(value)) for key, value in env.items()}


def test_validates_against_the_compose_specification() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
        + [str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_runs_every_service_of_the_product_from_one_image() -> None:
    assert set(TASKMGR.values()) == {*DEFAULT_PORTS, EDGE}
    for module in TASKMGR.values():
        assert (REPO / module / "__main__.py").is_file(), f"python -m {module}: no {module}/__main__.py"
    images = {SERVICES[name]["image"] for name in TASKMGR}
    assert len(images) == 1, images
    builders = [name for name in TASKMGR if "build" in SERVICES[name]]
    assert len(builders) == 1, f"built once, by one service: {builders}"
    for name in TASKMGR:
        if name not in builders:
            assert SERVICES[name]["pull_policy"] == "never", f"{name} must reuse the built image, not pull it"


@pytest.mark.parametrize("service", sorted(TASKMGR))
def test_environment_holds_only_real_settings_that_validate(service: str) -> None:
    env = environment(service)
    unknown = set(env) - KNOWN_VARS
    assert not unknown, f"{service}: read neither by common/settings.py nor by the code: {sorted(unknown)}"
    settings_from(env)  # raises on a value the service would refuse at start


@pytest.mark.parametrize("service", sorted(TASKMGR))
def test_secrets_are_required_or_clearly_development_values(service: str) -> None:
    secret_fields = {
        name.upper() for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)
    }
    for key, value in environment(service).items():
        password = urlsplit(value).password if "://" in value else None
        for secret in filter(None, [value if key in secret_fields else None, password]):
            assert secret.startswith("dev-only") or secret == REQUIRED_PLACEHOLDER, (
                f"{service} {key}: a secret must be ${{VAR:?...}} or a dev-only-... value"
            )


@pytest.mark.parametrize("module", sorted(DEFAULT_PORTS))
def test_grpc_services_listen_where_the_others_and_the_health_check_look(module: str) -> None:
    name = BY_MODULE[module]
    env = environment(name)
    port = int(env.get(f"{module.upper()}_PORT", DEFAULT_PORTS[module]))
    assert env["GRPC_HOST"] == "0.0.0.0", "reachable from the other containers"
    assert SERVICES[name]["healthcheck"]["test"] == [
        "CMD", "python", "-m", "common.healthcheck", f"127.0.0.1:{port}"
    ]
    for client in TASKMGR:
        address = environment(client).get(f"{module.upper()}_ADDR")
        if address is not None:
            assert address == f"{name}:{port}", f"{client} looks for {module} at {address}"
    assert "ports" not in SERVICES[name], "backends are reached on the compose network only"


def test_only_the_edge_port_is_published_and_it_is_the_one_the_edge_listens_on() -> None:
    published = {name: svc["ports"] for name, svc in SERVICES.items() if "ports" in svc}
    edge = BY_MODULE[EDGE]
    assert list(published) == [edge]
    port = int(environment(edge).get("EDGE_PORT", Settings().edge_port))
    [mapping] = published[edge]
    assert interpolate(mapping).rsplit(":", 1)[1] == str(port)
    assert environment(edge)["EDGE_HOST"] == "0.0.0.0"
    # The operators' metrics port is on the compose network only.
    metrics_port = environment(edge)["EDGE_METRICS_PORT"]
    assert metrics_port != str(port)
    assert not any(interpolate(m).rsplit(":", 1)[1] == metrics_port for m in published[edge])
    assert SERVICES[edge]["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/readyz"


def test_every_container_has_a_health_check_and_waits_for_healthy_dependencies() -> None:
    for name, svc in SERVICES.items():
        test = svc.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: no health check"
        for dependency, rule in svc.get("depends_on", {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            assert rule["condition"] == "service_healthy", f"{name} -> {dependency}"
    for name in TASKMGR:
        assert SERVICES[name].get("depends_on"), f"{name} starts before what it needs"


def test_each_service_gets_its_own_database_created_by_the_init_script() -> None:
    init_sql = (REPO / "deploy" / "compose" / "postgres-init.sql").read_text()
    mounted = [volume for volume in SERVICES["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in volume]
    assert mounted and mounted[0].startswith("./deploy/compose/postgres-init.sql:")
    for module in DEFAULT_PORTS:
        url = urlsplit(environment(BY_MODULE[module])[f"{module.upper()}_DATABASE_URL"])
        assert url.hostname == "postgres" and url.path == f"/{module}"
        assert f"CREATE DATABASE {module};" in init_sql
        assert environment(BY_MODULE[module])["AMQP_URL"].startswith("amqp://")
        assert urlsplit(environment(BY_MODULE[module])["AMQP_URL"]).hostname == "rabbitmq"


def test_containers_get_longer_than_the_grpc_shutdown_grace_to_stop() -> None:
    grace = Settings().grpc_shutdown_grace_seconds + Settings().grpc_shutdown_drain_seconds
    for name in TASKMGR:
        stop = SERVICES[name]["stop_grace_period"]
        assert stop.endswith("s") and float(stop[:-1]) > grace, name
