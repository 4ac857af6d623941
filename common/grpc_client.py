"""Outgoing gRPC: one long-lived channel per backend, retries only for UNAVAILABLE."""

from __future__ import annotations

import json

import grpc

from common.context import claims_var, client_ip_var, request_id_var

_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)


def make_channel(address: str) -> grpc.Channel:
    """A channel for `address` ("host:port"; "dns:///name:port" balances over replicas)."""
    return grpc.insecure_channel(
        address,
        options=[
            ("grpc.service_config", _SERVICE_CONFIG),
            ("grpc.enable_retries", 1),
            # A backend that comes back (a restart, a deploy) is found within a second or
            # two; gRPC's default backoff would wait up to two minutes.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2_000),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.max_receive_message_length", 8 * 1024 * 1024),
        ],
    )


def forwarded_metadata() -> list[tuple[str, str]]:
    """Metadata for a call made on behalf of the current caller (their token, ids)."""
    metadata = [("x-request-id", request_id_var.get()), ("x-client-ip", client_ip_var.get())]
    claims = claims_var.get()
    if claims is not None:
        metadata.append(("authorization", claims.authorization))
    return [(key, value) for key, value in metadata if value]
