"""`python -m edge_api`: the REST edge under gunicorn (settings in edge_api.gunicorn_conf)."""

from __future__ import annotations

from flask import Flask
from gunicorn.app.base import BaseApplication

from common.logging import configure_logging
from common.settings import load_settings
from edge_api import gunicorn_conf
from edge_api.app import create_app


class EdgeServer(BaseApplication):
    def load_config(self) -> None:
        for key, value in vars(gunicorn_conf).items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        # Runs in each worker after the fork (preload_app is off).
        settings = load_settings()
        configure_logging("edge_api", settings.log_level)
        return create_app(settings)


def main() -> None:
    load_settings().require_production_settings("edge_api")
    EdgeServer().run()


if __name__ == "__main__":
    main()
