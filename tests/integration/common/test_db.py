from sqlalchemy import text

from common.db import Database
from task_svc.listing import POSTGRES_SETTINGS


def test_postgres_settings_apply_to_every_connection(pg_url):
    database = Database(pg_url, pool_size=2, postgres_settings=POSTGRES_SETTINGS)
    try:
        with database.read() as first, database.read() as second:  # two pooled connections
            for session in (first, second):
                assert session.execute(text("SHOW plan_cache_mode")).scalar() == "force_generic_plan"
    finally:
        database.dispose()


def test_sqlite_ignores_postgres_settings_and_runs_in_wal_mode(tmp_path):
    database = Database(f"sqlite:///{tmp_path}/x.db", postgres_settings=POSTGRES_SETTINGS)
    try:
        with database.read() as session:
            assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    finally:
        database.dispose()
