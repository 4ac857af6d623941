"""The events task_svc records in its outbox, in the transaction of the change.

Each carries the people involved (creator, assignee, actor) and the task's project so
notify_svc never has to call back to know whom to tell, or where it happened.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.orm import Session

from task_svc.models import Outbox, Project, Task
from taskmgr.events.v1 import events_pb2
from taskmgr.task.v1 import project_service_pb2, task_service_pb2

SOURCE = "task_svc"
CREATED = "taskmgr.task.created"
UPDATED = "taskmgr.task.updated"
ASSIGNED = "taskmgr.task.assigned"
DELETED = "taskmgr.task.deleted"
MEMBER_ADDED = "taskmgr.project.member_added"
DUE_SOON = "taskmgr.task.due_soon"
OVERDUE = "taskmgr.task.overdue"


def status_enum(status: str) -> int:
    return task_service_pb2.TaskStatus.Value(f"TASK_STATUS_{status.upper()}")


def _people(task: Task, actor: int) -> events_pb2.TaskPeople:
    return events_pb2.TaskPeople(created_by=task.created_by, assigned_to=task.assigned_to, actor=actor)


def _record(session: Session, event_type: str, task: Task, payload) -> None:  # noqa: ANN001
    Outbox.record(session, source=SOURCE, event_type=event_type, subject=str(task.id), payload=payload)


def task_created(session: Session, task: Task, actor: int) -> None:
    _record(session, CREATED, task, events_pb2.TaskCreated(
        task_id=task.id, title=task.title, people=_people(task, actor), status=status_enum(task.status),
        project_id=task.project_id,
    ))


def task_updated(
    session: Session, task: Task, actor: int, *, old_status: str, changed_fields: Sequence[str]
) -> None:
    _record(session, UPDATED, task, events_pb2.TaskUpdated(
        task_id=task.id, title=task.title, people=_people(task, actor),
        old_status=status_enum(old_status), new_status=status_enum(task.status),
        changed_fields=changed_fields, project_id=task.project_id,
    ))


def task_assigned(session: Session, task: Task, actor: int, *, previous_assignee: int | None) -> None:
    _record(session, ASSIGNED, task, events_pb2.TaskAssigned(
        task_id=task.id, title=task.title, people=_people(task, actor), previous_assignee=previous_assignee,
        project_id=task.project_id,
    ))


def task_deleted(session: Session, task: Task, actor: int) -> None:
    _record(session, DELETED, task, events_pb2.TaskDeleted(
        task_id=task.id, title=task.title, people=_people(task, actor), project_id=task.project_id,
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
