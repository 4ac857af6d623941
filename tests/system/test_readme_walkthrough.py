"""README.md's walkthroughs, run as written against the product started like `make run`.

Every command of the "Walkthrough (REST)", "(working as a team)" and "(gRPC" sections runs in bash
(curl, jq, grpcurl), in order, with only the ports and the emailed code swapped in. Each
REST step must answer the status its comment promises (2xx when it promises none) and
what a reader is shown to expect; a command this test has no expectation for fails it,
so the README and the product cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.processes import ProcessStack
from tests.system import readme

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

README_EMAIL = "alice@example.com"


@pytest.fixture(scope="module")
def process_stack(tmp_path_factory) -> Iterator[ProcessStack]:
    """A product of its own, fresh as `make run` gives a newcomer: other system tests use the
    contract's examples (alice, ...) on the shared stack, which would take the README's names."""
    stack = ProcessStack(
        tmp_path_factory.mktemp("readme-stack"), extra_env={"TASK_REMINDER_INTERVAL_SECONDS": "1"}
    ).start()
    yield stack
    stack.stop()


def _json(outcome: readme.Outcome) -> dict:
    return json.loads(outcome.stdout)


def _task_is_listed(outcome: readme.Outcome) -> bool:
    return any(task["title"] == "Write the README" for task in _json(outcome)["results"])


# What each README step shows a reader, by (method, path): the status and a check of the body.
REST_STEPS: dict[tuple[str, str], tuple[int, Callable[[readme.Outcome], bool]]] = {
    ("POST", "/api/users/register/"): (
        201,
        lambda o: _json(o)["username"] == "alice" and _json(o)["email_verified"] is False,
    ),
    ("POST", "/api/users/verify_otp/"): (200, lambda o: "verified" in _json(o)["detail"]),
    # `ACCESS=$(... | jq -r .access)`: the token itself, a JWT.
    ("POST", "/api/token/"): (200, lambda o: o.stdout.count(".") == 2 and o.stdout.startswith("eyJ")),
    ("GET", "/api/users/profile/"): (200, lambda o: _json(o)["email_verified"] is True),
    ("POST", "/api/tasks/"): (
        201,
        lambda o: _json(o)["title"] == "Write the README" and _json(o)["priority"] == "high",
    ),
    ("GET", "/api/tasks/"): (200, _task_is_listed),
    ("POST", "/api/tasks/1/assign/"): (200, lambda o: _json(o)["assigned_to"] == 1),
    ("GET", "/api/logs/"): (200, lambda o: isinstance(_json(o)["results"], list)),
}

def _names(outcome: readme.Outcome) -> list[str]:
    return [user["username"] for user in _json(outcome)["results"]]


# "Working as a team": Bob joins Alice's project and works on its task.
TEAM_EMAIL = "bob@example.com"
TEAM_STEPS: dict[tuple[str, str], tuple[int, Callable[[readme.Outcome], bool]]] = {
    ("POST", "/api/users/register/"): (201, lambda o: _json(o)["username"] == "bob"),
    ("POST", "/api/users/verify_otp/"): (200, lambda o: "verified" in _json(o)["detail"]),
    ("POST", "/api/token/"): (200, lambda o: o.stdout.startswith("eyJ")),
    ("POST", "/api/projects/"): (201, lambda o: o.stdout.isdigit()),  # PROJECT=$(... | jq -r .id)
    ("GET", "/api/users/list_users/"): (200, lambda o: _names(o) == ["bob"]),
    ("POST", "/api/projects/$PROJECT/members/"): (
        201,
        lambda o: _json(o)["user_id"] == 2 and _json(o)["role"] == "member",
    ),
    ("POST", "/api/projects/$PROJECT/labels/"): (201, lambda o: o.stdout.isdigit()),  # LABEL=$(...)
    ("POST", "/api/tasks/"): (201, lambda o: o.stdout.isdigit()),  # TASK=$(... | jq -r .id)
    ("POST", "/api/tasks/$TASK/assign/"): (
        200,
        lambda o: _json(o)["assigned_to"] == 2 and len(_json(o)["label_ids"]) == 1,
    ),
    ("GET", "/api/tasks/"): (200, lambda o: [t["title"] for t in _json(o)["results"]] == ["Pick the fonts"]),
    ("PATCH", "/api/tasks/$TASK/"): (200, lambda o: _json(o)["status"] == "in_progress"),
    ("POST", "/api/tasks/$TASK/comments/"): (
        201,
        lambda o: _json(o)["author"] == 2 and "@alice" in _json(o)["text"],
    ),
    ("GET", "/api/tasks/$TASK/activity/"): (
        200,
        lambda o: [(a["kind"], a["actor"]) for a in _json(o)["results"]][-2:]
        == [("field_changed", 2), ("comment_added", 2)],
    ),
}

# "Reminders and notification settings": Bob's task gets a due date, he is reminded, and
# turns reminders off.
SETTING_KINDS = ("assignment", "status_changes", "comments", "due_reminders", "project_membership")
REMINDER_STEPS: dict[tuple[str, str], tuple[int, Callable[[readme.Outcome], bool]]] = {
    ("PATCH", "/api/tasks/$TASK/"): (200, lambda o: _json(o)["due_date"] is not None),
    ("GET", "/api/logs/"): (
        200,
        lambda o: [(e["event_type"], e["status"]) for e in _json(o)["results"]]
        == [("taskmgr.task.due_soon", "sent")],
    ),
    ("GET", "/api/users/notification_settings/"): (200, lambda o: all(_json(o)[k] for k in SETTING_KINDS)),
    ("PATCH", "/api/users/notification_settings/"): (200, lambda o: _json(o)["due_reminders"] is False),
}

# The gRPC walkthrough prints no status: what each command's output must contain.
GRPC_STEPS: dict[str, Callable[[str], bool]] = {
    " list": lambda out: {"taskmgr.user.v1.UserService", "grpc.health.v1.Health"} <= set(out.split()),
    "describe taskmgr.task.v1.TaskService": lambda out: "rpc ListTasks" in out and "rpc AssignTask" in out,
    "grpc.health.v1.Health/Check": lambda out: json.loads(out) == {"status": "SERVING"},
    "TaskService/ListTasks": lambda out: any(
        task["title"] == "Write the README" for task in json.loads(out)["results"]
    ),
}


def _commands(heading: str) -> list[readme.Command]:
    blocks = readme.code_blocks(readme.section(heading), "sh")
    assert blocks, f"no ```sh block under '{heading}'"
    return [command for block in blocks for command in readme.commands(block)]


@pytest.fixture(scope="module")
def shell_variables() -> dict[str, str]:
    """What the reader's shell carries from one command to the next (ACCESS)."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}


def test_rest_walkthrough(process_stack: ProcessStack, shell_variables: dict[str, str]):
    commands = _commands("Walkthrough (REST)")
    steps = [(command.method, command.path) for command in commands]
    assert set(steps) == set(REST_STEPS), "README REST steps changed: update REST_STEPS with what they show"

    for command in commands:
        code = process_stack.verification_code(README_EMAIL) if readme.EXAMPLE_CODE in command.text else None
        outcome = readme.run(readme.for_stack(command, process_stack, code), shell_variables)
        status, shows = REST_STEPS[(command.method, command.path)]
        where = f"README step `{command.text}` ({command.note!r}) answered {outcome.status}: {outcome.stdout}"
        assert outcome.status == status, where
        if command.documented_status is not None:
            assert outcome.status == command.documented_status, where
        assert shows(outcome), where
        if command.assigns:
            shell_variables[command.assigns] = outcome.stdout


def test_team_walkthrough(process_stack: ProcessStack, shell_variables: dict[str, str]):
    assert "ACCESS" in shell_variables, "runs after the REST walkthrough, whose token it uses"
    commands = _commands("Walkthrough (working as a team)")
    steps = [(command.method, command.path) for command in commands]
    assert set(steps) == set(TEAM_STEPS), "README team steps changed: update TEAM_STEPS with what they show"
    for command in commands:
        code = process_stack.verification_code(TEAM_EMAIL) if readme.EXAMPLE_CODE in command.text else None
        outcome = readme.run(readme.for_stack(command, process_stack, code), shell_variables)
        status, shows = TEAM_STEPS[(command.method, command.path)]
        where = f"README step `{command.text}` ({command.note!r}) answered {outcome.status}: {outcome.stdout}"
        assert outcome.status == status, where
        if command.documented_status is not None:
            assert outcome.status == command.documented_status, where
        assert shows(outcome), where
        if command.assigns:
            shell_variables[command.assigns] = outcome.stdout


def test_reminders_walkthrough(process_stack: ProcessStack, shell_variables: dict[str, str]):
    assert {"BOB", "TASK"} <= set(shell_variables), "runs after the team walkthrough, whose task it uses"
    commands = _commands("Walkthrough (reminders and notification settings)")
    steps = [(command.method, command.path) for command in commands]
    assert set(steps) == set(REMINDER_STEPS), "README reminder steps changed: update REMINDER_STEPS"
    for command in commands:
        status, shows = REMINDER_STEPS[(command.method, command.path)]
        # The reminder comes with the scheduler's next tick (every second here, as the
        # README says "within a minute"): the log is read again until it shows.
        deadline = time.monotonic() + 20
        while True:
            outcome = readme.run(readme.for_stack(command, process_stack), shell_variables)
            if shows(outcome) or command.path != "/api/logs/" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        where = f"README step `{command.text}` ({command.note!r}) answered {outcome.status}: {outcome.stdout}"
        assert outcome.status == status, where
        assert shows(outcome), where


def test_documented_error_example(process_stack: ProcessStack, shell_variables: dict[str, str]):
    """The problem-details example (registering a taken username) is what the edge answers."""
    (example,) = readme.code_blocks(readme.section("Walkthrough (REST)"), "json")
    documented = json.loads(example)
    register = next(c for c in _commands("Walkthrough (REST)") if c.path == "/api/users/register/")
    outcome = readme.run(readme.for_stack(register, process_stack), shell_variables)

    answered = _json(outcome)
    assert outcome.status == documented["status"]
    assert set(answered) == set(documented)
    assert {k: answered[k] for k in ("type", "title", "status", "code")} == {
        k: documented[k] for k in ("type", "title", "status", "code")
    }
    assert set(answered["errors"]) == set(documented["errors"])


def test_grpc_walkthrough(process_stack: ProcessStack, shell_variables: dict[str, str]):
    assert "ACCESS" in shell_variables, "runs after the REST walkthrough, whose token it uses"
    commands = _commands("Walkthrough (gRPC")
    assert len(commands) == len(GRPC_STEPS), "README gRPC steps changed: update GRPC_STEPS"
    for command, (marker, shows) in zip(commands, GRPC_STEPS.items(), strict=True):
        assert marker in command.text, f"README gRPC step `{command.text}` is not the expected `{marker}`"
        outcome = readme.run(readme.for_stack(command, process_stack), shell_variables)
        assert shows(outcome.stdout), f"README step `{command.text}` printed:\n{outcome.stdout}"
