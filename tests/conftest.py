"""Fixtures for the real PostgreSQL and RabbitMQ servers.

Every test run makes its own uniquely named databases, exchanges and queues and
removes them afterwards, so runs (and xdist workers) never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.infra import PostgresServer, RabbitMQ

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def postgres(run_id: str) -> Iterator[PostgresServer]:
    server = PostgresServer(PG_ADMIN_URL, prefix=f"tm_{run_id}")
    yield server
    server.drop_all()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for one test, dropped at the end of the run."""
    return postgres.create_database()


@pytest.fixture(scope="session")
def rabbitmq(run_id: str) -> Iterator[RabbitMQ]:
    broker = RabbitMQ(AMQP_URL, prefix=f"tm-{run_id}")
    yield broker
    broker.delete_all()


@pytest.fixture
def unique_name(run_id: str) -> Callable[[str], str]:
    return lambda hint: f"tm-{run_id}-{hint}-{uuid.uuid4().hex[:6]}"
