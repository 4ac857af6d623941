"""Project labels over real gRPC on PostgreSQL and SQLite: owners manage them (names
unique under caseless matching, colours #rrggbb), members tag tasks with labels of the
task's own project only, a move drops them, the list's `label` filter (all given
labels) with paging and the other filters, and the activity of a label change."""

# ruff: noqa: F811 (the fixtures imported from test_projects are parameters here)
from __future__ import annotations

import unicodedata
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import field_mask_pb2

from taskmgr.api.v1.preconditions_pb2 import VersionMatch
from taskmgr.task.v1 import collaboration_service_pb2 as cpb
from taskmgr.task.v1 import collaboration_service_pb2_grpc
from taskmgr.task.v1 import project_service_pb2 as ppb
from taskmgr.task.v1 import task_service_pb2 as pb
from tests.integration.task_svc.support import ALICE, BOB, CAROL, STAFF, field_violations, grpc_error
from tests.integration.task_svc.test_projects import (  # noqa: F401 (fixtures used by name)
    MEMBER,
    change,
    failure,
    listed,
    new_task,
    projects,
    team,
)


@pytest.fixture
def collaboration(server) -> Iterator[collaboration_service_pb2_grpc.CollaborationServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield collaboration_service_pb2_grpc.CollaborationServiceStub(channel)


def new_label(  # noqa: ANN201
    projects, as_user, project_id: int, name: str, color: str = "#00ff00", user_id: int = ALICE,  # noqa: ANN001
):
    request = ppb.CreateLabelRequest(project_id=project_id, label=ppb.Label(name=name, color=color))
    return projects.CreateLabel(request, metadata=as_user(user_id))


def label_names(projects, as_user, project_id: int, user_id: int = ALICE) -> list[str]:  # noqa: ANN001
    names, token = [], ""
    while True:
        page = projects.ListLabels(
            ppb.ListLabelsRequest(project_id=project_id, page_size=2, page_token=token),
            metadata=as_user(user_id),
        )
        names += [label.name for label in page.results]
        token = page.next_page_token
        if not token:
            return names


def other_project(projects, as_user) -> ppb.Project:  # noqa: ANN001
    """Alice's second project, Bob a member."""
    project = projects.CreateProject(
        ppb.CreateProjectRequest(project=ppb.Project(name="Other")), metadata=as_user(ALICE)
    )
    projects.AddMember(
        ppb.AddMemberRequest(project_id=project.id, user_id=BOB, role=MEMBER), metadata=as_user(ALICE)
    )
    return project


def test_owners_manage_labels_members_and_viewers_list_them(projects, team, as_user) -> None:
    bug = new_label(projects, as_user, team.id, "bug", "#D73A4A")
    assert (bug.project_id, bug.name, bug.color) == (team.id, "bug", "#d73a4a")  # lower case
    for name in ("docs", "Backend", "api"):
        new_label(projects, as_user, team.id, name)
    expected = ["api", "Backend", "bug", "docs"]  # caseless name order, paged two at a time
    for user_id in (ALICE, BOB, CAROL, STAFF):
        assert label_names(projects, as_user, team.id, user_id) == expected
    for user_id in (BOB, CAROL):  # member, viewer
        assert failure(new_label, projects, as_user, team.id, "x", user_id=user_id) == (
            grpc.StatusCode.PERMISSION_DENIED, "PROJECT_ROLE_FORBIDS"
        )
        request = ppb.DeleteLabelRequest(project_id=team.id, id=bug.id)
        assert failure(projects.DeleteLabel, request, metadata=as_user(user_id))[0] == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    outsider = 9
    request = ppb.ListLabelsRequest(project_id=team.id)
    assert failure(projects.ListLabels, request, metadata=as_user(outsider)) == (
        grpc.StatusCode.NOT_FOUND, "PROJECT_NOT_FOUND"
    )
    renamed = projects.UpdateLabel(
        ppb.UpdateLabelRequest(
            project_id=team.id, label=ppb.Label(id=bug.id, name="Bug", color="#ffffff"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        ),
        metadata=as_user(ALICE),
    )
    # Its own name in another case is fine; the colour, not in the mask, is kept.
    assert (renamed.name, renamed.color) == ("Bug", "#d73a4a")
    projects.DeleteLabel(ppb.DeleteLabelRequest(project_id=team.id, id=bug.id), metadata=as_user(ALICE))
    assert label_names(projects, as_user, team.id) == ["api", "Backend", "docs"]


@pytest.mark.parametrize("taken, given", [
    ("bug", "BUG"),
    ("Straße", "STRASSE"),  # full case folding, not lower()
    (unicodedata.normalize("NFC", "Café"), unicodedata.normalize("NFD", "CAFÉ")),  # composed or not
])
def test_a_name_is_unique_in_its_project_under_caseless_matching(
    projects, team, as_user, taken, given
) -> None:
    first = new_label(projects, as_user, team.id, taken)
    assert failure(new_label, projects, as_user, team.id, given) == (
        grpc.StatusCode.ALREADY_EXISTS, "LABEL_EXISTS"
    )
    second = new_label(projects, as_user, team.id, "other")
    rename = ppb.UpdateLabelRequest(
        project_id=team.id, label=ppb.Label(id=second.id, name=given),
        update_mask=field_mask_pb2.FieldMask(paths=["name"]),
    )
    assert failure(projects.UpdateLabel, rename, metadata=as_user(ALICE)) == (
        grpc.StatusCode.ALREADY_EXISTS, "LABEL_EXISTS"
    )
    # Another project may have the same name.
    assert new_label(projects, as_user, other_project(projects, as_user).id, given).id != first.id


@pytest.mark.parametrize("name, color, field", [
    ("", "#000000", "name"),
    ("   ", "#000000", "name"),
    ("x" * 51, "#000000", "name"),
    ("ok", "red", "color"),
    ("ok", "#12345", "color"),
    ("ok", "#1234567", "color"),
    ("ok", "#12345g", "color"),
])
def test_bad_names_and_colours_are_field_errors(
    projects, team, as_user, name, color, field
) -> None:
    error = grpc_error(new_label, projects, as_user, team.id, name, color)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in " ".join(field_violations(error)) or field in error.details()


def test_a_label_of_another_project_is_not_found_through_this_one(
    projects, team, as_user
) -> None:
    elsewhere = new_label(projects, as_user, other_project(projects, as_user).id, "bug")
    request = ppb.DeleteLabelRequest(project_id=team.id, id=elsewhere.id)
    assert failure(projects.DeleteLabel, request, metadata=as_user(ALICE)) == (
        grpc.StatusCode.NOT_FOUND, "LABEL_NOT_FOUND"
    )


def test_members_tag_tasks_with_labels_of_the_tasks_own_project_only(
    stub, projects, team, as_user, collaboration
) -> None:
    bug, ui = (new_label(projects, as_user, team.id, name).id for name in ("bug", "ui"))
    foreign = new_label(projects, as_user, other_project(projects, as_user).id, "bug").id
    task = new_task(stub, BOB, as_user, project_id=team.id, label_ids=[ui, bug])
    assert list(task.label_ids) == sorted([bug, ui])
    got = stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=as_user(CAROL))
    assert list(got.label_ids) == sorted([bug, ui])

    for labels in ([foreign], [bug, foreign], [10**12]):
        error = grpc_error(change, stub, BOB, as_user, task.id, label_ids=labels)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "label_ids" in field_violations(error)
    error = grpc_error(new_task, stub, BOB, as_user, project_id=team.id, label_ids=[foreign])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A personal task carries none.
    error = grpc_error(new_task, stub, BOB, as_user, label_ids=[bug])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The viewer may not tag.
    refused = failure(change, stub, CAROL, as_user, task.id, label_ids=[bug])
    assert refused[0] == grpc.StatusCode.PERMISSION_DENIED

    changed = change(stub, BOB, as_user, task.id, label_ids=[bug])
    assert list(changed.label_ids) == [bug]
    assert changed.version == task.version + 1  # a change of the task
    again = change(stub, BOB, as_user, task.id, label_ids=[bug])
    assert again.version == changed.version  # no change, no new version
    request = cpb.ListActivityRequest(task_id=task.id)
    entries = collaboration.ListActivity(request, metadata=as_user(ALICE)).results
    kind = cpb.ACTIVITY_KIND_LABELS_CHANGED
    labelled = [(e.actor, e.old_value, e.new_value) for e in entries if e.kind == kind]
    assert labelled == [(BOB, f"{min(bug, ui)},{max(bug, ui)}", str(bug))]

    # Deleting the label takes it off the task.
    projects.DeleteLabel(ppb.DeleteLabelRequest(project_id=team.id, id=bug), metadata=as_user(ALICE))
    assert list(stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=as_user(BOB)).label_ids) == []


def test_a_move_drops_the_labels_unless_it_sets_labels_of_the_new_project(
    stub, projects, team, as_user
) -> None:
    other = other_project(projects, as_user)
    here = new_label(projects, as_user, team.id, "here").id
    there = new_label(projects, as_user, other.id, "there").id
    task = new_task(stub, BOB, as_user, project_id=team.id, label_ids=[here])
    moved = change(stub, BOB, as_user, task.id, project_id=other.id)
    assert list(moved.label_ids) == []
    back = change(stub, BOB, as_user, task.id, project_id=team.id, label_ids=[here])
    assert list(back.label_ids) == [here]
    # Labels of the old project with the move: refused, nothing changed.
    error = grpc_error(change, stub, BOB, as_user, task.id, project_id=other.id, label_ids=[here])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=as_user(BOB)).project_id == team.id
    moved = change(stub, BOB, as_user, task.id, project_id=other.id, label_ids=[there])
    assert list(moved.label_ids) == [there]
    # Out of the projects: a personal task, no labels.
    assert list(change(stub, BOB, as_user, task.id, project_id=None).label_ids) == []


def test_the_label_filter_lists_tasks_carrying_all_given_labels(
    stub, projects, team, as_user
) -> None:
    bug, ui, api = (new_label(projects, as_user, team.id, name).id for name in ("bug", "ui", "api"))
    tagged = {
        frozenset(labels): new_task(stub, BOB, as_user, project_id=team.id, label_ids=labels).id
        for labels in ([bug], [bug, ui], [bug, ui, api], [ui], [])
    }
    both = [tagged[frozenset([bug, ui, api])], tagged[frozenset([bug, ui])]]  # newest first
    new_task(stub, BOB, as_user)  # a personal task: never listed with a label
    for user_id in (ALICE, BOB, CAROL, STAFF):
        assert listed(stub, user_id, as_user, label=[bug, ui]) == both
        assert listed(stub, user_id, as_user, label=[ui, bug, ui]) == both  # order and repeats: the same
    assert len(listed(stub, BOB, as_user, label=[bug])) == 3
    assert listed(stub, BOB, as_user, label=[bug], ordering="created_at")[0] == tagged[frozenset([bug])]
    # With the other filters.
    stub.UpdateTask(
        pb.UpdateTaskRequest(
            task=pb.Task(id=both[0], status=pb.TASK_STATUS_DONE),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        ),
        metadata=as_user(BOB),
    )
    assert listed(stub, BOB, as_user, label=[bug, ui], status=pb.TASK_STATUS_DONE) == [both[0]]
    with_project = listed(stub, BOB, as_user, label=[bug], project=str(team.id))
    assert with_project == listed(stub, BOB, as_user, label=[bug])
    assert listed(stub, BOB, as_user, label=[bug], project="none") == []
    # Labels of two projects: no task carries both.
    foreign = new_label(projects, as_user, other_project(projects, as_user).id, "bug").id
    assert listed(stub, BOB, as_user, label=[bug, foreign]) == []
    # An outsider sees nothing, whatever labels they name; an unknown label, nothing.
    assert listed(stub, 9, as_user, label=[bug]) == []
    assert listed(stub, BOB, as_user, label=[10**12]) == []


def test_the_label_filter_is_checked(stub, as_user) -> None:
    error = grpc_error(stub.ListTasks, pb.ListTasksRequest(label=list(range(1, 12))), metadata=as_user(ALICE))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = grpc_error(stub.ListTasks, pb.ListTasksRequest(label=[0]), metadata=as_user(ALICE))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_label_changes_are_changes_of_the_project_checked_against_if_match(projects, team, as_user) -> None:
    def version() -> int:
        return projects.GetProject(ppb.GetProjectRequest(id=team.id), metadata=as_user(ALICE)).version

    before = version()
    stale = VersionMatch(versions=[before])
    label = new_label(projects, as_user, team.id, "bug")
    assert version() == before + 1
    rename = ppb.UpdateLabelRequest(
        project_id=team.id, label=ppb.Label(id=label.id, name="defect"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"]), if_match=stale,
    )
    create = ppb.CreateLabelRequest(
        project_id=team.id, label=ppb.Label(name="x", color="#000000"), if_match=stale
    )
    delete = ppb.DeleteLabelRequest(project_id=team.id, id=label.id, if_match=stale)
    for call, request in ((projects.UpdateLabel, rename), (projects.CreateLabel, create),
                          (projects.DeleteLabel, delete)):
        assert failure(call, request, metadata=as_user(ALICE)) == (
            grpc.StatusCode.FAILED_PRECONDITION, "VERSION_MISMATCH"
        )
    assert version() == before + 1  # refused changes change nothing
    rename.if_match.CopyFrom(VersionMatch(versions=[before + 1]))
    assert projects.UpdateLabel(rename, metadata=as_user(ALICE)).name == "defect"
    assert version() == before + 2
    delete.if_match.CopyFrom(VersionMatch(versions=[before + 2]))
    projects.DeleteLabel(delete, metadata=as_user(ALICE))
    assert version() == before + 3
