"""The events task_svc records in its outbox, in the transaction of the change.

Each carries the people involved (creator, assignee, actor), whom to tell (decided
here by task_svc.watchers, which knows who can see the task) and the task's project, so
notify_svc never has to call back to know whom to tell, or where it happened. The task
events are also the one place a change is written to the task's activity
(task_svc.activity) and its new assignee starts watching: any code path that records
the event records those, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.orm import Session

from task_svc import activity, watchers
from task_svc.memberships import Role
from task_svc.models import Comment, Outbox, Project, Task
from task_svc.watchers import Candidate
from taskmgr.events.v1 import events_pb2
from taskmgr.task.v1 import project_service_pb2, task_service_pb2

SOURCE = "task_svc"
CREATED = "taskmgr.task.created"
UPDATED = "taskmgr.task.updated"
ASSIGNED = "taskmgr.task.assigned"
DELETED = "taskmgr.task.deleted"
COMMENTED = "taskmgr.task.commented"
MEMBER_ADDED = "taskmgr.project.member_added"
DUE_SOON = "taskmgr.task.due_soon"
OVERDUE = "taskmgr.task.overdue"


def status_enum(status: str) -> int:
    return task_service_pb2.TaskStatus.Value(f"TASK_STATUS_{status.upper()}")


def _people(task: Task, actor: int, recipients: Sequence[int] | None = None) -> events_pb2.TaskPeople:
    people = events_pb2.TaskPeople(created_by=task.created_by, assigned_to=task.assigned_to, actor=actor)
    if recipients is not None:
        people.recipients.user_ids.extend(recipients)
        people.recipients.SetInParent()  # set, even when nobody is to be told
    return people


def _record(session: Session, event_type: str, task: Task, payload) -> None:  # noqa: ANN001
    Outbox.record(session, source=SOURCE, event_type=event_type, subject=str(task.id), payload=payload)


def task_created(
    session: Session, task: Task, actor: int, *, actor_is_staff: bool = False,
    assignee_role: Role | None = None,
) -> None:
    """The creator starts watching (as staff, when they are: staff see every task);
    nobody is told (the creator made it). A task created assigned has its task_assigned
    event too, where the assignee is told; whom to tell takes no read: a new task's
    watchers are its creator and its assignee (`assignee_role`: the assignee's role in
    the task's project, as the create checked it). Nothing here reads a result, so
    every row goes with the create's COMMIT (pipelined: common.db)."""
    watchers.watch(session, task.id, task.created_by, staff=actor_is_staff)
    activity.record(session, task.id, actor, activity.Kind.CREATED)
    _record(session, CREATED, task, events_pb2.TaskCreated(
        task_id=task.id, title=task.title, people=_people(task, actor, []), status=status_enum(task.status),
        project_id=task.project_id,
    ))
    if task.assigned_to is not None:
        watching = [Candidate(task.created_by, actor_is_staff), Candidate(task.assigned_to)]
        roles = {task.assigned_to: assignee_role} if assignee_role is not None else {}
        task_assigned(session, task, actor, previous_assignee=None, watching=(watching, roles))


def task_updated(
    session: Session, task: Task, actor: int, *, old: Mapping[str, Any], told_otherwise: Collection[int] = (),
    watching: tuple[Sequence[Candidate], Mapping[int, Role]] | None = None,
) -> None:
    """`old`: the changed fields' values before the change, as stored (an assignee's
    change is task_assigned's to record as activity). The watchers are told once for
    all the fields, but for `told_otherwise` (told by another event of the same change).
    `watching`: the task's watchers and their roles in its project, when the caller
    knows them (task_svc.locked_task); else they are read."""
    activity.changed(session, task, actor, old)
    told = _told(session, task, actor, watching, exclude=told_otherwise)
    _record(session, UPDATED, task, events_pb2.TaskUpdated(
        task_id=task.id, title=task.title, people=_people(task, actor, told),
        old_status=status_enum(old.get("status", task.status)), new_status=status_enum(task.status),
        changed_fields=list(old), project_id=task.project_id,
    ))


def task_assigned(
    session: Session, task: Task, actor: int, *, previous_assignee: int | None,
    watching: tuple[Sequence[Candidate], Mapping[int, Role]] | None = None,
) -> None:
    """The new assignee starts watching; the watchers are told, and so is the previous
    assignee, even when they can no longer see the task. `watching`: the task's watchers
    (the new assignee among them) and their roles in its project, when the caller knows
    them; else they are read."""
    if task.assigned_to is not None:
        watchers.watch(session, task.id, task.assigned_to)
    activity.assigned(session, task, actor, previous_assignee)
    always = [previous_assignee] if previous_assignee else []
    told = _told(session, task, actor, watching, always=always)
    _record(session, ASSIGNED, task, events_pb2.TaskAssigned(
        task_id=task.id, title=task.title, people=_people(task, actor, told),
        previous_assignee=previous_assignee, project_id=task.project_id,
    ))


def _told(
    session: Session, task: Task, actor: int, watching: tuple[Sequence[Candidate], Mapping[int, Role]] | None,
    **rules: Any,
) -> list[int]:
    """watchers.who_is_told for the known `watching`, else watchers.recipients (a read)."""
    if watching is None:
        return watchers.recipients(session, task, actor, **rules)
    candidates, roles = watching
    return watchers.who_is_told(task, actor, candidates, dict(roles), **rules)


def task_deleted(
    session: Session, task: Task, actor: int, *,
    watching: tuple[Sequence[Candidate], Mapping[int, Role]] | None = None,
) -> None:
    """Recorded before the task is deleted (its watchers, comments and activity go with
    it). `watching`: as task_updated's."""
    told = _told(session, task, actor, watching)
    _record(session, DELETED, task, events_pb2.TaskDeleted(
        task_id=task.id, title=task.title, people=_people(task, actor, told),
        project_id=task.project_id,
    ))


# How much of a comment an event carries (the email quotes it).
EXCERPT_LENGTH = 500


def task_commented(
    session: Session, task: Task, comment: Comment, mentioned: Sequence[Candidate], *, edited: bool = False,
    watching: tuple[Sequence[Candidate], Mapping[int, Role]] | None = None,
) -> None:
    """The watchers and the `mentioned` users who can see the task are told, each once.
    `edited`: the comment's text changed; only the users it mentions now and did not
    before (`mentioned`) are told. `watching`: as task_updated's (a new comment's); then
    only the roles of mentioned users who do not watch are read, if any."""
    actor = comment.author
    if not edited:
        activity.record(session, task.id, actor, activity.Kind.COMMENT_ADDED, comment_id=comment.id)
    if watching is None:
        told = watchers.recipients(session, task, actor, extra=mentioned, watchers=not edited)
    else:
        candidates, roles = watching
        known = {c.user_id for c in candidates}
        unknown = {c.user_id for c in mentioned if c.user_id not in known}
        roles = {**roles, **watchers.roles_of(session, task.project_id, unknown)}
        told = watchers.who_is_told(task, actor, [*candidates, *mentioned], roles)
    if edited and not told:
        return
    seen_mentions = [c.user_id for c in mentioned if c.user_id in told]
    _record(session, COMMENTED, task, events_pb2.TaskCommented(
        task_id=task.id, title=task.title, people=_people(task, actor, told), comment_id=comment.id,
        excerpt=comment.text[:EXCERPT_LENGTH], mentioned=seen_mentions, project_id=task.project_id,
    ))


def member_added(session: Session, project: Project, user_id: int, role: str, actor: int) -> None:
    Outbox.record(
        session, source=SOURCE, event_type=MEMBER_ADDED, subject=str(project.id),
        payload=events_pb2.ProjectMemberAdded(
            project_id=project.id, project_name=project.name, user_id=user_id,
            role=project_service_pb2.ProjectRole.Value(f"PROJECT_ROLE_{role.upper()}"), actor=actor,
        ),
    )


def _reminder(session: Session, event_type: str, message: type, task) -> None:  # noqa: ANN001
    """`task`: a row with the task's id, title, people, due_date and project_id."""
    due_date = Timestamp()
    due_date.FromDatetime(task.due_date)
    Outbox.record(
        session, source=SOURCE, event_type=event_type, subject=str(task.id),
        payload=message(
            task_id=task.id, title=task.title, people=_people(task, 0), due_date=due_date,
            project_id=task.project_id,
        ),
    )


def task_due_soon(session: Session, task) -> None:  # noqa: ANN001
    _reminder(session, DUE_SOON, events_pb2.TaskDueSoon, task)


def task_overdue(session: Session, task) -> None:  # noqa: ANN001
    _reminder(session, OVERDUE, events_pb2.TaskOverdue, task)
