"""The whole system in one process, for end-to-end tests through the REST edge.

user_svc, task_svc and notify_svc run on port 0 over real gRPC, each on its own fresh
PostgreSQL database; events go through real RabbitMQ (names unique to the run) and
emails to a real SMTP server (aiosmtpd) whose inbox the tests read, the way a user
reads the code from their mail. The edge is the Flask app from `create_app`, driven
with Flask's test client (one client IP per test client, so the per-IP limits of one
test never throttle another).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient

import notify_svc.server
import task_svc.server
import user_svc.server
from common.amqp import dead_letter_names
from common.grpc_server import GrpcServer
from common.settings import Settings
from edge_api.app import create_app
from tests.support.infra import PostgresServer, RabbitMQ
from tests.support.local import free_port
from tests.support.mailbox import Inbox

PASSWORD = "correct horse battery staple 42"


@dataclass(frozen=True)
class Tokens:
    user_id: int
    username: str
    email: str
    access: str
    refresh: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


class Stack:
    def __init__(self, postgres: PostgresServer, rabbitmq: RabbitMQ, var_dir: Path) -> None:
        self._stoppers: list[Callable[[], object]] = []
        self._client_ips = (f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}" for n in itertools.count(1))
        self.inbox = Inbox()
        smtp = Controller(self.inbox, hostname="127.0.0.1", port=free_port())
        smtp.start()
        self._stoppers.append(smtp.stop)

        exchange, queue = rabbitmq.name("events"), rabbitmq.name("notify")
        dead_exchange, dead_queue = dead_letter_names(exchange, queue)
        rabbitmq.exchanges.update({exchange, dead_exchange})
        rabbitmq.queues.update({queue, dead_queue})

        settings = Settings(
            environment="test",
            var_dir=var_dir,
            user_svc_database_url=postgres.create_database(),
            task_svc_database_url=postgres.create_database(),
            notify_svc_database_url=postgres.create_database(),
            db_pool_size=8,
            argon2_time_cost=1,
            argon2_memory_cost_kib=1024,
            argon2_parallelism=1,
            # No grace for a rotated refresh token: its reuse is theft at once (the race
            # the grace forgives is covered by user_svc's own tests).
            refresh_reuse_grace_seconds=0,
            amqp_url=rabbitmq.url,
            events_exchange=exchange,
            notify_queue=queue,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_starttls=False,
            email_retry_base_seconds=0.01,
            # Due-date reminders within a second of a task coming due (tests/e2e/test_reminders_rest.py).
            task_reminder_interval_seconds=0.5,
        )
        self.user_svc = self._start(user_svc.server.build(settings, 0))
        settings = settings.model_copy(update={"user_svc_addr": self.user_svc_addr})
        self.notify_svc = self._start(notify_svc.server.build(settings, 0))
        # task_svc reads a task's notifications from notify_svc.
        settings = settings.model_copy(update={"notify_svc_addr": f"127.0.0.1:{self.notify_svc.port}"})
        self.task_svc = self._start(task_svc.server.build(settings, 0))
        self.settings = settings.model_copy(
            update={
                "task_svc_addr": f"127.0.0.1:{self.task_svc.port}",
                "notify_svc_addr": f"127.0.0.1:{self.notify_svc.port}",
            }
        )
        self.app: Flask = create_app(self.settings)

    @property
    def user_svc_addr(self) -> str:
        return f"127.0.0.1:{self.user_svc.port}"

    @property
    def task_svc_addr(self) -> str:
        return f"127.0.0.1:{self.task_svc.port}"

    def client(self) -> FlaskClient:
        """A test client of the edge with a client IP of its own."""
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = next(self._client_ips)
        return client

    def register_and_verify(self, username: str, client: FlaskClient | None = None) -> Tokens:
        """Registers `username`, verifies the address with the emailed code, logs in."""
        client = client or self.client()
        address = f"{username}@example.com"
        answer = client.post(
            "/api/users/register/", json={"username": username, "email": address, "password": PASSWORD}
        )
        assert answer.status_code == 201, answer.get_json()
        user_id = answer.get_json()["id"]
        code = self.inbox.code_for(address)
        answer = client.post("/api/users/verify_otp/", json={"email": address, "otp_code": code})
        assert answer.status_code == 200, answer.get_json()
        answer = client.post("/api/token/", json={"username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        return Tokens(user_id, username, address, body["access"], body["refresh"])

    def stop(self) -> None:
        for stop in reversed(self._stoppers):
            stop()

    def _start(self, server: GrpcServer) -> GrpcServer:
        server.start()
        self._stoppers.append(lambda: server.stop(0))
        return server
