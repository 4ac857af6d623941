"""gRPC server bootstrap shared by every service.

Standard health service and server reflection (so `grpcurl -plaintext HOST:PORT list`
works with no proto files), the call interceptor, a bounded thread pool with
`maximum_concurrent_rpcs`, and a graceful SIGTERM: health goes NOT_SERVING first,
then in-flight calls get `grace` seconds to finish.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.interceptor import CallInterceptor
from common.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class GrpcServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    service_names: list[str]
    _on_stop: list[Callable[[], None]] = field(default_factory=list)

    def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            self.health.set(name, status)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Runs after the server has stopped (close pools, stop background threads)."""
        self._on_stop.append(callback)

    def start(self) -> GrpcServer:
        self.server.start()
        self.set_serving(True)
        return self

    def stop(self, grace: float = 5.0, drain: float = 0.0) -> None:
        """NOT_SERVING first; after `drain` seconds of still serving (so balancers and
        health-checking clients move away), stop taking calls and give in-flight ones
        `grace` seconds. Calls still queued in gRPC's core when it stops are answered
        CANCELLED by the core; the drain keeps those to late arrivals."""
        self.health.enter_graceful_shutdown()
        if drain > 0:
            time.sleep(drain)
        self.server.stop(grace).wait()
        for callback in reversed(self._on_stop):
            callback()

    def serve_until_signalled(self, grace: float, drain: float = 0.0) -> None:
        """Blocks until SIGTERM or SIGINT, then shuts down gracefully."""
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        # Python runs signal handlers in the main thread, but the kernel may deliver the
        # signal to one of gRPC's threads; a main thread blocked without a timeout would
        # then never run the handler. Waking up regularly lets it run.
        while not stopping.wait(timeout=0.2):
            pass
        log.info("shutting down", extra={"grace_seconds": grace, "drain_seconds": drain})
        self.stop(grace, drain)


def create_server(
    *,
    register: Callable[[grpc.Server], Iterable[str]],
    interceptor: CallInterceptor,
    settings: Settings,
    port: int = 0,
) -> GrpcServer:
    """A server with `register`'s servicers (it returns their full service names), sized
    and bound by `settings`. Port 0 binds a free port; the bound port is in the result.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.grpc_max_workers, thread_name_prefix="grpc"),
        interceptors=[interceptor],
        maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
        options=[
            ("grpc.so_reuseport", 0),
            # Clients re-resolve DNS when a connection ends: recycling connections every few
            # minutes lets round-robin clients find new replicas after a scale-up.
            ("grpc.max_connection_age_ms", 5 * 60 * 1000),
            ("grpc.max_connection_age_grace_ms", 30 * 1000),
        ],
    )
    service_names = list(register(server))
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    address = f"{settings.grpc_host}:{port}"
    bound = server.add_insecure_port(address)
    if bound == 0:
        raise RuntimeError(f"could not bind {address}")
    return GrpcServer(server, bound, health_servicer, service_names)
