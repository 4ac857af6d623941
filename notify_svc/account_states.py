"""Deactivated accounts get no email (issue: a deactivated Bob was still emailed).

user_svc owns whether an account is active; every change (DeactivateUser,
ReactivateUser) reaches notify_svc as a `taskmgr.user.active_changed` event with the new
state and a version, and notify_svc keeps a copy (`account_states`), so deciding whether
to email never calls user_svc (as notify_svc.preferences). The copy keeps the highest
version: events may arrive late or twice, and an older one never undoes a newer one.

Every email to a deactivated account is skipped, codes and the welcome included (a
deactivated account cannot log in; resetting its password would not let it either): the
recipient gets a SKIPPED entry with `REASON`. Within a batch the events are taken in
order, as if handled one by one: a change applies to the events after it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from common.db import utcnow
from notify_svc.models import AccountState
from notify_svc.preferences import Item

ACTIVE_CHANGED = "taskmgr.user.active_changed"
REASON = "the user's account is deactivated"


def deactivated(session: Session, items: Sequence[Item]) -> list[dict[int, str]]:
    """Per item, its recipients whose account is deactivated, with the reason. Stores
    the batch's active_changed events (one statement; the newest version wins)."""
    wanted = {user_id for item in items for user_id in item.user_ids}
    wanted |= {item.payload.user_id for item in items if _is_change(item)}  # type: ignore[union-attr]
    known: dict[int, tuple[int, bool]] = {}
    if wanted:
        rows = session.execute(
            select(AccountState.user_id, AccountState.version, AccountState.active)
            .where(AccountState.user_id.in_(wanted))
        )
        known = {user_id: (version, active) for user_id, version, active in rows}
    said: dict[int, tuple[int, bool]] = {}
    views: list[dict[int, str]] = []
    for item in items:
        if _is_change(item):
            user_id, version = item.payload.user_id, item.payload.version  # type: ignore[union-attr]
            current = known.get(user_id)
            if current is None or version > current[0]:
                known[user_id] = said[user_id] = (version, item.payload.active)  # type: ignore[union-attr]
        views.append({
            user_id: REASON for user_id in item.user_ids if user_id in known and not known[user_id][1]
        })
    if said:
        _store(session, said)
    return views


def _is_change(item: Item) -> bool:
    return item.event_type == ACTIVE_CHANGED and item.payload is not None


def _store(session: Session, states: dict[int, tuple[int, bool]]) -> None:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    now = utcnow()
    statement = insert(AccountState).values([
        {"user_id": user_id, "version": version, "active": active, "updated_at": now}
        for user_id, (version, active) in sorted(states.items())
    ])
    session.execute(statement.on_conflict_do_update(
        index_elements=[AccountState.user_id],
        set_={name: statement.excluded[name] for name in ("active", "version", "updated_at")},
        # Another batch may have stored a newer version since this one read the row.
        where=AccountState.version < statement.excluded.version,
    ))
