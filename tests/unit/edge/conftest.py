"""A real gRPC server for a test-only proto, and the edge pointed at it.

The proto (protos/edgetest.proto) is compiled here, at test time, into a temporary
directory: the edge must serve it from its descriptors alone, with no code of its own.
"""

from __future__ import annotations

import importlib
import math
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from types import ModuleType

import google.api.annotations_pb2
import grpc
import grpc_tools
import pytest
from flask.testing import FlaskClient
from google.protobuf import any_pb2, duration_pb2, empty_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2_grpc
from grpc_status import rpc_status
from grpc_tools import protoc

from common.settings import Settings
from edge_api.app import create_app
from edge_api.authn import EdgeAuthenticator
from edge_api.contract import Contract, load_comments
from tests.support.tokens import TestIssuer

HERE = Path(__file__).parent
REPO = HERE.parents[2]


@pytest.fixture(scope="session")
def edgetest(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, ModuleType, Path]:
    """(edgetest_pb2, edgetest_pb2_grpc, descriptor set path), compiled like `make proto`."""
    out = tmp_path_factory.mktemp("edgetest_gen")
    descriptor_set = out / "edgetest.pb"
    includes = [
        REPO / "protos",
        HERE / "protos",
        Path(google.api.annotations_pb2.__file__).parents[2],
        Path(grpc_tools.__file__).parent / "_proto",
    ]
    status = protoc.main(
        [
            "protoc",
            *(f"-I{path}" for path in includes),
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            "--include_source_info",
            f"--descriptor_set_out={descriptor_set}",
            str(HERE / "protos" / "edgetest.proto"),
        ]
    )
    assert status == 0, "protoc failed on edgetest.proto"
    sys.path.insert(0, str(out))
    try:
        messages = importlib.import_module("edgetest_pb2")
        services = importlib.import_module("edgetest_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return messages, services, descriptor_set


class ThingServicer:
    """Answers predictably and records what it received, for the tests to inspect."""

    def __init__(self, pb: ModuleType):
        self.pb = pb
        self.requests: list = []
        self.metadata: list[dict[str, str]] = []
        self.delay = 0.0  # seconds GetThing takes, to test deadlines

    def _record(self, request, context) -> None:
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))

    @property
    def last(self):
        return self.requests[-1]

    @property
    def last_metadata(self) -> dict[str, str]:
        return self.metadata[-1]

    def GetThing(self, request, context):
        self._record(request, context)
        time.sleep(self.delay)
        thing = self.pb.Thing(
            id=request.id,
            name="kettle",
            kind=self.pb.THING_KIND_VERY_BIG,
            big=2**53 + 1,
            version=3,
            tags=["a", "b"],
        )
        thing.created_at.FromJsonString("2030-01-31T12:00:00Z")
        return thing

    def ListThings(self, request, context):
        self._record(request, context)
        return self.pb.ListThingsResponse(results=[self.pb.Thing(id=1, name="one")], next_page_token="next")

    def CreateThing(self, request, context):
        self._record(request, context)
        thing = self.pb.Thing()
        thing.CopyFrom(request.thing)
        thing.id, thing.version = 7, 1
        return thing

    def UpdateThing(self, request, context):
        self._record(request, context)
        thing = self.pb.Thing()
        thing.CopyFrom(request.thing)
        thing.version = 4
        return thing

    def DeleteThing(self, request, context):
        self._record(request, context)
        return empty_pb2.Empty()

    def RenameThing(self, request, context):
        self._record(request, context)
        return self.pb.Thing(id=request.id, name=request.name, note=request.note or None)

    def ClaimThing(self, request, context):
        self._record(request, context)
        owner = request.owner_id if request.HasField("owner_id") else None
        return self.pb.Thing(id=request.id, name="claimed", owner_id=owner)

    def Fail(self, request, context):
        self._record(request, context)
        context.abort_with_status(rpc_status.to_status(_rich_status(request)))

    def Ping(self, request, context):
        return empty_pb2.Empty()


def _rich_status(request) -> status_pb2.Status:
    details = []
    if request.reason:
        details.append(error_details_pb2.ErrorInfo(reason=request.reason, domain="taskmgr"))
    if request.violations:
        violations = [
            error_details_pb2.BadRequest.FieldViolation(field=field, description=text)
            for field, text in sorted(request.violations.items())
        ]
        details.append(error_details_pb2.BadRequest(field_violations=violations))
    if request.retry_seconds:
        seconds = math.floor(request.retry_seconds)
        nanos = round((request.retry_seconds - seconds) * 1e9)
        delay = duration_pb2.Duration(seconds=seconds, nanos=nanos)
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    packed = []
    for detail in details:
        wrapped = any_pb2.Any()
        wrapped.Pack(detail)
        packed.append(wrapped)
    return status_pb2.Status(code=request.code, message=request.message, details=packed)


@pytest.fixture(scope="session")
def backend(edgetest) -> Iterator[tuple[ThingServicer, str]]:
    """A real gRPC server on a free port, with the standard health service."""
    messages, services, _ = edgetest
    servicer = ThingServicer(messages)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    services.add_ThingServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.fixture
def servicer(backend) -> ThingServicer:
    return backend[0]


@pytest.fixture
def contract(edgetest) -> Contract:
    messages, _, descriptor_set = edgetest
    return Contract([messages.DESCRIPTOR], load_comments(descriptor_set))


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture
def make_client(backend, contract, issuer):
    """Builds an edge (fresh limits and metrics) on the test backend; settings overridable.
    Its requests carry a valid access token unless they set Authorization themselves."""
    channels: list[grpc.Channel] = []

    def build(**settings) -> FlaskClient:
        channel = grpc.insecure_channel(backend[1])
        channels.append(channel)
        app = create_app(
            Settings(**settings),
            channels={"edgetest": channel},
            contract=contract,
            authenticator=EdgeAuthenticator(issuer.verifier()),
        )
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issuer.token(1)}"
        return client

    yield build
    for channel in channels:
        channel.close()


@pytest.fixture
def client(make_client) -> FlaskClient:
    return make_client()
