"""Clients ping idle long-lived streams (keepalive, common.grpc_client); servers must
welcome those pings, or answer GOAWAY "too_many_pings" and fail every call on the
connection (seen under bench/perf_vs_floor.py: the revocation feed's connection to
user_svc was cut, and requests waiting on revocations stalled ~1 s or failed)."""

from __future__ import annotations

from common.grpc_client import KEEPALIVE_TIME_MS
from common.grpc_server import keepalive_policy


def test_the_servers_accept_the_pings_the_clients_send():
    policy = dict(keepalive_policy(KEEPALIVE_TIME_MS))
    # gRPC's default is 5 minutes (doc/keepalive.md): a client pinging every 30 s broke it.
    assert policy["grpc.http2.min_ping_interval_without_data_ms"] < KEEPALIVE_TIME_MS
    assert policy["grpc.keepalive_permit_without_calls"] == 1
