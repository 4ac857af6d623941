"""What an operator runs the product with past one machine: autoscaling of the edge and
task_svc, and the documented command that makes the first staff user (run here for real,
against SQLite, as the user-svc container would run it)."""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
import sys

import pytest

from tests.deploy.manifests import K8S_DIR, REPO, k8s_resources

AUTOSCALERS = {h["spec"]["scaleTargetRef"]["name"]: h for h in k8s_resources("HorizontalPodAutoscaler")}
DEPLOYMENTS = {d["metadata"]["name"]: d for d in k8s_resources("Deployment")}
STAFF_COMMAND = re.compile(r"^#\s+(kubectl -n taskmgr exec .*create-staff.*)$", re.MULTILINE)


@pytest.mark.parametrize("name", ["edge-api", "task-svc"])
def test_the_edge_and_task_svc_scale_on_cpu(name: str) -> None:
    autoscaler = AUTOSCALERS[name]
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert 2 <= autoscaler["spec"]["minReplicas"] < autoscaler["spec"]["maxReplicas"]
    [metric] = autoscaler["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    deployment = DEPLOYMENTS[name]
    # Utilization is relative to the request: without one the autoscaler cannot compute it.
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "cpu" in container["resources"]["requests"]
    # A replicas field would reset the autoscaler's choice on every `kubectl apply`.
    assert "replicas" not in deployment["spec"]


def test_only_the_edge_and_task_svc_are_autoscaled() -> None:
    assert set(AUTOSCALERS) == {"edge-api", "task-svc"}


@pytest.mark.slow  # a Python process that migrates a database and hashes a password: 3-7 s
def test_the_documented_first_staff_command_makes_a_staff_user(tmp_path) -> None:
    """The command kustomization.yaml gives, its container part run as user-svc runs it."""
    [documented] = STAFF_COMMAND.findall((K8S_DIR / "kustomization.yaml").read_text())
    kubectl = shlex.split(documented)
    target = kubectl[kubectl.index("exec") + 2] if kubectl[kubectl.index("exec") + 1] == "-it" else None
    assert target == "deploy/user-svc"
    command = kubectl[kubectl.index("--") + 1 :]
    user_svc = DEPLOYMENTS["user-svc"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == user_svc, "the same program as the container's"
    database = tmp_path / "user_svc.db"
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "VAR_DIR": str(tmp_path),
        "USER_SVC_DATABASE_URL": f"sqlite:///{database}",
        "AMQP_URL": "",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST_KIB": "1024",
        # Where pytest finds the packages and stubs (pyproject's pythonpath); the image has them installed.
        "PYTHONPATH": os.pathsep.join((str(REPO), str(REPO / "gen"))),
    }
    env.pop("STAFF_PASSWORD", None)
    done = subprocess.run(  # noqa: S603 (the repository's own command)
        [sys.executable, *command[1:]],
        cwd=REPO,
        env=env,
        input="a long staff passphrase\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    username = command[command.index("--username") + 1]
    assert done.stdout.startswith(f"created staff user {username!r}")
    with sqlite3.connect(database) as db:
        assert db.execute(
            "SELECT is_staff, email_verified FROM users WHERE username = ?", (username,)
        ).fetchone() == (1, 1)
