"""Due-date reminders (task_svc.reminders) on PostgreSQL and SQLite, driven by an injected
clock: once per due date each, re-armed by a new due date, none for closed tasks, no storm
or due-soon after downtime, nothing twice across restarts or parallel schedulers, and the
task's version (its ETag) untouched."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import text, update

from common.db import Database, migrate
from task_svc.models import REMINDERS_PENDING, Task
from task_svc.reminders import Reminders, ReminderScheduler
from task_svc.server import MIGRATIONS
from taskmgr.events.v1 import events_pb2
from tests.integration.task_svc.support import ALICE, BOB, bulk_insert, outbox_events
from tests.support.engines import ENGINES, database_url

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
LEAD = dt.timedelta(hours=24)
DUE_SOON, OVERDUE = "taskmgr.task.due_soon", "taskmgr.task.overdue"


@pytest.fixture(params=ENGINES)
def url(request, tmp_path) -> str:
    return database_url(request, request.param, tmp_path, "task_svc")


@pytest.fixture
def database(url: str) -> Iterator[Database]:
    db = Database(url, pool_size=4)
    migrate(db, MIGRATIONS)
    yield db
    db.dispose()


def reminders_sent(database: Database) -> list[tuple[str, int]]:
    """(type, task id) of the reminders in the outbox, in the order recorded."""
    return [(event.type, int(event.subject)) for event in outbox_events(database)
            if event.type in (DUE_SOON, OVERDUE)]


def add(database: Database, due: dt.datetime | None, status: str = "pending", **fields) -> int:
    row = {"title": "t", "created_by": ALICE, "status": status, "due_date": due, **fields}
    [task_id] = bulk_insert(database, [row])
    return task_id


def set_due(database: Database, task_id: int, due: dt.datetime) -> None:
    """As an update through the API does: the ORM, its version incremented."""
    with database.transaction() as session:
        session.get(Task, task_id).due_date = due


def test_once_per_due_date_each_and_never_for_closed_tasks(database: Database) -> None:
    reminders = Reminders(database, lead=LEAD)
    soon = add(database, NOW + 2 * HOUR, assigned_to=BOB)
    later = add(database, NOW + 30 * HOUR, status="in_progress")
    late = add(database, NOW - 3 * HOUR, status="in_progress")
    add(database, NOW + HOUR, status="done")
    add(database, NOW - HOUR, status="cancelled")
    add(database, None)

    assert reminders.run(NOW) == 2
    assert reminders_sent(database) == [(OVERDUE, late), (DUE_SOON, soon)]
    assert reminders.run(NOW) == 0
    assert reminders.run(NOW + HOUR) == 0
    reminders.run(NOW + 7 * HOUR)  # `later` comes within the lead; `soon` has passed
    assert reminders_sent(database)[2:] == [(OVERDUE, soon), (DUE_SOON, later)]
    reminders.run(NOW + 31 * HOUR)
    reminders.run(NOW + 100 * HOUR)
    assert Counter(reminders_sent(database)) == {
        (OVERDUE, late): 1, (DUE_SOON, soon): 1, (OVERDUE, soon): 1,
        (DUE_SOON, later): 1, (OVERDUE, later): 1,
    }


def test_the_event_says_whom_and_when(database: Database) -> None:
    task_id = add(database, NOW + HOUR, assigned_to=BOB, title="Ship it")
    Reminders(database, lead=LEAD).run(NOW)
    [event] = outbox_events(database)
    payload = events_pb2.TaskDueSoon()
    assert event.data.Unpack(payload) and event.source == "task_svc"
    assert (payload.task_id, payload.title) == (task_id, "Ship it")
    assert payload.due_date.ToDatetime(dt.UTC) == NOW + HOUR
    assert (payload.people.created_by, payload.people.assigned_to, payload.people.actor) == (ALICE, BOB, 0)
    assert not payload.HasField("project_id")


def test_a_new_due_date_rearms_both_and_the_version_is_the_tasks_own(database: Database) -> None:
    reminders = Reminders(database, lead=LEAD)
    task_id = add(database, NOW + HOUR)
    reminders.run(NOW)
    reminders.run(NOW + 2 * HOUR)
    with database.read() as session:
        version = session.get(Task, task_id).version
    assert version == 1  # two reminders, no change of the task: the ETag holds

    set_due(database, task_id, NOW + 10 * HOUR)
    reminders.run(NOW + 2 * HOUR)
    reminders.run(NOW + 11 * HOUR)
    reminders.run(NOW + 12 * HOUR)
    assert reminders_sent(database) == [(DUE_SOON, task_id), (OVERDUE, task_id)] * 2

    # Moved from the past to the future before the scheduler saw it: one of each still.
    other = add(database, NOW - HOUR)
    set_due(database, other, NOW + 20 * HOUR)
    reminders.run(NOW + 12 * HOUR)
    reminders.run(NOW + 21 * HOUR)
    assert reminders_sent(database)[4:] == [(DUE_SOON, other), (OVERDUE, other)]


def test_closed_after_a_reminder_then_reopened_gets_nothing_twice(database: Database) -> None:
    reminders = Reminders(database, lead=LEAD)
    task_id = add(database, NOW + HOUR)
    reminders.run(NOW)
    with database.transaction() as session:
        session.execute(update(Task).where(Task.id == task_id).values(status="done"))
    reminders.run(NOW + 2 * HOUR)
    with database.transaction() as session:
        session.execute(update(Task).where(Task.id == task_id).values(status="pending"))
    reminders.run(NOW + 3 * HOUR)
    reminders.run(NOW + 3 * HOUR)
    assert reminders_sent(database) == [(DUE_SOON, task_id), (OVERDUE, task_id)]


def test_catching_up_after_downtime_sends_one_overdue_per_task_and_no_due_soon(
    database: Database, url: str
) -> None:
    ids = bulk_insert(database, [
        {"title": f"t{i}", "created_by": ALICE, "due_date": NOW - dt.timedelta(minutes=i + 1)}
        for i in range(450)
    ])
    # A scheduler that had sent none of them, down for days: batches of 200 until done.
    assert Reminders(database, lead=LEAD, batch_size=200).run(NOW + 72 * HOUR) == 450
    # A restart (a new process: new engine, new scheduler) sends nothing again.
    restarted = Database(url, pool_size=1)
    try:
        assert Reminders(restarted, lead=LEAD).run(NOW + 73 * HOUR) == 0
    finally:
        restarted.dispose()
    sent = reminders_sent(database)
    assert Counter(kind for kind, _ in sent) == {OVERDUE: 450}
    assert sorted(task for _, task in sent) == ids


def test_parallel_schedulers_never_send_twice(database: Database, url: str) -> None:
    """Four schedulers, each with its own engine (as separate processes or replicas),
    ticking at once over the same clock steps."""
    rows = [{"title": f"t{i}", "created_by": ALICE, "due_date": NOW + dt.timedelta(minutes=7 * i - 600)}
            for i in range(400)]
    ids = bulk_insert(database, rows)
    steps = [NOW, NOW + 5 * HOUR, NOW + 20 * HOUR, NOW + 50 * HOUR]
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def scheduler() -> None:
        own = Database(url, pool_size=1)
        try:
            reminders = Reminders(own, lead=LEAD, batch_size=25)
            for step in steps:
                start.wait(timeout=60)
                reminders.run(step)
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)
            start.abort()
        finally:
            own.dispose()

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    counts = Counter(reminders_sent(database))
    assert max(counts.values()) == 1
    # Every task ends overdue once; those due after the first step were also due soon once.
    first_overdue = {task for task, row in zip(ids, rows, strict=True) if row["due_date"] < NOW}
    assert {task for (kind, task) in counts if kind == OVERDUE} == set(ids)
    assert {task for (kind, task) in counts if kind == DUE_SOON} == set(ids) - first_overdue


def test_the_scheduler_thread_ticks_on_its_clock_and_survives_a_failed_tick(database: Database) -> None:
    task_id = add(database, NOW + HOUR)
    ticks: list[dt.datetime] = []
    ticked = threading.Event()

    def clock() -> dt.datetime:
        ticks.append(NOW + len(ticks) * 2 * HOUR)
        if len(ticks) == 2:
            raise RuntimeError("a failed tick")  # logged; the next tick runs
        if len(ticks) >= 4:
            ticked.set()
        return ticks[-1]

    scheduler = ReminderScheduler(Reminders(database, lead=LEAD), interval=0.01, clock=clock).start()
    try:
        assert ticked.wait(10)
    finally:
        scheduler.stop()
    assert reminders_sent(database) == [(DUE_SOON, task_id), (OVERDUE, task_id)]


def test_the_schedulers_predicate_can_use_the_partial_index(database: Database) -> None:
    """The query's WHERE carries the index's predicate (models.REMINDERS_PENDING) verbatim;
    SQLite's INDEXED BY fails the statement ("no query solution") if the index cannot serve it."""
    if database.engine.dialect.name != "sqlite":
        pytest.skip("INDEXED BY is SQLite's; PostgreSQL proves the same implication from the same text")
    with database.read() as session:
        session.execute(text(
            f"SELECT id FROM tasks INDEXED BY ix_tasks_reminders_due_date WHERE {REMINDERS_PENDING}"
            " AND due_date < :now ORDER BY due_date"
        ), {"now": "2026-12-01"}).all()


def _scheduler_process(url: str, steps: list[dt.datetime], barrier) -> None:  # noqa: ANN001
    database = Database(url, pool_size=1)
    try:
        reminders = Reminders(database, lead=LEAD, batch_size=10)
        for step in steps:
            barrier.wait(timeout=60)
            reminders.run(step)
    finally:
        database.dispose()


@pytest.mark.slow
def test_two_scheduler_processes_send_each_reminder_exactly_once(database: Database, url: str) -> None:
    """Two OS processes (as two task_svc replicas) ticking together over the same clock."""
    import multiprocessing

    rows = [{"title": f"t{i}", "created_by": ALICE, "due_date": NOW + dt.timedelta(minutes=11 * i - 300)}
            for i in range(300)]
    ids = bulk_insert(database, rows)
    steps = [NOW + step * HOUR for step in (0, 4, 12, 30, 60)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    processes = [context.Process(target=_scheduler_process, args=(url, steps, barrier)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0, 0]
    counts = Counter(reminders_sent(database))
    assert max(counts.values()) == 1
    assert {task for (kind, task) in counts if kind == OVERDUE} == set(ids)
    first_overdue = {task for task, row in zip(ids, rows, strict=True) if row["due_date"] < NOW}
    assert {task for (kind, task) in counts if kind == DUE_SOON} == set(ids) - first_overdue
