"""gunicorn gthread vs granian on the same path and the same backends, to choose the edge's server.

    .venv/bin/python bench/edge_wsgi.py [--seconds 10]

Starts the services once (as bench/edge_load.py does), then for each server in turn:
starts the edge (2 workers from WEB_CONCURRENCY; 8 threads each under gunicorn and
granian-wsgi, from EDGE_THREADS), runs the
floor (GET /api/tasks/{id}/), the task list and /healthz (no backend call: the server's
own cost) with wrk, prints them (with the edge's CPU
time per request and the busiest worker's share), stops the edge. granian is what
`python -m edge_api` runs; gunicorn gthread is the server it replaced and needs
`pip install gunicorn==27.0.1` in the venv.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from edge_load import (
    Processes,
    list_and_floor,
    print_result,
    seed,
    start_edge,
    start_services,
    temporary_databases,
    wrk,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--servers", default="gunicorn,granian-wsgi,granian", help="comma-separated")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edge_wsgi_"))
    processes = Processes(work)
    with temporary_databases("user_svc", "task_svc", "notify_svc") as databases:
        try:
            stack = start_services(processes, databases, work / "var")
            seeded = None
            for server in args.servers.split(","):
                start_edge(stack, server)
                seeded = seeded or seed(stack, databases)
                listed, floor = list_and_floor(stack, seeded, args.seconds)
                # No backend call: what the server and the app's own hooks cost.
                alone = wrk(stack.edge_port, "GET /healthz (no backend)", "/healthz", "", args.seconds, stack)
                print(f"-- {server}")
                print_result(alone)
                print_result(floor)
                print_result(listed)
                processes.stop(stack.edge)
        finally:
            processes.stop_all()


if __name__ == "__main__":
    main()
