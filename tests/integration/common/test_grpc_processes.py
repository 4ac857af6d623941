"""A service in several processes on one port (`<SERVICE>_PROCESSES`,
common.grpc_server.serve_in_processes), started as `make run` starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.local import free_port, wait_for

REPO = Path(__file__).resolve().parents[3]
SERVING = health_pb2.HealthCheckResponse.SERVING


def start_task_svc(tmp_path: Path, port: int, processes: int) -> subprocess.Popen:
    taskmgr_settings = {name for name in os.environ if name.endswith(("_SVC_ADDR", "_DATABASE_URL", "_PORT"))}
    env = {name: value for name, value in os.environ.items() if name not in taskmgr_settings}
    env |= {
        "ENVIRONMENT": "test",
        "VAR_DIR": str(tmp_path),  # SQLite under it
        "TASK_SVC_PORT": str(port),
        "TASK_SVC_PROCESSES": str(processes),
        "USER_SVC_ADDR": f"127.0.0.1:{free_port()}",  # not needed to serve health checks
        "GRPC_SHUTDOWN_DRAIN_SECONDS": "0",
        "AMQP_URL": "",
        "TASK_SVC_METRICS_PORT": "0",  # no metrics server: its default port may be taken
    }
    log = (tmp_path / "task_svc.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "task_svc"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def serving(port: int) -> bool:
    # A channel of its own connection (no subchannel shared with the test's other channels).
    with grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
    ) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
        return answer.status == SERVING


def connections_on(process: psutil.Process, port: int, status: str = psutil.CONN_ESTABLISHED) -> int:
    return sum(
        1
        for connection in process.net_connections("tcp")
        if connection.laddr.port == port and connection.status == status
    )


@pytest.mark.slow
def test_two_processes_share_the_port_and_both_take_calls_then_stop_on_sigterm(tmp_path):
    port = free_port()
    supervisor = start_task_svc(tmp_path, port, processes=2)
    channels = []
    try:
        workers = wait_for(lambda: len(psutil.Process(supervisor.pid).children()) == 2 and
                           psutil.Process(supervisor.pid).children(), timeout=90)  # fmt: skip
        # Each worker migrates (one at a time) and then listens.
        wait_for(lambda: all(connections_on(w, port, psutil.CONN_LISTEN) for w in workers), timeout=120)
        wait_for(lambda: serving(port), timeout=120)
        # Each channel its own TCP connection; the kernel spreads connections over the
        # listening sockets (2**-23 that 24 all land on one worker).
        for _ in range(24):
            channel = grpc.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            )
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert answer.status == SERVING
            channels.append(channel)
        per_worker = [connections_on(worker, port) for worker in workers]
        assert sum(per_worker) == 24, per_worker
        assert min(per_worker) > 0, f"one worker took every connection: {per_worker}"
    finally:
        for channel in channels:
            channel.close()
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(30)
    assert code == 0, (tmp_path / "task_svc.log").read_text()[-2000:]
    assert not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers)


@pytest.mark.slow
def test_a_worker_that_dies_takes_the_service_down_to_be_restarted_whole(tmp_path):
    port = free_port()
    supervisor = start_task_svc(tmp_path, port, processes=2)
    try:
        wait_for(lambda: serving(port), timeout=120)
        first, second = psutil.Process(supervisor.pid).children()
        first.kill()
        code = supervisor.wait(30)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    assert code == 1
    second.wait(5)
    assert not second.is_running()
