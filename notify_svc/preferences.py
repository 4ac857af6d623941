"""Users' notification settings, as notify_svc honours them (issue 13, item 5).

user_svc owns the settings; every change reaches notify_svc as a
`taskmgr.user.notification_settings_changed` event with the whole state and a version,
and notify_svc keeps a copy (`notification_preferences`), so deciding whether to email
never calls user_svc. The copy keeps the highest version: events may arrive late or
twice (at least once, several consumers), and an older one never undoes a newer one.

Each kind of email belongs to one setting (`KIND_OF`); emails of other types
(verification and password reset codes, the welcome) are not settings and always go.
A recipient who turned a kind off gets a SKIPPED log entry naming the setting, instead
of the email. Within a batch the events are taken in order, as if handled one by one: a
settings change applies to the events after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import Message
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.db import dialect_insert, utcnow
from notify_svc.models import NotificationPreference

SETTINGS_CHANGED = "taskmgr.user.notification_settings_changed"
KINDS = ("assignment", "status_changes", "comments", "due_reminders", "project_membership")
# Event type -> the setting that turns its emails off.
KIND_OF = {
    "taskmgr.task.assigned": "assignment",
    "taskmgr.task.created": "status_changes",
    "taskmgr.task.updated": "status_changes",
    "taskmgr.task.deleted": "status_changes",
    "taskmgr.task.commented": "comments",
    "taskmgr.task.due_soon": "due_reminders",
    "taskmgr.task.overdue": "due_reminders",
    "taskmgr.project.member_added": "project_membership",
}


@dataclass(frozen=True)
class Item:
    """What the rules need of one event of a batch."""

    event_type: str
    payload: Message | None
    user_ids: Sequence[int]


@dataclass(frozen=True)
class _Copy:
    version: int
    values: dict[str, bool]


def reason(kind: str) -> str:
    """The SKIPPED entry's reason for a recipient who turned `kind` off."""
    return f"{kind} emails are off in the user's notification settings"


def muted(session: Session, items: Sequence[Item]) -> list[dict[int, str]]:
    """Per item, its recipients who turned its kind off, with the reason. Stores the
    batch's settings events (one statement; the newest version wins)."""
    wanted = {user_id for item in items if item.event_type in KIND_OF for user_id in item.user_ids}
    known: dict[int, _Copy] = {}
    if wanted:
        model = NotificationPreference
        rows = session.scalars(select(model).where(model.user_id.in_(wanted)))
        known = {row.user_id: _Copy(row.version, {k: getattr(row, k) for k in KINDS}) for row in rows}
    said: dict[int, _Copy] = {}
    views: list[dict[int, str]] = []
    for item in items:
        if item.event_type == SETTINGS_CHANGED and item.payload is not None:
            user_id, version = item.payload.user_id, item.payload.version  # type: ignore[attr-defined]
            current = known.get(user_id)
            if current is None or version > current.version:
                known[user_id] = said[user_id] = _Copy(
                    version, {kind: getattr(item.payload, kind) for kind in KINDS}
                )
        kind = KIND_OF.get(item.event_type)
        views.append({
            user_id: reason(kind) for user_id in item.user_ids
            if kind is not None and user_id in known and not known[user_id].values[kind]
        })
    if said:
        _store(session, said)
    return views


def _store(session: Session, copies: dict[int, _Copy]) -> None:
    insert = dialect_insert(session)
    now = utcnow()
    statement = insert(NotificationPreference).values([
        {"user_id": user_id, "version": copy.version, "updated_at": now, **copy.values}
        for user_id, copy in sorted(copies.items())
    ])
    session.execute(statement.on_conflict_do_update(
        index_elements=[NotificationPreference.user_id],
        set_={name: statement.excluded[name] for name in (*KINDS, "version", "updated_at")},
        # Another batch may have stored a newer version since this one read the row.
        where=NotificationPreference.version < statement.excluded.version,
    ))
