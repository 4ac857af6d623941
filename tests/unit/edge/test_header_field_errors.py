"""A service's field error about a field the REST client gave in a header names the
header, as the edge's own errors about it do: a client never sees `request_id` (the
gRPC field behind `Idempotency-Key`), which it cannot send and which reads like its
X-Request-Id. Before, an Idempotency-Key over task_svc's 255 characters was a 400 with
`errors: {"request_id": [...]}`."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from common.settings import Settings
from edge_api.app import create_app
from edge_api.authn import EdgeAuthenticator


class _Refusing:
    """CreateThing refuses its Idempotency-Key field and a body field, as a service's
    buf.validate rules do (BadRequest field violations named from the request message)."""

    def CreateThing(self, request, context):  # noqa: ANN001, ANN201
        violations = [
            error_details_pb2.BadRequest.FieldViolation(field="request_id", description="Too long."),
            error_details_pb2.BadRequest.FieldViolation(field="thing.name", description="Too short."),
        ]
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.BadRequest(field_violations=violations))
        status = status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message="Invalid.",
                                   details=[detail])
        context.abort_with_status(rpc_status.to_status(status))


@pytest.fixture
def refusing_client(edgetest, contract, issuer) -> Iterator:
    _, services, _ = edgetest
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = type("RefusingServicer", (_Refusing, services.ThingServiceServicer), {})()
    services.add_ThingServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    app = create_app(
        Settings(), channels={"edgetest": channel}, contract=contract,
        authenticator=EdgeAuthenticator(issuer.verifier()),
    )
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issuer.token(1)}"
    yield client
    channel.close()
    server.stop(grace=None)


def test_a_service_error_on_a_header_bound_field_names_the_header(refusing_client):
    too_long = {"Idempotency-Key": "k" * 300}
    response = refusing_client.post("/api/things/", json={"name": "n"}, headers=too_long)

    assert response.status_code == 400
    assert response.json["errors"] == {"Idempotency-Key": ["Too long."], "name": ["Too short."]}
