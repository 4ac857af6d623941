"""`make test`'s set-up: the PostgreSQL and RabbitMQ servers the tests need, found,
started, or borrowed, so the test command works on a fresh machine.

    python -m tests.support.services -- COMMAND...

For each server, the first of these that works:

1. the one configured (TEST_PG_ADMIN_URL, TEST_AMQP_URL; default 127.0.0.1) answers;
2. a local install that is stopped is started: Debian's PostgreSQL cluster on that port
   (pg_ctlcluster), RabbitMQ (rabbitmq-server -detached);
3. a Docker engine answers: a throwaway container (testcontainers), removed afterwards;
4. else one line says what to install, and no test runs (exit status 2).

Then COMMAND runs with TEST_PG_ADMIN_URL and TEST_AMQP_URL pointing at the servers, and
its exit status is returned. A server that answers but refuses us (wrong password) is
reported, never replaced by a container: the settings are wrong, not the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlsplit

import pika
import pika.exceptions
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

PG_ENV, AMQP_ENV = "TEST_PG_ADMIN_URL", "TEST_AMQP_URL"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
AMQP_DEFAULT = "amqp://guest:guest@127.0.0.1:5672/%2F"
POSTGRES_IMAGE = "postgres:16-alpine"  # the version compose runs
RABBITMQ_IMAGE = "rabbitmq:3.13-alpine"
START_TIMEOUT = 120.0
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class Refused(Exception):
    """The server answers but will not let us in: a settings problem, not a missing server."""


@dataclass
class Server:
    name: str
    env: str
    url: str
    probe: Callable[[str], None]  # raises ConnectionError when nothing answers, Refused when refused
    start_local: Callable[[str], str | None]  # starts a stopped local install; None, or why it cannot
    container: Callable[[ExitStack], str]  # a throwaway container's URL
    install_hint: str


def probe_postgres(url: str) -> None:
    engine = create_engine(url, connect_args={"connect_timeout": 3}, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        message = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if "authentication" in message or "does not exist" in message or "permission" in message:
            raise Refused(message) from None
        raise ConnectionError(message) from None
    finally:
        engine.dispose()


def probe_rabbitmq(url: str) -> None:
    parameters = pika.URLParameters(url)
    parameters.connection_attempts, parameters.socket_timeout, parameters.blocked_connection_timeout = 1, 3, 3
    try:
        pika.BlockingConnection(parameters).close()
    except pika.exceptions.ProbableAuthenticationError as exc:
        raise Refused(f"authentication refused ({exc})") from None
    except pika.exceptions.AMQPConnectionError as exc:
        raise ConnectionError(str(exc) or type(exc).__name__) from None


def _is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "127.0.0.1") in LOCAL_HOSTS


def start_local_postgres(url: str) -> str | None:
    """Starts Debian's stopped cluster that listens on the URL's port."""
    if not _is_local(url):
        return "not on this machine"
    if not (shutil.which("pg_lsclusters") and shutil.which("pg_ctlcluster")):
        return "no local PostgreSQL install (pg_ctlcluster)"
    port = str(make_url(url).port or 5432)
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False)  # noqa: S607
    for line in listing.stdout.splitlines():
        version, cluster, cluster_port, status, *_ = line.split()
        if cluster_port == port and status != "online":
            command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start"]
            return _run_start(command)
    return f"no stopped local cluster on port {port}"


def start_local_rabbitmq(url: str) -> str | None:
    """Starts the local RabbitMQ node when the URL is its default listener and it is down."""
    if not _is_local(url):
        return "not on this machine"
    # Debian installs it in /usr/sbin, which a developer's PATH often lacks.
    server = shutil.which("rabbitmq-server", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin")
    if not server:
        return "no local RabbitMQ install (rabbitmq-server)"
    if (urlsplit(url).port or 5672) != 5672:
        return "the local RabbitMQ listens on 5672, not there"
    return _run_start([server, "-detached"])


def _run_start(command: list[str]) -> str | None:
    print(f"make test: starting the local server: {' '.join(command)}", file=sys.stderr)
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)  # noqa: S603
    if result.returncode != 0:
        why = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["failed"]
        return f"`{' '.join(command)}` failed: {why[0]} (as root: sudo {' '.join(command)})"
    return None


def docker_engine() -> str | None:
    """None when a Docker engine answers, else why not."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no usable engine
        return f"no Docker engine answers ({type(exc).__name__})"
    return None


def postgres_container(stack: ExitStack) -> str:
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(
        POSTGRES_IMAGE, username="postgres", password="postgres", dbname="postgres", driver="psycopg"
    )
    stack.enter_context(container)
    return container.get_connection_url()


def rabbitmq_container(stack: ExitStack) -> str:
    from testcontainers.community.rabbitmq import RabbitMqContainer

    container = stack.enter_context(RabbitMqContainer(RABBITMQ_IMAGE))
    host, port = container.get_container_host_ip(), container.get_exposed_port(container.port)
    return f"amqp://{container.username}:{container.password}@{host}:{port}/%2F"


def servers(environ: dict[str, str]) -> list[Server]:
    return [
        Server(
            "PostgreSQL", PG_ENV, environ.get(PG_ENV) or PG_DEFAULT, probe_postgres, start_local_postgres,
            postgres_container,
            "install PostgreSQL (apt-get install postgresql) or Docker, or set TEST_PG_ADMIN_URL "
            "to a server where the user may create databases",
        ),
        Server(
            "RabbitMQ", AMQP_ENV, environ.get(AMQP_ENV) or AMQP_DEFAULT, probe_rabbitmq, start_local_rabbitmq,
            rabbitmq_container,
            "install RabbitMQ 3.13+ (apt-get install rabbitmq-server) or Docker, or set TEST_AMQP_URL",
        ),
    ]


def _answers(server: Server, url: str, timeout: float) -> str | None:
    """None once `url` answers (within `timeout`), else the last reason it did not."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.probe(url)
            return None
        except ConnectionError as exc:
            if time.monotonic() >= deadline:
                return str(exc)
        time.sleep(1)


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def provide(server: Server, stack: ExitStack) -> tuple[str | None, str]:
    """(URL of a server that answers, ""), or (None, one line saying why and what to do)."""
    where = _where(server.url)
    try:
        if _answers(server, server.url, timeout=0) is None:
            return server.url, ""
        tried = [f"nothing answers at {where}"]
        cannot = server.start_local(server.url)
        if cannot is None:
            if _answers(server, server.url, START_TIMEOUT) is None:
                return server.url, ""
            cannot = f"started locally, still not answering after {START_TIMEOUT:.0f} s"
        tried.append(cannot)
    except Refused as exc:
        return None, f"{where} answers but refuses us ({exc}). To fix: check {server.env}."
    no_engine = docker_engine()
    if no_engine is None:
        print(f"make test: starting a throwaway {server.name} container (testcontainers)", file=sys.stderr)
        return server.container(stack), ""
    tried.append(no_engine)
    return None, f"{'; '.join(tried)}. To fix: {server.install_hint}."


def main(argv: list[str]) -> int:
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    env = dict(os.environ)
    with ExitStack() as stack:
        missing = []
        for server in servers(env):
            url, why = provide(server, stack)
            if url is None:
                missing.append(f"make test: {server.name}: {why}")
            else:
                env[server.env] = url
        if missing:
            print("\n".join(missing), file=sys.stderr)
            return 2
        return subprocess.call(command, env=env)  # noqa: S603 - the Makefile's own command


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
