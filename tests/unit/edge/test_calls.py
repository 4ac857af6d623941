"""What the edge sends to the services with each call, and what it sends back."""

from __future__ import annotations

import re

import pytest


def test_request_id_round_trip(client, servicer):
    response = client.get("/api/things/5/", headers={"X-Request-Id": "req-42.a_b"})

    assert response.headers["X-Request-Id"] == "req-42.a_b"
    assert servicer.last_metadata["x-request-id"] == "req-42.a_b"


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "semi;colon", "é"])
def test_insane_request_ids_are_replaced(client, servicer, given):
    headers = {"X-Request-Id": given} if given is not None else {}

    response = client.get("/api/things/5/", headers=headers)

    generated = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert servicer.last_metadata["x-request-id"] == generated


def test_request_id_on_edge_errors_too(client):
    response = client.post(
        "/api/things/", data="{", content_type="application/json", headers={"X-Request-Id": "r1"}
    )

    assert response.headers["X-Request-Id"] == "r1"
    assert response.json["request_id"] == "r1"


def test_authorization_is_forwarded(client, servicer, issuer):
    token = issuer.token(7)
    client.get("/api/things/5/", headers={"Authorization": f"Bearer {token}"})

    assert servicer.last_metadata["authorization"] == f"Bearer {token}"


def test_no_authorization_header_sends_none(client, servicer):
    client.environ_base.pop("HTTP_AUTHORIZATION")
    client.post("/api/things/5/rename/", json={"name": "n"})  # a public method

    assert "authorization" not in servicer.last_metadata


def test_client_ip_is_the_socket_address_without_trusted_proxies(client, servicer):
    client.get(
        "/api/things/5/",
        headers={"X-Forwarded-For": "6.6.6.6"},
        environ_base={"REMOTE_ADDR": "10.0.0.7"},
    )

    assert servicer.last_metadata["x-client-ip"] == "10.0.0.7"


def test_client_ip_from_the_trusted_proxy_hop(make_client, servicer):
    client = make_client(trusted_proxy_count=1)

    client.get(
        "/api/things/5/",
        headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"},  # spoofed hop, then the real one
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )

    assert servicer.last_metadata["x-client-ip"] == "203.0.113.9"


def test_deadline_from_settings_on_every_call(make_client, servicer, monkeypatch):
    client = make_client(edge_grpc_deadline=0.1)
    monkeypatch.setattr(servicer, "delay", 0.5)

    response = client.get("/api/things/5/")

    assert response.status_code == 504
    assert response.json["detail"] == "The service did not answer in time."


def test_channels_are_reopened_in_a_forked_process(monkeypatch):
    from edge_api import backends as module

    opened = []
    monkeypatch.setattr(module, "make_channel", lambda address: opened.append(address) or object())
    backends = module.Backends(["user"], {"user": "127.0.0.1:1"}, deadline=1.0)

    first = backends.channel("user")
    assert backends.channel("user") is first  # one channel per backend per process
    monkeypatch.setattr(module.os, "getpid", lambda: -1)  # as seen from a forked worker
    assert backends.channel("user") is not first
    assert opened == ["127.0.0.1:1", "127.0.0.1:1"]


def test_a_backend_without_an_address_fails_at_start():
    from edge_api.backends import Backends

    with pytest.raises(ValueError, match="edgetest"):
        Backends(["edgetest"], {"user": "127.0.0.1:1"}, deadline=1.0)
