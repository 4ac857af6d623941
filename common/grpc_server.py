"""gRPC server bootstrap shared by every service.

Standard health service and server reflection (so `grpcurl -plaintext HOST:PORT list`
works with no proto files), the call interceptor, a bounded thread pool with
`maximum_concurrent_rpcs`, and a graceful SIGTERM: health goes NOT_SERVING first,
then in-flight calls get `grace` seconds to finish.

Several processes on one port (`serve_in_processes`, a service's `*_PROCESSES` setting):
one Python process runs Python code on one core at a time (the GIL), so a service uses
N cores by running N processes. This is gRPC's multiprocessing pattern
(grpc/examples/python/multiprocessing): the supervisor reserves the port with
SO_REUSEPORT, forks the workers before any gRPC object exists (gRPC's core does not
survive a fork), and each worker builds its own server, database pool and outbox relay
and binds the same port with `grpc.so_reuseport`; the kernel spreads incoming
connections over the workers (Linux: by a hash of the connection, SO_REUSEPORT in
socket(7)). Only processes of the same user may share the port. A single process keeps
SO_REUSEPORT off, so a second copy started by mistake fails to bind instead of silently
taking half the connections.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.grpc_client import KEEPALIVE_TIME_MS
from common.interceptor import CallInterceptor
from common.settings import Settings

log = logging.getLogger(__name__)

# Our clients' keepalive pings must be welcome: by default a server takes a ping without
# data more often than every 5 minutes as abuse, and after two answers the connection
# with GOAWAY "too_many_pings" (gRPC doc/keepalive.md), failing the calls on it. An idle
# long-lived stream (the revocation feed) is pinged every KEEPALIVE_TIME_MS.
def keepalive_policy(client_keepalive_ms: int) -> list[tuple[str, int]]:
    """Server options that accept pings from clients that send one every
    `client_keepalive_ms` (with or without calls open), with room for timer jitter."""
    return [
        ("grpc.http2.min_ping_interval_without_data_ms", client_keepalive_ms // 2),
        ("grpc.keepalive_permit_without_calls", 1),
    ]

# Set in a worker of serve_in_processes before it builds its server: bind with SO_REUSEPORT.
_share_port = False


@dataclass
class GrpcServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    service_names: list[str]
    _on_stop: list[Callable[[], None]] = field(default_factory=list)
    _on_drain: list[Callable[[], None]] = field(default_factory=list)

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

    def on_drain(self, callback: Callable[[], None]) -> None:
        """Runs as soon as stopping begins: ends long-lived server streams, which would
        otherwise hold the shutdown for the whole grace."""
        self._on_drain.append(callback)

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
        for callback in self._on_drain:
            callback()
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
            ("grpc.so_reuseport", int(_share_port)),
            # Clients re-resolve DNS when a connection ends: recycling connections every few
            # minutes lets round-robin clients find new replicas after a scale-up.
            ("grpc.max_connection_age_ms", 5 * 60 * 1000),
            ("grpc.max_connection_age_grace_ms", 30 * 1000),
            *keepalive_policy(KEEPALIVE_TIME_MS),
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


def serve_in_processes(
    count: int, host: str, port: int, serve: Callable[[int], None], *, stop_timeout: float = 30.0
) -> None:
    """Runs `serve(port)` in `count` forked worker processes sharing `host:port` (port 0:
    a free port, the same for all), and supervises them until SIGTERM or SIGINT, which
    it passes on to every worker (each stops gracefully); workers still alive after
    `stop_timeout` seconds are killed. When a worker exits on its own, the others are
    stopped and SystemExit is raised (status 1), so the process manager restarts the
    whole service rather than leaving it short of a worker.

    Call it before any gRPC server or channel exists in this process. `serve` blocks
    until its process is signalled (e.g. GrpcServer.serve_until_signalled).
    """
    context = multiprocessing.get_context("fork")
    with reserved_port(host, port) as bound:
        workers = [
            context.Process(target=_worker, args=(serve, bound), name=f"grpc-worker-{n}", daemon=False)
            for n in range(count)
        ]
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        for worker in workers:
            worker.start()
        log.info("serving in %d processes", count, extra={"port": bound, "pids": [w.pid for w in workers]})
        while not stopping.wait(timeout=0.2):
            if any(not worker.is_alive() for worker in workers):
                stopping.wait(0.5)  # a signal to the whole group may reach a worker first
                break
        failed = [w.pid for w in workers if not w.is_alive() and not stopping.is_set()]
        if failed:
            log.error("worker processes %s exited; stopping the others", failed)
        _stop_workers(workers, stop_timeout)
        if failed:
            raise SystemExit(1)


def _worker(serve: Callable[[int], None], port: int) -> None:
    global _share_port
    _share_port = True
    # The supervisor's handlers were copied by fork; serve installs its own.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    serve(port)


def _stop_workers(workers: list, timeout: float) -> None:  # multiprocessing.Process
    for worker in workers:
        if worker.is_alive():
            os.kill(worker.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            log.error("worker %s did not stop in %.0fs: killed", worker.pid, timeout)
            worker.kill()
            worker.join()


@contextmanager
def reserved_port(host: str, port: int) -> Iterator[int]:
    """Holds `host:port` (0: a free port) with SO_REUSEPORT, bound but not listening, so
    no other program takes the port while the workers start; yields the port. The
    socket never accepts: connections go to the workers' listening sockets only."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        yield sock.getsockname()[1]
