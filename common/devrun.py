"""`make run`: every service as a local process under honcho (the Procfile).

Prints what will run, as the processes will see it: the environment with `.env` laid
over it (honcho gives `.env` precedence over the shell), validated by the same Settings
the services load; passwords and keys never appear. Then runs honcho, which stops every
process on Ctrl-C, and says READY once every backend answers SERVING on the standard
gRPC health service and the edge answers /healthz: not merely started.

With nothing set, the embedded default runs: SQLite under var/, events handed from the
outbox relays to notify_svc over gRPC, emails printed to the console.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlsplit

from honcho.environ import parse as parse_env_file

from common.healthcheck import check_grpc, check_http
from common.settings import SERVICES, Settings, load_settings

ENV_FILE = Path(".env")
# A query parameter that may carry a credential in a database or broker URL (its value).
_SECRET_PARAMETER = re.compile(r"((?:^|&)[^=&]*(?:pass|secret|token|key|auth)[^=&]*=)[^&]*", re.IGNORECASE)
_REDACTED = "***"
# How long to wait for readiness before saying what is still missing (then every 30 s).
_PATIENCE_SECONDS = 30.0


def load_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """`.env` as honcho reads it (its own parser), or {} when there is none."""
    try:
        return dict(parse_env_file(path.read_text()))
    except FileNotFoundError:
        return {}


def redact_url(url: str) -> str:
    """`url` without its secrets: the password in the userinfo and the value of any query
    parameter whose name suggests a credential become `***` (OWASP ASVS v4 7.1.1: no
    credentials in logs). Everything else is kept exactly as written."""
    parts = urlsplit(url)
    if parts.password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")
        url = url.replace(parts.netloc, f"{userinfo.split(':', 1)[0]}:{_REDACTED}@{host}", 1)
    if parts.query:
        query = _SECRET_PARAMETER.sub(rf"\g<1>{_REDACTED}", parts.query)
        url = url.replace("?" + parts.query, "?" + query, 1)
    return url


def local_host(host: str) -> str:
    """Where to reach a server bound to `host` from this machine (URL/address form)."""
    host = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host  # noqa: S104
    return f"[{host}]" if ":" in host else host


def _database(settings: Settings, service: str) -> str:
    url = getattr(settings, f"{service}_database_url")
    if not url:
        return f"SQLite {settings.var_dir / f'{service}.db'}"
    engine = "PostgreSQL" if url.startswith("postgres") else urlsplit(url).scheme.split("+")[0]
    return f"{engine} {redact_url(url)}"


def banner(settings: Settings) -> str:
    """What will run, from `settings` (what the processes load): addresses, databases,
    broker and mail, with every credential redacted."""
    edge = f"http://{local_host(settings.edge_host)}:{settings.edge_port}"
    metrics = f"http://{local_host(settings.edge_metrics_host)}:{settings.edge_metrics_port}/metrics"
    grpc_host = local_host(settings.grpc_host)
    metrics_host = local_host(settings.metrics_host)
    service_metrics = "  ".join(
        f"{service} {metrics_host}:{getattr(settings, f'{service}_metrics_port')}"
        for service in SERVICES
        if getattr(settings, f"{service}_metrics_port")
    ) or "none"
    grpc = "  ".join(
        f"{service} {grpc_host}:{settings.port(service)} (x{settings.processes(service)})"
        for service in SERVICES
    )
    width = max(map(len, SERVICES))
    databases = "\n                 ".join(
        f"{service:<{width}}  {_database(settings, service)}" for service in SERVICES
    )
    if settings.amqp_url:
        events = f"RabbitMQ {redact_url(settings.amqp_url)} (exchange {settings.events_exchange})"
    else:
        events = "direct gRPC to notify_svc (no broker)"
    if settings.smtp_host:
        email = f"SMTP {settings.smtp_host}:{settings.smtp_port}"
    else:
        email = "printed by notify_svc below"
    return f"""
taskmgr is starting ({settings.environment}; settings from the environment and {ENV_FILE})
  REST edge      {edge}/api/...  e.g. {edge}/api/tasks/   (health {edge}/healthz)
  Swagger UI     {edge}/swagger/
  metrics        {metrics}   (operators' port)
                 {service_metrics}   (each service's /metrics)
  gRPC           {grpc}
                 (.venv/bin/grpcurl -plaintext {grpc_host}:{settings.user_svc_port} list)
  databases      {databases}
  events         {events}
  emails         {email}
Ctrl-C stops everything. Waiting until every service is ready...
"""


def readiness_checks(settings: Settings) -> dict[str, tuple[str, str]]:
    """name -> (target, gRPC service): each backend's own service on the standard gRPC
    health service (SERVING once it has migrated and started), then the edge's /healthz
    (an http URL; no service)."""
    host = local_host(settings.grpc_host)
    checks = {name: (f"{host}:{settings.port(name)}", _grpc_service_name(name)) for name in SERVICES}
    checks["edge_api"] = (f"http://{local_host(settings.edge_host)}:{settings.edge_port}/healthz", "")
    return checks


def _grpc_service_name(module: str) -> str:
    """The full name of the gRPC service a backend registers, from its generated stubs."""
    domain = module.removesuffix("_svc")
    stubs = importlib.import_module(f"taskmgr.{domain}.v1.{domain}_service_pb2")
    [service] = stubs.DESCRIPTOR.services_by_name.values()
    return service.full_name


def not_ready(checks: dict[str, tuple[str, str]], timeout: float = 1.0) -> dict[str, str]:
    """name -> why it is not ready yet; {} when all are."""
    problems = {}
    for name, (target, service) in checks.items():
        if target.startswith("http"):
            problem = check_http(target, timeout)
        else:
            problem = check_grpc(target, service, timeout)
        if problem:
            problems[name] = problem
    return problems


def watch_readiness(settings: Settings, running: threading.Event, out=sys.stdout) -> None:
    """Prints READY once every check passes (while `running` is set), and what is still
    missing every _PATIENCE_SECONDS meanwhile."""
    checks = readiness_checks(settings)
    started = time.monotonic()
    next_report = started + _PATIENCE_SECONDS
    while running.is_set():
        missing = not_ready(checks)
        if not missing:
            edge = f"http://{local_host(settings.edge_host)}:{settings.edge_port}"
            print(
                f"\ntaskmgr is READY after {time.monotonic() - started:.1f} s: "
                f"{', '.join(SERVICES)} SERVING (gRPC health), edge answering {edge}/healthz\n"
                f"  try {edge}/swagger/\n",
                file=out,
                flush=True,
            )
            return
        if time.monotonic() >= next_report:
            waiting = "; ".join(f"{name}: {why}" for name, why in missing.items())
            elapsed = time.monotonic() - started
            print(f"taskmgr: still not ready after {elapsed:.0f} s: {waiting}", file=out, flush=True)
            next_report += _PATIENCE_SECONDS
        running.wait(0.25)


def default_processes(environ: MutableMapping[str, str], cpus: int | None) -> None:
    """Each service runs one process per CPU unless `<SERVICE>_PROCESSES` is set (in the
    shell or `.env`): a Python process uses one core at a time."""
    for service in SERVICES:
        environ.setdefault(f"{service.upper()}_PROCESSES", str(cpus or 1))


def default_addresses(environ: MutableMapping[str, str]) -> None:
    """Each service reaches a peer where `make run` starts it: `<SERVICE>_ADDR` follows
    `<SERVICE>_PORT` (and `GRPC_HOST`) unless it is set itself. Without this, moving the
    ports (another instance on 50051-50053) left every caller on the default address:
    READY, then 503 for every request, or worse, another instance's services answering."""
    for service in SERVICES:
        port = environ.get(f"{service.upper()}_PORT")
        if port:
            host = local_host(environ.get("GRPC_HOST", "127.0.0.1"))
            environ.setdefault(f"{service.upper()}_ADDR", f"{host}:{port}")


def main() -> None:
    default_processes(os.environ, os.cpu_count())
    # The processes get this environment from honcho (.env over the shell); the banner
    # describes exactly it.
    os.environ.update(load_env_file())
    default_addresses(os.environ)  # after .env: its ports count, its addresses win
    settings = load_settings()
    print(banner(settings), flush=True)
    honcho = shutil.which("honcho", path=os.path.dirname(sys.executable))
    if honcho is None:
        sys.exit("honcho is not installed: run `make install`")
    process = subprocess.Popen([honcho, "start", "-f", "Procfile"])  # noqa: S603 - fixed argv, no shell
    # Ctrl-C reaches honcho too (same process group): it stops the processes; we wait for it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    running = threading.Event()
    running.set()
    watcher = threading.Thread(target=watch_readiness, args=(settings, running), daemon=True)
    watcher.start()
    code = process.wait()
    running.clear()
    sys.exit(code)


if __name__ == "__main__":
    main()
