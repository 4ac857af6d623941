"""The trust boundary is the service (issue 10 section 2): a direct gRPC caller gets
the same per-client limits as a REST client, and cannot choose the address it is
counted under; only the edge, proving it with the internal key, can name the client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest

from common import client_ip
from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.conftest import RunningUserSvc, _run, _settings
from tests.integration.user_svc.support import PASSWORD, failure

REGISTER = "taskmgr.user.v1.UserService/Register"


@pytest.fixture
def contract_limits(tmp_path) -> Iterator[RunningUserSvc]:
    """user_svc with the contract's limits (Register: 10 a minute per client)."""
    settings = _settings(tmp_path, f"sqlite:///{tmp_path / 'user_svc.db'}")
    yield from _run(settings.model_copy(update={"rate_limits": {}}))


def _forged(ip: str) -> list[tuple[str, str]]:
    return [("x-client-ip", ip), ("x-client-ip-mac", "0" * 64)]


def _register(stub, metadata=None):  # noqa: ANN001, ANN202
    name = f"u{uuid.uuid4().hex[:10]}"
    request = pb.RegisterRequest(username=name, email=f"{name}@example.com", password=PASSWORD)
    return stub.Register(request, metadata=metadata)


def test_direct_register_is_limited_per_peer_whatever_x_client_ip_says(contract_limits):
    stub = contract_limits.client.stub
    for n in range(10):
        _register(stub, _forged(f"203.0.113.{n}"))  # a new "address" each time
    refused = failure(_register, stub, _forged("203.0.113.99"))
    assert (refused.code, refused.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")
    assert 1 <= refused.retry_after <= 60
    refused = failure(_register, stub, [("x-client-ip", "198.51.100.1")])  # no MAC at all
    assert refused.reason == "RATE_LIMITED"


def test_the_edge_names_the_client_with_the_internal_key(contract_limits):
    client = contract_limits.client
    for _ in range(10):
        _register(client.stub, client.vouch("198.51.100.7"))
    assert failure(_register, client.stub, client.vouch("198.51.100.7")).reason == "RATE_LIMITED"
    _register(client.stub, client.vouch("198.51.100.8"))  # another client behind the edge


def test_login_backoff_cannot_be_escaped_by_rotating_x_client_ip(contract_limits):
    client = contract_limits.client
    user = client.verified_user()
    for n in range(5):
        failure(client.stub.Login, pb.LoginRequest(username=user.username, password="guess"),
                metadata=_forged(f"203.0.113.{n}"))
    blocked = failure(client.stub.Login, pb.LoginRequest(username=user.username, password=PASSWORD),
                      metadata=_forged("203.0.113.50"))
    assert (blocked.code, blocked.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_LOGIN_ATTEMPTS")


def test_an_operator_raises_a_service_limit_with_the_edge_s_setting(tmp_path):
    settings = _settings(tmp_path, f"sqlite:///{tmp_path / 'user_svc.db'}").model_copy(
        update={"rate_limits": {REGISTER: "12/minute"}}
    )
    for svc in _run(settings):
        for _ in range(12):
            _register(svc.client.stub)
        assert failure(_register, svc.client.stub).reason == "RATE_LIMITED"


def test_a_mac_for_another_address_does_not_vouch():
    key = b"k" * 32
    (_, good_mac) = client_ip.vouched_metadata(key, "10.0.0.1")
    assert client_ip.trusted_address({"x-client-ip": "10.0.0.1", "x-client-ip-mac": good_mac[1]}, key)
    assert client_ip.trusted_address({"x-client-ip": "10.0.0.2", "x-client-ip-mac": good_mac[1]}, key) is None
    assert client_ip.trusted_address({"x-client-ip": "10.0.0.1", "x-client-ip-mac": good_mac[1]}, b"") is None
