"""A typed client generated from /swagger.json with openapi-python-client runs the README
journey against the product's processes: the document is enough to use the API.

What it proves of the document: request bodies have their own models (posting back a
fetched task works), response fields are required (no Unset to check), filters are typed
(enums, datetimes), methods are named `list_tasks`, every status answered has a model
(401 on login included), and the examples Swagger UI fills in are accepted as they stand.
"""

from __future__ import annotations

import datetime as dt
import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import requests

from tests.support.processes import ProcessStack

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

PACKAGE = "taskmgr_generated_client"
PASSWORD = "correct horse battery staple 42"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def generated(process_stack: ProcessStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package, generated from the running edge's document in a temp dir."""
    out = tmp_path_factory.mktemp("generated_client")
    document = out / "swagger.json"
    document.write_bytes(requests.get(f"{process_stack.edge_url}/swagger.json", timeout=10).content)
    config = out / "config.yml"
    config.write_text(f"project_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\npost_hooks: []\n")
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(document),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(out / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout, result.stdout  # nothing of the document was skipped
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def register_and_log_in(client, stack: ProcessStack, hint: str):  # noqa: ANN001, ANN201
    """(user, access token) through the generated client, the code read from the console."""
    models = module("models")
    register, verify_otp, login = (
        module(f"api.user_service.{name}") for name in ("register", "verify_otp", "login")
    )
    username = f"{hint}_{uuid.uuid4().hex[:8]}"
    email = f"{username}@example.com"
    created = register.sync_detailed(
        client=client, body=models.RegisterRequest(username=username, email=email, password=PASSWORD)
    )
    assert created.status_code == 201, created.content
    user = created.parsed
    assert isinstance(user, models.User) and user.username == username and user.email_verified is False
    code = stack.verification_code(email)
    verified = verify_otp.sync_detailed(
        client=client, body=models.VerifyOtpRequest(email=email, otp_code=code)
    )
    assert verified.status_code == 200, verified.content
    tokens = login.sync(client=client, body=models.LoginRequest(username=username, password=PASSWORD))
    assert isinstance(tokens, models.LoginResponse), tokens
    return user, tokens.access


def test_the_readme_journey_through_the_generated_client(generated, process_stack):
    client_module, models = module("client"), module("models")
    anonymous = client_module.Client(base_url=process_stack.edge_url, raise_on_unexpected_status=True)
    alice, access = register_and_log_in(anonymous, process_stack, "alice")
    bob, _ = register_and_log_in(anonymous, process_stack, "bob")
    me = client_module.AuthenticatedClient(
        base_url=process_stack.edge_url, token=access, raise_on_unexpected_status=True
    )
    api = {
        name: module(f"api.{service}.{name}")
        for service, names in {
            "user_service": ("get_profile", "login"),
            "task_service": (
                "create_task",
                "list_tasks",
                "get_task",
                "update_task",
                "assign_task",
                "delete_task",
            ),
        }.items()
        for name in names
    }

    # A wrong password is a documented 401 with a Problem model, not an unexpected status.
    refused = api["login"].sync_detailed(
        client=anonymous, body=models.LoginRequest(username=alice.username, password="not it at all")
    )
    assert refused.status_code == 401 and isinstance(refused.parsed, models.Problem)
    assert refused.parsed.code == "INVALID_CREDENTIALS"

    profile = api["get_profile"].sync(client=me)
    assert (profile.id, profile.username, profile.email_verified) == (alice.id, alice.username, True)

    due = dt.datetime(2030, 1, 31, 12, tzinfo=dt.UTC)
    body = models.TaskInput(title="Write the README", priority=models.TaskPriority.HIGH, due_date=due)
    created = api["create_task"].sync_detailed(client=me, body=body, idempotency_key=uuid.uuid4().hex)
    assert created.status_code == 201
    task = created.parsed
    assert (task.title, task.priority, task.status, task.due_date) == (
        "Write the README",
        models.TaskPriority.HIGH,
        models.TaskStatus.PENDING,
        due,
    )
    assert created.headers["ETag"] == f'"{task.version}"'

    listed = api["list_tasks"].sync(
        client=me,
        status=models.TaskStatus.PENDING,
        priority=models.TaskPriority.HIGH,
        due_before=due + dt.timedelta(days=1),
        ordering=models.ListTasksOrdering("-priority"),
    )
    assert [t.id for t in listed.results] == [task.id] and listed.next_page_token == ""

    fetched = api["get_task"].sync(id=task.id, client=me)
    assert fetched == task
    # Posting back what was fetched: the request model has no id, version, created_at ...
    copy = api["create_task"].sync(client=me, body=models.TaskInput.from_dict(fetched.to_dict()))
    assert copy.id != task.id and copy.title == task.title and copy.due_date == due

    changed = api["update_task"].sync(
        id=task.id,
        client=me,
        body=models.TaskPatch(status=models.TaskStatus.IN_PROGRESS),
        if_match=f'"{task.version}"',
    )
    assert changed.status == models.TaskStatus.IN_PROGRESS and changed.version > task.version
    stale = api["update_task"].sync_detailed(
        id=task.id, client=me, body=models.TaskPatch(title="stale"), if_match=f'"{task.version}"'
    )
    assert stale.status_code == 412 and isinstance(stale.parsed, models.Problem)

    assigned = api["assign_task"].sync(id=task.id, client=me, body=models.AssignTaskRequest(user_id=bob.id))
    assert assigned.assigned_to == bob.id

    deleted = api["delete_task"].sync_detailed(id=task.id, client=me)
    assert deleted.status_code == 204
    missing = api["get_task"].sync_detailed(id=task.id, client=me)
    assert missing.status_code == 404 and missing.parsed.code


def test_swagger_ui_examples_are_accepted_as_they_stand(process_stack, new_account):
    """The body "Try it out" fills in for a write operation is the schema's example: it
    must pass every rule of the contract, and where nothing else is needed, succeed."""
    document = requests.get(f"{process_stack.edge_url}/swagger.json", timeout=10).json()
    schemas = document["components"]["schemas"]

    def example(path: str, verb: str) -> dict:
        ref = document["paths"][path][verb]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return schemas[ref.rsplit("/", 1)[1]]["example"]

    account = new_account("examples")
    api = f"{process_stack.edge_url}"
    created = requests.post(
        f"{api}/api/tasks/", json=example("/api/tasks/", "post"), headers=account.headers, timeout=10
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["status"] == "pending" and task["priority"] == "high"
    patched = requests.patch(
        f"{api}/api/tasks/{task['id']}/",
        json=example("/api/tasks/{id}/", "patch"),
        headers=account.headers,
        timeout=10,
    )
    assert patched.status_code == 200, patched.text
    profile = requests.patch(
        f"{api}/api/users/profile/",
        json=example("/api/users/profile/", "patch"),
        headers=account.headers,
        timeout=10,
    )
    assert profile.status_code == 200, profile.text
    project = requests.post(
        f"{api}/api/projects/", json=example("/api/projects/", "post"), headers=account.headers, timeout=10
    )
    assert project.status_code == 201, project.text
    renamed = requests.patch(
        f"{api}/api/projects/{project.json()['id']}/",
        json=example("/api/projects/{id}/", "patch"),
        headers=account.headers,
        timeout=10,
    )
    assert renamed.status_code == 200, renamed.text
    commented = requests.post(
        f"{api}/api/tasks/{task['id']}/comments/",
        json=example("/api/tasks/{task_id}/comments/", "post"),
        headers=account.headers,
        timeout=10,
    )
    assert commented.status_code == 201, commented.text
    edited = requests.patch(
        f"{api}/api/tasks/{task['id']}/comments/{commented.json()['id']}/",
        json=example("/api/tasks/{task_id}/comments/{id}/", "patch"),
        headers=account.headers,
        timeout=10,
    )
    assert edited.status_code == 200, edited.text
    watched = requests.post(
        f"{api}/api/tasks/{task['id']}/watch/",
        json=example("/api/tasks/{task_id}/watch/", "post"),
        headers=account.headers,
        timeout=10,
    )
    assert watched.status_code == 200 and watched.json()["watching"] is True, watched.text
    # The others need state an example cannot hold (a mailed code, a real token, a user
    # to assign): whatever they answer, it is never a broken rule of the contract.
    for path, operations in document["paths"].items():
        for verb, operation in operations.items():
            if "requestBody" not in operation or verb == "get":
                continue
            variables = {
                "{id}": task["id"], "{task_id}": task["id"], "{project_id}": project.json()["id"],
                "{user_id}": task["created_by"],
            }
            url = api + path
            for variable, value in variables.items():
                url = url.replace(variable, str(value))
            answer = requests.request(
                verb, url, json=example(path, verb), headers=account.headers, timeout=10
            )
            assert answer.status_code < 500, (verb, path, answer.text)
            # INVALID_ARGUMENT is a broken rule; a domain refusal has its own code.
            assert answer.json().get("code") != "INVALID_ARGUMENT" if answer.content else True, (verb, path)
