"""`python -m edge_api`: the REST edge under granian (settings in edge_api.server)."""

from __future__ import annotations

from common.logging import configure_logging
from common.settings import load_settings
from edge_api.ops import start_metrics_server
from edge_api.server import build_server


def main() -> None:
    settings = load_settings()
    settings.require_production_settings("edge_api")
    server = build_server(settings)  # configures granian's logging
    configure_logging("edge_api", settings.log_level)
    # Before the workers start: they inherit PROMETHEUS_MULTIPROC_DIR and write there.
    start_metrics_server(settings)
    server.serve()


if __name__ == "__main__":
    main()
