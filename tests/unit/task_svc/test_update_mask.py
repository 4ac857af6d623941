"""UpdateTask's update_mask: which fields it names and the values they take."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import timestamp_pb2

from common.errors import InvalidArgument
from task_svc.fields import check_values, mask_fields
from task_svc.service import _field_value
from taskmgr.task.v1 import task_service_pb2 as pb


def test_mask_names_updatable_fields_once() -> None:
    assert mask_fields(["title", "status", "title"]) == ("title", "status")


def test_output_only_fields_are_ignored() -> None:
    assert mask_fields(["id", "version", "priority", "created_at"]) == ("priority",)


def test_unknown_paths_are_refused() -> None:
    with pytest.raises(InvalidArgument) as error:
        mask_fields(["title", "owner", "task.title"])
    assert "owner" in error.value.fields["update_mask"][0]
    assert "task.title" in error.value.fields["update_mask"][0]


def test_unset_assignee_and_due_date_in_the_mask_clear_them() -> None:
    task = pb.Task(id=1)
    assert _field_value(task, "assigned_to") is None
    assert _field_value(task, "due_date") is None


def test_set_values_are_taken() -> None:
    due = timestamp_pb2.Timestamp(seconds=1_800_000_000)
    task = pb.Task(
        id=1, title="t", assigned_to=0, due_date=due,
        status=pb.TASK_STATUS_IN_PROGRESS, priority=pb.TASK_PRIORITY_URGENT,
    )
    assert _field_value(task, "title") == "t"
    assert _field_value(task, "assigned_to") == 0  # present, so not "unassign"; the checks refuse 0
    assert _field_value(task, "due_date") == dt.datetime.fromtimestamp(1_800_000_000, dt.UTC)
    assert _field_value(task, "status") == "in_progress"
    assert _field_value(task, "priority") == "urgent"


@pytest.mark.parametrize("field", ["status", "priority"])
def test_status_and_priority_in_the_mask_must_be_given(field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        _field_value(pb.Task(id=1), field)
    assert field in error.value.fields


@pytest.mark.parametrize(
    ("values", "bad"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "tab\there"}, "title"),
        ({"description": "x" * 10_001}, "description"),
        ({"description": "bell\x07"}, "description"),
        ({"status": "open"}, "status"),
        ({"priority": "unknown value 9"}, "priority"),
        ({"assigned_to": 0}, "assigned_to"),
    ],
)
def test_bad_values_are_named(values: dict, bad: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        check_values(values)
    assert list(error.value.fields) == [bad]


def test_good_values_pass() -> None:
    check_values(
        {"title": "x" * 200, "description": "line\nnext\ttabbed" + "y" * 9_000, "status": "done",
         "priority": "low", "assigned_to": None, "due_date": None}
    )
