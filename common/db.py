"""SQLAlchemy engines, sessions and migrations, the same for every service.

PostgreSQL in production and in the integration tests; a SQLite file as the embedded
default, in WAL mode with a busy timeout so several threads can write.

Both engines keep the same invariants. SQLite has no row locks (`SELECT ... FOR UPDATE`
is dropped) and pysqlite's legacy transaction control sends BEGIN only before the first
write, so a check (a read) and its act (a write) would not share a transaction. Here
pysqlite's control is off and SQLAlchemy sends BEGIN itself (the recipe in SQLAlchemy's
pysqlite dialect docs, "Serializable isolation / Savepoints / Transactional DDL"):
`Database.transaction()` begins IMMEDIATE, taking SQLite's one write lock at once
(https://sqlite.org/lang_transaction.html), so writing units of work run one at a time
and a check-then-act inside one holds; `Database.read()` begins a plain (deferred)
transaction: one consistent snapshot that blocks nobody in WAL mode.

Reads on PostgreSQL run in autocommit: no BEGIN before the query and no ROLLBACK when
the connection goes back to the pool, so a read is one round trip, not three. Nothing is
lost: at READ COMMITTED (PostgreSQL's default, which the services keep) each statement
of a transaction takes its own snapshot anyway (PostgreSQL docs, "Transaction
Isolation", 13.2.1), and a read has nothing to commit or roll back.

Stale pooled connections (a database restart, a proxy's idle cut) are not tested with a
round trip on every checkout (`pool_pre_ping`); instead a failed unit of work is run once
more when its connection was lost before any COMMIT was sent (`retry_once_on_disconnect`),
since nothing of it can have been applied then (the server rolls back an open
transaction whose connection ends, PostgreSQL and SQLite alike). After a COMMIT was
sent the outcome is unknown and the failure is reported (UNAVAILABLE), never retried.

A write whose statements mostly need no answer (a create: its row, then its event,
watcher and activity rows) can run pipelined on PostgreSQL (`transaction(pipelined=True)`,
libpq's pipeline mode: PostgreSQL docs, "Pipeline Mode"; psycopg's `Connection.pipeline`):
BEGIN and the statements marked `RESULT_UNREAD` wait in the client and go to the server
with the next statement whose result is read, and the last of them with the COMMIT, so
such a create is two round trips, not six.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import tenacity
from alembic import command
from alembic.config import Config
from sqlalchemy import BigInteger, Connection, DateTime, Engine, Integer, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

from common import id_reuse
from common.faults import is_disconnect, is_sqlite_busy
from common.raw_sql import RawSQL

log = logging.getLogger(__name__)
T = TypeVar("T")

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL ids are 64-bit.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect):  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect):  # noqa: ANN001
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value

    def result_processor(self, dialect, coltype):  # noqa: ANN001, ANN201
        """None on PostgreSQL: a timestamptz arrives aware, so no Python call per value
        (five per task row, a tenth of a page's CPU in SQLAlchemy)."""
        if dialect.name == "postgresql":
            return None
        return super().result_processor(dialect, coltype)


def dialect_insert(session: Session):  # noqa: ANN201
    """The `insert` of the session's engine, with ON CONFLICT (upserts): PostgreSQL's or
    SQLite's; SQLAlchemy's generic insert has none."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Whether the current unit of work (an RPC, a message) has sent a COMMIT.
_commit_sent: ContextVar[bool] = ContextVar("taskmgr_commit_sent", default=False)
# Connections beyond pool_size, for the odd extra user (migrations, a health probe); the
# pool itself is sized to the threads that use it, so none is opened per request.
_POOL_OVERFLOW = 4


def create_db_engine(
    url: str, *, pool_size: int = 10, postgres_settings: dict[str, str] | None = None
) -> Engine:
    """An engine for `url` keeping up to `pool_size` connections open (size it to the
    threads that use it: gRPC workers plus background threads); `postgres_settings` are
    session settings (SET name = value) for every PostgreSQL connection, and are ignored
    on SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        on_disk = bool(parsed.database) and parsed.database != ":memory:"
        if on_disk:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # An in-memory database lives in one connection (SQLAlchemy's singleton pool).
        sizing = {"pool_size": pool_size, "max_overflow": _POOL_OVERFLOW} if on_disk else {}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **sizing
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        options = " ".join(f"-c {name}={value}" for name, value in (postgres_settings or {}).items())
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=_POOL_OVERFLOW,
            connect_args={"options": options} if options else {},
        )
    event.listen(engine, "commit", _note_commit)
    event.listen(engine, "before_cursor_execute", _refuse_writes_in_reads)
    if engine.dialect.name == "postgresql":
        _pipelining(engine)
    return engine


def _note_commit(_connection) -> None:  # noqa: ANN001
    # Runs just before the DBAPI commit: from here on the outcome may be "applied".
    _commit_sent.set(True)


def retry_once_on_disconnect(work: Callable[[], T]) -> T:
    """`work()`, run a second time if it failed because its database connection was lost
    (`common.faults.is_disconnect`) before any COMMIT was sent in it; otherwise its
    error is raised as is. `work` is a whole unit (an RPC handler, a message handler)
    that may be repeated when nothing of it was committed: its other effects must be
    reads or repeatable.
    """
    token = _commit_sent.set(False)
    try:
        try:
            return work()
        except Exception as error:
            if not is_disconnect(error) or _commit_sent.get():
                raise
            log.warning("database connection lost before commit; running the unit of work again")
        _commit_sent.set(False)
        return work()
    finally:
        _commit_sent.reset(token)


# Execution option naming how a SQLite transaction begins: DEFERRED or IMMEDIATE.
SQLITE_BEGIN = "taskmgr_sqlite_begin"


# Switching a file to WAL needs its exclusive lock. While another connection of a
# process starting at the same moment writes in rollback mode (its migration), SQLite
# answers "database is locked" at once instead of waiting (it would deadlock: this
# connection holds a shared lock), so the switch is tried again until that write ends,
# within the busy timeout. Once switched, the file stays in WAL for every connection.
@tenacity.retry(
    retry=tenacity.retry_if_exception(is_sqlite_busy),
    wait=tenacity.wait_random_exponential(multiplier=0.01, max=0.5),
    stop=tenacity.stop_after_delay(30),
    reraise=True,
)
def _switch_to_wal(cursor) -> None:  # noqa: ANN001
    cursor.execute("PRAGMA journal_mode=WAL")


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    # No implicit BEGIN from pysqlite (it would come only before the first write):
    # _sqlite_begin sends it when SQLAlchemy starts a transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Execution option of Database.read()'s connections: INSERT, UPDATE and DELETE refused.
READ_ONLY = "taskmgr_read_only"


def _refuse_writes_in_reads(connection, _cursor, _statement, _parameters, context, _many) -> None:  # noqa: ANN001
    # A write in a read unit of work is never atomic with the check before it (and on
    # SQLite fails when a writer committed since its snapshot): make it loud at once.
    if connection.get_execution_options().get(READ_ONLY) and (
        context.isinsert or context.isupdate or context.isdelete
    ):
        raise RuntimeError("a write in Database.read(): use Database.transaction()")


def _sqlite_begin(connection) -> None:  # noqa: ANN001
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def serialize_on(session: Session, name: str) -> None:
    """Makes the rest of `session`'s transaction (a `Database.transaction()`) run alone
    among transactions that serialize on the same `name`: for a check-then-act with no
    row to lock, such as counting rows and then inserting one (an attempt budget).

    PostgreSQL: a transaction-scoped advisory lock on a 64-bit hash of `name`, released
    at commit or rollback. SQLite: nothing more to do, the transaction began IMMEDIATE
    and holds the database's only write lock. RuntimeError on a SQLite session that is
    not a writing transaction (there it would lock nothing).
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name})
    elif connection.get_execution_options().get(SQLITE_BEGIN) != "IMMEDIATE":
        raise RuntimeError("serialize_on needs a Database.transaction() session")


# Execution option of a statement whose result nobody reads (an INSERT without RETURNING:
# build it with `.inline()`, or PostgreSQL returns its generated key): in a pipelined
# transaction it waits to go with the next statement whose result is read, or the COMMIT.
# Its error (a constraint's IntegrityError too) is raised by that statement or the commit.
RESULT_UNREAD = "taskmgr_result_unread"
# connection.info key of a connection's pipelined transaction (a _Pipeline).
_PIPELINE = "taskmgr_pipeline"


class _Pipeline:
    """A pipelined transaction on a psycopg connection (Database.transaction(pipelined=True)).

    psycopg in pipeline mode sends a Sync right after its own BEGIN (to learn the new
    transaction status), a round trip of its own; so the connection is put in autocommit
    for the transaction (psycopg then sends no BEGIN or COMMIT: no round trip either way)
    and this sends BEGIN and COMMIT as statements in the pipeline, the COMMIT with the one
    Sync that leaves pipeline mode."""

    def __init__(self, driver, raw: RawSQL) -> None:  # noqa: ANN001 (a psycopg.Connection)
        self.driver = driver
        self.raw = raw
        driver.autocommit = True  # idle and not yet pipelined: no round trip
        self._mode = driver.pipeline()
        self.pipeline = self._mode.__enter__()
        driver.execute(b"BEGIN", prepare=False)  # waits for the first statement read

    def end(self, last: bytes | None) -> None:
        """Sends what waits, and `last` (COMMIT) after it, with one Sync, and leaves
        pipeline mode; raises the first error of what was sent (psycopg's)."""
        mode, self._mode = self._mode, None
        if mode is not None:
            if last:
                self.driver.execute(last, prepare=False)
            mode.__exit__(None, None, None)

    def close(self) -> None:
        """Back to psycopg's own transaction control, once the transaction has ended."""
        self.driver.autocommit = False


def _pipelining(engine: Engine) -> None:
    """Lets `engine`'s transactions be pipelined (_Pipeline): a statement not marked
    RESULT_UNREAD is answered at once (a Sync after it: SQLAlchemy reads its result, or
    its row count, as soon as it returns), and the dialect's commit and rollback end the
    pipeline first. The commit is the dialect's (not a "commit" event listener) so that
    its errors are SQLAlchemy's (IntegrityError, a lost connection invalidated) and
    `_note_commit`, an event listener, has run before the COMMIT is sent."""
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection) -> None:  # noqa: ANN001 (the pool's connection)
        info = _info(dbapi_connection)
        state = info.get(_PIPELINE)
        if state is None or state.driver is not dbapi_connection.driver_connection:
            commit(dbapi_connection)
            return
        state.end(b"COMMIT")  # on an error the transaction stays open: rolled back next
        info.pop(_PIPELINE)
        state.close()

    def do_rollback(dbapi_connection) -> None:  # noqa: ANN001
        state = _info(dbapi_connection).pop(_PIPELINE, None)
        if state is None or state.driver is not dbapi_connection.driver_connection:
            rollback(dbapi_connection)
            return
        try:
            state.end(None)
        except Exception:  # noqa: BLE001 (the error of a statement rolled back anyway)
            log.debug("error of a pipelined transaction that is rolled back", exc_info=True)
        rollback(dbapi_connection)  # psycopg sends ROLLBACK: its transaction status is not idle
        state.close()

    dialect.do_commit, dialect.do_rollback = do_commit, do_rollback  # this engine's dialect only
    event.listen(engine, "after_cursor_execute", _answer_unless_unread)


def execute_unread(session: Session, statement: Executable, params: Mapping[str, Any]) -> None:
    """Runs the INSERT, UPDATE or DELETE `statement` (built with RESULT_UNREAD) with `params`
    in `session`'s transaction. In a pipelined transaction on PostgreSQL it is queued on
    psycopg's pipeline without SQLAlchemy's execution (common.raw_sql); its error, such
    as an IntegrityError, comes from the next statement whose result is read or from
    the COMMIT, as SQLAlchemy's. Elsewhere SQLAlchemy runs it."""
    connection = session.connection()
    state = _pipelined(connection)
    if state is None or not state.raw.queue_write(connection, statement, params):
        connection.execute(statement, params)


def fetch_in_transaction(session: Session, statement: Executable, params: Mapping[str, Any]) -> Sequence[Any]:
    """The rows of `statement` (a SELECT, or a write with RETURNING) with `params` in
    `session`'s transaction, by position and as attributes. In a pipelined transaction
    on PostgreSQL run by psycopg directly (common.raw_sql), sent with the statements
    waiting before it; its errors, and theirs, SQLAlchemy's. Elsewhere SQLAlchemy runs it."""
    connection = session.connection()
    state = _pipelined(connection)
    if state is not None:
        rows = state.raw.fetch_in_pipeline(connection, state.pipeline, statement, params)
        if rows is not None:
            return rows
    return connection.execute(statement, params).all()


def _pipelined(connection: Connection) -> _Pipeline | None:
    """The pipelined transaction of `connection`, when its statements may skip SQLAlchemy."""
    pooled = connection.connection
    state = pooled.info.get(_PIPELINE)
    if state is None or state.driver is not pooled.driver_connection:
        return None
    return state


def _info(dbapi_connection) -> dict:  # noqa: ANN001
    try:
        return dbapi_connection.info
    except NotImplementedError:  # the dialect's first connection, before the pool has it
        return {}


def _answer_unless_unread(connection, _cursor, _statement, _parameters, context, _many) -> None:  # noqa: ANN001
    state = connection.info.get(_PIPELINE)
    if state is not None and not context.execution_options.get(RESULT_UNREAD):
        state.pipeline.sync()


class Database:
    """One service's engine and session factory."""

    def __init__(
        self, url: str, *, pool_size: int = 10, postgres_settings: dict[str, str] | None = None
    ) -> None:
        self.engine = create_db_engine(url, pool_size=pool_size, postgres_settings=postgres_settings)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # The same pool; on SQLite their transactions begin IMMEDIATE.
        self._writer = self.engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        # The same pool; on PostgreSQL in autocommit (psycopg sets it on the connection
        # object, no round trip, and SQLAlchemy resets it when the connection returns).
        self._reader = self.engine
        if self.engine.dialect.name == "postgresql":
            self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._reader = self._reader.execution_options(**{READ_ONLY: True})
        self._raw = RawSQL(self.engine) if self.engine.dialect.name == "postgresql" else None

    @property
    def sessions(self) -> sessionmaker:
        """The session factory, e.g. as the target of SQLAlchemy session events."""
        return self._sessions

    @contextmanager
    def transaction(self, *, pipelined: bool = False) -> Iterator[Session]:
        """A writing unit of work: commits on success, rolls back on any exception.

        On SQLite it holds the database's write lock from its start (BEGIN IMMEDIATE;
        other writers wait up to the busy timeout), so what it read is still true when
        it writes. On PostgreSQL (READ COMMITTED) lock what you check: `with_for_update()`,
        `serialize_on`, or a conditional UPDATE whose rowcount is checked. No slow I/O
        inside: on SQLite every other writer waits for it.

        `pipelined` (PostgreSQL; nothing on SQLite, which has no round trips): BEGIN and
        the statements marked RESULT_UNREAD go to the server with the next statement
        whose result is read, the last ones with the COMMIT (see the module docstring).
        Their errors come from that statement or from the end of the block: catch an
        IntegrityError of theirs around the whole `with`.
        """
        with self._sessions(bind=self._writer) as session, session.begin():
            if pipelined and self.engine.dialect.name == "postgresql":
                pooled = session.connection().connection
                pooled.info[_PIPELINE] = _Pipeline(pooled.driver_connection, self._raw)
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A reading session, blocking no one: one snapshot on SQLite (deferred BEGIN); on
        PostgreSQL autocommit, one round trip per statement (see the module docstring).
        Nothing it changes is ever committed."""
        with self._sessions(bind=self._reader) as session:
            yield session

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A Core connection for reads, as `read()` but without the ORM session: for hot
        paths whose rows go straight into reply messages (a session costs more CPU than
        PostgreSQL spends on a primary-key select)."""
        with self._reader.connect() as connection:  # autobegins: SQLite's deferred BEGIN
            yield connection

    def fetch_all(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Any]:
        """All rows of the read-only SELECT `statement` with `params`, each with its columns
        by position and as attributes: `read_connection` for one statement, with less
        CPU on PostgreSQL (common.raw_sql: the same pool, errors and disconnect handling,
        without SQLAlchemy's per-execution work)."""
        if self._raw is not None:
            rows = self._raw.fetch_all(statement, params)
            if rows is not None:
                return rows
        with self.read_connection() as connection:
            return connection.execute(statement, params).all()

    def dispose(self) -> None:
        self.engine.dispose()


# Any fixed number: advisory locks are scoped to the current database.
_MIGRATION_LOCK_KEY = 0x7461736B6D6772  # "taskmgr"


def migrate(database: Database, migrations_dir: Path) -> None:
    """Brings the schema to the newest revision (`alembic upgrade head`)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    # On SQLite the writer's BEGIN IMMEDIATE makes processes starting together migrate
    # one after the other, as the advisory lock below does on PostgreSQL.
    with database._writer.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Alembic's batch mode rebuilds a SQLite table (copy, DROP, rename); with
            # foreign keys on, the DROP would delete or cascade into the rows referring
            # to it. SQLite's procedure for such changes turns them off outside the
            # transaction and checks them before commit (sqlite.org/lang_altertable.html
            # section 7); the pragma is a no-op inside a transaction, hence the driver.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    # Replicas starting together: one migrates, the others wait here (the
                    # lock is released at commit) and then find the schema at head.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                config.attributes["connection"] = connection
                if sqlite:
                    with id_reuse.keeping_sqlite_sequences(connection):
                        command.upgrade(config, "head")
                else:
                    command.upgrade(config, "head")
                if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
                    raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
