"""SIGTERM to each process of the running product, under load.

While threads keep calling the process (gRPC straight to a service, REST to the edge),
it gets SIGTERM: every call that started before the signal finishes successfully, the
service's gRPC health turns NOT_SERVING at once while calls are still served for the
drain period, later calls fail only with UNAVAILABLE (or a refused connection at the
edge), and the process exits 0 within its grace. The one exception is gRPC's core: calls
it has queued but not yet handed to the application when the server stops are answered
CANCELLED (grpc-python requests one call at a time), so a call that started after
SIGTERM may end CANCELLED when the drain ends; none that started before SIGTERM may.

Then the outbox: events written while notify_svc is away stay in the services'
databases across their SIGTERM and are delivered after a restart.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from taskmgr.notify.v1 import notify_service_pb2, notify_service_pb2_grpc
from taskmgr.task.v1 import task_service_pb2, task_service_pb2_grpc
from taskmgr.user.v1 import user_service_pb2, user_service_pb2_grpc
from tests.support.local import wait_for
from tests.support.processes import ProcessStack
from tests.system.accounts import PASSWORD, Account, register_and_login

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

GRACE_SECONDS = 10.0  # GRPC_SHUTDOWN_GRACE_SECONDS and edge_api.server.GRACEFUL_SECONDS
DRAIN_SECONDS = 1.0  # GRPC_SHUTDOWN_DRAIN_SECONDS
LOAD_THREADS = 8


@dataclass(frozen=True)
class Call:
    started: float
    ended: float
    error: str | None  # None when it succeeded


@dataclass
class Load:
    """Threads calling `call()` in a loop until stopped, each call timed and its outcome kept."""

    call: Callable[[], None]
    failure: Callable[[Exception], str | None]  # the error's name, or None to re-raise it

    def __post_init__(self) -> None:
        self.calls: list[Call] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(LOAD_THREADS)]

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.call()
                error = None
            except Exception as exc:
                error = self.failure(exc)
                if error is None:
                    raise
            self.calls.append(Call(started, time.monotonic(), error))
            if error:
                time.sleep(0.01)  # the process is gone: do not spin

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


class HealthWatch:
    """Watches a service's overall gRPC health; notes when NOT_SERVING arrives, then lets go
    (a watch held open would keep the server busy until the end of its grace)."""

    def __init__(self, address: str) -> None:
        self.not_serving_at: float | None = None
        self._channel = grpc.insecure_channel(address)
        self._stream = health_pb2_grpc.HealthStub(self._channel).Watch(health_pb2.HealthCheckRequest())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for answer in self._stream:
                if answer.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    self.not_serving_at = time.monotonic()
                    self._stream.cancel()
        except grpc.RpcError:
            pass

    def close(self) -> None:
        self._stream.cancel()
        self._thread.join(5)
        self._channel.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[ProcessStack]:
    """A stack of its own, since its processes are stopped and restarted."""
    running = ProcessStack(tmp_path_factory.mktemp("shutdown-stack")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def account(stack: ProcessStack) -> Account:
    owner = register_and_login(stack, "loaded")
    for number in range(30):  # pages worth listing
        task = {"title": f"task {number}"}
        created = requests.post(f"{stack.edge_url}/api/tasks/", json=task, headers=owner.headers, timeout=10)
        created.raise_for_status()
    return owner


def _grpc_call(stack: ProcessStack, service: str, account: Account) -> Callable[[], None]:
    """A plain channel (no retries, so every refusal shows) and an authenticated read."""
    channel = grpc.insecure_channel(stack.grpc_address(service))
    metadata = [("authorization", f"Bearer {account.access}")]
    if service == "user_svc":
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        # An authenticated read: parallel logins of one account from one address would be
        # refused by the login budget, which reserves a try before the password is checked.
        profile = user_service_pb2.GetProfileRequest()
        return lambda: stub.GetProfile(profile, metadata=metadata, timeout=GRACE_SECONDS)
    if service == "task_svc":
        tasks = task_service_pb2_grpc.TaskServiceStub(channel)
        listing = task_service_pb2.ListTasksRequest(page_size=100)
        return lambda: tasks.ListTasks(listing, metadata=metadata, timeout=GRACE_SECONDS)
    notify = notify_service_pb2_grpc.NotificationServiceStub(channel)
    log = notify_service_pb2.ListNotificationsRequest(page_size=100)
    return lambda: notify.ListNotifications(log, metadata=metadata, timeout=GRACE_SECONDS)


def _unavailable_only(exc: Exception) -> str | None:
    return exc.code().name if isinstance(exc, grpc.RpcError) else None


def _timeline(call: Call, terminated_at: float) -> tuple[str | None, float, float]:
    return call.error, round(call.started - terminated_at, 4), round(call.ended - terminated_at, 4)


def _check_drained(load: Load, terminated_at: float) -> list[Call]:
    """In-flight calls finished; later ones failed only as allowed. Returns the failed calls."""
    before = [call for call in load.calls if call.started < terminated_at]
    in_flight = [call for call in before if call.ended > terminated_at]
    assert in_flight, "no call was in flight when SIGTERM was sent: the load proves nothing"
    broken = [_timeline(call, terminated_at) for call in before if call.error]
    assert not broken, f"calls started before SIGTERM failed (code, started, ended, relative to it): {broken}"
    failed = [call for call in load.calls if call.error]
    assert failed, "no call was refused after the process stopped"
    return failed


@pytest.mark.parametrize("service", ["user_svc", "task_svc", "notify_svc"])
def test_grpc_service_drains_on_sigterm(stack: ProcessStack, account: Account, service: str):
    watch = HealthWatch(stack.grpc_address(service))
    with Load(_grpc_call(stack, service, account), _unavailable_only) as load:
        time.sleep(0.5)
        terminated_at = stack.terminate(service)
        exit_code = stack.processes[service].popen.wait(GRACE_SECONDS + 5)
        exited_after = time.monotonic() - terminated_at
        time.sleep(0.2)
    watch.close()
    stack.start_process(service)
    stack.wait_ready()

    failed = _check_drained(load, terminated_at)
    unexpected = [
        _timeline(call, terminated_at)
        for call in failed
        if call.error != "UNAVAILABLE"
        and not (call.error == "CANCELLED" and call.started >= terminated_at)
    ]
    assert not unexpected, f"(code, started, ended) after SIGTERM: {unexpected}"
    first_refusal = min(call.ended for call in failed) - terminated_at
    assert first_refusal >= DRAIN_SECONDS, f"calls were refused {first_refusal:.3f} s after SIGTERM"
    assert watch.not_serving_at is not None, "health never turned NOT_SERVING"
    assert watch.not_serving_at <= min(call.ended for call in failed), "a call was refused before NOT_SERVING"
    assert exit_code == 0
    assert exited_after < GRACE_SECONDS


def test_edge_drains_on_sigterm(stack: ProcessStack, account: Account):
    session = requests.Session()
    page = {"page_size": 100}

    def list_tasks() -> None:
        answer = session.get(f"{stack.edge_url}/api/tasks/", params=page, headers=account.headers, timeout=10)
        assert answer.status_code == 200, f"{answer.status_code}: {answer.text}"

    def refused(exc: Exception) -> str | None:
        return "connection" if isinstance(exc, requests.ConnectionError) else None

    with Load(list_tasks, refused) as load:
        time.sleep(0.5)
        terminated_at = stack.terminate("edge_api")
        exit_code = stack.processes["edge_api"].popen.wait(GRACE_SECONDS + 5)
        exited_after = time.monotonic() - terminated_at
        time.sleep(0.2)
    stack.start_process("edge_api")
    stack.wait_ready()

    _check_drained(load, terminated_at)
    assert exit_code == 0
    assert exited_after < GRACE_SECONDS


def _outbox_rows(stack: ProcessStack, service: str) -> int:
    with sqlite3.connect(stack.var_dir / f"{service}.db") as database:
        return database.execute("SELECT count(*) FROM outbox").fetchone()[0]


def test_outbox_events_survive_sigterm_and_are_delivered_after_restart(stack: ProcessStack, account: Account):
    assert stack.stop_process("notify_svc") == 0  # events now wait in the outboxes
    api = f"{stack.edge_url}/api"
    emails = [f"late_{number}_{account.username}@example.com" for number in range(3)]
    for email in emails:
        form = {"username": email.split("@")[0], "email": email, "password": PASSWORD}
        assert requests.post(f"{api}/users/register/", json=form, timeout=10).status_code == 201
    auth = account.headers
    task = requests.post(f"{api}/tasks/", json={"title": "assigned late"}, headers=auth, timeout=10).json()
    assignee = {"user_id": account.id}
    assigned = requests.post(f"{api}/tasks/{task['id']}/assign/", json=assignee, headers=auth, timeout=10)
    assert assigned.status_code == 200
    pending = {service: _outbox_rows(stack, service) for service in ("user_svc", "task_svc")}
    assert pending["user_svc"] >= len(emails) and pending["task_svc"] >= 1

    assert stack.stop_process("user_svc") == 0
    assert stack.stop_process("task_svc") == 0
    assert {service: _outbox_rows(stack, service) for service in pending} == pending

    for service in ("notify_svc", "user_svc", "task_svc"):
        stack.start_process(service)
    stack.wait_ready()
    wait_for(lambda: all(_outbox_rows(stack, service) == 0 for service in pending), timeout=30)
    for email in emails:  # the code delivered after the restart is the one that works
        code = stack.verification_code(email)
        form = {"email": email, "otp_code": code}
        verified = requests.post(f"{api}/users/verify_otp/", json=form, timeout=10)
        assert verified.status_code == 200, verified.text
