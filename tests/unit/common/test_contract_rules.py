"""The contract's field rules (REQUIRED, buf.validate), as every service enforces them
in its interceptor before a handler runs."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2, message_factory, timestamp_pb2

from common.contract_rules import VISIBLE_MESSAGE, check_request, field_rules, is_required, request_problems
from common.errors import DomainError
from taskmgr.notify.v1 import notify_service_pb2 as notify_pb
from taskmgr.task.v1 import collaboration_service_pb2 as collaboration_pb
from taskmgr.task.v1 import project_service_pb2 as project_pb
from taskmgr.task.v1 import task_service_pb2 as task_pb
from taskmgr.user.v1 import user_service_pb2 as user_pb

SERVICE_FILES = (task_pb, project_pb, collaboration_pb, user_pb, notify_pb)


def _required_positive_numbers():
    """(request type, field name) of every REQUIRED number whose rules want it above 0, in
    every service's requests: the ids of every route's path among them. A number with
    presence is left out: its null is a value (edge_api/explicit_null.py)."""
    for module in SERVICE_FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for message in (method.input_type for method in service.methods):
                for field in message.fields:
                    rules = field_rules(field)
                    kind = rules.WhichOneof("type") if rules else None
                    if (is_required(field) and not field.has_presence and kind in ("int64", "int32")
                            and getattr(rules, kind).HasField("gt")):
                        yield message, field.name


@pytest.mark.parametrize(
    ("request_message", "fields"),
    [
        (user_pb.RevokeTokenRequest(), {"refresh"}),  # was a silent 204 over REST
        (user_pb.RefreshTokenRequest(), {"refresh"}),
        (user_pb.LoginRequest(username="alice"), {"password"}),
        (user_pb.RegisterRequest(), {"username", "email", "password"}),
        (user_pb.ResetPasswordRequest(email="a@example.com"), {"otp_code", "new_password"}),
        (task_pb.CreateTaskRequest(), {"task"}),
        (task_pb.CreateTaskRequest(task=task_pb.Task(description="no title")), {"task.title"}),
    ],
)
def test_a_missing_required_field_is_named(request_message, fields):
    problems = request_problems(request_message)

    assert set(problems) == fields
    assert all(texts == ["This field is required."] for texts in problems.values())


def test_a_zero_id_is_named_by_its_rule_not_as_missing():
    """GET /api/tasks/0/ said the id was "required": 0 is a value, and the rule says what
    it must be instead (for a gRPC caller who left the id out too)."""
    seen = list(_required_positive_numbers())
    assert len(seen) >= 20  # every id of every route's path, and more

    for message_type, name in seen:
        problems = request_problems(message_factory.GetMessageClass(message_type)())
        assert problems[name] == ["Must be greater than 0."], (message_type.full_name, problems)

    assert request_problems(task_pb.GetTaskRequest()) == {"id": ["Must be greater than 0."]}
    assert request_problems(task_pb.GetTaskRequest(id=-1)) == {"id": ["Must be greater than 0."]}


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        (
            user_pb.RegisterRequest(username="a b", email="a@example.com", password="long enough pw"),
            "username",
        ),
        (
            user_pb.RegisterRequest(username="ab", email="a@example.com", password="long enough pw"),
            "username",
        ),
        (
            user_pb.RegisterRequest(username="alice", email="not-an-address", password="long enough pw"),
            "email",
        ),
        (user_pb.RegisterRequest(username="alice", email="a@example.com", password="short"), "password"),
        (user_pb.VerifyOtpRequest(email="a@example.com", otp_code="12345"), "otp_code"),
        (user_pb.VerifyOtpRequest(email="a@example.com", otp_code="1234567"), "otp_code"),
        (user_pb.UpdateProfileRequest(first_name="x" * 151), "first_name"),
        (user_pb.ListUsersRequest(page_size=-1), "page_size"),
        (task_pb.CreateTaskRequest(task=task_pb.Task(title="x" * 201)), "task.title"),
        (
            task_pb.CreateTaskRequest(task=task_pb.Task(title="t", description="x" * 10_001)),
            "task.description",
        ),
        (task_pb.CreateTaskRequest(task=task_pb.Task(title="t", priority=9)), "task.priority"),
        (task_pb.CreateTaskRequest(task=task_pb.Task(title="t", assigned_to=0)), "task.assigned_to"),
        (task_pb.CreateTaskRequest(task=task_pb.Task(title="t"), request_id="k" * 256), "request_id"),
        (task_pb.ListTasksRequest(status=7), "status"),
        (task_pb.ListTasksRequest(assigned_to="someone"), "assigned_to"),
        (task_pb.ListTasksRequest(created_by="none"), "created_by"),  # none is for assigned_to
        (task_pb.ListTasksRequest(ordering="title"), "ordering"),
        (task_pb.ListTasksRequest(q="x" * 201), "q"),
        (task_pb.AssignTaskRequest(id=1, user_id=-3), "user_id"),
        (task_pb.DeleteTaskRequest(id=-1), "id"),
    ],
)
def test_a_broken_rule_is_a_field_problem(request_message, field):
    problems = request_problems(request_message)

    assert set(problems) == {field}
    assert all(text[0].isupper() and text.endswith(".") for text in problems[field])


# Only spaces of any kind, zero-width and joiner characters, a BOM, bidi controls, a
# combining mark with nothing to combine with: shown as nothing (or as other text).
INVISIBLE = ["\u200b", "\u2060", "\ufeff", "\u202e", "\u200e\u200f", "\u3000\u2003", "\u0301", " \u200b"]


@pytest.mark.parametrize("text", INVISIBLE)
def test_a_name_of_invisible_characters_only_is_refused(text):
    """Every human-visible name holds a visible character (a buf.validate pattern, so gRPC
    callers meet it too): task titles, project and label names, comments, user names."""
    for request_message, field in [
        (task_pb.CreateTaskRequest(task=task_pb.Task(title=text)), "task.title"),
        (task_pb.UpdateTaskRequest(task=task_pb.Task(id=1, title=text)), "task.title"),
        (project_pb.CreateProjectRequest(project=project_pb.Project(name=text)), "project.name"),
        (project_pb.CreateLabelRequest(project_id=1, label=project_pb.Label(name=text, color="#aabbcc")),
         "label.name"),
        (collaboration_pb.AddCommentRequest(task_id=1, text=text), "text"),
        (collaboration_pb.UpdateCommentRequest(task_id=1, id=2, text=text), "text"),
        (user_pb.UpdateProfileRequest(first_name=text), "first_name"),
        (user_pb.UpdateProfileRequest(last_name="Liddell" + text), None),  # visible with it: fine
    ]:
        problems = request_problems(request_message)
        assert problems == ({field: [VISIBLE_MESSAGE]} if field else {}), (request_message, problems)


def test_a_name_with_one_visible_character_passes():
    for text in ("a", "\u200bx", "7", "!", "\u20ac", "\u65e5\u672c", "\U0001f600", " a "):
        assert request_problems(task_pb.CreateTaskRequest(task=task_pb.Task(title=text))) == {}
        assert request_problems(collaboration_pb.AddCommentRequest(task_id=1, text=text)) == {}
    assert request_problems(user_pb.UpdateProfileRequest(first_name="")) == {}  # "" clears it


def test_requests_that_keep_the_rules_pass():
    due = timestamp_pb2.Timestamp(seconds=1_896_091_200)
    for good in (
        user_pb.RegisterRequest(username="alice.b-1", email="Alice@Example.com", password="correct horse"),
        user_pb.VerifyOtpRequest(email="a@example.com", otp_code="012345"),
        user_pb.UpdateProfileRequest(),  # absent optional fields are not checked
        task_pb.CreateTaskRequest(
            task=task_pb.Task(title="t", priority=task_pb.TASK_PRIORITY_HIGH, due_date=due)
        ),
        task_pb.ListTasksRequest(),  # every filter unset
        task_pb.ListTasksRequest(assigned_to="none", created_by="42", ordering="-due_date", page_size=500),
        task_pb.AssignTaskRequest(id=1),  # user_id unset: unassign
    ):
        assert request_problems(good) == {}, good


def test_an_update_checks_only_the_masked_paths_of_its_resource():
    """AIP-134: PATCH {"status": "done"} needs no title; a masked title is checked."""

    def update(task: task_pb.Task, *paths: str) -> task_pb.UpdateTaskRequest:
        return task_pb.UpdateTaskRequest(task=task, update_mask=field_mask_pb2.FieldMask(paths=list(paths)))

    assert request_problems(update(task_pb.Task(id=1, status=task_pb.TASK_STATUS_DONE), "status")) == {}
    assert request_problems(update(task_pb.Task(id=1, title="x" * 300), "status")) == {}
    assert set(request_problems(update(task_pb.Task(id=1), "title"))) == {"task.title"}
    assert set(request_problems(update(task_pb.Task(id=1, priority=9), "priority"))) == {"task.priority"}
    # No mask: the fields that are set are the mask.
    assert set(request_problems(update(task_pb.Task(id=1, description="x" * 10_001)))) == {"task.description"}
    assert set(request_problems(task_pb.UpdateTaskRequest())) == {"task"}


def test_check_request_raises_invalid_argument_with_every_field():
    with pytest.raises(DomainError) as caught:
        check_request(user_pb.RegisterRequest(username="a", password="x"))

    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(caught.value.fields) == {"username", "email", "password"}
