"""Ids are never handed out twice on either engine (common.id_reuse): every table with an
integer id is AUTOINCREMENT on SQLite, the migrations build what the models declare, and
the upgrade of an existing SQLite file keeps its rows and references."""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text

from common.db import Database, migrate
from tests.support.engines import ENGINES, database_url

REPO = Path(__file__).resolve().parents[3]
SERVICES = ("user_svc", "task_svc", "notify_svc")


_NEW_USER = text(
    "INSERT INTO users (id, username, email, password_hash, email_verified, is_staff, first_name,"
    " last_name, date_joined) VALUES (:id, :name, :name || '@example.com', 'x', 1, 0, '', '', :now)"
)


def _upgrade_to(database: Database, service: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(REPO / service / "migrations"))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@pytest.fixture
def sqlite_db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield database
    database.dispose()


@pytest.mark.parametrize("service", SERVICES)
def test_every_table_with_an_integer_id_is_autoincrement_on_sqlite(sqlite_db, service: str) -> None:
    migrate(sqlite_db, REPO / service / "migrations")
    with sqlite_db.read() as session:
        tables = session.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        ).all()
        rowid_tables = {
            name: sql for name, sql in tables
            # An INTEGER PRIMARY KEY column is the rowid, the one SQLite would hand out again.
            if [(row.type, row.pk) for row in session.execute(text(f'PRAGMA table_info("{name}")')) if row.pk]
            == [("INTEGER", 1)]
        }
    assert rowid_tables
    assert {name for name, sql in rowid_tables.items() if "AUTOINCREMENT" not in sql} == set()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("service", SERVICES)
def test_the_migrations_build_what_the_models_declare(request, tmp_path, engine: str, service: str) -> None:
    database = Database(database_url(request, engine, tmp_path, service))
    try:
        migrate(database, REPO / service / "migrations")
        metadata = importlib.import_module(f"{service}.models").Base.metadata
        with database.engine.connect() as connection:
            # An object declared for one dialect (`.ddl_if(dialect=...)`, as user_svc's
            # PostgreSQL-only prefix indexes) is compared on that dialect only: Alembic
            # would otherwise want it on SQLite too.
            def on_this_dialect(obj, _name, _type, _reflected, _compare_to) -> bool:  # noqa: ANN001
                only = getattr(obj, "_ddl_if", None)
                return only is None or only.dialect in (None, connection.dialect.name)

            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": on_this_dialect}
            )
            assert compare_metadata(context, metadata) == []
    finally:
        database.dispose()


def test_the_upgrade_keeps_rows_and_references_and_ids_go_on_from_the_highest(sqlite_db) -> None:
    _upgrade_to(sqlite_db, "user_svc", "0001")
    now = dt.datetime.now(dt.UTC)
    with sqlite_db.engine.begin() as connection:
        for user_id in (1, 2, 3):
            connection.execute(_NEW_USER, {"id": user_id, "name": f"u{user_id}", "now": now})
        connection.execute(
            text(
                "INSERT INTO otp_codes (user_id, purpose, code_mac, created_at, expires_at, wrong_attempts)"
                " VALUES (3, 'verify_email', 'mac', :now, :now, 0)"
            ),
            {"now": now},
        )
    migrate(sqlite_db, REPO / "user_svc" / "migrations")
    with sqlite_db.transaction() as session:
        # Rebuilding users did not delete (or cascade into) the rows that refer to it.
        assert session.execute(text("SELECT user_id FROM otp_codes")).scalars().all() == [3]
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        session.execute(text("DELETE FROM users WHERE id = 3"))
        assert session.execute(text("SELECT count(*) FROM otp_codes")).scalar() == 0  # cascade works
        session.execute(_NEW_USER, {"id": None, "name": "new", "now": now})
        assert session.execute(text("SELECT max(id) FROM users")).scalar() == 4  # not 3 again


def test_tasks_start_above_every_id_an_idempotency_key_remembers(sqlite_db) -> None:
    _upgrade_to(sqlite_db, "task_svc", "0001")
    now = dt.datetime.now(dt.UTC)
    with sqlite_db.engine.begin() as connection:
        # Task 9 was made with a key and deleted; task 2 is the highest left.
        connection.execute(
            text(
                "INSERT INTO tasks (id, title, description, status, priority, created_by, created_at,"
                " updated_at, version) VALUES (2, 't', '', 'pending', 2, 1, :now, :now, 1)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO idempotency_keys (created_by, request_id, request_hash, task_id, created_at)"
                " VALUES (1, 'k', 'h', 9, :now)"
            ),
            {"now": now},
        )
    migrate(sqlite_db, REPO / "task_svc" / "migrations")
    with sqlite_db.transaction() as session:
        session.execute(
            text(
                "INSERT INTO tasks (title, description, status, priority, created_by, created_at,"
                " updated_at, version) VALUES ('t', '', 'pending', 2, 1, :now, :now, 1)"
            ),
            {"now": now},
        )
        assert session.execute(text("SELECT max(id) FROM tasks")).scalar() == 10
