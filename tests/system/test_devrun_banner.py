"""`make run` (python -m common.devrun): the banner shows what will actually run (the
environment with .env over it, as honcho gives the processes), never a password, and
READY is printed only once every backend is SERVING and the edge answers /healthz."""

from __future__ import annotations

import io
import os
import queue
import shutil
import signal
import subprocess
import threading
import time

import pytest
from sqlalchemy.engine import make_url

from common import devrun
from common.amqp import dead_letter_names
from common.healthcheck import check_grpc, check_http
from common.settings import SERVICES, Settings
from tests.support.local import free_port
from tests.support.processes import REPO, _settings_variables

PASSWORD = "devrun-banner-password"  # trust authentication ignores it; the banner must hide it


def test_banner_prints_the_dotenv_settings_and_no_secret(tmp_path, monkeypatch):
    for name in _settings_variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EDGE_PORT", "7000")  # the shell says 7000, .env wins (as in honcho)
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\n"
        "EDGE_PORT=8123\n"
        "EDGE_METRICS_PORT=9123\n"
        "TASK_SVC_PORT=50152\n"
        f"USER_SVC_DATABASE_URL=postgresql://taskmgr:{PASSWORD}@db.internal:5433/users?sslmode=require\n"
        f"NOTIFY_SVC_DATABASE_URL='postgresql://n@db.internal/notify?password={PASSWORD}'\n"
        f'AMQP_URL="amqps://taskmgr:{PASSWORD}@mq.internal:5671/prod"\n'
        "SMTP_HOST=mail.example\nSMTP_PORT=2525\n"
        f"SMTP_PASSWORD={PASSWORD}\nOTP_HMAC_KEY={PASSWORD}\n"
    )
    for name, value in devrun.load_env_file(env_file).items():
        monkeypatch.setenv(name, value)

    text = devrun.banner(Settings())

    assert PASSWORD not in text
    assert "http://127.0.0.1:8123/api/" in text
    assert ":8000" not in text and ":7000" not in text
    assert "http://127.0.0.1:9123/metrics" in text
    assert "user_svc 127.0.0.1:9465  task_svc 127.0.0.1:9466  notify_svc 127.0.0.1:9467" in text
    assert "task_svc 127.0.0.1:50152" in text
    assert "user_svc    PostgreSQL postgresql://taskmgr:***@db.internal:5433/users?sslmode=require" in text
    assert "task_svc    SQLite var/task_svc.db" in text
    assert "notify_svc  PostgreSQL postgresql://n@db.internal/notify?password=***" in text
    assert "RabbitMQ amqps://taskmgr:***@mq.internal:5671/prod" in text
    assert "SMTP mail.example:2525" in text
    assert "no broker" not in text and "printed by notify_svc" not in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://u:p%40ss@h/db", "postgresql+psycopg://u:***@h/db"),
        ("postgresql://u@h/db?sslpassword=x&application_name=a", "postgresql://u@h/db?sslpassword=***&application_name=a"),  # noqa: E501
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "amqp://guest:***@127.0.0.1:5672/%2F"),
        ("redis://:token@cache:6379/0", "redis://:***@cache:6379/0"),
        ("postgresql:///db?host=/run/postgresql", "postgresql:///db?host=/run/postgresql"),
        ("amqp://u:a:b@h/?auth_mechanism=x&heartbeat=5", "amqp://u:***@h/?auth_mechanism=***&heartbeat=5"),
    ],
)
def test_urls_are_shown_without_credentials(url, shown):
    assert devrun.redact_url(url) == shown


@pytest.mark.slow
@pytest.mark.xdist_group("system")
def test_make_run_says_ready_only_when_everything_serves(tmp_path, postgres, rabbitmq):
    """The real `make run` in a checkout whose .env moves every port, puts user_svc on
    PostgreSQL and events on RabbitMQ."""
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    shutil.copy(REPO / "Procfile", tmp_path / "Procfile")
    ports = {name: free_port() for name in (*SERVICES, "edge", "metrics")}
    database = make_url(postgres.create_database())
    if database.password is None:
        database = database.set(password=PASSWORD)
    exchange, notify_queue = rabbitmq.name("events"), rabbitmq.name("notify")
    rabbitmq.exchanges.update({exchange, *dead_letter_names(exchange, notify_queue)[:1]})
    rabbitmq.queues.update({notify_queue, dead_letter_names(exchange, notify_queue)[1]})
    lines = [
        f"EDGE_PORT={ports['edge']}",
        f"EDGE_METRICS_PORT={ports['metrics']}",
        f"USER_SVC_DATABASE_URL={database.render_as_string(hide_password=False)}",
        f"AMQP_URL={rabbitmq.url}",
        f"EVENTS_EXCHANGE={exchange}",
        f"NOTIFY_QUEUE={notify_queue}",
        "ARGON2_TIME_COST=1",
        "ARGON2_MEMORY_COST_KIB=1024",
    ]
    for service in SERVICES:
        variable = service.upper()
        lines += [f"{variable}_PORT={ports[service]}", f"{variable}_ADDR=127.0.0.1:{ports[service]}"]
        lines.append(f"{variable}_METRICS_PORT={free_port()}")  # the defaults may be taken
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    env = {key: value for key, value in os.environ.items() if key.upper() not in _settings_variables()}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [str(REPO / ".venv/bin/python"), "-m", "common.devrun"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl-C below goes to the whole group, as a terminal's does
    )
    output: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [output.put(line) for line in process.stdout], daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any("taskmgr is READY" in line for line in seen):
            assert time.monotonic() < deadline and process.poll() is None, "no READY:\n" + "".join(seen)
            try:
                seen.append(output.get(timeout=1))
            except queue.Empty:
                continue
        # At the moment READY is printed, every check it names holds.
        for service in SERVICES:
            name = devrun._grpc_service_name(service)
            assert check_grpc(f"127.0.0.1:{ports[service]}", name, 2) is None, service
        assert check_http(f"http://127.0.0.1:{ports['edge']}/healthz", 2) is None
        text = "".join(seen)
        banner = text[: text.index("Waiting until every service is ready")]
        assert f"http://127.0.0.1:{ports['edge']}/api/" in banner
        assert f"user_svc 127.0.0.1:{ports['user_svc']}" in banner
        assert ":8000" not in banner and ":50051" not in banner
        assert f"PostgreSQL {database.drivername}://{database.username}:***@" in banner
        assert "RabbitMQ amqp://guest:***@" in banner
        assert database.password not in text
        assert text.index("Waiting until every service is ready") < text.index("taskmgr is READY")
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert code in (0, 130, -signal.SIGINT), code
    for port in ports.values():
        assert check_http(f"http://127.0.0.1:{port}/", 0.5) is not None, "every process stopped"


def test_nothing_is_called_ready_while_a_service_does_not_answer(monkeypatch):
    """Closed ports: no READY, and after the patience a line naming each missing piece."""
    monkeypatch.setattr(devrun, "_PATIENCE_SECONDS", 0.5)
    ports = {name: free_port() for name in (*SERVICES, "edge")}
    settings = Settings(
        edge_port=ports["edge"], **{f"{service}_port": ports[service] for service in SERVICES}
    )
    out = io.StringIO()
    running = threading.Event()
    running.set()
    watcher = threading.Thread(target=devrun.watch_readiness, args=(settings, running, out))
    watcher.start()
    time.sleep(1.5)
    running.clear()
    watcher.join(timeout=10)

    text = out.getvalue()
    assert "READY" not in text
    assert "taskmgr: still not ready after" in text
    for service in SERVICES:
        assert f"{service}: 127.0.0.1:{ports[service]}: UNAVAILABLE" in text
    assert f"edge_api: http://127.0.0.1:{ports['edge']}/healthz" in text
