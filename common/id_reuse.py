"""Ids are never handed out twice, on any engine: the migration step that makes it so.

PostgreSQL's identity sequences never go back. SQLite gives an INTEGER PRIMARY KEY the
highest rowid plus one, so after the newest row is deleted its id comes back, unless
the table is declared AUTOINCREMENT (https://sqlite.org/autoinc.html), which keeps the
highest id ever used in `sqlite_sequence`. A reused id is a different thing under an
old name: a client's stored link, an idempotent replay or a log entry would point at
someone else's row. Models declare `sqlite_autoincrement=True` (`NEVER_REUSE_IDS`);
tables made before that are rebuilt once with `stop_id_reuse_on_sqlite`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import column, func, select, table, text

# Table options of every table with an integer id (a model's __table_args__).
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def stop_id_reuse_on_sqlite(name: str, *, ids_in: Sequence[tuple[str, str]] = ()) -> None:
    """In a migration: rebuilds table `name` as AUTOINCREMENT on SQLite (nothing to do on
    PostgreSQL), keeping its rows, indexes and constraints (Alembic's batch copy
    reflects them; tests/integration/common/test_id_reuse.py compares the schema with
    the models'). `ids_in` names (table, column) pairs that hold ids of this table which may
    have been deleted since (an idempotency key's task): the sequence starts above them
    too, so none of those is handed out again. Needs foreign keys off (common.db.migrate).
    """
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    with op.batch_alter_table(name, recreate="always", table_kwargs=NEVER_REUSE_IDS):
        pass
    used = [select(func.max(column("id"))).select_from(table(name))]
    used += [select(func.max(column(col))).select_from(table(other)) for other, col in ids_in]
    highest = max((bind.scalar(query) or 0) for query in used)
    # sqlite_sequence may be edited with ordinary statements (sqlite.org/autoinc.html).
    bind.execute(text("DELETE FROM sqlite_sequence WHERE name = :name"), {"name": name})
    bind.execute(
        text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"), {"name": name, "seq": highest}
    )
