"""ListUsers' q= on PostgreSQL: a username prefix (and, for staff, an email prefix) is a
range of an index (migration 0006), not a walk of every user filtered by LIKE."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Select, text

from common.db import Database, migrate
from user_svc.accounts import directory_query
from user_svc.server import MIGRATIONS

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url, pool_size=1)
    migrate(database, MIGRATIONS)
    yield database
    database.dispose()


def plan(database: Database, statement: Select) -> str:
    # The plan user_svc runs: a custom one, the prefix known (a prepared statement keeps
    # custom plans while the generic one costs more, as a walk of all users does).
    with database.engine.connect() as connection:
        compiled = statement.compile(dialect=connection.dialect)
        rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.construct_params())
        return "\n".join(row[0] for row in rows)


def test_a_prefix_is_an_index_range_for_names_and_for_staff_emails(database: Database) -> None:
    # 20,000 users whose names start with three hex digits in any case: a prefix of three
    # matches about 5; the first 21 in id order would take a walk of ~80,000 rows filtered.
    with database.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO users (username, email, password_hash, email_verified, is_staff, is_active,"
            " security_epoch, first_name, last_name, date_joined)"
            " SELECT initcap(substr(md5(g::text), 1, 3)) || '_' || g, 'u' || g || '@example.com', 'x',"
            " true, false, true, 0, '', '', now() FROM generate_series(1, 20000) AS g"
        ))
        connection.execute(text("ANALYZE users"))

    names = plan(database, directory_query(0, "AB1", staff=False, limit=21))
    assert "Index Cond: ((lower((username)::text) ~>=~ 'ab1'::text)" in names, names
    emails = plan(database, directory_query(0, "ab1", staff=True, limit=21))
    for index in ("ix_users_username_lower_prefix", "ix_users_email_prefix"):
        assert f"Bitmap Index Scan on {index}" in emails, emails
    assert "Seq Scan" not in names + emails
