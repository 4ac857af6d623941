"""Outgoing gRPC: one long-lived channel per backend; idempotent methods retried once.

Which methods may be retried is read from the contract: a method whose standard
`idempotency_level` option (google/protobuf/descriptor.proto) is NO_SIDE_EFFECTS or
IDEMPOTENT gets gRPC's own retry policy (gRFC A6) in the channel's service config: one
more attempt after UNAVAILABLE, after a jittered backoff. Other methods are never
retried by policy (a create could run twice); gRPC still retries them transparently
when the call never reached a server.
"""

from __future__ import annotations

import json
from functools import lru_cache

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor

from common.context import claims_var, client_ip_var, request_id_var
from taskmgr.notify.v1 import notify_service_pb2
from taskmgr.task.v1 import collaboration_service_pb2, project_service_pb2, task_service_pb2
from taskmgr.user.v1 import user_service_pb2

_CONTRACTS: tuple[FileDescriptor, ...] = (
    user_service_pb2.DESCRIPTOR,
    task_service_pb2.DESCRIPTOR,
    project_service_pb2.DESCRIPTOR,
    collaboration_service_pb2.DESCRIPTOR,
    notify_service_pb2.DESCRIPTOR,
)
_RETRY_POLICY = {
    "maxAttempts": 2,  # the call and one retry
    "initialBackoff": "0.2s",  # the retry waits a random 0-0.2 s (gRFC A6)
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
_SAFE_LEVELS = (
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
    descriptor_pb2.MethodOptions.IDEMPOTENT,
)


def idempotent_methods(files: tuple[FileDescriptor, ...] = _CONTRACTS) -> list[tuple[str, str]]:
    """(full service name, method name) of every method the contract marks idempotent."""
    return [
        (service.full_name, method.name)
        for file in files
        for service in file.services_by_name.values()
        for method in service.methods
        if method.GetOptions().idempotency_level in _SAFE_LEVELS
    ]


@lru_cache(maxsize=1)
def service_config() -> str:
    """The channels' service config (JSON): round robin, the retry policy per method."""
    names = [{"service": service, "method": method} for service, method in idempotent_methods()]
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [{"name": names, "retryPolicy": _RETRY_POLICY}] if names else [],
            # gRFC A6 throttling: when most calls to a backend fail, retries stop, so an
            # outage is not met with twice the load.
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
        }
    )


# Clients ping an open connection this often (while calls are open: a long-lived stream
# such as the revocation feed); servers accept pings this often (common.grpc_server).
KEEPALIVE_TIME_MS = 30_000


def channel_options() -> list[tuple[str, object]]:
    """The options of every outgoing channel, sync or aio."""
    return [
        ("grpc.service_config", service_config()),
        ("grpc.enable_retries", 1),
        # A backend that comes back (a restart, a deploy) is found within a second or
        # two; gRPC's default backoff would wait up to two minutes.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ]


def make_channel(address: str) -> grpc.Channel:
    """A channel for `address` ("host:port"; "dns:///name:port" balances over replicas)."""
    return grpc.insecure_channel(address, options=channel_options())


def make_aio_channel(address: str) -> grpc.aio.Channel:
    """`make_channel`'s asyncio twin (same service config, retries and keepalive). Call it
    on the running event loop that will use it: an aio channel belongs to one loop."""
    return grpc.aio.insecure_channel(address, options=channel_options())


def forwarded_metadata() -> list[tuple[str, str]]:
    """Metadata for a call made on behalf of the current caller (their token, ids)."""
    metadata = [("x-request-id", request_id_var.get()), ("x-client-ip", client_ip_var.get())]
    claims = claims_var.get()
    if claims is not None:
        metadata.append(("authorization", claims.authorization))
    return [(key, value) for key, value in metadata if value]
