"""The edge's metrics as `python -m edge_api` serves them: on the operators' port only,
summed over every worker, with labels no request can invent."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.local import free_port, wait_for
from tests.support.processes import REPO

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

WORKERS = 3
REQUESTS = 90


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The edge alone (its backends are away: /healthz does not need them)."""
    ports = {"public": str(free_port()), "metrics": str(free_port())}
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"stale value file of a previous run")
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    dead = f"127.0.0.1:{free_port()}"
    env.update(
        VAR_DIR=str(tmp_path / "var"),
        EDGE_PORT=ports["public"],
        EDGE_METRICS_PORT=ports["metrics"],
        WEB_CONCURRENCY=str(WORKERS),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        USER_SVC_ADDR=dead,
        TASK_SVC_ADDR=dead,
        NOTIFY_SVC_ADDR=dead,
    )
    log = (tmp_path / "edge.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "edge_api"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:

        def answers() -> bool:
            assert process.poll() is None, (tmp_path / "edge.log").read_text()
            try:
                return get(ports["public"], "/healthz")[0] == 200
            except OSError:
                return False

        wait_for(answers, timeout=30)
        yield ports | {"multiproc": str(multiproc)}
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def get(port: str, path: str, method: str = "GET") -> tuple[int, bytes]:
    """One request on a fresh connection (so the server's workers share them out)."""
    connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
    try:
        connection.request(method, path, headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def scrape(port: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_total(samples, method: str, route: str, status: str) -> float:
    labels = tuple(sorted({"method": method, "route": route, "status": status}.items()))
    return samples.get(("edge_http_requests_total", labels), 0.0)


def test_metrics_add_up_across_workers_on_the_operators_port_only(edge):
    def writers() -> set[str]:
        return {path.stem.split("_")[-1] for path in Path(edge["multiproc"]).glob("*.db")}

    before = requests_total(scrape(edge["metrics"]), "GET", "/healthz", "200")  # the start-up probes
    # Concurrent clients, until both workers have answered some: a worker on its event
    # loop answers /healthz so fast that the kernel may hand one worker every connection
    # of a client that waits for each answer.
    sent = 0
    with ThreadPoolExecutor(max_workers=8) as clients:
        while len(writers()) < 2 and sent < 20 * REQUESTS:
            statuses = list(clients.map(lambda _: get(edge["public"], "/healthz")[0], range(REQUESTS)))
            assert statuses == [200] * REQUESTS
            sent += REQUESTS

    samples = scrape(edge["metrics"])

    assert requests_total(samples, "GET", "/healthz", "200") == before + sent
    assert len(writers()) >= 2, "the requests should have been shared by several workers"
    assert "1" not in writers(), "the previous run's value file is not added in"
    status, body = get(edge["public"], "/metrics")
    assert status == 404, "metrics are not on the public port"
    assert b"edge_http_requests_total" not in body


def test_invented_methods_add_no_series(edge):
    get(edge["public"], "/healthz", method="BREW")
    get(edge["public"], "/healthz/0", method="BREW")
    series = set(scrape(edge["metrics"]))

    for n in range(30):
        get(edge["public"], f"/healthz/{n}", method=f"INVENTED{n}")
        get(edge["public"], "/healthz", method=f"X{n}")

    samples = scrape(edge["metrics"])
    assert set(samples) == series
    # An unknown method is 501 on any path (edge_api.request_head), refused before any
    # rule matched: its route is "unmatched". Two before, sixty in the loop.
    assert requests_total(samples, "OTHER", "unmatched", "501") == 62


def test_a_taken_metrics_port_stops_the_edge_with_a_clear_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, VAR_DIR=str(tmp_path), EDGE_PORT=str(free_port()), EDGE_METRICS_PORT=str(port))
        result = subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, "-m", "edge_api"], cwd=REPO, env=env, capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
