"""Calls to the gRPC services: one channel per backend per process, a deadline on every call.

Channels are opened on first use in the process that uses them, never inherited: a
gRPC channel does not survive fork(), and granian forks its workers from the launcher.
Retries (one, on UNAVAILABLE, for the methods the contract marks idempotent), keepalive
and load balancing live in the channel's service config (common.grpc_client.make_channel).

Two kinds of channel, chosen per call. In the greenlet edge_api.rsgi_bridge runs each
request in, a call goes through the worker's grpc.aio channel (made on the worker's loop
on first use) and the greenlet waits for it with edge_api.greenlets.await_only, so the
loop serves other requests meanwhile. Anywhere else (Flask's test client, a thread, the
JWKS fetch, the revocation feed) the sync channel is used, as are channels a test
injects (in the bridge's greenlet too: they then hold the loop for the call). Both fail
with a grpc.RpcError carrying the same code, details and trailing metadata, which
edge_api.errors maps alike; the deadline is the same.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable, Mapping, Sequence

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.grpc_client import make_aio_channel, make_channel
from edge_api import greenlets
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
        # The event loop the aio channels below were made on, and per gRPC path the
        # method's callable on them; made again for another loop (or process).
        self._aio_loop: asyncio.AbstractEventLoop | None = None
        self._aio_channels: dict[str, grpc.aio.Channel] = {}
        self._aio_methods: dict[str, grpc.aio.UnaryUnaryMultiCallable] = {}

    def channel(self, name: str) -> grpc.Channel:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's channels are unusable
                self._pid, self._channels, self._methods = os.getpid(), {}, {}
            if name not in self._channels:
                self._channels[name] = self._injected.get(name) or make_channel(self._addresses[name])
            return self._channels[name]

    def call(self, route: Route, request: Message, metadata: Sequence[tuple[str, str]]) -> Message:
        if route.backend not in self._injected and greenlets.in_greenlet():
            call = self._aio_method(route)(request, timeout=self.deadline, metadata=metadata)
            return greenlets.await_only(call)
        method = self._methods.get((os.getpid(), route.grpc_path))
        if method is None:
            method = self._methods[os.getpid(), route.grpc_path] = _method(self.channel(route.backend), route)
        return method(request, timeout=self.deadline, metadata=metadata)

    def _aio_channel(self, name: str) -> grpc.aio.Channel:
        """The aio channel to `name` on the running loop: made on first use in each worker
        (after the fork, on its loop), again only if another loop asks (tests)."""
        loop = asyncio.get_running_loop()
        if self._aio_loop is not loop:
            self._aio_loop, self._aio_channels, self._aio_methods = loop, {}, {}
        channel = self._aio_channels.get(name)
        if channel is None:
            channel = self._aio_channels[name] = make_aio_channel(self._addresses[name])
        return channel

    def _aio_method(self, route: Route) -> grpc.aio.UnaryUnaryMultiCallable:
        method = self._aio_methods.get(route.grpc_path)
        if method is None or self._aio_loop is not asyncio.get_running_loop():
            method = self._aio_methods[route.grpc_path] = _method(self._aio_channel(route.backend), route)
        return method

    def unhealthy(self) -> dict[str, str]:
        """Backends whose standard gRPC health check does not answer SERVING, and why.
        In the bridge's greenlet the checks are made at once, on the loop (aio channels);
        else one after the other (each within HEALTH_CHECK_TIMEOUT)."""
        if greenlets.in_greenlet():
            return greenlets.await_only(self._unhealthy_async())
        states = {name: self._health(name) for name in self.names}
        return {name: state for name, state in states.items() if state}

    async def _unhealthy_async(self) -> dict[str, str]:
        states = await asyncio.gather(*(self._health_async(name) for name in self.names))
        return {name: state for name, state in zip(self.names, states, strict=True) if state}

    def _health(self, name: str) -> str:
        """'' when `name` answers SERVING, else why not (its status, or the call's code)."""
        stub = health_pb2_grpc.HealthStub(self.channel(name))
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=HEALTH_CHECK_TIMEOUT)
        except grpc.RpcError as error:
            return error.code().name.lower()
        return _not_serving(answer)

    async def _health_async(self, name: str) -> str:
        if name in self._injected:
            return self._health(name)  # tests' channels are sync ones
        stub = health_pb2_grpc.HealthStub(self._aio_channel(name))
        try:
            answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=HEALTH_CHECK_TIMEOUT)
        except grpc.RpcError as error:
            return error.code().name.lower()
        return _not_serving(answer)


def _not_serving(answer: health_pb2.HealthCheckResponse) -> str:
    if answer.status == health_pb2.HealthCheckResponse.SERVING:
        return ""
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status).lower()


def _method(channel: grpc.Channel | grpc.aio.Channel, route: Route):  # noqa: ANN202 (sync or aio callable)
    """The callable of `route`'s method on `channel`, a sync or an aio one."""
    return channel.unary_unary(
        route.grpc_path,
        request_serializer=route.request_class.SerializeToString,
        response_deserializer=route.response_class.FromString,
    )
