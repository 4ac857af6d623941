"""gunicorn settings for the edge (`python -m edge_api`, or `gunicorn -c python:edge_api.gunicorn_conf`).

gthread workers: each request spends most of its time waiting on a gRPC call, which
releases the GIL, so a few processes with several threads each serve many requests.
The app is not preloaded: each worker imports and builds it after the fork, and
edge_api.backends opens gRPC channels on first use in the process that uses them, so
no channel ever crosses a fork even if preload_app is switched on.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from common.settings import load_settings

_settings = load_settings()

bind = f"{_settings.edge_host}:{_settings.edge_port}"
worker_class = "gthread"
workers = _settings.edge_workers  # env WEB_CONCURRENCY, the conventional knob
threads = _settings.edge_threads
preload_app = False
timeout = 30  # a stuck worker is restarted; every gRPC call has a far shorter deadline
graceful_timeout = 10
keepalive = 5
# Request logs come from the app (JSON, with the request id); gunicorn's would duplicate.
accesslog = None


def on_starting(server) -> None:
    # Multiprocess metrics live in files: stale ones from a previous run would be summed in.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # its live gauges stop counting
