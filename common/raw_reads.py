"""Hot reads on PostgreSQL without SQLAlchemy's per-execution machinery.

Why: a primary-key select or a page of tasks costs PostgreSQL 0.1-0.3 ms, and
SQLAlchemy's execution around it (the execution context, the event hooks, the cursor
result and its Row objects, a Connection and its transaction object per checkout) cost
about as much again in task_svc: 25-30% of its samples under the list load (py-spy,
bench/perf_vs_floor.py --profile list).

What stays SQLAlchemy's: the statement is built and compiled by it (once per statement
object, for the engine's dialect); its pool lends the connection and takes it back
(resetting it as for any checkout); and a failure is reported as SQLAlchemy reports it,
a `DBAPIError` wrapping psycopg's error, with `connection_invalidated` set and the pool's
older connections marked stale when the connection was lost (the dialect's own
`is_disconnect`), so `common.faults` and `common.db.retry_once_on_disconnect` treat it
exactly as before.

What is skipped: everything per execution. The statement runs in autocommit (as
`Database.read()` does: one round trip, no ROLLBACK on return) on a psycopg cursor whose
rows are named tuples: columns by position and as attributes, as SQLAlchemy's Row.

A statement that needs SQLAlchemy while it runs (a bind or result processor, parameters
expanded at execution, such as an IN list) is run through SQLAlchemy instead; SQLite
always is (pysqlite has no pool-level cost worth avoiding, and SQLite's reads need
their deferred BEGIN: a consistent snapshot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Engine, exc
from sqlalchemy.sql import Executable


@dataclass(frozen=True)
class _Compiled:
    sql: str  # the dialect's SQL text, with %(name)s parameters
    defaults: Mapping[str, Any]  # values bound in the statement itself (literals)


class RawReader:
    """Runs read-only statements of `engine` (PostgreSQL with psycopg) on its pool."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        # statement object -> its SQL, or None when it must go through SQLAlchemy. The
        # services build each statement once per shape and keep it, so this stays small.
        self._compiled: dict[Executable, _Compiled | None] = {}

    def runs_raw(self, statement: Executable) -> bool:
        """Whether `statement` is run without SQLAlchemy's execution (see the module docstring)."""
        return self._compile(statement) is not None

    def fetch_all(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Any] | None:
        """All rows of the SELECT `statement` with `params`, as named tuples; None when the
        statement must go through SQLAlchemy (the caller runs it there). Raises
        sqlalchemy.exc.DBAPIError as SQLAlchemy would."""
        compiled = self._compile(statement)
        if compiled is None:
            return None
        values = {**compiled.defaults, **params} if compiled.defaults else params
        pooled = self._engine.raw_connection()
        driver = pooled.driver_connection
        try:
            driver.autocommit = True  # an attribute of the client: no round trip
            with driver.cursor(row_factory=namedtuple_row) as cursor:
                cursor.execute(compiled.sql, values)
                return cursor.fetchall()
        except psycopg.Error as error:
            lost = self._dialect.is_disconnect(error, driver, None)
            if lost:
                # As SQLAlchemy's Connection does: this connection and every pooled one
                # opened before it are stale (a restarted server dropped them all).
                self._engine.pool._invalidate(pooled, error)
            raise exc.DBAPIError.instance(
                compiled.sql, values, error, psycopg.Error,
                connection_invalidated=lost, dialect=self._dialect,
            ) from error
        finally:
            if not (driver.closed or driver.broken):
                driver.autocommit = False  # the pool's connections are transactional
            pooled.close()  # back to the pool (or discarded, when invalidated)

    def _compile(self, statement: Executable) -> _Compiled | None:
        try:
            return self._compiled[statement]
        except KeyError:
            pass
        compiled = statement.compile(dialect=self._dialect)
        needs_sqlalchemy = (
            not statement.is_select
            or compiled.post_compile_params
            or compiled.literal_execute_params
            or any(compiled._bind_processors.values())
            or any(
                column[3]._cached_result_processor(self._dialect, None) is not None
                for column in compiled._result_columns
            )
        )
        # Values written into the statement itself (`Task.status == "open"`); the
        # parameters the caller must give (`bindparam("id")`) are not among them.
        given = {name for name, bind in compiled.binds.items() if bind.required}
        defaults = {
            name: value
            for name, value in compiled.construct_params(_check=False).items()
            if name not in given
        }
        entry = None if needs_sqlalchemy else _Compiled(compiled.string, defaults)
        self._compiled[statement] = entry
        return entry
