"""Who is told about which event (events.md "Notifications"). Plain rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from taskmgr.events.v1 import events_pb2

OTP_REQUESTED = "taskmgr.user.otp_requested"
PASSWORD_RESET_REQUESTED = "taskmgr.user.password_reset_requested"
USER_REGISTERED = "taskmgr.user.registered"
USER_VERIFIED = "taskmgr.user.verified"
TASK_CREATED = "taskmgr.task.created"
TASK_UPDATED = "taskmgr.task.updated"
TASK_ASSIGNED = "taskmgr.task.assigned"
TASK_DELETED = "taskmgr.task.deleted"
TASK_COMMENTED = "taskmgr.task.commented"
PROJECT_MEMBER_ADDED = "taskmgr.project.member_added"
TASK_DUE_SOON = "taskmgr.task.due_soon"
TASK_OVERDUE = "taskmgr.task.overdue"
# Nobody is emailed; notify_svc.preferences keeps the settings it carries.
NOTIFICATION_SETTINGS_CHANGED = "taskmgr.user.notification_settings_changed"
# Nobody is emailed; notify_svc.account_states keeps the state it carries.
USER_ACTIVE_CHANGED = "taskmgr.user.active_changed"

PAYLOAD_TYPES: dict[str, type[Message]] = {
    OTP_REQUESTED: events_pb2.OtpRequested,
    PASSWORD_RESET_REQUESTED: events_pb2.PasswordResetRequested,
    USER_REGISTERED: events_pb2.UserRegistered,
    USER_VERIFIED: events_pb2.UserVerified,
    TASK_CREATED: events_pb2.TaskCreated,
    TASK_UPDATED: events_pb2.TaskUpdated,
    TASK_ASSIGNED: events_pb2.TaskAssigned,
    TASK_DELETED: events_pb2.TaskDeleted,
    TASK_COMMENTED: events_pb2.TaskCommented,
    PROJECT_MEMBER_ADDED: events_pb2.ProjectMemberAdded,
    TASK_DUE_SOON: events_pb2.TaskDueSoon,
    TASK_OVERDUE: events_pb2.TaskOverdue,
    NOTIFICATION_SETTINGS_CHANGED: events_pb2.NotificationSettingsChanged,
    USER_ACTIVE_CHANGED: events_pb2.UserActiveChanged,
}
# Task events whose recipients task_svc decides (its watchers: TaskPeople.recipients).
WATCHED_EVENTS = (TASK_CREATED, TASK_UPDATED, TASK_ASSIGNED, TASK_DELETED, TASK_COMMENTED)
# user.* events say who the user is; they feed the recipient directory.
_USER_EVENTS = (OTP_REQUESTED, PASSWORD_RESET_REQUESTED, USER_REGISTERED, USER_VERIFIED)


# An event id is a UUID in its text form (events.md); types are short dotted names.
MAX_EVENT_ID = 36
MAX_EVENT_TYPE = 100


class MalformedEvent(ValueError):
    """An event that can never be handled (retrying it cannot help)."""


@dataclass(frozen=True)
class Contact:
    user_id: int
    username: str
    email: str


def unpack(event: events_pb2.Event) -> Message | None:
    """The typed payload, or None for an event type without rules (it is only logged)."""
    if not event.id or not event.type:
        raise MalformedEvent("event without id or type")
    # The columns that hold them (models.py); SQLite would store longer values silently.
    if len(event.id) > MAX_EVENT_ID or len(event.type) > MAX_EVENT_TYPE:
        raise MalformedEvent(f"event id over {MAX_EVENT_ID} or type over {MAX_EVENT_TYPE} characters")
    payload_type = PAYLOAD_TYPES.get(event.type)
    if payload_type is None:
        return None
    payload = payload_type()
    if not event.data.Unpack(payload):
        raise MalformedEvent(f"{event.type} does not carry a {payload_type.DESCRIPTOR.full_name}")
    return payload


def contact_in(event_type: str, payload: Message | None) -> Contact | None:
    """The user a user.* event describes, for the recipient directory."""
    if event_type not in _USER_EVENTS or payload is None or not payload.user_id:  # type: ignore[attr-defined]
        return None
    return Contact(payload.user_id, payload.username, payload.email)  # type: ignore[attr-defined]


def recipients(event_type: str, payload: Message | None) -> list[int]:
    """The user ids to tell about an event, in a stable order, each once."""
    if payload is None:
        return []
    if event_type in (OTP_REQUESTED, PASSWORD_RESET_REQUESTED, USER_VERIFIED):
        return [payload.user_id]  # type: ignore[attr-defined]
    if event_type in WATCHED_EVENTS and payload.people.HasField("recipients"):  # type: ignore[attr-defined]
        # task_svc knows who watches the task and who can see it: its list is the rule.
        people = payload.people  # type: ignore[attr-defined]
        return [user_id for user_id in dict.fromkeys(people.recipients.user_ids) if user_id != people.actor]
    # Events recorded before task_svc listed recipients: the assignee, and the people
    # involved in a status change.
    if event_type == TASK_ASSIGNED:
        people = payload.people  # type: ignore[attr-defined]
        told_self = people.assigned_to == people.actor
        return [people.assigned_to] if people.HasField("assigned_to") and not told_self else []
    if event_type in (TASK_DUE_SOON, TASK_OVERDUE):
        # Whoever has to act on it: the assignee, or the creator of an unassigned task.
        people = payload.people  # type: ignore[attr-defined]
        return [people.assigned_to if people.HasField("assigned_to") else people.created_by]
    if event_type == PROJECT_MEMBER_ADDED:
        # Nobody is told of what they did themselves (an owner adding themselves back).
        return [] if payload.user_id == payload.actor else [payload.user_id]  # type: ignore[attr-defined]
    if event_type == TASK_UPDATED and payload.old_status != payload.new_status:  # type: ignore[attr-defined]
        people = payload.people  # type: ignore[attr-defined]
        involved = [people.created_by, *([people.assigned_to] if people.HasField("assigned_to") else [])]
        return [user_id for user_id in dict.fromkeys(involved) if user_id != people.actor]
    return []
