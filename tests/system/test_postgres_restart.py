"""PostgreSQL restarted under steady REST load: only 503s while it is away, recovery
within 2 s of its return, and no write a client was told succeeded is lost.

The product runs as real processes (tests/support/processes.py) on a PostgreSQL cluster
of this test's own (tests/support/pg_cluster.py), so stopping it disturbs nobody else.
Load threads create tasks (POST, not retried) and read them back (GET, retried once by
the channel's policy) through the edge throughout.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

from tests.support.infra import PostgresServer
from tests.support.pg_cluster import PgCluster, binaries
from tests.support.processes import ProcessStack
from tests.system.accounts import Account, register_and_login

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("system"),
    pytest.mark.skipif(binaries() is None, reason="no PostgreSQL server binaries to run a cluster"),
]

LOAD_THREADS = 4
OUTAGE_SECONDS = 3.0
RECOVERY_SECONDS = 2.0


@dataclass(frozen=True)
class Answer:
    started: float
    ended: float
    method: str
    status: int  # 0: no HTTP answer at all
    retry_after: str | None


@pytest.fixture
def own_postgres():
    cluster = PgCluster()
    cluster.start()
    server = PostgresServer(cluster.admin_url, prefix=f"tm_{uuid.uuid4().hex[:6]}")
    yield cluster, server
    cluster.destroy()  # its databases go with it


class RestLoad:
    """Threads that each create a task, then read it back, in a loop."""

    def __init__(self, stack: ProcessStack, account: Account) -> None:
        self._api = f"{stack.edge_url}/api"
        self._headers = account.headers
        self.answers: list[Answer] = []
        self.created: dict[int, str] = {}  # every 201: id -> title
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(LOAD_THREADS)]

    def __enter__(self) -> RestLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        session = requests.Session()
        session.headers.update(self._headers)
        last_id = None
        while not self._stop.is_set():
            title = f"t-{uuid.uuid4().hex[:10]}"
            response = self._call(session, "POST", f"{self._api}/tasks/", json={"title": title})
            if response is not None and response.status_code == 201:
                last_id = response.json()["id"]
                with self._lock:
                    self.created[last_id] = title
            if last_id is not None:
                self._call(session, "GET", f"{self._api}/tasks/{last_id}/")

    def _call(self, session: requests.Session, method: str, url: str, **kwargs) -> requests.Response | None:  # noqa: ANN003
        started = time.monotonic()
        try:
            response = session.request(method, url, timeout=15, **kwargs)
        except requests.RequestException:
            response = None
        answer = Answer(
            started, time.monotonic(), method,
            response.status_code if response is not None else 0,
            response.headers.get("Retry-After") if response is not None else None,
        )
        with self._lock:
            self.answers.append(answer)
        if answer.status >= 500 or answer.status == 0:
            time.sleep(0.05)  # as a client told to retry would: do not spin
        return response


def test_a_postgres_restart_under_load_gives_only_503s_and_loses_no_created_task(tmp_path, own_postgres):
    cluster, server = own_postgres
    # Four threads of one user create far faster than a person: lift the contract's
    # per-user limit on creates, or its 429s would hide the 503s this test is about.
    unlimited = json.dumps({"taskmgr.task.v1.TaskService/CreateTask": "10000000/minute"})
    stack = ProcessStack(tmp_path, postgres=server, extra_env={"RATE_LIMITS": unlimited}).start()
    try:
        account = register_and_login(stack, "restart")
        with RestLoad(stack, account) as load:
            time.sleep(2.0)  # steady state, pools full
            went_down = time.monotonic()
            cluster.stop("fast")
            time.sleep(OUTAGE_SECONDS)
            starting = time.monotonic()
            cluster.start()  # returns once it accepts connections
            came_back = time.monotonic()
            time.sleep(RECOVERY_SECONDS + 3.0)

        problems = [process.describe() for process in stack.processes.values() if not process.running()]
        assert not problems, "\n".join(problems)

        failures = [answer for answer in load.answers if answer.status not in (200, 201)]
        assert {answer.status for answer in failures} <= {503}, sorted({a.status for a in failures})
        assert all(answer.retry_after for answer in failures)
        during = [a for a in load.answers if went_down + 0.2 < a.started and a.ended < starting]
        assert during and all(a.status == 503 for a in during), [a for a in during if a.status != 503]

        after = [a for a in load.answers if a.started >= came_back + RECOVERY_SECONDS]
        assert after and all(a.status in (200, 201) for a in after), [a for a in after if a.status >= 300][:5]
        successes = [a.ended for a in load.answers if a.started >= came_back and a.status in (200, 201)]
        recovery = min(successes) - came_back
        print(
            f"answers {len(load.answers)}, 503s {len(failures)}, created {len(load.created)}, "
            f"recovered {recovery:.2f} s after PostgreSQL accepted connections"
        )
        assert recovery < RECOVERY_SECONDS

        session = requests.Session()
        session.headers.update(account.headers)
        for task_id, title in load.created.items():  # every 201 exists afterwards
            response = session.get(f"{stack.edge_url}/api/tasks/{task_id}/", timeout=10)
            assert (response.status_code, response.json().get("title")) == (200, title), task_id
    finally:
        stack.stop()
