"""/healthz, /readyz, metrics and CORS."""

from __future__ import annotations

import grpc
from prometheus_client import generate_latest

from common.settings import Settings
from edge_api.app import create_app
from edge_api.ops import REGISTRY_EXTENSION


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_when_every_backend_serves(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json["backends"] == ["edgetest"]


def test_readyz_names_the_backend_that_is_down(contract):
    dead = grpc.insecure_channel("127.0.0.1:1")
    client = create_app(Settings(), channels={"edgetest": dead}, contract=contract).test_client()

    response = client.get("/readyz")

    assert response.status_code == 503
    assert "edgetest (unavailable)" in response.json["detail"]
    dead.close()


def test_metrics_count_by_route_template_and_status(client):
    client.get("/api/things/5/")
    client.get("/api/things/6")
    client.get("/api/things/x/")

    text = generate_latest(client.application.extensions[REGISTRY_EXTENSION]).decode()

    ok = 'edge_http_requests_total{method="GET",route="/api/things/<id>",status="200"} 2.0'
    bad = 'edge_http_requests_total{method="GET",route="/api/things/<id>",status="400"} 1.0'
    assert ok in text
    assert bad in text
    assert 'edge_http_request_duration_seconds_count{method="GET",route="/api/things/<id>"} 3.0' in text


def test_no_cors_by_default(client):
    response = client.get("/api/things/5/", headers={"Origin": "https://app.example"})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_for_configured_origins(make_client):
    client = make_client(cors_origins=["https://app.example"])

    allowed = client.options(
        "/api/things/5/",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PATCH"},
    )
    other = client.get("/api/things/5/", headers={"Origin": "https://evil.example"})

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert (
        "ETag"
        in client.get("/api/things/5/", headers={"Origin": "https://app.example"}).headers[
            "Access-Control-Expose-Headers"
        ]
    )
    assert "Access-Control-Allow-Origin" not in other.headers
