"""notify_svc throughput and latency, end to end, on the real PostgreSQL and RabbitMQ.

notify_svc runs as its own process (`python -m notify_svc`), as in production; this
process plays the producing service: an outbox on PostgreSQL and its relay, which
publishes to RabbitMQ (`rabbitmq`) or calls notify_svc's internal DeliverEvents
(`direct`, the transport when no broker is configured). Mailers: `console` (the
development mailer, its output sent to /dev/null) or `smtp`, a local aiosmtpd server in a
third process (it shares the cores) that counts what it receives per address.

Per transport x mailer it prints:
1. throughput: `--events` OTP events (one email each, to distinct users) committed to
   the outbox, then the relay started; events/s from its start until every event is in
   notify_svc's log; notify_svc's CPU-ms per event (psutil);
2. latency: `--rate` events/s offered for `--seconds`, each committed on its own; p50 /
   p99 / max from the producer's commit to the log entry being visible (polled every
   20 ms, so up to 20 ms is the poll's);
and for both, lost (not logged, or not received by the SMTP server) and duplicated
(logged twice, or received more than once). `--watchers N` makes each throughput event a
taskmgr.task.commented whose recipients (TaskPeople.recipients, as task_svc lists a
task's watchers) are N distinct users: N emails per event, counted per (event, user).

Usage: .venv/bin/python bench/events_notify.py [--transports rabbitmq,direct]
       [--mailers console,smtp] [--events 3000] [--rate 200] [--seconds 60] [--rounds 1]
       [--no-latency] [--profile DIR] [--watchers N]
`--profile DIR` records notify_svc with py-spy (--gil) during each throughput run and
prints its top functions (own time); the raw profiles stay in DIR.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PRODUCERS = 6  # within the producer database pool (4 + 4 overflow) beside the relay
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]


def smtp_sink(port: int, counts_file: str) -> None:
    """Runs an aiosmtpd server counting recipients until SIGTERM, then writes the counts."""
    from aiosmtpd.controller import Controller

    counts: collections.Counter[str] = collections.Counter()

    class Counting:
        async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
            counts.update(envelope.rcpt_tos)
            return "250 OK"

    # Blocked before the server's thread starts (it inherits the mask), then awaited.
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    controller.stop()
    Path(counts_file).write_text(json.dumps(counts))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


class Run:
    """One notify_svc process (and SMTP sink) with fresh databases and queue names."""

    def __init__(self, args, transport: str, mailer: str, postgres, rabbitmq, var_dir: Path) -> None:  # noqa: ANN001
        from common.settings import Settings
        from tests.integration.events.broker import unique_topology
        from tests.integration.events.producer import producer_database

        self.transport, self.mailer, self.args = transport, mailer, args
        port = free_port()
        topology = unique_topology(rabbitmq)
        env = {
            "ENVIRONMENT": "test", "VAR_DIR": str(var_dir), "LOG_LEVEL": "WARNING",
            "NOTIFY_SVC_DATABASE_URL": postgres.create_database(), "NOTIFY_SVC_PORT": str(port),
            "NOTIFY_SVC_ADDR": f"127.0.0.1:{port}", "EVENTS_EXCHANGE": topology.exchange,
            "NOTIFY_QUEUE": topology.queue, "AMQP_URL": rabbitmq.url if transport == "rabbitmq" else "",
            "USER_SVC_ADDR": f"127.0.0.1:{free_port()}", "NOTIFY_SVC_METRICS_PORT": "0",
        }
        self.sink = None
        if mailer == "smtp":
            smtp_port = free_port()
            self.counts_file = str(var_dir / f"smtp-{smtp_port}.json")
            self.sink = subprocess.Popen(
                [sys.executable, __file__, "--smtp-sink", str(smtp_port), self.counts_file]
            )
            wait_for_port(smtp_port)
            env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port), SMTP_STARTTLS="false")
        self.settings = Settings(**{key.lower(): value for key, value in env.items()})
        self.notify = subprocess.Popen(
            [sys.executable, "-m", "notify_svc"], cwd=ROOT, env={**os.environ, **env},
            stdout=subprocess.DEVNULL, stderr=(var_dir / f"notify-{port}.log").open("wb"),
        )
        try:
            wait_for_port(port)
        except TimeoutError:
            for process in (self.notify, self.sink):
                if process is not None:
                    process.kill()
            sys.exit(f"notify_svc did not start:\n{(var_dir / f'notify-{port}.log').read_text()[-3000:]}")
        self.producer = producer_database(postgres.create_database())
        from common.db import Database

        self.notify_db = Database(self.settings.database_url("notify_svc"), pool_size=2)
        time.sleep(1.0)  # the consumer declares its queue and starts consuming

    def close(self) -> dict[str, int]:
        self.notify.send_signal(signal.SIGTERM)
        self.notify.wait(30)
        self.producer.dispose()
        self.notify_db.dispose()
        if self.sink is None:
            return {}
        self.sink.send_signal(signal.SIGTERM)
        self.sink.wait(30)
        return json.loads(Path(self.counts_file).read_text())

    def start_relay(self):  # noqa: ANN201
        from common.relay import start_outbox_relay
        from tests.integration.events.producer import ProducerOutbox

        return start_outbox_relay(self.producer, ProducerOutbox, self.settings, batch_size=500)

    def logged(self) -> list[str]:
        from sqlalchemy import text

        with self.notify_db.read() as session:
            rows = session.execute(text("SELECT event_id, recipient_user_id FROM notifications"))
            return [f"{event_id}:{user_id}" for event_id, user_id in rows]

    def add_contacts(self, user_ids: range) -> None:
        """notify_svc's directory learns users from user.* events; here they are written."""
        from common.db import utcnow
        from notify_svc.models import Recipient

        with self.notify_db.transaction() as session:
            session.add_all(
                Recipient(user_id=n, username=f"u{n}", email=f"u{n}@example.com", updated_at=utcnow())
                for n in user_ids
            )


def otp(user_id: int):  # noqa: ANN201
    from taskmgr.events.v1 import events_pb2

    return "taskmgr.user.otp_requested", events_pb2.OtpRequested(
        user_id=user_id, username=f"u{user_id}", email=f"u{user_id}@example.com", code="123456",
        lifetime_seconds=600,
    )


def commented(number: int, watchers: int):  # noqa: ANN201
    """Comment `number` on a task, to tell `watchers` users of its own."""
    from taskmgr.events.v1 import events_pb2

    first = (number - 1) * watchers + 1
    people = events_pb2.TaskPeople(created_by=first, actor=0)
    people.recipients.user_ids.extend(range(first, first + watchers))
    return "taskmgr.task.commented", events_pb2.TaskCommented(
        task_id=number, title="Bench", people=people, comment_id=number, excerpt="A comment."
    )


def losses(sent: int, logged: list[str], received: dict[str, int], mailer: str) -> str:
    distinct = len(set(logged))
    lost, dup = sent - distinct, len(logged) - distinct
    if mailer == "smtp":
        lost += sent - len(received)
        dup += sum(received.values()) - len(received)
    return f"lost {lost}, duplicated {dup}"


def throughput(run: Run, profile_dir: str | None) -> str:
    import psutil

    from tests.integration.events.producer import ProducerOutbox

    count, watchers = run.args.events, run.args.watchers
    emails = count * max(watchers, 1)
    if watchers:
        run.add_contacts(range(1, emails + 1))
    with run.producer.transaction() as session:
        for user_id in range(1, count + 1):
            event_type, payload = commented(user_id, watchers) if watchers else otp(user_id)
            ProducerOutbox.record(
                session, source="bench", event_type=event_type, subject="1", payload=payload
            )
    process = psutil.Process(run.notify.pid)
    cpu_before = sum(process.cpu_times()[:2])
    spy = None
    if profile_dir:
        raw = f"{profile_dir}/notify-{run.transport}-{run.mailer}.txt"
        spy = subprocess.Popen(
            [str(ROOT / ".venv/bin/py-spy"), "record", os.environ.get("BENCH_PYSPY_MODE", "--gil"),
             "--format", "raw", "--rate", "200",
             "-o", raw, "--pid", str(run.notify.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
    started = time.perf_counter()
    relay = run.start_relay()
    deadline = time.monotonic() + 600
    while len(logged := run.logged()) < emails and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    relay.stop()
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    time.sleep(0.5)
    received = run.close()
    line = (
        f"throughput: {count} events in {elapsed:.2f} s = {count / elapsed:,.0f} events/s"
        + (f" ({emails} emails, {watchers} per event: {emails / elapsed:,.0f} emails/s)" if watchers else "")
        + f", notify_svc CPU {cpu * 1000 / count:.2f} ms/event"
        + f"; {losses(emails, logged, received, run.mailer)}"
    )
    if spy is not None:
        line += "\n" + top_functions(raw)
    return line


def latency(run: Run) -> str:
    from sqlalchemy import text

    from tests.integration.events.producer import ProducerOutbox

    rate, seconds = run.args.rate, run.args.seconds
    committed: dict[str, float] = {}
    seen: dict[str, float] = {}
    producing = threading.Event()
    producing.set()

    def poll() -> None:
        last_id = 0
        while producing.is_set() or len(seen) < len(committed):
            with run.notify_db.read() as session:
                rows = session.execute(
                    text("SELECT id, event_id FROM notifications WHERE id > :after"),
                    {"after": last_id - 2000},
                ).all()
            now = time.time()
            for row_id, event_id in rows:
                seen.setdefault(event_id, now)
                last_id = max(last_id, row_id)
            if not producing.is_set() and time.monotonic() > give_up:
                return
            time.sleep(0.02)

    give_up = float("inf")
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    relay = run.start_relay()
    start = time.monotonic()
    next_number = iter(range(1, rate * seconds + 1))
    numbers = threading.Lock()

    def produce() -> None:
        # Several producers, as several requests at once: a slow commit (a busy machine)
        # delays only its own event, not the schedule of the others.
        while True:
            with numbers:
                n = next(next_number, None)
            if n is None or time.monotonic() > start + seconds + 1:
                return
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            event_type, payload = otp(n)
            with run.producer.transaction() as session:
                event = ProducerOutbox.record(
                    session, source="bench", event_type=event_type, subject="1", payload=payload
                )
            committed[event.id] = time.time()

    producers = [threading.Thread(target=produce) for _ in range(_PRODUCERS)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    offered = len(committed) / (time.monotonic() - start)
    give_up = time.monotonic() + 60
    producing.clear()
    poller.join()
    relay.stop()
    logged = run.logged()
    received = run.close()
    delays = sorted((seen[event_id] - at) * 1000 for event_id, at in committed.items() if event_id in seen)
    cuts = statistics.quantiles(delays, n=100)
    return (
        f"latency: {len(committed)} events offered at {offered:.0f}/s; commit -> logged "
        f"p50 {cuts[49]:.0f} ms, p99 {cuts[98]:.0f} ms, max {delays[-1]:.0f} ms; "
        f"{losses(len(committed), logged, received, run.mailer)}"
    )


# Where the time goes, by library (a sample counts for each group on its stack).
_GROUPS = {
    "SQLAlchemy": "(sqlalchemy/", "psycopg": "(psycopg/", "smtplib": "smtplib.py",
    "email (building messages)": "(email/", "pika": "(pika/", "grpc": "(grpc/",
    "logging": "(logging/__init__.py", "protobuf": "(google/protobuf/", "tenacity": "(tenacity/",
}


def top_functions(raw_file: str, limit: int = 10) -> str:
    """Per library, the share of samples with it on the stack; then the functions with
    the most own samples, from py-spy's raw (collapsed) output."""
    own: collections.Counter[str] = collections.Counter()
    groups: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(raw_file).read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = stack.split(";")
        count = int(samples)
        total += count
        own[frames[-1]] += count
        for group, marker in _GROUPS.items():
            if marker in stack:
                groups[group] += count
    total = total or 1
    shares = ", ".join(f"{name} {n * 100 / total:.0f}%" for name, n in groups.most_common())
    lines = [f"    on the stack: {shares}"]
    lines += [f"    {n * 100 / total:5.1f}% own {name}" for name, n in own.most_common(limit)]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--smtp-sink":
        smtp_sink(int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transports", default="rabbitmq,direct")
    parser.add_argument("--mailers", default="console,smtp")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--profile", metavar="DIR")
    parser.add_argument("--watchers", type=int, default=0, help="recipients per throughput event")
    args = parser.parse_args()

    from tests.conftest import AMQP_URL, PG_ADMIN_URL
    from tests.support.infra import PostgresServer, RabbitMQ

    print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    postgres = PostgresServer(PG_ADMIN_URL, prefix="tm_bench")
    rabbitmq = RabbitMQ(AMQP_URL, prefix="tm-bench")
    try:
        with tempfile.TemporaryDirectory() as var_dir:
            for round_number in range(1, args.rounds + 1):
                for transport in args.transports.split(","):
                    for mailer in args.mailers.split(","):
                        label = f"[round {round_number}] {transport:8} {mailer:7}"
                        run = Run(args, transport, mailer, postgres, rabbitmq, Path(var_dir))
                        print(f"{label} {throughput(run, args.profile)}", flush=True)
                        if not args.no_latency:
                            run = Run(args, transport, mailer, postgres, rabbitmq, Path(var_dir))
                            print(f"{label} {latency(run)}", flush=True)
            print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        rabbitmq.delete_all()
        postgres.drop_all()


if __name__ == "__main__":
    main()
