"""edge_api.backends in the bridge's greenlet: the worker's aio channel, awaited on the
loop; the same answers, and the same problems for the same failures, as the sync stub's."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from flask import Flask

from edge_api import greenlets
from edge_api.backends import Backends
from edge_api.errors import from_rpc_error

CODES = [code for code in grpc.StatusCode if code is not grpc.StatusCode.OK]


@pytest.fixture
def routes(contract):
    return {route.grpc_path.rsplit("/", 1)[1]: route for route in contract.routes()}


@pytest.fixture
def backends(backend) -> Backends:
    return Backends(["edgetest"], {"edgetest": backend[1]}, deadline=2.0)


def on_the_loop(fn, *args):
    """fn(*args) as the bridge runs the app: in a greenlet, on a running loop."""
    return asyncio.run(greenlets.run(fn, *args))


def caught(call):
    try:
        call()
    except grpc.RpcError as error:
        return error
    raise AssertionError("the call did not fail")


def as_problem(error: grpc.RpcError) -> tuple[int, dict, dict]:
    with Flask(__name__).test_request_context():
        response = from_rpc_error(error)
        body = response.get_json()
    return response.status_code, body, dict(response.headers)


def test_a_call_in_the_greenlet_goes_through_the_aio_channel(backends, routes, servicer, edgetest):
    messages = edgetest[0]
    route = routes["GetThing"]
    metadata = [("x-request-id", "on-the-loop")]

    thing = on_the_loop(backends.call, route, messages.GetThingRequest(id=9), metadata)

    assert thing == backends.call(route, messages.GetThingRequest(id=9), metadata)  # the sync stub's
    assert thing.id == 9 and thing.name == "kettle"
    assert servicer.metadata[-2]["x-request-id"] == "on-the-loop"
    assert isinstance(backends._aio_channels["edgetest"], grpc.aio.Channel)


@pytest.mark.parametrize("code", CODES, ids=[code.name for code in CODES])
def test_a_failure_is_the_same_problem_as_from_the_sync_stub(backends, routes, edgetest, code):
    messages = edgetest[0]
    route = routes["Fail"]
    request = messages.FailRequest(
        code=code.value[0], message="because", reason="SOME_REASON",
        violations={"name": "too long"}, retry_seconds=1.5,
    )  # fmt: skip

    aio_error = on_the_loop(lambda: caught(lambda: backends.call(route, request, [])))
    sync_error = caught(lambda: backends.call(route, request, []))

    assert isinstance(aio_error, grpc.aio.AioRpcError)
    assert as_problem(aio_error) == as_problem(sync_error)


def test_rich_details_survive_the_aio_error(backends, routes, edgetest):
    request = edgetest[0].FailRequest(
        code=grpc.StatusCode.FAILED_PRECONDITION.value[0], message="stale", reason="VERSION_MISMATCH"
    )
    error = on_the_loop(lambda: caught(lambda: backends.call(routes["Fail"], request, [])))
    status, body, _ = as_problem(error)
    assert status == 412 and body["code"] == "VERSION_MISMATCH" and body["detail"] == "stale"


def test_the_deadline_holds_on_the_loop(backend, routes, servicer, edgetest, monkeypatch):
    backends = Backends(["edgetest"], {"edgetest": backend[1]}, deadline=0.1)
    monkeypatch.setattr(servicer, "delay", 0.5)
    request = edgetest[0].GetThingRequest(id=1)

    error = on_the_loop(lambda: caught(lambda: backends.call(routes["GetThing"], request, [])))

    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert as_problem(error)[0] == 504


def test_an_injected_channel_is_used_in_the_greenlet_too(backend, routes, edgetest):
    channel = grpc.insecure_channel(backend[1])
    backends = Backends(["edgetest"], {}, deadline=2.0, channels={"edgetest": channel})

    thing = on_the_loop(backends.call, routes["GetThing"], edgetest[0].GetThingRequest(id=3), [])

    assert thing.id == 3 and backends._aio_channels == {}
    channel.close()


def test_health_checks_on_the_loop(backend):
    dead = "127.0.0.1:1"
    backends = Backends(["edgetest", "gone"], {"edgetest": backend[1], "gone": dead}, deadline=2.0)

    assert on_the_loop(backends.unhealthy) == {"gone": "unavailable"}
    assert backends.unhealthy() == {"gone": "unavailable"}  # outside: the sync channels


def test_each_loop_gets_channels_of_its_own(backends, routes, edgetest):
    request = edgetest[0].GetThingRequest(id=2)
    on_the_loop(backends.call, routes["GetThing"], request, [])
    first = backends._aio_channels["edgetest"]

    assert on_the_loop(backends.call, routes["GetThing"], request, []).id == 2  # asyncio.run: a new loop
    assert backends._aio_channels["edgetest"] is not first
