"""Replicas of a service start together (compose restarts, a Kubernetes rollout) and each
migrates its database at start: on PostgreSQL they must not trip over each other."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest
from sqlalchemy import inspect

from common.db import Database, migrate
from tests.deploy.manifests import REPO

REPLICAS = 3


@pytest.mark.postgres
@pytest.mark.parametrize("service", ["user_svc", "task_svc", "notify_svc"])
def test_replicas_migrating_one_fresh_database_at_once_all_start(pg_url: str, service: str) -> None:
    migrations: Path = REPO / service / "migrations"
    databases = [Database(pg_url, pool_size=1) for _ in range(REPLICAS)]
    start_together = Barrier(REPLICAS)

    def start_replica(database: Database) -> None:
        start_together.wait()
        migrate(database, migrations)

    try:
        with ThreadPoolExecutor(REPLICAS) as pool:
            for outcome in [pool.submit(start_replica, database) for database in databases]:
                outcome.result(timeout=60)  # re-raises a replica's failure
        assert "alembic_version" in inspect(databases[0].engine).get_table_names()
    finally:
        for database in databases:
            database.dispose()
