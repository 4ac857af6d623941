"""taskmgr against the floor, side by side in one run: CPU per request, req/s, p50/p99.

    .venv/bin/python bench/perf_vs_floor.py --floor DIR [--rounds 3] [--seconds 10]
        [--processes 1,2] [--profile]

The floor (DIR, its README) is the same architecture with nothing else: Flask under
granian, one gRPC call, one PostgreSQL primary-key select. This starts it (`DIR/serve`,
in its own process group, FLOOR_SERVER=granian as taskmgr's edge) and taskmgr (the
services and the edge as bench/edge_load.py starts them, on temporary PostgreSQL
databases, with `*_PROCESSES` = each count of --processes in turn), then alternates:
each round measures, for each taskmgr path, the floor and then the path (the order
flips every round), wrk -t1 -c16 for --seconds after a 2 s warm-up. CPU is counted over
every process of each system (psutil: the process and all its descendants) plus the
PostgreSQL backends it uses (found by the client ports of its processes' connections to
PostgreSQL, in pg_stat_activity), so a round trip saved is seen. Printed per run:
req/s, p50, p99, CPU-ms per request (total and PostgreSQL's part); per path the median
over rounds of the ratios to the adjacent floor run; the load average before each round.

With --profile, py-spy (--gil, idle off) records an edge worker and one task_svc process
under the list load once the rounds are done and prints where the samples went.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edge_load import (  # noqa: E402 (bench/ is not a package)
    ADMIN_URL,
    BEARER,
    POST_JSON,
    ROOT,
    Processes,
    Seed,
    Stack,
    free_port,
    port_open,
    seed,
    start_edge,
    start_services,
    temporary_databases,
    wait_until,
)

CONNECTIONS = 16
POSTGRES_PORT = 5432
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_SERVICES = ("user_svc", "task_svc", "notify_svc")


@dataclass(frozen=True)
class Run:
    system: str
    path: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # per request: every process of the system and its PostgreSQL backends
    split: dict[str, float]  # the same per process name (root process and descendants)
    errors: int  # non-2xx answers and socket errors
    busiest_worker: float = 0.0  # the busiest HTTP worker's share of the workers' CPU (0.5: even over 2)

    def line(self) -> str:
        bad = f"  ({self.errors} errors!)" if self.errors else ""
        parts = " ".join(f"{name} {ms:.2f}" for name, ms in self.split.items())
        return (
            f"  {self.system:<8} {self.path:<10} {self.rps:>7.0f} req/s  p50 {self.p50_ms:>6.2f} ms"
            f"  p99 {self.p99_ms:>6.2f} ms  CPU {self.cpu_ms:>5.2f} ms/req ({parts})"
            f"  busiest worker {self.busiest_worker:.2f}{bad}"
        )


class System:
    """The processes of one system (named roots and their descendants) and its PostgreSQL backends."""

    def __init__(self, name: str, roots: dict[str, int]) -> None:
        self.name = name
        self.roots = roots

    def cpu(self) -> dict[tuple[str, int], float]:
        """CPU seconds so far of each process, keyed by (its root's name, pid); the
        PostgreSQL backends serving the system's connections under the name "postgres"."""
        used, client_ports = {}, set()
        for name, pid in self.roots.items():
            try:
                root = psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for process in tree:
                try:
                    times = process.cpu_times()
                    used[name, process.pid] = times.user + times.system
                    client_ports |= {
                        c.laddr.port for c in process.net_connections("tcp")
                        if c.raddr and c.raddr.port == POSTGRES_PORT
                    }  # fmt: skip
                except psutil.Error:
                    continue
        for pid in _backend_pids(client_ports):
            try:
                times = psutil.Process(pid).cpu_times()
                used["postgres", pid] = times.user + times.system
            except psutil.Error:
                continue
        return used


_ADMIN = None


def _backend_pids(client_ports: set[int]) -> list[int]:
    global _ADMIN
    if not client_ports:
        return []
    _ADMIN = _ADMIN or create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", pool_size=1)
    with _ADMIN.connect() as connection:
        rows = connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE client_port = ANY(:ports)"),
            {"ports": sorted(client_ports)},
        )
        return [row.pid for row in rows]


def _busiest_worker(system: System, before: dict, after: dict) -> float:
    """The busiest HTTP worker's share of the CPU of the HTTP workers (the children of the
    system's HTTP server process: granian's workers)."""
    server = system.roots.get("edge_api") or system.roots.get("floor")
    try:
        children = psutil.Process(server).children()
        # The floor's own gRPC backend is a child of its server script too.
        workers = {child.pid for child in children if "grpc_db_server" not in " ".join(child.cmdline())}
    except psutil.Error:
        return 0.0
    used = [seconds - before.get(key, 0.0) for key, seconds in after.items() if key[1] in workers]
    return max(used) / sum(used) if sum(used) > 0 else 0.0


def _used(before: dict[tuple[str, int], float], after: dict[tuple[str, int], float]) -> dict[str, float]:
    """CPU seconds per name between two readings. A process that started in between
    counts whole; one that ended in between is lost (rare: pools keep their connections)."""
    by_name: dict[str, float] = {}
    for (name, pid), seconds in after.items():
        by_name[name] = by_name.get(name, 0.0) + seconds - before.get((name, pid), 0.0)
    return by_name


def wrk(url: str, script: str, seconds: int) -> tuple[float, float, float, int, int]:
    """req/s, p50 ms, p99 ms, requests, errors of one wrk -t1 -c16 run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", handle.name, url]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(handle.name)

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\b", out, re.M).groups()
        return float(value) * _UNITS_MS[unit]

    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return (
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        latency("50"), latency("99"),
        int(re.search(r"(\d+) requests in", out).group(1)), errors,
    )  # fmt: skip


def measure(system: System, label: str, url: str, script: str, seconds: int) -> Run:
    wrk(url, script, 2)  # warm-up: connections, pools, caches, prepared statements
    before = system.cpu()
    rps, p50, p99, requests, errors = wrk(url, script, seconds)
    after = system.cpu()
    used = _used(before, after)
    split = {name: 1000 * seconds / max(requests, 1) for name, seconds in used.items()}
    busiest = _busiest_worker(system, before, after)
    return Run(system.name, label, rps, p50, p99, sum(split.values()), split, errors, busiest)


def start_floor(floor_dir: Path, log_dir: Path) -> tuple[subprocess.Popen, str]:
    http, grpc_port = free_port(), free_port()
    env = {**os.environ, "FLOOR_SERVER": "granian"}
    log = (log_dir / "floor.log").open("wb")
    child = subprocess.Popen(
        [str(floor_dir / "serve"), str(http), str(grpc_port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    wait_until(lambda: port_open(http), "the floor", timeout=600)
    return child, f"http://127.0.0.1:{http}/grpc"


def stop_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(child.pid, signal.SIGKILL)


def taskmgr_paths(stack: Stack, seeded: Seed) -> dict[str, tuple[str, str]]:
    base = f"http://127.0.0.1:{stack.edge_port}"
    bearer = BEARER.format(token=seeded.token)
    body = json.dumps({"title": "Benchmarked", "priority": "high"})
    return {
        "list": (f"{base}/api/tasks/", bearer),
        "get": (f"{base}/api/tasks/{seeded.task_id}/", bearer),
        "create": (f"{base}/api/tasks/", bearer + POST_JSON.format(body=body)),
    }


# Goals of issue 11: CPU per request taskmgr/floor, and the list's throughput and p99.
CPU_GOALS = {"list": 1.5, "get": 1.3, "create": 2.0}


def compare(
    floor: System, floor_url: str, taskmgr: System, paths: dict[str, tuple[str, str]],
    rounds: int, seconds: int,
) -> None:  # fmt: skip
    ratios: dict[str, list[tuple[float, float, float]]] = {path: [] for path in paths}
    for number in range(rounds):
        load = " ".join(f"{value:.2f}" for value in os.getloadavg())
        print(f"round {number + 1}/{rounds}, load average {load}", flush=True)
        for name, (url, script) in paths.items():
            pair = [(floor, "/grpc", floor_url, ""), (taskmgr, name, url, script)]
            if number % 2:
                pair.reverse()
            runs = {}
            for system, label, target, lua in pair:
                runs[system.name] = measure(system, label, target, lua, seconds)
                print(runs[system.name].line(), flush=True)
            base, ours = runs["floor"], runs["taskmgr"]
            ratios[name].append((ours.cpu_ms / base.cpu_ms, ours.rps / base.rps, ours.p99_ms / base.p99_ms))
    print(f"medians over {rounds} rounds, taskmgr / floor (goal):")
    for name, values in ratios.items():
        cpu, rps, p99 = (statistics.median(column) for column in zip(*values, strict=True))
        line = f"  {name:<7} CPU {cpu:.2f}x (<= {CPU_GOALS[name]}x)   req/s {rps:.2f}x   p99 {p99:.2f}x"
        if name == "list":
            line += "   (list goals: req/s >= 0.7x, p99 <= 1.5x)"
        print(line, flush=True)


def profile(stack: Stack, url: str, script: str, seconds: int, out_dir: Path) -> None:
    """py-spy (samples only while the GIL is held) of one edge worker and one task_svc
    process under the load of `url`, summarised by summarize_profile."""
    pyspy = str(ROOT / ".venv" / "bin" / "py-spy")
    edge_workers = psutil.Process(stack.edge.pid).children() or [psutil.Process(stack.edge.pid)]
    task_svc = psutil.Process(stack.task_svc.pid).children() or [psutil.Process(stack.task_svc.pid)]
    targets = {"edge_worker": edge_workers[0].pid, "task_svc": task_svc[0].pid}
    recorders = []
    for name, pid in targets.items():
        argv = [pyspy, "record", "--gil", "-r", "250", "-f", "raw", "-d", str(seconds)]
        argv += ["-o", str(out_dir / f"{name}.txt"), "--pid", str(pid)]
        recorders.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1)
    wrk(url, script, seconds)
    for recorder in recorders:
        recorder.wait(60)
    for name in targets:
        if (out_dir / f"{name}.txt").exists():
            summarize_profile(out_dir / f"{name}.txt")


def summarize_profile(path: Path, top: int = 25) -> None:
    """Where the samples of a py-spy raw profile went: each function's own samples (the
    leaf of the stack), and its inclusive share (once per stack) for the functions below
    the frames common to nearly every stack (thread and server loops)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame(frame) for frame in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    print(f"{path.stem}: {total} samples holding the GIL")
    print("  own:       " + ", ".join(f"{100 * n / total:.1f}% {f}" for f, n in own.most_common(top)))
    below = [(f, n) for f, n in inclusive.most_common() if n < 0.6 * total][:top]
    print("  inclusive: " + ", ".join(f"{100 * n / total:.1f}% {f}" for f, n in below), flush=True)


def _frame(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    function, _, where = frame.partition(" (")
    return f"{function} ({where.rsplit('/', 1)[-1].split(':')[0]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floor", type=Path, default=os.environ.get("BENCH_FLOOR_DIR"),
                        help="the floor's directory (with serve), or BENCH_FLOOR_DIR")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--processes", default="1", help="processes per gRPC service, e.g. 1,2")
    parser.add_argument("--paths", default="list,get,create")
    parser.add_argument("--log-level", default="INFO", help="taskmgr's LOG_LEVEL (INFO: as it ships)")
    parser.add_argument(
        "--profile", metavar="PATH", nargs="?", const="list", choices=["list", "get", "create"],
        help="py-spy under the load of PATH (default list) at the end",
    )  # fmt: skip
    args = parser.parse_args()
    if args.floor is None or not (args.floor / "serve").exists():
        sys.exit("--floor DIR (or BENCH_FLOOR_DIR): the floor's directory, with its serve script")

    work = Path(tempfile.mkdtemp(prefix="perf_vs_floor_"))
    print(f"{os.cpu_count()} CPUs; wrk -t1 -c{CONNECTIONS} -d{args.seconds}s; logs in {work}", flush=True)
    floor_child, floor_url = start_floor(args.floor.resolve(), work)
    try:
        floor = System("floor", {"floor": floor_child.pid})
        for count in (int(n) for n in args.processes.split(",")):
            print(f"== taskmgr with {count} process(es) per gRPC service", flush=True)
            processes = Processes(work)
            env_before = dict(os.environ)
            os.environ.update({f"{s.upper()}_PROCESSES": str(count) for s in _SERVICES})
            os.environ["BENCH_LOG_LEVEL"] = args.log_level
            # Each service's operators' port (metrics), free rather than the default.
            os.environ.update({f"{s.upper()}_METRICS_PORT": str(free_port()) for s in _SERVICES})
            try:
                with temporary_databases(*_SERVICES) as databases:
                    try:
                        stack = start_services(processes, databases, work / f"var{count}")
                        start_edge(stack, "granian")
                        seeded = seed(stack, databases)
                        # python -m <module>: the module names the process
                        roots = {child.args[-1]: child.pid for child in processes._children}
                        taskmgr = System("taskmgr", roots)
                        paths = taskmgr_paths(stack, seeded)
                        chosen = {name: paths[name] for name in args.paths.split(",")}
                        compare(floor, floor_url, taskmgr, chosen, args.rounds, args.seconds)
                        if args.profile:
                            profile(stack, *paths[args.profile], args.seconds, work)
                    finally:
                        processes.stop_all()
            finally:
                os.environ.clear()
                os.environ.update(env_before)
    finally:
        stop_group(floor_child)


if __name__ == "__main__":
    main()
