"""Time from a revoking call's answer to the old token's first 401 at task_svc.

Runs a real user_svc and task_svc in this process (gRPC on free ports; SQLite files in a
temporary directory unless --user-db/--task-db name PostgreSQL databases), then, per
round: logs a user in, has task_svc verify (and remember) the access token, logs out
(RevokeToken) and calls task_svc with the old token every millisecond until it answers
UNAUTHENTICATED TOKEN_REVOKED. Without --amqp-url task_svc learns revocations from
user_svc's WatchRevocations stream; with it, through its own queue on RabbitMQ.

    .venv/bin/python bench/revocation.py --rounds 200
    .venv/bin/python bench/revocation.py --rounds 200 --amqp-url amqp://guest:guest@127.0.0.1:5672/
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "gen")]

from common.settings import Settings  # noqa: E402
from task_svc.server import build as build_task_svc  # noqa: E402
from taskmgr.task.v1 import task_service_pb2, task_service_pb2_grpc  # noqa: E402
from taskmgr.user.v1 import user_service_pb2 as upb  # noqa: E402
from taskmgr.user.v1 import user_service_pb2_grpc  # noqa: E402
from user_svc.server import build as build_user_svc  # noqa: E402

PASSWORD = "correct horse battery staple"


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--amqp-url", default="")
    parser.add_argument("--user-db", default="", help="user_svc database URL (default: SQLite)")
    parser.add_argument("--task-db", default="", help="task_svc database URL (default: SQLite)")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-revocation-"))
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        environment="test", var_dir=directory, log_level="WARNING",
        user_svc_database_url=args.user_db, task_svc_database_url=args.task_db,
        argon2_time_cost=1, argon2_memory_cost_kib=1024, argon2_parallelism=1,
        notify_svc_addr="127.0.0.1:1", amqp_url=args.amqp_url,
        events_exchange=f"bench-{run}.events", notify_queue=f"bench-{run}.notify",
        rate_limits={f"taskmgr.user.v1.UserService/{m}": "1000000/minute" for m in ("Login", "RevokeToken")},
    )
    user_svc = build_user_svc(settings, 0).start()
    settings = settings.model_copy(update={"user_svc_addr": f"127.0.0.1:{user_svc.port}"})
    task_svc = build_task_svc(settings, 0).start()
    from sqlalchemy import update

    from common.db import Database
    from user_svc.models import User

    users_db = Database(settings.database_url("user_svc"), pool_size=1)
    times: list[float] = []
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{user_svc.port}") as user_channel,
            grpc.insecure_channel(f"127.0.0.1:{task_svc.port}") as task_channel,
        ):
            users = user_service_pb2_grpc.UserServiceStub(user_channel)
            tasks = task_service_pb2_grpc.TaskServiceStub(task_channel)
            name = f"bench{run}"
            users.Register(upb.RegisterRequest(username=name, email=f"{name}@example.com", password=PASSWORD))
            with users_db.transaction() as session:  # no email round trip: verified directly
                session.execute(update(User).where(User.username == name).values(email_verified=True))
            for _ in range(args.rounds):
                login = users.Login(upb.LoginRequest(username=name, password=PASSWORD))
                metadata = [("authorization", f"Bearer {login.access}")]
                tasks.ListTasks(task_service_pb2.ListTasksRequest(), metadata=metadata)
                users.RevokeToken(upb.RevokeTokenRequest(refresh=login.refresh))
                answered = time.perf_counter()
                while True:
                    try:
                        tasks.ListTasks(task_service_pb2.ListTasksRequest(), metadata=metadata)
                    except grpc.RpcError as error:
                        if error.code() is not grpc.StatusCode.UNAUTHENTICATED:
                            raise
                        times.append(time.perf_counter() - answered)
                        break
                    if time.perf_counter() - answered > 10:
                        raise SystemExit("still accepted after 10 s")
                    time.sleep(0.001)
    finally:
        task_svc.stop(0)
        users_db.dispose()
        user_svc.stop(0)
        if args.amqp_url:
            _delete_topology(settings)
    times.sort()
    ms = [t * 1000 for t in times]
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    transport = "RabbitMQ" if args.amqp_url else "embedded (WatchRevocations)"
    engine = "PostgreSQL" if args.user_db.startswith("postgresql") else "SQLite"
    print(
        f"{transport}, {engine}, {len(ms)} rounds: revoke answered -> first 401 at task_svc: "
        f"p50 {statistics.median(ms):.1f} ms, p95 {p(0.95):.1f} ms, p99 {p(0.99):.1f} ms, max {ms[-1]:.1f} ms"
    )


def _delete_topology(settings: Settings) -> None:
    """The bench's own exchange and queues (declared by the relay), so runs leave nothing."""
    import pika

    from common.amqp import dead_letter_names

    dead_exchange, dead_queue = dead_letter_names(settings.events_exchange, settings.notify_queue)
    with pika.BlockingConnection(pika.URLParameters(settings.amqp_url)) as connection:
        channel = connection.channel()
        for queue in (settings.notify_queue, dead_queue):
            channel.queue_delete(queue)
        for exchange in (settings.events_exchange, dead_exchange):
            channel.exchange_delete(exchange)


if __name__ == "__main__":
    main()
