"""Load through the REST edge: the whole stack as real processes on PostgreSQL, wrk as the client.

    .venv/bin/python bench/edge_load.py [--server granian|gunicorn] [--seconds 10] [--profile]

Starts user_svc, task_svc and notify_svc (`python -m <svc>`, production argon2 cost,
events on the embedded transport) on temporary PostgreSQL databases it creates and
drops, and the edge as `python -m edge_api` runs it (granian), or under gunicorn gthread
(the server it had before), all on 127.0.0.1. It signs up one user and gives them 100
tasks, then drives each path with wrk (16 connections, 2 threads) and prints requests/s,
p50/p99, the edge's CPU time per request (its launcher and workers, from /proc) and the
busiest worker's share of the workers' CPU (0.50 is an even split over two), and the
ratio of the task list to the floor (GET /api/tasks/{id}/: one primary-key select
behind the same edge and auth).
With --profile it also records py-spy flame graphs of one edge worker and of task_svc
under the list load (needs `pip install py-spy` and ptrace permission).

Needs: PostgreSQL on 127.0.0.1:5432 (BENCH_PG_ADMIN_URL), `wrk` (apt-get install wrk),
and for --server gunicorn, `pip install gunicorn==27.0.1`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench passphrase that is long 1"
CONNECTIONS, WRK_THREADS = 16, 2

# wrk scripts. {token} and {body} are filled in; the token script gives every request a
# client address of its own (the edge trusts one proxy hop), as many real clients would,
# so the per-IP login limit of the edge does not turn the run into a run of 429s.
BEARER = 'wrk.headers["Authorization"] = "Bearer {token}"\n'
POST_JSON = 'wrk.method = "POST"\nwrk.body = [[{body}]]\nwrk.headers["Content-Type"] = "application/json"\n'
EACH_FROM_ITS_OWN_IP = """
request = function()
  local ip = "10." .. math.random(0, 255) .. "." .. math.random(0, 255) .. "." .. math.random(1, 254)
  local headers = {["Host"] = "127.0.0.1", ["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip}
  return wrk.format(nil, nil, headers)
end
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def temporary_databases(*services: str) -> Iterator[dict[str, str]]:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = {service: f"bench_{service}_{uuid.uuid4().hex[:8]}" for service in services}
    with admin.connect() as connection:
        for name in names.values():
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(ADMIN_URL)
        yield {s: url.set(database=n).render_as_string(hide_password=False) for s, n in names.items()}
    finally:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Processes:
    """Child processes, each logging to a file of its own, all stopped on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._children: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("wb")
        child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._children.append(child)
        return child

    def stop(self, child: subprocess.Popen) -> None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        self._children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self._children)):
            self.stop(child)


def wait_until(check, what: str, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ConnectionError):
            if check():
                return
        time.sleep(0.2)
    sys.exit(f"{what} did not come up in {timeout:.0f}s")


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@dataclass
class Stack:
    env: dict[str, str]
    processes: Processes
    task_svc: subprocess.Popen
    edge: subprocess.Popen | None = None
    edge_port: int = 0


def start_services(processes: Processes, databases: dict[str, str], var_dir: Path) -> Stack:
    ports = {service: free_port() for service in databases}
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "VAR_DIR": str(var_dir),
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),  # perf_vs_floor: the default, INFO
        **{f"{s.upper()}_DATABASE_URL": url for s, url in databases.items()},
        **{f"{s.upper()}_PORT": str(port) for s, port in ports.items()},
        **{f"{s.upper()}_ADDR": f"127.0.0.1:{port}" for s, port in ports.items()},
    }
    env.pop("AMQP_URL", None)  # events on the embedded transport
    # One bench user writes far faster than a person: lift the contract's per-user limits
    # on what the benches call (RATE_LIMITS overrides them in the edge and the services).
    env.setdefault("RATE_LIMITS", json.dumps({
        f"taskmgr.task.v1.TaskService/{method}": "10000000/minute"
        for method in ("CreateTask", "UpdateTask", "AssignTask")
    }))
    for service in databases:  # no metrics servers unless asked for: their default ports may be taken
        env.setdefault(f"{service.upper()}_METRICS_PORT", "0")
    children = {service: processes.start(service, [PYTHON, "-m", service], env) for service in databases}
    for service, port in ports.items():
        wait_until(lambda port=port: port_open(port), service)
    return Stack(env, processes, children["task_svc"])


def start_edge(stack: Stack, server: str) -> None:
    port = free_port()
    env = {**stack.env, "EDGE_PORT": str(port), "TRUSTED_PROXY_COUNT": "1"}
    workers, threads = env.get("WEB_CONCURRENCY", "2"), env.get("EDGE_THREADS", "8")
    env["EDGE_METRICS_PORT"] = str(free_port())
    if server == "granian":
        argv = [PYTHON, "-m", "edge_api"]
    elif server == "granian-wsgi":  # granian's WSGI interface: bodies read on Python threads
        argv = [
            str(ROOT / ".venv" / "bin" / "granian"), "--interface", "wsgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", workers,
            "--blocking-threads", threads, "--no-ws", "edge_api.app:create_app",
        ]  # fmt: skip
    else:
        argv = [
            str(ROOT / ".venv" / "bin" / "gunicorn"), "--worker-class", "gthread",
            "--bind", f"127.0.0.1:{port}", "--workers", workers, "--threads", threads,
            "edge_api.app:create_app()",
        ]  # fmt: skip
    stack.edge = stack.processes.start(f"edge_{server}", argv, env)
    stack.edge_port = port
    wait_until(lambda: request(port, "GET", "/readyz")[0] == 200, f"edge under {server}")


def request(port: int, method: str, path: str, body: dict | None = None, token: str = "") -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection.request(method, path, json.dumps(body) if body is not None else None, headers)
    answer = connection.getresponse()
    data = answer.read()
    connection.close()
    return answer.status, (json.loads(data) if data else {})


@dataclass(frozen=True)
class Seed:
    username: str
    token: str
    task_id: int


def seed(stack: Stack, databases: dict[str, str], tasks: int = 100) -> Seed:
    """One verified user with `tasks` tasks. The address is marked verified in the
    database: without a broker the OTP email is only printed, and reading it is not
    what is measured."""
    port, username = stack.edge_port, f"bench_{uuid.uuid4().hex[:8]}"
    status, _ = request(
        port, "POST", "/api/users/register/",
        {"username": username, "email": f"{username}@example.com", "password": PASSWORD},
    )  # fmt: skip
    assert status == 201, status
    users = create_engine(databases["user_svc"])
    with users.begin() as connection:
        verify = text("UPDATE users SET email_verified = true WHERE username = :username")
        connection.execute(verify, {"username": username})
    users.dispose()
    status, tokens = request(port, "POST", "/api/token/", {"username": username, "password": PASSWORD})
    assert status == 200, tokens
    task_id = 0
    for n in range(tasks):
        status, task = request(port, "POST", "/api/tasks/", {"title": f"Task {n}"}, tokens["access"])
        assert status == 201, task
        task_id = task["id"]
    return Seed(username, tokens["access"], task_id)


@dataclass(frozen=True)
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    edge_cpu_ms: float = 0.0  # edge CPU time per request: launcher and workers
    busiest_worker: float = 0.0  # the busiest worker's share of the workers' CPU time


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def edge_processes(stack: Stack) -> tuple[int, list[int]]:
    children = subprocess.run(["pgrep", "-P", str(stack.edge.pid)], capture_output=True, text=True)
    return stack.edge.pid, [int(pid) for pid in children.stdout.split()]


def wrk(port: int, name: str, path: str, script: str, seconds: int, stack: Stack | None = None) -> Result:
    launcher, workers = edge_processes(stack) if stack else (0, [])
    before = {pid: cpu_seconds(pid) for pid in [launcher, *workers] if pid}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    argv = [
        "wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
        "-s", handle.name, f"http://127.0.0.1:{port}{path}",
    ]  # fmt: skip
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    os.unlink(handle.name)

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\b", output, re.M).groups()
        return float(value) * _UNITS_MS[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    used = {pid: cpu_seconds(pid) - start for pid, start in before.items()}
    by_workers = [used[pid] for pid in workers]
    return Result(
        name, rps, latency("50"), latency("99"), int(non_2xx.group(1)) if non_2xx else 0,
        edge_cpu_ms=1000 * sum(used.values()) / max(total, 1),
        busiest_worker=max(by_workers) / sum(by_workers) if sum(by_workers) else 0.0,
    )  # fmt: skip


def print_result(result: Result) -> None:
    bad = f"  ({result.non_2xx} non-2xx!)" if result.non_2xx else ""
    print(
        f"{result.name:<34} {result.requests_per_second:>9.0f} req/s"
        f"   p50 {result.p50_ms:>7.2f} ms   p99 {result.p99_ms:>7.2f} ms"
        f"   edge CPU {result.edge_cpu_ms:>5.2f} ms/req   busiest worker {result.busiest_worker:.2f}{bad}",
        flush=True,
    )


def list_and_floor(stack: Stack, seeded: Seed, seconds: int) -> tuple[Result, Result]:
    bearer = BEARER.format(token=seeded.token)
    one_task = f"/api/tasks/{seeded.task_id}/"
    floor = wrk(stack.edge_port, "GET /api/tasks/{id}/ (floor)", one_task, bearer, seconds, stack)
    listed = wrk(stack.edge_port, "GET /api/tasks/ (20 per page)", "/api/tasks/", bearer, seconds, stack)
    return listed, floor


def profile(stack: Stack, seeded: Seed, seconds: int, out_dir: Path) -> list[Path]:
    """py-spy profiles (collapsed stacks) of an edge worker and of task_svc under the list load."""
    pyspy = str(ROOT / ".venv" / "bin" / "py-spy")
    children = subprocess.run(["pgrep", "-P", str(stack.edge.pid)], capture_output=True, text=True)
    workers = children.stdout.split()
    targets = {"edge_worker": int(workers[0]) if workers else stack.edge.pid, "task_svc": stack.task_svc.pid}
    recorders = [
        subprocess.Popen(
            [pyspy, "record", "-f", "raw", "-d", str(seconds), "-o", str(out_dir / f"{name}.txt"),
             "--pid", str(pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for name, pid in targets.items()
    ]
    time.sleep(1)
    wrk(stack.edge_port, "list (profiled)", "/api/tasks/", BEARER.format(token=seeded.token), seconds)
    for recorder in recorders:
        recorder.wait(60)
    return [out_dir / f"{name}.txt" for name in targets]


def summarize(profile_path: Path, top: int = 25) -> None:
    """The functions with the most CPU samples, counting a function once per stack (inclusive)."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in profile_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for frame in {frame.split(" (")[0] + " (" + frame.split(" (")[-1] for frame in stack.split(";")}:
            inclusive[frame] += int(count)
    print(f"{profile_path.stem}: {total} samples with the CPU busy; inclusive share per function")
    for frame, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["granian", "granian-wsgi", "gunicorn"], default="granian")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="py-spy profiles under the list load")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="edge_bench_"))
    processes = Processes(work)
    with temporary_databases("user_svc", "task_svc", "notify_svc") as databases:
        try:
            stack = start_services(processes, databases, work / "var")
            start_edge(stack, args.server)
            seeded = seed(stack, databases)
            print(f"edge under {args.server}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
                  f"wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{args.seconds}s; logs in {work}")  # fmt: skip
            listed, floor = list_and_floor(stack, seeded, args.seconds)
            print_result(floor)
            print_result(listed)
            print(f"{'list / floor':<34} {listed.requests_per_second / floor.requests_per_second:>9.2f}")
            bearer = BEARER.format(token=seeded.token)
            task = json.dumps({"title": "Benchmarked", "priority": "high"})
            for result in (
                wrk(stack.edge_port, "POST /api/tasks/ (+ outbox event)", "/api/tasks/",
                    bearer + POST_JSON.format(body=task), args.seconds, stack),
                wrk(stack.edge_port, "GET /api/users/profile/", "/api/users/profile/", bearer, args.seconds,
                    stack),
                wrk(stack.edge_port, "POST /api/token/ (argon2id verify)", "/api/token/",
                    POST_JSON.format(body=json.dumps({"username": seeded.username, "password": PASSWORD}))
                    + EACH_FROM_ITS_OWN_IP, args.seconds, stack),
            ):  # fmt: skip
                print_result(result)
            if args.profile:
                for path in profile(stack, seeded, args.seconds, work):
                    summarize(path)
        finally:
            processes.stop_all()


if __name__ == "__main__":
    main()
