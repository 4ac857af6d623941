"""One JSON log schema for every service: timestamp, severity, name, message, request_id.

Nothing secret is ever passed to a logger: no passwords, codes, tokens or headers.
Records are serialized by orjson (python-json-logger's OrjsonFormatter): the standard
library's json costs a third more. Access lines (edge requests, service calls) are at
DEBUG when they succeeded and at INFO when they failed: LOG_LEVEL=DEBUG shows them all.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.orjson import OrjsonFormatter

from common.context import request_id_var


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(service_name: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        OrjsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "timestamp", "levelname": "severity"},
            static_fields={"service": service_name},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pika logs every reconnect attempt at INFO; its warnings are enough.
    logging.getLogger("pika").setLevel(logging.WARNING)
