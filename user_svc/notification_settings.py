"""Notification settings: which kinds of notification are emailed to a user (issue 13,
item 5).

Five kinds, each on until the user turns it off: `assignment`, `status_changes`,
`comments` (comments and mentions), `due_reminders`, `project_membership`. Codes
(verification, password reset) are not a kind: they are always emailed.

Every change is recorded as a `taskmgr.user.notification_settings_changed` event in the
transaction of the change, with the whole new state and a version raised by one, so
notify_svc keeps a copy it can honour without calling user_svc, and a late event never
undoes a newer one (the copy keeps the highest version).

Update semantics are AIP-134's, as every PATCH: the fields named in the update mask
change; a named field left unset goes back to its default (on); an empty mask names the
fields that are set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select

from common.db import Database, dialect_insert, utcnow
from common.errors import invalid
from taskmgr.events.v1 import events_pb2
from user_svc.models import NotificationSetting, Outbox

KINDS = ("assignment", "status_changes", "comments", "due_reminders", "project_membership")
# Read-only fields of the resource: named in a mask (as `*` does over REST), they are ignored.
OUTPUT_ONLY = ("update_time",)
EVENT_TYPE = "taskmgr.user.notification_settings_changed"


@dataclass(frozen=True)
class Preferences:
    """A user's settings: kind -> emailed; `updated_at` None when never changed."""

    values: Mapping[str, bool]
    version: int = 0
    updated_at: dt.datetime | None = None


DEFAULTS = Preferences({kind: True for kind in KINDS})


def mask_kinds(paths: Iterable[str]) -> tuple[str, ...]:
    """The kinds an update mask names; INVALID_ARGUMENT for a path naming no field."""
    paths = list(paths)
    if "*" in paths:
        return KINDS
    unknown = [path for path in paths if path not in KINDS and path not in OUTPUT_ONLY]
    if unknown:
        raise invalid(
            {"update_mask": f"Unknown fields: {', '.join(unknown)}. Updatable: {', '.join(KINDS)}."}
        )
    return tuple(kind for kind in KINDS if kind in paths)


class NotificationSettings:
    def __init__(self, database: Database, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._db = database
        self._clock = clock

    def get(self, user_id: int) -> Preferences:
        with self._db.read() as session:
            row = session.get(NotificationSetting, user_id)
        return _preferences(row) if row is not None else DEFAULTS

    def update(self, user_id: int, changes: Mapping[str, bool | None]) -> Preferences:
        """Sets each kind in `changes` (None: back to on) for `user_id` (an existing user);
        the new settings. A change that changes nothing records no event."""
        unknown = sorted(set(changes) - set(KINDS))
        if unknown:
            raise invalid({name: "Unknown field." for name in unknown})
        with self._db.transaction() as session:
            # The row exists from here on, locked: two first changes at once cannot both insert.
            insert = dialect_insert(session)
            session.execute(
                insert(NotificationSetting)
                .values(user_id=user_id, version=0, **DEFAULTS.values)
                .on_conflict_do_nothing(index_elements=[NotificationSetting.user_id])
            )
            row = session.scalars(
                select(NotificationSetting).where(NotificationSetting.user_id == user_id).with_for_update()
            ).one()
            new = {kind: True if value is None else value for kind, value in changes.items()}
            if all(getattr(row, kind) == value for kind, value in new.items()) and row.version > 0:
                return _preferences(row)
            for kind, value in new.items():
                setattr(row, kind, value)
            row.version += 1
            row.updated_at = self._clock()
            Outbox.record(
                session, source="user_svc", event_type=EVENT_TYPE, subject=str(user_id),
                payload=events_pb2.NotificationSettingsChanged(
                    user_id=user_id, version=row.version, **{kind: getattr(row, kind) for kind in KINDS}
                ),
            )
            return _preferences(row)


def _preferences(row: NotificationSetting) -> Preferences:
    return Preferences({kind: getattr(row, kind) for kind in KINDS}, row.version, row.updated_at)
