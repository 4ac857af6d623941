"""Process entry point shared by every service's __main__."""

from __future__ import annotations

import logging
from collections.abc import Callable

from common.grpc_server import GrpcServer
from common.logging import configure_logging
from common.settings import Settings, load_settings

log = logging.getLogger(__name__)


def run_service(name: str, build: Callable[[Settings, int], GrpcServer]) -> None:
    """Builds the service on its configured port, serves until SIGTERM, stops gracefully."""
    settings = load_settings()
    settings.require_production_settings(name)
    configure_logging(name, settings.log_level)
    server = build(settings, settings.port(name)).start()
    log.info("%s serving", name, extra={"port": server.port, "host": settings.grpc_host})
    server.serve_until_signalled(
        settings.grpc_shutdown_grace_seconds, settings.grpc_shutdown_drain_seconds
    )
