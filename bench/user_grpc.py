"""Calls per second of user_svc's Login and GetUser over gRPC.

Starts user_svc as its own process (`python -m user_svc`) on a free port, on a
temporary PostgreSQL database it creates and drops (or a SQLite file with --sqlite),
signs up --users verified users, then drives each RPC from --threads client threads
for --seconds and prints calls per second and latency percentiles.

Login is bound by argon2id: with the production cost (time 3, 64 MiB, 4 lanes) each
login spends tens of milliseconds of CPU in the hash, and at most
PASSWORD_HASH_CONCURRENCY hashes run at once. --cheap-hash uses the tests' cost to
show what the rest of the path costs.

    .venv/bin/python bench/user_grpc.py [--sqlite] [--threads 8] [--seconds 10] [--cheap-hash]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from common.db import Database
from taskmgr.events.v1 import events_pb2
from taskmgr.user.v1 import user_service_pb2 as pb
from taskmgr.user.v1 import user_service_pb2_grpc
from user_svc.models import Outbox

ROOT = Path(__file__).resolve().parents[1]

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PASSWORD = "benchmark passphrase 42"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TempPostgres:
    """A database created for the run and dropped afterwards."""

    def __init__(self, admin_url: str) -> None:
        self._admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.name = f"bench_user_{uuid.uuid4().hex[:8]}"
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


def start_user_svc(database_url: str, var_dir: Path, cheap_hash: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ, "ENVIRONMENT": "development", "VAR_DIR": str(var_dir), "LOG_LEVEL": "ERROR",
        "USER_SVC_DATABASE_URL": database_url, "USER_SVC_PORT": str(port),
        # No event transport: the outbox relay cannot deliver, so sign_up reads the codes
        # from the outbox (nothing listens on port 1).
        "AMQP_URL": "", "NOTIFY_SVC_ADDR": "127.0.0.1:1",
        "USER_SVC_METRICS_PORT": "0",  # its default port may be taken (a `make run`)
    }
    if cheap_hash:
        env |= {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST_KIB": "1024", "ARGON2_PARALLELISM": "1"}
    process = subprocess.Popen([sys.executable, "-m", "user_svc"], cwd=ROOT, env=env)
    address = f"127.0.0.1:{port}"
    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(address))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            answer = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                return process, address
        except grpc.RpcError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("user_svc did not become healthy within 60 s")


def sign_up(stub, database: Database, count: int) -> list[pb.User]:  # noqa: ANN001
    users = []
    for _ in range(count):
        name = f"bench{uuid.uuid4().hex[:8]}"
        request = pb.RegisterRequest(username=name, email=f"{name}@example.com", password=PASSWORD)
        users.append(stub.Register(request))
    codes = {}
    with database.read() as session:
        for row in session.scalars(select(Outbox).where(Outbox.event_type == "taskmgr.user.otp_requested")):
            payload = events_pb2.OtpRequested()
            row.event().data.Unpack(payload)
            codes[payload.email] = payload.code
    for user in users:
        stub.VerifyOtp(pb.VerifyOtpRequest(email=user.email, otp_code=codes[user.email]))
    return users


def drive(name: str, call: Callable[[int], None], threads: int, seconds: float) -> None:
    """Runs `call(i)` from `threads` threads for `seconds`; prints rate and latencies."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    stop_at = time.perf_counter() + seconds

    def worker(index: int) -> None:
        i = index
        while (started := time.perf_counter()) < stop_at:
            try:
                call(i)
                latencies[index].append(time.perf_counter() - started)
            except grpc.RpcError:
                errors[index] += 1
            i += threads

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    began = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    done = sorted(latency for per_thread in latencies for latency in per_thread)
    if not done:
        print(f"{name:8} no successful call; {sum(errors)} errors")
        return
    quantiles = statistics.quantiles(done, n=100) if len(done) > 1 else [done[0]] * 99
    print(
        f"{name:8} {len(done) / elapsed:8.1f} calls/s   {len(done):6d} calls, {sum(errors)} errors   "
        f"p50 {quantiles[49] * 1000:6.1f} ms   p95 {quantiles[94] * 1000:6.1f} ms   "
        f"p99 {quantiles[98] * 1000:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    parser.add_argument("--threads", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each measurement")
    parser.add_argument("--users", type=int, default=20, help="users to sign up and log in as")
    parser.add_argument("--cheap-hash", action="store_true", help="the tests' argon2 cost, not production's")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-user-") as tmp:
        postgres = None if args.sqlite else TempPostgres(PG_ADMIN_URL)
        database_url = f"sqlite:///{tmp}/user_svc.db" if postgres is None else postgres.url
        process, address = start_user_svc(database_url, Path(tmp), args.cheap_hash)
        database = Database(database_url, pool_size=2)
        try:
            with grpc.insecure_channel(address) as channel:
                stub = user_service_pb2_grpc.UserServiceStub(channel)
                users = sign_up(stub, database, args.users)
                access = stub.Login(pb.LoginRequest(username=users[0].username, password=PASSWORD)).access
                auth = [("authorization", f"Bearer {access}")]
                print(
                    f"user_svc on {'SQLite' if postgres is None else 'PostgreSQL'}, {args.threads} client "
                    f"threads, {args.seconds:g} s each, argon2 {'test' if args.cheap_hash else 'production'} "
                    f"cost, {os.cpu_count()} CPUs shared by client and server"
                )

                def login(i: int) -> None:
                    user = users[i % len(users)]
                    stub.Login(pb.LoginRequest(username=user.username, password=PASSWORD), timeout=30)

                def get_user(i: int) -> None:
                    stub.GetUser(pb.GetUserRequest(id=users[i % len(users)].id), metadata=auth, timeout=30)

                drive("Login", login, args.threads, args.seconds)
                drive("GetUser", get_user, args.threads, args.seconds)
        finally:
            database.dispose()
            process.terminate()
            process.wait(timeout=30)
            if postgres is not None:
                postgres.drop()


if __name__ == "__main__":
    main()
