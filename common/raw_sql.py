"""Hot statements on PostgreSQL without SQLAlchemy's per-execution machinery.

Why: a primary-key select or a page of tasks costs PostgreSQL 0.1-0.3 ms, and
SQLAlchemy's execution around it (the execution context, the event hooks, the cursor
result and its Row objects, a Connection and its transaction object per checkout) cost
about as much again in task_svc: 25-30% of its samples under the list load (py-spy,
bench/perf_vs_floor.py --profile list). A create's three INSERTs whose result nobody
reads (its event, watcher and activity rows) cost a fifth of its CPU the same way.

What stays SQLAlchemy's: the statement is built and compiled by it (once per statement
object and set of parameter names, for the engine's dialect), with its bind processors
applied to the values; its pool lends the connection and takes it back (resetting it as
for any checkout); and a failure is reported as SQLAlchemy reports it: a read's error
here, a `DBAPIError` wrapping psycopg's error, with `connection_invalidated` set and the
pool's older connections marked stale when the connection was lost (the dialect's own
`is_disconnect`), so `common.faults` and `common.db.retry_once_on_disconnect` treat it
exactly as before; a queued write's error by the statement or the COMMIT that sends it,
which SQLAlchemy runs (common.db, pipelined transactions).

What is skipped: everything per execution. A read runs in autocommit (as
`Database.read()` does: one round trip, no ROLLBACK on return) on a psycopg cursor whose
rows are named tuples: columns by position and as attributes, as SQLAlchemy's Row (so
each selected column needs a name of its own: label repeated expressions). A write is
queued on the transaction's psycopg pipeline.

A statement that needs SQLAlchemy while it runs (a result processor, parameters expanded
at execution such as an IN list, a column default computed in Python) is run through
SQLAlchemy instead; SQLite always is (pysqlite has no pool-level cost worth avoiding, and
SQLite's reads need their deferred BEGIN: a consistent snapshot).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Engine, exc
from sqlalchemy.sql import Executable


@dataclass(frozen=True)
class _Compiled:
    sql: str  # the dialect's SQL text, with %(name)s parameters
    returns_rows: bool  # a SELECT, or a write with RETURNING
    defaults: Mapping[str, Any]  # values bound in the statement itself (literals)
    processors: Mapping[str, Callable[[Any], Any]]  # bind processors, by parameter name

    def values(self, params: Mapping[str, Any], dialect: Any) -> Mapping[str, Any]:
        """The values to send for `params`; sqlalchemy.exc.StatementError, as SQLAlchemy
        raises it, when a bind processor refuses one (a naive datetime for UTCDateTime)."""
        values = {**self.defaults, **params} if self.defaults else params
        if self.processors:
            values = dict(values)
            try:
                for name, process in self.processors.items():
                    if name in values:
                        values[name] = process(values[name])
            except Exception as error:
                # A StatementError, since `error` is not the driver's (SQLAlchemy's wrapping).
                wrapped = exc.DBAPIError.instance(self.sql, params, error, psycopg.Error, dialect=dialect)
                raise wrapped from error
        return values


class RawSQL:
    """Runs statements of `engine` (PostgreSQL with psycopg) without SQLAlchemy's execution."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        # statement -> (parameter names of a write, None for a read) -> its SQL, or None
        # when it must go through SQLAlchemy. Held no longer than the caller holds the
        # statement: most are built once, but task_svc.listing keeps a bounded LRU of one
        # per shape of query, the shapes chosen by clients.
        self._compiled: weakref.WeakKeyDictionary[
            Executable, dict[frozenset[str] | None, _Compiled | None]
        ] = weakref.WeakKeyDictionary()

    def runs_raw(self, statement: Executable, write_params: Mapping[str, Any] | None = None) -> bool:
        """Whether `statement` is run without SQLAlchemy's execution (see the module
        docstring): a read, or a write with `write_params`."""
        keys = None if write_params is None else frozenset(write_params)
        return self._compile(statement, keys) is not None

    def fetch_all(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Any] | None:
        """All rows of the SELECT `statement` with `params`, as named tuples; None when the
        statement must go through SQLAlchemy (the caller runs it there). Raises
        sqlalchemy.exc.DBAPIError as SQLAlchemy would."""
        compiled = self._compile(statement, None)
        if compiled is None:
            return None
        values = compiled.values(params, self._dialect)
        pooled = self._engine.raw_connection()
        driver = pooled.driver_connection
        try:
            driver.autocommit = True  # an attribute of the client: no round trip
            with driver.cursor(row_factory=namedtuple_row) as cursor:
                cursor.execute(compiled.sql, values)
                return cursor.fetchall()
        except psycopg.Error as error:
            raise self._as_sqlalchemy_error(error, pooled, compiled.sql, values) from error
        finally:
            try:
                if not (driver.closed or driver.broken):
                    driver.autocommit = False  # the pool's connections are transactional
            except psycopg.Error as error:  # left inside a query: never pooled in autocommit
                pooled.invalidate(error)
            finally:
                pooled.close()  # back to the pool (or discarded, when invalidated)

    def fetch_in_pipeline(
        self,
        connection: Connection,
        pipeline: psycopg.Pipeline,
        statement: Executable,
        params: Mapping[str, Any],
    ) -> Sequence[Any] | None:
        """The rows of `statement` (a SELECT, or a write with RETURNING) run in the
        pipelined transaction of `connection` (`pipeline`: its psycopg pipeline), sent at
        once with whatever waits before it; None when it must go through SQLAlchemy.
        Raises sqlalchemy.exc.DBAPIError as SQLAlchemy would (an error of a statement
        queued before it too)."""
        keys = None if statement.is_select else frozenset(params)
        compiled = self._compile(statement, keys)
        if compiled is None or not compiled.returns_rows:
            return None
        values = compiled.values(params, self._dialect)
        pooled = connection.connection
        try:
            with pooled.driver_connection.cursor(row_factory=namedtuple_row) as cursor:
                cursor.execute(compiled.sql, values)
                pipeline.sync()
                return cursor.fetchall()
        except psycopg.Error as error:
            raise self._as_sqlalchemy_error(error, pooled, compiled.sql, values) from error

    def queue_write(self, connection: Connection, statement: Executable, params: Mapping[str, Any]) -> bool:
        """Queues the INSERT, UPDATE or DELETE `statement` with `params` on the psycopg
        connection of `connection`, in pipeline mode; its result is never read.
        False when the statement must go through SQLAlchemy (nothing was queued). Raises
        sqlalchemy.exc.DBAPIError as SQLAlchemy would: psycopg may send it at once and
        raise the error of an earlier statement of the pipeline; the statement's own error
        is raised by whatever sends it to the server next."""
        compiled = self._compile(statement, frozenset(params))
        if compiled is None or compiled.returns_rows:
            return False
        values = compiled.values(params, self._dialect)
        pooled = connection.connection
        try:
            pooled.driver_connection.execute(compiled.sql, values)
        except psycopg.Error as error:
            raise self._as_sqlalchemy_error(error, pooled, compiled.sql, values) from error
        return True

    def _as_sqlalchemy_error(self, error: psycopg.Error, pooled: Any, sql: str, values: Any) -> Exception:
        """`error` as SQLAlchemy raises it; a lost connection invalidated in the pool."""
        lost = self._dialect.is_disconnect(error, pooled.driver_connection, None)
        if lost:
            # As SQLAlchemy's Connection does: this connection and every pooled one
            # opened before it are stale (a restarted server dropped them all).
            self._engine.pool._invalidate(pooled, error)
        return exc.DBAPIError.instance(
            sql, values, error, psycopg.Error, connection_invalidated=lost, dialect=self._dialect
        )

    def _compile(self, statement: Executable, write_keys: frozenset[str] | None) -> _Compiled | None:
        """A SELECT (`write_keys` None), or a write with those parameters; a write's
        RETURNING rows are read only by `fetch_in_pipeline`, the cache keeps both."""
        entries = self._compiled.get(statement)
        if entries is None:
            entries = self._compiled.setdefault(statement, {})
        try:
            return entries[write_keys]
        except KeyError:
            pass
        entry = None
        if write_keys is None and statement.is_select:
            entry = self._entry(statement.compile(dialect=self._dialect))
        elif write_keys is not None and (statement.is_insert or statement.is_update or statement.is_delete):
            # An INSERT's columns are those given (SQLAlchemy decides them per execution).
            compiled = statement.compile(dialect=self._dialect, column_keys=sorted(write_keys))
            if not (compiled.insert_prefetch or compiled.update_prefetch):  # no defaults made in Python
                entry = self._entry(compiled)
        entries[write_keys] = entry
        return entry

    def _entry(self, compiled: Any) -> _Compiled | None:
        if compiled.post_compile_params or compiled.literal_execute_params:
            return None  # rendered per execution (an expanding IN)
        if any(
            column[3]._cached_result_processor(self._dialect, None) is not None
            for column in compiled._result_columns
        ):
            return None  # values changed as they are read
        # Values written into the statement itself (`Task.status == "open"`); the
        # parameters the caller must give (`bindparam("id")`) are not among them.
        given = {name for name, bind in compiled.binds.items() if bind.required}
        bound = compiled.construct_params(_check=False)
        defaults = {name: value for name, value in bound.items() if name not in given}
        processors = {name: process for name, process in compiled._bind_processors.items() if process}
        returns_rows = bool(compiled._result_columns)
        return _Compiled(compiled.string, returns_rows, defaults, processors)
