"""The body of every service's Alembic env.py: one migration runner for all services.

Each service's migrations/env.py calls run_migrations(Base.metadata). The connection
comes from common.db.migrate; for `alembic` on the command line (new revisions), the
URL comes from the service's database setting.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData


def run_migrations(target_metadata: MetaData, service: str) -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        from common.db import create_db_engine
        from common.settings import load_settings

        engine = create_db_engine(load_settings().database_url(service))
        with engine.begin() as connection:
            _run(connection, target_metadata)
        return
    _run(connection, target_metadata)


def _run(connection, target_metadata: MetaData) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
