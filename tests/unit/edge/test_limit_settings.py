"""The edge's per-client limits are operator settings (RATE_LIMITS, the contract's
values as defaults), and the edge vouches for the client address it sends the services."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common import client_ip
from common.rate_limits import MethodRateLimits, counted_as
from common.settings import Settings

CREATE = "taskmgr.edgetest.v1.ThingService/CreateThing"


def _creates(client, n: int) -> list[int]:  # noqa: ANN001
    return [client.post("/api/things/", json={"name": "x"}).status_code for _ in range(n)]


def test_the_contract_limit_is_the_default(make_client):
    assert _creates(make_client(), 4) == [201, 201, 201, 429]


def test_an_operator_raises_a_limit_by_method(make_client):
    client = make_client(rate_limits={CREATE: "5/minute"})
    assert _creates(client, 6) == [201] * 5 + [429]


def test_an_operator_setting_that_does_not_parse_stops_the_process():
    with pytest.raises(ValidationError, match="couldn't parse"):
        Settings(rate_limits={CREATE: "lots"})
    with pytest.raises(ValidationError, match="package.Service/Method"):
        Settings(rate_limits={"CreateThing": "5/minute"})


def test_the_client_address_goes_with_a_mac_of_the_internal_key(make_client, servicer, tmp_path):
    settings = Settings(var_dir=tmp_path)
    client = make_client(var_dir=tmp_path)
    client.get("/api/things/5/", environ_base={"REMOTE_ADDR": "10.0.0.7"})

    metadata = servicer.last_metadata
    assert client_ip.trusted_address(metadata, settings.secret("internal_key")) == "10.0.0.7"
    assert client_ip.trusted_address(metadata, b"another key") is None


def test_only_a_route_with_a_limit_counts_its_requests(make_client, monkeypatch):
    counted: list[tuple[str, str]] = []
    original = MethodRateLimits.check

    def check(self, grpc_method: str, client: str, claims=None) -> None:  # noqa: ANN001
        counted.append((grpc_method, counted_as(client, claims)))
        original(self, grpc_method, client, claims)

    monkeypatch.setattr(MethodRateLimits, "check", check)
    client = make_client()
    assert client.get("/api/things/5/").status_code == 200  # GetThing: no limit, no limiter
    assert counted == []
    assert _creates(client, 1) == [201]
    assert counted == [(f"/{CREATE}", "user:1")]  # a route that needs a token: its user


def test_a_route_that_needs_a_token_counts_per_user_not_per_address(make_client, issuer):
    client = make_client()
    carol = {"Authorization": f"Bearer {issuer.token(3)}"}
    alice = {"Authorization": f"Bearer {issuer.token(1)}"}
    statuses = [
        client.post("/api/things/", json={"name": "x"}, headers=carol,
                    environ_base={"REMOTE_ADDR": f"10.0.0.{n}"}).status_code
        for n in range(4)
    ]
    assert statuses == [201, 201, 201, 429]  # one user from many addresses: one budget
    refused = client.post("/api/things/", json={"name": "x"}, headers=carol)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json["code"] == "RATE_LIMITED"
    # A colleague behind the same address has a budget of their own.
    assert client.post("/api/things/", json={"name": "x"}, headers=alice,
                       environ_base={"REMOTE_ADDR": "10.0.0.3"}).status_code == 201


def test_a_request_without_a_valid_token_is_401_and_counted_against_nobody(make_client):
    client = make_client()
    bad = {"Authorization": "Bearer not-a-token"}
    statuses = [client.post("/api/things/", json={"name": "x"}, headers=bad).status_code for _ in range(4)]
    assert statuses == [401] * 4
    assert _creates(client, 3) == [201] * 3
