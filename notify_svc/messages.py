"""The emails, rendered from the event when they are sent.

The log stores only the subject, so a subject never contains a code; the body (which
may) exists only in memory, on its way to the mail server.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from notify_svc import rules
from notify_svc.rules import Contact
from taskmgr.task.v1 import project_service_pb2, task_service_pb2


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str


def render(event_type: str, payload: Message, to: Contact) -> Email:
    personal = _RENDERERS_FOR_WHOM.get(event_type)
    subject, body = personal(payload, to.user_id) if personal else _RENDERERS[event_type](payload)
    return Email(to=to.email, subject=subject, body=f"Hello {to.username},\n\n{body}\n\n-- taskmgr\n")


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _status(value: int) -> str:
    name = task_service_pb2.TaskStatus.Name(value) if value in task_service_pb2.TaskStatus.values() else ""
    return name.removeprefix("TASK_STATUS_").replace("_", " ").lower() or "unknown"


def _otp(payload) -> tuple[str, str]:  # noqa: ANN001
    return (
        "Your taskmgr verification code",
        f"Your verification code is {payload.code}.\n"
        f"It is valid for {_minutes(payload.lifetime_seconds)} and can be used once.",
    )


def _password_reset(payload) -> tuple[str, str]:  # noqa: ANN001
    return (
        "Your taskmgr password reset code",
        f"Your password reset code is {payload.code}.\n"
        f"It is valid for {_minutes(payload.lifetime_seconds)}. "
        "If you did not ask to reset your password, ignore this email.",
    )


def _welcome(_payload) -> tuple[str, str]:  # noqa: ANN001
    return "Welcome to taskmgr", "Your email address is verified and your account is ready."


def _assigned(payload) -> tuple[str, str]:  # noqa: ANN001
    return (
        f"Task #{payload.task_id} was assigned to you",
        f"You are now the assignee of task #{payload.task_id}: {payload.title}",
    )


def _status_changed(payload) -> tuple[str, str]:  # noqa: ANN001
    old, new = _status(payload.old_status), _status(payload.new_status)
    return (
        f"Task #{payload.task_id} is now {new}",
        f"The status of task #{payload.task_id} ({payload.title}) changed from {old} to {new}.",
    )


def _member_added(payload) -> tuple[str, str]:  # noqa: ANN001
    roles = project_service_pb2.ProjectRole
    known = payload.role in roles.values() and payload.role != roles.PROJECT_ROLE_UNSPECIFIED
    role = roles.Name(payload.role).removeprefix("PROJECT_ROLE_").lower() if known else "member"
    return (
        f"You were added to project #{payload.project_id}",
        f"You are now a {role} of project #{payload.project_id}: {payload.project_name}",
    )


def _due(payload) -> str:  # noqa: ANN001
    return payload.due_date.ToDatetime().strftime("%Y-%m-%d %H:%M UTC")


def _due_soon(payload) -> tuple[str, str]:  # noqa: ANN001
    return (
        f"Task #{payload.task_id} is due soon",
        f"Task #{payload.task_id} ({payload.title}) is due on {_due(payload)}.",
    )


def _overdue(payload) -> tuple[str, str]:  # noqa: ANN001
    return (
        f"Task #{payload.task_id} is overdue",
        f"Task #{payload.task_id} ({payload.title}) was due on {_due(payload)} and is not done yet.",
    )


def _task_assigned(payload, user_id: int) -> tuple[str, str]:  # noqa: ANN001
    """The new assignee, the previous one (told even when they can no longer see the
    task) and the watchers each read what it means for them."""
    people = payload.people
    if people.HasField("assigned_to") and people.assigned_to == user_id:
        return _assigned(payload)
    if payload.HasField("previous_assignee") and payload.previous_assignee == user_id:
        return (
            f"You were unassigned from task #{payload.task_id}",
            f"You are no longer the assignee of task #{payload.task_id}: {payload.title}",
        )
    who = f"user #{people.assigned_to}" if people.HasField("assigned_to") else "nobody"
    return (
        f"Task #{payload.task_id} is now assigned to {who}",
        f"Task #{payload.task_id} ({payload.title}) is now assigned to {who}.",
    )


def _task_updated(payload, _user_id: int) -> tuple[str, str]:  # noqa: ANN001
    if payload.old_status != payload.new_status:
        return _status_changed(payload)
    fields = ", ".join(name.replace("_", " ") for name in payload.changed_fields) or "nothing"
    return (
        f"Task #{payload.task_id} was changed",
        f"Task #{payload.task_id} ({payload.title}) was changed: {fields}.",
    )


def _task_created(payload, _user_id: int) -> tuple[str, str]:  # noqa: ANN001
    return f"Task #{payload.task_id} was created", f"Task #{payload.task_id} was created: {payload.title}"


def _task_deleted(payload, _user_id: int) -> tuple[str, str]:  # noqa: ANN001
    return f"Task #{payload.task_id} was deleted", f"Task #{payload.task_id} ({payload.title}) was deleted."


def _task_commented(payload, user_id: int) -> tuple[str, str]:  # noqa: ANN001
    author = f"User #{payload.people.actor}"
    if user_id in payload.mentioned:
        subject = f"You were mentioned on task #{payload.task_id}"
        intro = f"{author} mentioned you in a comment on task #{payload.task_id} ({payload.title}):"
    else:
        subject = f"New comment on task #{payload.task_id}"
        intro = f"{author} commented on task #{payload.task_id} ({payload.title}):"
    return subject, f"{intro}\n\n{payload.excerpt}"


# Renderers of events whose recipients read different things (also given the user id).
_RENDERERS_FOR_WHOM = {
    rules.TASK_CREATED: _task_created,
    rules.TASK_UPDATED: _task_updated,
    rules.TASK_ASSIGNED: _task_assigned,
    rules.TASK_DELETED: _task_deleted,
    rules.TASK_COMMENTED: _task_commented,
}

_RENDERERS = {
    rules.OTP_REQUESTED: _otp,
    rules.PASSWORD_RESET_REQUESTED: _password_reset,
    rules.USER_VERIFIED: _welcome,
    rules.TASK_ASSIGNED: _assigned,
    rules.TASK_UPDATED: _status_changed,
    rules.PROJECT_MEMBER_ADDED: _member_added,
    rules.TASK_DUE_SOON: _due_soon,
    rules.TASK_OVERDUE: _overdue,
}
