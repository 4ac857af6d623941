"""Process entry point shared by every service's __main__."""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client.registry import Collector

from common.grpc_server import GrpcServer, serve_in_processes
from common.heap import freeze_startup_objects
from common.logging import configure_logging
from common.metrics import start_metrics_server
from common.settings import Settings, load_settings

log = logging.getLogger(__name__)


def run_service(
    name: str,
    build: Callable[[Settings, int], GrpcServer],
    metrics: Callable[[Settings], list[Collector]] = lambda _settings: [],
) -> None:
    """Builds the service on its configured port, serves until SIGTERM, stops gracefully;
    in `<NAME>_PROCESSES` processes sharing the port when that is above 1
    (common.grpc_server.serve_in_processes). Its /metrics (common.metrics) is served from
    this process, with the gauges `metrics` makes, before any worker starts."""
    settings = load_settings()
    settings.require_production_settings(name)
    configure_logging(name, settings.log_level)
    metrics_port = start_metrics_server(settings, name, metrics(settings))
    if metrics_port:
        log.info("%s metrics on %s:%d", name, settings.metrics_host, metrics_port)

    def serve(port: int) -> None:
        server = build(settings, port).start()
        freeze_startup_objects()
        log.info("%s serving", name, extra={"port": server.port, "host": settings.grpc_host})
        server.serve_until_signalled(
            settings.grpc_shutdown_grace_seconds, settings.grpc_shutdown_drain_seconds
        )

    processes = settings.processes(name)
    if processes == 1:
        serve(settings.port(name))
    else:
        stop_timeout = settings.grpc_shutdown_drain_seconds + settings.grpc_shutdown_grace_seconds + 5
        serve_in_processes(
            processes, settings.grpc_host, settings.port(name), serve, stop_timeout=stop_timeout
        )
