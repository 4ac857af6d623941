"""Handles on the real PostgreSQL and RabbitMQ servers that tests create things in."""

from __future__ import annotations

import uuid

import pika
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


class PostgresServer:
    def __init__(self, admin_url: str, *, prefix: str) -> None:
        self._admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self._url = make_url(admin_url)
        self._prefix = prefix
        self._created: list[str] = []

    def create_database(self) -> str:
        name = f"{self._prefix}_{uuid.uuid4().hex[:8]}"
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self._created.append(name)
        return self._url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self._admin.connect() as connection:
            for name in self._created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._admin.dispose()


class RabbitMQ:
    """Remembers the exchanges and queues a test run declares, and deletes them."""

    def __init__(self, url: str, *, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.exchanges: set[str] = set()
        self.queues: set[str] = set()

    def name(self, hint: str) -> str:
        return f"{self.prefix}-{hint}-{uuid.uuid4().hex[:6]}"

    def delete_all(self) -> None:
        if not (self.exchanges or self.queues):
            return
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = connection.channel()
        for queue in self.queues:
            channel.queue_delete(queue)
        for exchange in self.exchanges:
            channel.exchange_delete(exchange)
        connection.close()
