"""`make test` on a fresh machine (tests/support/services.py): servers found are used, a
stopped local install is started, and what cannot be had is named, one line each."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support import services
from tests.support.local import free_port
from tests.support.processes import REPO

# Each test starts Python with the database and broker clients: seconds on a busy machine.
pytestmark = pytest.mark.slow

SHOW_URLS = ["sh", "-c", 'echo "pg=$TEST_PG_ADMIN_URL amqp=$TEST_AMQP_URL"']


def run(env: dict[str, str], command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "tests.support.services", "--", *command],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_servers_that_answer_are_used_as_they_are():
    env = {services.PG_ENV: os.environ.get(services.PG_ENV, services.PG_DEFAULT)}
    env[services.AMQP_ENV] = os.environ.get(services.AMQP_ENV, services.AMQP_DEFAULT)

    result = run(env, SHOW_URLS)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"pg={env[services.PG_ENV]} amqp={env[services.AMQP_ENV]}"
    assert "starting" not in result.stderr


def test_the_command_s_exit_status_is_returned():
    assert run({}, ["sh", "-c", "exit 7"]).returncode == 7


@pytest.mark.skipif(services.docker_engine() is None, reason="a Docker engine would provide the servers")
def test_what_cannot_be_had_is_named_one_line_each_and_no_test_runs():
    env = {
        services.PG_ENV: f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres",
        services.AMQP_ENV: f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F",
    }

    result = run(env, ["sh", "-c", "echo the tests ran"])

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("make test: PostgreSQL: nothing answers at 127.0.0.1:")
    assert "no Docker engine answers" in lines[0]
    assert "install PostgreSQL" in lines[0] and "TEST_PG_ADMIN_URL" in lines[0]
    assert lines[1].startswith("make test: RabbitMQ: nothing answers at 127.0.0.1:")
    assert "install RabbitMQ" in lines[1] and "TEST_AMQP_URL" in lines[1]


def test_a_server_that_refuses_us_is_a_settings_problem_not_a_missing_server():
    env = {services.PG_ENV: "postgresql+psycopg://no_such_role_s4:x@127.0.0.1:5432/postgres"}

    result = run(env, ["sh", "-c", "echo the tests ran"])

    assert result.returncode == 2
    assert "answers but refuses us" in result.stderr
    assert "To fix: check TEST_PG_ADMIN_URL." in result.stderr
    assert "container" not in result.stderr


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("pg_createcluster"), reason="needs root and Debian's PostgreSQL"
)
def test_a_stopped_local_postgresql_is_started():
    """A cluster of its own (never the machine's, which other tests use), created stopped."""
    port = free_port()
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    name = f"tm_setup_{port}"
    subprocess.run(  # noqa: S603
        ["pg_createcluster", version, name, "-p", str(port), "--", "--auth-host=trust", "--auth-local=trust"],  # noqa: S607
        check=True,
        capture_output=True,
    )
    try:
        env = {services.PG_ENV: f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"}
        result = run(env, SHOW_URLS, timeout=180)
        assert result.returncode == 0, result.stderr
        started = f"starting the local server: pg_ctlcluster --skip-systemctl-redirect {version} {name} start"
        assert started in result.stderr
        assert f"pg={env[services.PG_ENV]}" in result.stdout
    finally:
        subprocess.run(["pg_dropcluster", "--stop", version, name], check=False, capture_output=True)  # noqa: S603,S607
