"""Database.fetch_all: the same rows, errors and pool on both engines, and on PostgreSQL
without SQLAlchemy's execution (common.raw_sql), its lost connections handled as
SQLAlchemy handles them."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeDecorator

from common import outbox, relay
from common.db import (
    RESULT_UNREAD,
    Database,
    UTCDateTime,
    execute_unread,
    fetch_in_transaction,
    retry_once_on_disconnect,
)
from common.faults import database_away, is_disconnect
from task_svc import activity, listing, locked_task, tasks, watchers
from task_svc.list_query import parse_list_query
from task_svc.models import Outbox
from task_svc.permissions import Viewer
from task_svc.tasks import _TASK_AND_ROLE
from tests.conftest import PG_ADMIN_URL


class Shouted(TypeDecorator):
    """A type that changes values as they are read: its statements need SQLAlchemy."""

    impl = String(20)
    cache_ok = True

    def process_result_value(self, value, dialect):  # noqa: ANN001, ANN201
        return None if value is None else value.upper()


metadata = MetaData()
things = Table(
    "things", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20)),
    Column("loud", Shouted),
    Column("at", UTCDateTime),
    Column("flag", Boolean, default=False),  # a default computed in Python
)
AT = dt.datetime(2026, 11, 30, 12, 0, 1, 250000, tzinfo=dt.UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request, tmp_path):  # noqa: ANN001, ANN201
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/t.db"
    db = Database(url, pool_size=2)
    metadata.create_all(db.engine)
    with db.transaction() as session:
        session.execute(things.insert(), [
            {"id": 1, "name": "one", "loud": "a", "at": AT},
            {"id": 2, "name": "two", "loud": "b", "at": AT},
        ])
    yield db
    db.dispose()


def test_rows_by_position_and_by_name_with_bound_and_literal_values(database) -> None:  # noqa: ANN001
    statement = (
        select(things.c.id, things.c.name, things.c.at, literal_column("'x'").label("mark"))
        .where(things.c.name != "three", things.c.id >= bindparam("first"))  # "three": bound in the statement
        .order_by(things.c.id)
    )
    rows = database.fetch_all(statement, {"first": 2})
    assert len(rows) == 1
    assert tuple(rows[0]) == (2, "two", AT, "x")
    assert (rows[0].id, rows[0].name, rows[0].at, rows[0].mark) == (2, "two", AT, "x")
    assert database.fetch_all(statement, {"first": 3}) == []


def test_a_statement_whose_values_need_sqlalchemy_gets_them_processed(database) -> None:  # noqa: ANN001
    statement = select(things.c.loud).where(things.c.id.in_(bindparam("ids", expanding=True)))
    rows = database.fetch_all(statement, {"ids": [1, 2]})
    assert sorted(row.loud for row in rows) == ["A", "B"]


INSERT = things.insert().inline().execution_options(**{RESULT_UNREAD: True})


@pytest.mark.parametrize("pipelined", [True, False])
def test_writes_whose_result_is_unread_are_committed_with_their_values_processed(
    database, pipelined  # noqa: ANN001
) -> None:
    elsewhere = dt.timezone(dt.timedelta(hours=5))
    with database.transaction(pipelined=pipelined) as session:
        three = {"id": 3, "name": "three", "at": AT.astimezone(elsewhere), "flag": True}
        execute_unread(session, INSERT, three)
        execute_unread(session, INSERT, {"id": 4, "name": "four"})  # flag: its Python default
        rename = things.update().where(things.c.id == bindparam("key")).values(name=bindparam("new_name"))
        rename = rename.execution_options(**{RESULT_UNREAD: True})
        execute_unread(session, rename, {"key": 1, "new_name": "uno"})
    columns = (things.c.id, things.c.name, things.c.at, things.c.flag)
    rows = database.fetch_all(select(*columns).order_by(things.c.id), {})
    assert [tuple(row) for row in rows] == [
        (1, "uno", AT, False), (2, "two", AT, False), (3, "three", AT, True), (4, "four", None, False),
    ]
    assert rows[2].at.utcoffset() == dt.timedelta(0)  # stored as UTC (UTCDateTime's bind processor)


@pytest.mark.parametrize("pipelined", [True, False])
def test_a_queued_write_that_breaks_a_constraint_fails_the_transaction_as_sqlalchemy_would(
    database, pipelined  # noqa: ANN001
) -> None:
    with pytest.raises(sa_exc.IntegrityError), database.transaction(pipelined=pipelined) as session:
        execute_unread(session, INSERT, {"id": 5, "name": "five"})
        execute_unread(session, INSERT, {"id": 1, "name": "one again"})  # the primary key is taken
    assert [row.id for row in database.fetch_all(select(things.c.id).order_by(things.c.id), {})] == [1, 2]
    with database.transaction(pipelined=pipelined) as session:  # the pooled connection still works
        execute_unread(session, INSERT, {"id": 5, "name": "five"})
    assert len(database.fetch_all(select(things.c.id), {})) == 3


@pytest.mark.parametrize("pipelined", [True, False])
def test_a_read_in_a_transaction_sees_the_writes_queued_before_it_and_returns_rows(
    database, pipelined  # noqa: ANN001
) -> None:
    returning = things.insert().returning(things.c.id, things.c.name)
    with database.transaction(pipelined=pipelined) as session:
        execute_unread(session, INSERT, {"id": 8, "name": "eight", "flag": False})
        rows = fetch_in_transaction(session, returning, {"id": 9, "name": "nine", "flag": False})
        assert [(row.id, row.name) for row in rows] == [(9, "nine")]
        count = select(func.count().label("n")).select_from(things)
        assert fetch_in_transaction(session, count, {})[0].n == 4  # 1, 2 and the two just written
    assert len(database.fetch_all(select(things.c.id), {})) == 4


@pytest.mark.parametrize("pipelined", [True, False])
def test_a_read_in_a_transaction_raises_the_error_of_a_write_queued_before_it(
    database, pipelined  # noqa: ANN001
) -> None:
    with pytest.raises(sa_exc.IntegrityError), database.transaction(pipelined=pipelined) as session:
        execute_unread(session, INSERT, {"id": 1, "name": "taken", "flag": False})
        fetch_in_transaction(session, select(things.c.id), {})
    assert len(database.fetch_all(select(things.c.id), {})) == 2


@pytest.mark.postgres
def test_the_hot_statements_run_without_sqlalchemy_on_postgresql(pg_url) -> None:
    database = Database(pg_url, pool_size=1)
    try:
        page, _params = listing.page_query(parse_list_query(Viewer(user_id=1, is_staff=False), {}), None, 21)
        assert database._raw.runs_raw(_TASK_AND_ROLE)
        assert database._raw.runs_raw(page)
        assert not database._raw.runs_raw(select(things.c.loud))  # a result processor
        assert database._raw.runs_raw(INSERT, {"id": 1, "name": "x", "flag": True})
        assert not database._raw.runs_raw(INSERT, {"id": 1, "name": "x"})  # flag's Python default
        now = {"created_at": AT}
        watch = {"task_id": 1, "user_id": 1, "staff": False, **now}
        assert database._raw.runs_raw(watchers._WATCH["postgresql"], watch)
        assert database._raw.runs_raw(activity._RECORD, {
            "task_id": 1, "actor": 1, "kind": "x", "field": None, "old_value": "", "new_value": "",
            "comment_id": None, **now,
        })
        event = {"event_id": "e", "event_type": "t", "payload": b"", **now}
        assert database._raw.runs_raw(outbox._insert(Outbox), event)
        task = {"title": "t", "description": "", "status": "pending", "priority": 2, "due_date": None,
                "created_by": 1, "assigned_to": None, "project_id": None, "created_at": AT, "updated_at": AT,
                "version": 1}
        assert database._raw.runs_raw(tasks._INSERT_TASK, task)
        assert database._raw.runs_raw(locked_task._statement(locked_task.Lock.CHANGE, ()))
        change = {"task_id": 1, "read_version": 1, "title": "t", "version": 2}
        assert database._raw.runs_raw(locked_task._WRITE, change)
        assert database._raw.runs_raw(relay._claimed(Outbox.__table__))  # the outbox relay's batch
        assert database._raw.runs_raw(relay._delete_claimed(Outbox.__table__), {"ids": [1, 2]})
    finally:
        database.dispose()


@pytest.mark.postgres
def test_the_connection_goes_back_to_the_pool_transactional(pg_url) -> None:
    database = Database(pg_url, pool_size=1)  # one connection: the write reuses the read's
    try:
        metadata.create_all(database.engine)
        assert database.fetch_all(select(func.count()).select_from(things), {})[0][0] == 0
        with pytest.raises(RuntimeError), database.transaction() as session:
            session.execute(things.insert(), {"id": 7, "name": "seven"})
            raise RuntimeError("rolled back")
        assert database.fetch_all(select(func.count()).select_from(things), {})[0][0] == 0
    finally:
        database.dispose()


@pytest.mark.postgres
def test_a_lost_connection_is_a_disconnect_and_the_unit_of_work_runs_again(pg_url) -> None:
    database = Database(pg_url, pool_size=2)
    statement = select(literal_column("pg_backend_pid()").label("pid"))
    try:
        first = database.fetch_all(statement, {})[0].pid
        _end_every_connection_to(pg_url)  # what a restart does to the pooled connections

        with pytest.raises(sa_exc.DBAPIError) as caught:
            database.fetch_all(statement, {})
        assert is_disconnect(caught.value) and database_away(caught.value)

        runs = []
        def work() -> int:  # noqa: E306
            runs.append(1)
            return database.fetch_all(statement, {})[0].pid
        first = database.fetch_all(statement, {})[0].pid  # a new pooled connection
        _end_every_connection_to(pg_url)
        assert retry_once_on_disconnect(work) != first
        assert len(runs) == 2  # the stale connection once, then a fresh one
    finally:
        database.dispose()


@pytest.mark.postgres
def test_a_bad_statement_is_an_error_not_a_disconnect(pg_url) -> None:
    database = Database(pg_url, pool_size=1)
    try:
        missing = Table("no_such_table", MetaData(), Column("id", Integer))
        with pytest.raises(sa_exc.ProgrammingError) as caught:
            database.fetch_all(select(missing.c.id), {})
        assert not is_disconnect(caught.value) and not database_away(caught.value)
        assert database.fetch_all(select(literal_column("1").label("one")), {})[0].one == 1
    finally:
        database.dispose()


def _end_every_connection_to(url: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
            {"name": make_url(url).database},
        )
    admin.dispose()
