"""Metric labels come from allow-lists: request data (invented methods, paths, statuses)
never adds a series; /metrics is not on the public port."""

from __future__ import annotations

from prometheus_client import generate_latest

from edge_api.ops import REGISTRY_EXTENSION, metric_labels


def series(client) -> set[str]:
    text = generate_latest(client.application.extensions[REGISTRY_EXTENSION]).decode()
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("edge_http_")}


def test_invented_methods_and_paths_add_no_series(client):
    # One request of each shape first: its series may be new.
    client.open("/api/things/5/", method="BREW")
    client.open("/nowhere", method="BREW")
    client.get("/nowhere")
    client.open("/healthz", method="WHEN")
    client.open("/healthz", method="get")
    client.get("/healthz")
    before = series(client)

    for n in range(20):
        client.open(f"/api/things/{n}/", method=f"INVENTED{n}")
        client.open(f"/nowhere/{n}/x", method=f"X-{n}")
        client.get(f"/nowhere/{n}%00")
        client.open("/healthz", method="get")  # methods are case-sensitive (RFC 9110 9.1)

    after = series(client)
    assert after == before, sorted(after - before)
    assert 'edge_http_requests_total{method="OTHER",route="unmatched",status="501"}' in after
    assert 'edge_http_requests_total{method="GET",route="/healthz",status="501"}' not in after
    assert 'edge_http_requests_total{method="GET",route="unmatched",status="404"}' in after


def test_labels_are_bounded_whatever_the_input():
    assert metric_labels("PROPFIND", None, 405) == ("OTHER", "unmatched", "405")
    assert metric_labels("PATCH", "/api/tasks/<id>/", 200) == ("PATCH", "/api/tasks/<id>", "200")
    assert metric_labels("GET", "/", 299) == ("GET", "/", "other")
    assert metric_labels("GET" * 1000, "/", 999)[0::2] == ("OTHER", "other")


def test_metrics_are_not_served_on_the_public_port(client):
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
