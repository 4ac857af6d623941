"""common.raw_sql without a server: what it keeps of a statement, and a value its bind
processor refuses reported as SQLAlchemy reports it."""

from __future__ import annotations

import datetime as dt
import gc
import weakref

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, create_engine, select
from sqlalchemy import exc as sa_exc

from common.db import UTCDateTime
from common.raw_sql import RawSQL

things = Table("things", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime))


@pytest.fixture
def raw():  # noqa: ANN201
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/nowhere")  # never connected
    yield RawSQL(engine)
    engine.dispose()


def test_a_statement_the_caller_dropped_is_not_kept(raw) -> None:  # noqa: ANN001
    # task_svc.listing keeps at most 512 page statements (an LRU); one per shape of query,
    # which clients choose: a statement it evicted must not live on here, or a client
    # cycling through filters grows task_svc's memory without bound.
    statement = select(things.c.id).where(things.c.id == bindparam("id"))
    write = things.update().where(things.c.id == bindparam("key")).values(at=bindparam("at"))
    assert raw.runs_raw(statement) and raw.runs_raw(write, {"key": 1, "at": None})
    dropped = weakref.ref(statement), weakref.ref(write)
    del statement, write
    gc.collect()
    assert [ref() for ref in dropped] == [None, None]


def test_a_value_the_bind_processor_refuses_is_a_statement_error(raw) -> None:  # noqa: ANN001
    # SQLAlchemy raises StatementError (wrapping the ValueError) for a naive datetime.
    statement = select(things.c.id).where(things.c.at < bindparam("before"))
    with pytest.raises(sa_exc.StatementError) as caught:
        raw.fetch_all(statement, {"before": dt.datetime(2026, 1, 1)})  # naive
    assert isinstance(caught.value.orig, ValueError)
    assert not isinstance(caught.value, sa_exc.DBAPIError)  # not a database's error
