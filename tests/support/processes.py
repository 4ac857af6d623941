"""The whole product as real OS processes, started the way `make run` starts it.

Each Procfile line (`name: .venv/bin/python -m name`) becomes one process, run from the
repository root with an isolated environment: its own VAR_DIR, free ports for the four
processes (and the matching *_ADDR), and none of the developer's taskmgr settings. The
default is what `make run` gives a newcomer (SQLite under VAR_DIR, events handed to
notify_svc over gRPC, emails printed by notify_svc); given a PostgreSQL server and a
RabbitMQ broker it runs on those instead. Password hashing is cheap (tests only).

Every process writes its stdout and stderr to files under the stack's directory; the
verification codes are read from notify_svc's console emails there, the way a developer
reads them from `make run`'s output.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from common.amqp import dead_letter_names
from common.settings import SERVICES, Settings
from tests.support.infra import PostgresServer, RabbitMQ
from tests.support.local import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
# notify_svc's console email: a header line, then "To: <address>", ..., "... code is NNNNNN."
_EMAIL_HEADER = "EMAIL (console"
_RECIPIENT = re.compile(r"^To: (\S+)$", re.MULTILINE)
_CODE = re.compile(r"code is (\d{6})\b")
# The process's own grace (GRPC_SHUTDOWN_GRACE_SECONDS, edge_api.server.GRACEFUL_SECONDS) plus start-up slack.
STOP_TIMEOUT = 20.0


def procfile(path: Path = REPO / "Procfile") -> dict[str, list[str]]:
    """The Procfile's processes: name -> argv."""
    commands = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            commands[name.strip()] = shlex.split(command)
    return commands


def _settings_variables() -> set[str]:
    """Every environment variable taskmgr reads, so none leaks in from the caller's shell."""
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(name.upper())
        if field.alias:
            names.add(field.alias.upper())
    return names


@dataclass
class Process:
    name: str
    argv: list[str]
    stdout_path: Path
    stderr_path: Path
    popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def describe(self, lines: int = 30) -> str:
        tail = "\n".join((self.stdout() + self.stderr()).splitlines()[-lines:])
        code = None if self.popen is None else self.popen.poll()
        return f"--- {self.name} (exit code {code}), last lines:\n{tail}"


class ProcessStack:
    def __init__(
        self,
        directory: Path,
        *,
        postgres: PostgresServer | None = None,
        rabbitmq: RabbitMQ | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.var_dir = directory / "var"
        self.ports = {name: free_port() for name in (*SERVICES, "edge", "edge_metrics")}
        self.env = self._environment(postgres, rabbitmq, extra_env or {})
        logs = directory / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.processes = {
            name: Process(name, argv, logs / f"{name}.stdout", logs / f"{name}.stderr")
            for name, argv in procfile().items()
        }

    def _environment(
        self, postgres: PostgresServer | None, rabbitmq: RabbitMQ | None, extra: dict[str, str]
    ) -> dict[str, str]:
        taskmgr = _settings_variables()
        env = {key: value for key, value in os.environ.items() if key.upper() not in taskmgr}
        env.update(
            PYTHONUNBUFFERED="1",
            VAR_DIR=str(self.var_dir),
            EDGE_PORT=str(self.ports["edge"]),
            EDGE_METRICS_PORT=str(self.ports["edge_metrics"]),
            ARGON2_TIME_COST="1",
            ARGON2_MEMORY_COST_KIB="1024",
        )
        for service in SERVICES:
            env[f"{service.upper()}_PORT"] = str(self.ports[service])
            env[f"{service.upper()}_ADDR"] = f"127.0.0.1:{self.ports[service]}"
            # Free ones, as the edge's: a taskmgr already running on the machine holds the defaults.
            env[f"{service.upper()}_METRICS_PORT"] = str(free_port())
            if postgres is not None:
                env[f"{service.upper()}_DATABASE_URL"] = postgres.create_database()
        if rabbitmq is not None:
            exchange, queue = rabbitmq.name("events"), rabbitmq.name("notify")
            dead_exchange, dead_queue = dead_letter_names(exchange, queue)
            rabbitmq.exchanges.update({exchange, dead_exchange})
            rabbitmq.queues.update({queue, dead_queue})
            env.update(AMQP_URL=rabbitmq.url, EVENTS_EXCHANGE=exchange, NOTIFY_QUEUE=queue)
        env.update(extra)
        return env

    # --- addresses

    @property
    def edge_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['edge']}"

    def grpc_address(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    # --- life cycle

    def start(self, timeout: float = 60.0) -> ProcessStack:
        """Starts every process and waits until ready; on failure stops what it started, so a
        failed start leaves no process holding ports for later tests."""
        try:
            for name in self.processes:
                self.start_process(name)
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def start_process(self, name: str) -> Process:
        process = self.processes[name]
        assert not process.running(), f"{name} is already running"
        with process.stdout_path.open("ab") as out, process.stderr_path.open("ab") as err:
            process.popen = subprocess.Popen(  # noqa: S603 - the Procfile's fixed argv
                process.argv, cwd=REPO, env=self.env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )
        return process

    def wait_ready(self, timeout: float = 60.0, consecutive: int = 10) -> None:
        """Until the edge's /readyz answers 200 (every backend SERVING) `consecutive` times in a
        row; fails if a process dies.

        Each edge worker process has its own gRPC channels, so one 200 speaks for one worker only:
        another may still be waiting out its channel's reconnect backoff after probing a
        backend that was not up yet, and answers 503 meanwhile. Fresh connections land on
        the workers at random, so ten 200s in a row leave next to no chance of one not ready.
        """
        streak = 0

        def ready() -> bool:
            nonlocal streak
            dead = [p for p in self.processes.values() if p.popen is not None and not p.running()]
            assert not dead, "a process exited during start:\n" + "\n".join(p.describe() for p in dead)
            try:
                with urllib.request.urlopen(f"{self.edge_url}/readyz", timeout=2) as response:
                    streak = streak + 1 if response.status == 200 else 0
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                streak = 0
            return streak >= consecutive

        try:
            wait_for(ready, timeout=timeout, interval=0.05)
        except AssertionError as exc:
            details = "\n".join(p.describe() for p in self.processes.values())
            raise AssertionError(f"{exc}\n{details}") from None

    def terminate(self, name: str) -> float:
        """Sends SIGTERM to one process; returns the monotonic time it was sent."""
        sent = time.monotonic()
        self.processes[name].popen.send_signal(signal.SIGTERM)
        return sent

    def stop_process(self, name: str, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`; returns the exit code."""
        process = self.processes[name]
        if not process.running():
            return process.popen.returncode if process.popen else 0
        self.terminate(name)
        try:
            return process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()
            message = f"{name} did not stop within {timeout}s of SIGTERM"
            raise AssertionError(f"{message}\n{process.describe()}") from None

    def stop(self) -> dict[str, int]:
        """Stops everything, the edge first (the reverse of the Procfile); returns the exit codes."""
        codes = {}
        for name in reversed(list(self.processes)):
            try:
                codes[name] = self.stop_process(name)
            except AssertionError:
                codes[name] = -signal.SIGKILL
        return codes

    # --- what a developer reads in the console

    def verification_code(self, email: str, *, timeout: float = 15.0, skip: int = 0) -> str:
        """The code of the (skip+1)-th console email to `email` from notify_svc."""

        def code() -> str | None:
            codes = []
            for message in self.processes["notify_svc"].stdout().split(_EMAIL_HEADER)[1:]:
                recipient, code = _RECIPIENT.search(message), _CODE.search(message)
                if recipient and code and recipient[1] == email:
                    codes.append(code[1])
            return codes[skip] if len(codes) > skip else None

        try:
            return wait_for(code, timeout=timeout, interval=0.05)
        except AssertionError:
            raise AssertionError(
                f"no console email with a code to {email}\n{self.processes['notify_svc'].describe()}"
            ) from None
