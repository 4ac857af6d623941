"""Due-date reminders: `taskmgr.task.due_soon` and `taskmgr.task.overdue`, once per due date.

Rules (issue 13, item 4), all decided in the database:

- An open task (pending or in progress) whose due date is within `lead` from now gets
  one task.due_soon; once the due date has passed, one task.overdue. Done and cancelled
  tasks get neither.
- "Once per due date": the task row keeps the due date each reminder was sent for
  (`due_soon_sent_for`, `overdue_sent_for`), written in the same transaction as the
  outbox row of the event. A reminder is due only while that column differs from the
  due date, so a changed due date re-arms both, and a restart, a second scheduler or a
  retried tick finds nothing left to send.
- After downtime: each overdue task gets one task.overdue however many ticks were
  missed, and no task.due_soon (the overdue notice marks both as sent).
- Several processes or replicas: each batch is claimed with `SELECT ... FOR UPDATE SKIP
  LOCKED` on PostgreSQL (a concurrent scheduler skips rows being claimed, and finds them
  sent once that one commits: READ COMMITTED rechecks a locked row's WHERE against its
  newest version); on SQLite the transaction begins IMMEDIATE (common.db), so schedulers
  take turns on the database's write lock and each sees the last one's marks.

The reminder marks are written with Core UPDATEs, not through the ORM: a reminder is not
a change of the task, so its version (the ETag) stays as it was.

The loop is a thread waiting on a `threading.Event`, as the outbox relay: one fixed-
interval job whose coordination is in the database needs no scheduling library (APScheduler's
job stores would add a second, weaker lock beside the row locks).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from sqlalchemy import and_, or_, select, text, update

from common.db import Database, utcnow
from task_svc import events
from task_svc.models import REMINDERS_PENDING, Task

log = logging.getLogger(__name__)
_TASKS = Task.__table__
_COLUMNS = (
    _TASKS.c.id, _TASKS.c.title, _TASKS.c.created_by, _TASKS.c.assigned_to, _TASKS.c.due_date,
    _TASKS.c.project_id,
)


class Reminders:
    """The reminder rules over task_svc's database; `run(now)` is one tick."""

    def __init__(self, database: Database, *, lead: dt.timedelta, batch_size: int = 200) -> None:
        """`lead`: how long before the due date task.due_soon is sent (positive).
        `batch_size`: tasks claimed per transaction."""
        if lead <= dt.timedelta(0):
            raise ValueError("the due-soon lead must be positive")
        self._database = database
        self._lead = lead
        self._batch_size = batch_size

    def run(self, now: dt.datetime) -> int:
        """Records in the outbox every reminder due at `now` (an aware datetime): overdue
        notices first, so a task past its date never gets a due-soon one. Returns how
        many events were recorded."""
        if now.tzinfo is None:
            raise ValueError("naive datetime given as now")
        recorded = 0
        for overdue in (True, False):
            while (claimed := self._batch(now, overdue=overdue)) == self._batch_size:
                recorded += claimed
            recorded += claimed
        return recorded

    def _batch(self, now: dt.datetime, *, overdue: bool) -> int:
        due = _TASKS.c.due_date
        if overdue:
            window = due < now
            marks = {"overdue_sent_for": due, "due_soon_sent_for": due}
        else:
            due_soon_unsent = or_(_TASKS.c.due_soon_sent_for.is_(None), _TASKS.c.due_soon_sent_for != due)
            window = and_(due >= now, due <= now + self._lead, due_soon_unsent)
            marks = {"due_soon_sent_for": due}
        claim = (
            select(*_COLUMNS)
            .where(text(REMINDERS_PENDING), window)
            .order_by(due, _TASKS.c.id)
            .limit(self._batch_size)
            .with_for_update(skip_locked=True)  # not rendered on SQLite: the write lock serializes
        )
        record = events.task_overdue if overdue else events.task_due_soon
        with self._database.transaction() as session:
            rows = session.execute(claim).all()
            for row in rows:
                record(session, row)
            if rows:
                session.execute(update(_TASKS).where(_TASKS.c.id.in_([row.id for row in rows])).values(marks))
        return len(rows)


class ReminderScheduler:
    """Runs `reminders.run(clock())` at start and then every `interval` seconds, on a
    daemon thread, until `stop()`. A failed tick (the database away) is logged and the
    next one tries again: nothing is lost, the marks say what is still to send."""

    def __init__(
        self, reminders: Reminders, *, interval: float, clock: Callable[[], dt.datetime] = utcnow
    ) -> None:
        self._reminders = reminders
        self._interval = interval
        self._clock = clock
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="due-reminders", daemon=True)

    def start(self) -> ReminderScheduler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if recorded := self._reminders.run(self._clock()):
                    log.info("due-date reminders: %d recorded", recorded)
            except Exception:
                log.warning("due-date reminders: tick failed; next in %.0fs", self._interval, exc_info=True)
            self._stopping.wait(self._interval)
