"""Calls to the gRPC services: one channel per backend per process, a deadline on every call.

Channels are opened on first use in the process that uses them, never inherited: a
gRPC channel does not survive fork(), and granian forks its workers from the launcher.
Retries (one, on UNAVAILABLE, for the methods the contract marks idempotent), keepalive
and load balancing live in the channel's service config (common.grpc_client.make_channel).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.grpc_client import make_channel
from edge_api.contract import Route

HEALTH_CHECK_TIMEOUT = 1.0  # seconds; /readyz must answer before the prober gives up


class Backends:
    def __init__(
        self,
        names: Iterable[str],
        addresses: Mapping[str, str],
        deadline: float,
        channels: Mapping[str, grpc.Channel] | None = None,
    ):
        """The backends `names` (those the routes call), reached at `addresses`, or through
        `channels` for the ones it names (tests inject them). Fails at start, not on the
        first request, when a backend has nowhere to go."""
        self.names = sorted(set(names))
        self._injected = {name: channels[name] for name in self.names if name in (channels or {})}
        self._addresses = {name: addresses[name] for name in self.names if name in addresses}
        missing = [n for n in self.names if n not in self._injected and n not in self._addresses]
        if missing:
            raise ValueError(f"no address for backend(s): {', '.join(missing)}")
        self.deadline = deadline
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._channels: dict[str, grpc.Channel] = {}
        # (pid, gRPC path) -> the method's callable on that process's channel: made once,
        # not on every request.
        self._methods: dict[tuple[int, str], grpc.UnaryUnaryMultiCallable] = {}

    def channel(self, name: str) -> grpc.Channel:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's channels are unusable
                self._pid, self._channels, self._methods = os.getpid(), {}, {}
            if name not in self._channels:
                self._channels[name] = self._injected.get(name) or make_channel(self._addresses[name])
            return self._channels[name]

    def call(self, route: Route, request: Message, metadata: Sequence[tuple[str, str]]) -> Message:
        method = self._methods.get((os.getpid(), route.grpc_path))
        if method is None:
            method = self.channel(route.backend).unary_unary(
                route.grpc_path,
                request_serializer=route.request_class.SerializeToString,
                response_deserializer=route.response_class.FromString,
            )
            self._methods[os.getpid(), route.grpc_path] = method
        return method(request, timeout=self.deadline, metadata=metadata)

    def unhealthy(self) -> dict[str, str]:
        """Backends whose standard gRPC health check does not answer SERVING, and why."""
        down = {}
        for name in self.names:
            stub = health_pb2_grpc.HealthStub(self.channel(name))
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=HEALTH_CHECK_TIMEOUT)
            except grpc.RpcError as error:
                down[name] = error.code().name.lower()
                continue
            if answer.status != health_pb2.HealthCheckResponse.SERVING:
                down[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status).lower()
        return down
