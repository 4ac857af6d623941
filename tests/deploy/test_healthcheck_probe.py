"""`python -m common.healthcheck`, the containers' health probe, against real servers on
free ports: a gRPC server with the standard health service, and a plain HTTP server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from common.healthcheck import main

SERVICE = "taskmgr.test.v1.Probed"


@pytest.fixture
def grpc_health() -> Iterator[tuple[str, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(None)


class _Status(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_grpc_serving_is_healthy(grpc_health: tuple[str, health.HealthServicer]) -> None:
    address, servicer = grpc_health
    servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    assert main([address]) == 0
    assert main([address, SERVICE]) == 0


def test_grpc_not_serving_is_unhealthy(
    grpc_health: tuple[str, health.HealthServicer], capsys: pytest.CaptureFixture[str]
) -> None:
    address, servicer = grpc_health
    servicer.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
    assert main([address, SERVICE]) == 1
    assert f"{SERVICE}: NOT_SERVING" in capsys.readouterr().err
    servicer.enter_graceful_shutdown()  # what a server does first on SIGTERM
    assert main([address]) == 1


def test_grpc_unknown_service_is_unhealthy(
    grpc_health: tuple[str, health.HealthServicer], capsys: pytest.CaptureFixture[str]
) -> None:
    address, _ = grpc_health
    assert main([address, "taskmgr.test.v1.Missing"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err


def test_nothing_listening_is_unhealthy_within_the_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main([f"127.0.0.1:{port}", "--timeout", "0.5"]) == 1
    err = capsys.readouterr().err
    assert "UNAVAILABLE" in err or "DEADLINE_EXCEEDED" in err
    assert main([f"http://127.0.0.1:{port}/healthz", "--timeout", "0.5"]) == 1


def test_http_2xx_is_healthy_anything_else_is_not(http_base: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([f"{http_base}/healthz"]) == 0
    assert main([f"{http_base}/readyz"]) == 1
    assert "HTTP 503" in capsys.readouterr().err
