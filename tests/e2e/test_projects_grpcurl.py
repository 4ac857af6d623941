"""ProjectService through grpcurl (reflection, no proto files), with a real token."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_grpcurl import _grpcurl

pytestmark = pytest.mark.xdist_group("e2e")
SERVICE = "taskmgr.task.v1.ProjectService"


def test_projects_over_grpcurl(stack, user) -> None:
    listed = _grpcurl("-plaintext", stack.task_svc_addr, "list")
    assert SERVICE in listed.stdout.split(), listed.stderr
    auth = ["-H", f"authorization: Bearer {user.access}"]
    created = _grpcurl(
        "-plaintext",
        *auth,
        "-d",
        json.dumps({"project": {"name": "Over grpcurl"}}),
        stack.task_svc_addr,
        f"{SERVICE}/CreateProject",
    )
    assert created.returncode == 0, created.stderr
    project = json.loads(created.stdout)  # proto field names, int64 as strings
    assert (project["name"], project["my_role"]) == ("Over grpcurl", "PROJECT_ROLE_OWNER")
    members = _grpcurl(
        "-plaintext",
        *auth,
        "-d",
        json.dumps({"project_id": project["id"]}),
        stack.task_svc_addr,
        f"{SERVICE}/ListMembers",
    )
    assert members.returncode == 0, members.stderr
    assert [m["user_id"] for m in json.loads(members.stdout)["results"]] == [str(user.user_id)]
