"""Register's errors: field problems in BadRequest, taken names and addresses as 409."""

import uuid

import grpc
import pytest

from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import PASSWORD, failure


def fresh() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


def register(client, username: str, email: str, password: str = PASSWORD):  # noqa: ANN201
    return client.stub.Register(pb.RegisterRequest(username=username, email=email, password=password))


@pytest.mark.parametrize(
    ("username", "email", "password", "fields"),
    [
        ("ab", None, PASSWORD, {"username"}),
        ("has space", None, PASSWORD, {"username"}),
        ("x" * 151, None, PASSWORD, {"username"}),
        (None, "not-an-email", PASSWORD, {"email"}),
        (None, "a@b", PASSWORD, {"email"}),
        (None, "x" * 250 + "@example.com", PASSWORD, {"email"}),
        (None, None, "short", {"password"}),
        (None, None, "p" * 129, {"password"}),
        (None, None, "password123", {"password"}),
        ("weakling", None, "weakling-forever", {"password"}),
        ("ab", "nope", "123", {"username", "email", "password"}),
    ],
)
def test_invalid_fields_are_listed(client, username, email, password, fields):
    name = username or fresh()
    error = failure(register, client, name, email or f"{fresh()}@example.com", password)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert set(error.fields) == fields


def test_a_taken_username_is_409_username_taken(client):
    name = fresh()
    register(client, name, f"{name}@example.com")
    error = failure(register, client, name, f"{fresh()}@example.com")
    assert (error.code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, "USERNAME_TAKEN")


def test_a_taken_address_in_any_case_is_409_email_taken(client):
    name = fresh()
    register(client, name, f"{name}@example.com")
    error = failure(register, client, fresh(), f"{name.upper()}@EXAMPLE.com")
    assert (error.code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN")


def test_registration_sends_one_code(client):
    name = fresh()
    register(client, name, f"{name}@example.com")
    [code] = client.outbox.codes(f"{name}@example.com")
    assert len(code) == 6 and code.isdigit()
