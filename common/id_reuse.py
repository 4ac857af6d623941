"""Ids are never handed out twice, on any engine.

PostgreSQL's identity sequences never go back. SQLite gives an INTEGER PRIMARY KEY the
highest rowid plus one, so after the newest row is deleted its id comes back, unless
the table is declared AUTOINCREMENT (https://sqlite.org/autoinc.html), which keeps the
highest id ever used in `sqlite_sequence`. A reused id is a different thing under an
old name: a client's stored link, an idempotent replay or a log entry would point at
someone else's row. So on SQLite:

- every CREATE TABLE of a table whose id is an INTEGER PRIMARY KEY says AUTOINCREMENT
  (the compile rule below): models (`NEVER_REUSE_IDS` says it where they are declared),
  `op.create_table`, and the copies Alembic's batch mode makes to alter a table, which
  reflection would otherwise make without it;
- common.db.migrate keeps every table's high-water mark in `sqlite_sequence` across
  migrations (`keeping_sqlite_sequences`: a rebuilt table would start again from its
  highest remaining id);
- tables made before this are rebuilt once with `stop_id_reuse_on_sqlite`.

tests/integration/common/test_id_reuse.py checks every table of every service.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from alembic import op
from sqlalchemy import Connection, column, func, select, table, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateTable

# Table options of every table with an integer id (a model's __table_args__).
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


@compiles(CreateTable, "sqlite")
def _create_never_reusing_ids(create: CreateTable, compiler, **kw) -> str:  # noqa: ANN001
    created = create.element
    keys = list(created.primary_key.columns)
    # Only a lone INTEGER key is the rowid (AUTOINCREMENT is refused on anything else).
    if (
        len(keys) == 1
        and keys[0].autoincrement is not False
        and not keys[0].foreign_keys
        and compiler.dialect.type_compiler_instance.process(keys[0].type) == "INTEGER"
    ):
        created.dialect_options["sqlite"]["autoincrement"] = True
    return compiler.visit_create_table(create, **kw)


def stop_id_reuse_on_sqlite(name: str, *, ids_in: Sequence[tuple[str, str]] = ()) -> None:
    """In a migration: rebuilds table `name` as AUTOINCREMENT on SQLite (nothing to do on
    PostgreSQL), keeping its rows, indexes and constraints (Alembic's batch copy
    reflects them; the tests compare the schema with the models'). `ids_in` names
    (table, column) pairs that hold ids of this table which may have been deleted since
    (an idempotency key's task): the sequence starts above them too, so none of those is
    handed out again. Needs foreign keys off (common.db.migrate does that).
    """
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    with op.batch_alter_table(name, recreate="always", table_kwargs=NEVER_REUSE_IDS):
        pass
    used = [select(func.max(column("id"))).select_from(table(name))]
    used += [select(func.max(column(col))).select_from(table(other)) for other, col in ids_in]
    _raise_sequence(bind, name, max((bind.scalar(query) or 0) for query in used))


@contextmanager
def keeping_sqlite_sequences(connection: Connection) -> Iterator[None]:
    """Around migrations on SQLite: no table's `sqlite_sequence` high-water mark goes
    down (a batch rebuild copies the rows, so the copy starts from the highest id left)."""
    marks = {}
    if _exists(connection, "sqlite_sequence"):  # made with the first AUTOINCREMENT table
        marks = dict(connection.execute(text("SELECT name, seq FROM sqlite_sequence")).all())
    yield
    for name, seq in marks.items():
        if _exists(connection, name):  # not dropped
            _raise_sequence(connection, name, seq)


def _exists(connection: Connection, name: str) -> bool:
    query = text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name")
    return connection.execute(query, {"name": name}).first() is not None


def _raise_sequence(connection: Connection, name: str, floor: int) -> None:
    """The high-water mark of `name` becomes at least `floor` (sqlite_sequence may be
    edited with ordinary statements: sqlite.org/autoinc.html)."""
    params = {"name": name, "seq": floor}
    connection.execute(
        text("UPDATE sqlite_sequence SET seq = :seq WHERE name = :name AND seq < :seq"), params
    )
    connection.execute(
        text(
            "INSERT INTO sqlite_sequence (name, seq) SELECT :name, :seq"
            " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = :name)"
        ),
        params,
    )
