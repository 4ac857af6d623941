"""Loading the deployment files and the facts from the code they must agree with."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.settings import DEFAULT_PORTS, Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
K8S_DIR = REPO / "deploy" / "k8s"

# The project's packages, as pyproject.toml declares them ("common*" -> "common").
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
_PACKAGE_PATTERNS = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
PACKAGES = tuple(pattern.rstrip("*") for pattern in _PACKAGE_PATTERNS)
# Environment variable -> Settings field (the field's name upper-cased, or its alias).
SETTINGS_FIELDS = {(field.alias or name).upper(): name for name, field in Settings.model_fields.items()}
SETTINGS_VARS = set(SETTINGS_FIELDS)
# Read outside Settings (WEB_CONCURRENCY's convention, prometheus_client's multiprocess mode...).
_ENVIRON_READ = re.compile(r"os\.environ(?:\.get\(|\[)[\"']([A-Z][A-Z0-9_]*)[\"']")
CODE_VARS = {
    name
    for package in PACKAGES
    for source in (REPO / package).rglob("*.py")
    for name in _ENVIRON_READ.findall(source.read_text())
}
# Every environment variable a taskmgr container may be given: what the code reads.
KNOWN_VARS = SETTINGS_VARS | CODE_VARS
EDGE = "edge_api"
MODULES = (*DEFAULT_PORTS, EDGE)

_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
REQUIRED_PLACEHOLDER = "required-from-environment"


def grpc_service_name(module: str) -> str:
    """The full name of the gRPC service a backend serves, from its generated stubs."""
    domain = module.removesuffix("_svc")
    stubs = importlib.import_module(f"taskmgr.{domain}.v1.{domain}_service_pb2")
    [service] = stubs.DESCRIPTOR.services_by_name.values()
    return service.full_name


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate(value: str) -> str:
    """A compose value as it is with nothing set in the environment: `${X:-d}` is d,
    `${X:?message}` (required) is a placeholder, `${X}` is empty."""

    def replace(match: re.Match[str]) -> str:
        op = match["op"] or ""
        if op.endswith("?"):
            return REQUIRED_PLACEHOLDER
        return match["arg"] if op.endswith("-") else ""

    return _INTERPOLATION.sub(replace, value)


def module_of(command: list[str] | str | None) -> str | None:
    """The package a `python -m PACKAGE` command runs, else None."""
    if isinstance(command, str):
        command = command.split()
    if command and len(command) == 3 and command[:2] == ["python", "-m"]:
        return command[2]
    return None


def k8s_documents() -> dict[Path, list[dict[str, Any]]]:
    """Every manifest file's resources (kustomization.yaml is not a resource)."""
    return {
        path: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for path in sorted(K8S_DIR.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def k8s_resources(kind: str) -> list[dict[str, Any]]:
    return [doc for docs in k8s_documents().values() for doc in docs if doc["kind"] == kind]


def settings_from(env: dict[str, str]) -> Settings:
    """Settings as a process given exactly `env` would build them (validated)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in SETTINGS_VARS:
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        return Settings()
