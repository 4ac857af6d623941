"""The edge's per-client limits are operator settings (RATE_LIMITS, the contract's
values as defaults), and the edge vouches for the client address it sends the services."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common import client_ip
from common.rate_limits import MethodRateLimits
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

    def check(self, grpc_method: str, client: str) -> None:
        counted.append((grpc_method, client))
        original(self, grpc_method, client)

    monkeypatch.setattr(MethodRateLimits, "check", check)
    client = make_client()
    assert client.get("/api/things/5/").status_code == 200  # GetThing: no limit, no limiter
    assert counted == []
    assert _creates(client, 1) == [201]
    assert counted == [(f"/{CREATE}", "127.0.0.1")]
