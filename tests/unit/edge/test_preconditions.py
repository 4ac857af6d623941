"""Conditional requests at the edge (RFC 9110 section 13), on the test contract: what
travels to the service, what the edge decides itself, and authentication first."""

from __future__ import annotations

import re

import pytest

from edge_api import preconditions
from edge_api.contract import Contract

THING = "/api/things/5/"  # GetThing answers version 3: ETag "3"


def sent_condition(servicer, name: str) -> tuple[bool, list[int]] | None:  # noqa: ANN001
    request = servicer.last
    if not request.HasField(name):
        return None
    condition = getattr(request, name)
    return condition.any, list(condition.versions)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('"3"', (False, [3])),
        ('"9", "3"', (False, [3, 9])),  # a list (RFC 9110 section 5.6.1), empty elements too
        ('"9",, "3" ,', (False, [3, 9])),
        ("*", (True, [])),
        ('W/"3"', (False, [])),  # strong comparison: a weak tag never matches
        ('W/"3", "4"', (False, [4])),
        ('"abc"', (False, [])),  # no version is spelled so: given, matches nothing
        ('"03"', (False, [])),  # strong comparison is octet equality: not version 3
        ('"-1"', (False, [])),
        ('"99999999999999999999"', (False, [])),  # beyond int64: no version
        ("garbage here", (False, [])),
    ],
)
@pytest.mark.parametrize("method", ["patch", "delete"])
def test_if_match_travels_as_the_versions_it_can_match(client, servicer, method, header, expected):
    response = getattr(client, method)(THING, json={"name": "n"} if method == "patch" else None,
                                       headers={"If-Match": header})

    assert response.status_code in (200, 204)  # the test backend decides nothing
    assert sent_condition(servicer, "if_match") == expected
    assert sent_condition(servicer, "if_none_match") is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [('W/"3"', (False, [3])), ('"3", W/"5"', (False, [3, 5])), ("*", (True, [])), ('"x"', (False, []))],
)
def test_if_none_match_travels_with_weak_comparison(client, servicer, header, expected):
    client.delete(THING, headers={"If-None-Match": header})

    assert sent_condition(servicer, "if_none_match") == expected
    assert sent_condition(servicer, "if_match") is None


def test_no_header_no_condition(client, servicer):
    client.patch(THING, json={"name": "n"})

    assert sent_condition(servicer, "if_match") is None
    assert sent_condition(servicer, "if_none_match") is None


@pytest.mark.parametrize("header", ['"3"', 'W/"3"', '"1", "3"', "*"])
@pytest.mark.parametrize("method", ["get", "head"])
def test_get_with_a_matching_if_none_match_is_304_with_the_etag(client, method, header):
    response = getattr(client, method)(THING, headers={"If-None-Match": header})

    assert response.status_code == 304
    assert response.headers["ETag"] == '"3"'
    assert response.get_data() == b""


@pytest.mark.parametrize("header", ['"4"', '"03"', '"abc"'])
def test_get_with_another_if_none_match_is_the_representation(client, header):
    response = client.get(THING, headers={"If-None-Match": header})

    assert response.status_code == 200
    assert response.json["version"] == 3


@pytest.mark.parametrize(("header", "status"), [('"3"', 200), ("*", 200), ('"4"', 412), ('W/"3"', 412)])
def test_get_evaluates_if_match_strongly(client, header, status):
    response = client.get(THING, headers={"If-Match": header})

    assert response.status_code == status
    if status == 412:
        assert response.mimetype == "application/problem+json"
        assert response.json["code"] == "VERSION_MISMATCH"


def test_if_match_comes_before_if_none_match(client):
    # RFC 9110 section 13.2.2: a failed If-Match is 412 even when If-None-Match would be 304.
    response = client.get(THING, headers={"If-Match": '"4"', "If-None-Match": '"3"'})

    assert response.status_code == 412


def test_a_list_without_an_etag_never_matches(client):
    # ListThings answers no ETag: a listed tag matches nothing, `*` the existing list.
    assert client.get("/api/things/", headers={"If-Match": '"1"'}).status_code == 412
    assert client.get("/api/things/", headers={"If-Match": "*"}).status_code == 200
    assert client.get("/api/things/", headers={"If-None-Match": '"1"'}).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-Match": '"1"'}, 412),
        ({"If-Match": 'W/"1"'}, 412),
        ({"If-Match": "*"}, 200),
        ({"If-None-Match": '"1"'}, 200),
        ({"If-None-Match": "*"}, 412),
    ],
)
def test_an_unsafe_route_without_versions_is_decided_at_the_edge(client, servicer, headers, status):
    # RenameThing's request binds no condition: the resource has no entity tag.
    before = len(servicer.requests)

    response = client.post("/api/things/5/rename/", json={"name": "n"}, headers=headers)

    assert response.status_code == status
    assert len(servicer.requests) == before + (status == 200)  # 412: the backend never called


def test_a_condition_header_must_be_bound_to_a_version_match(edgetest):
    messages = edgetest[0]
    version = messages.Thing.DESCRIPTOR.fields_by_name["version"]  # an int64
    with pytest.raises(ValueError, match="VersionMatch"):
        preconditions.check_binding("X.Y", "If-Match", version)
    preconditions.check_binding("X.Y", "Idempotency-Key", version)  # other headers: any type


def test_every_unsafe_route_of_a_resource_with_an_etag_carries_both_conditions():
    routes = Contract.default().routes()

    def shape(template: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", template)

    tagged = {
        shape(route.template)
        for route in routes
        if route.verb == "GET" and preconditions.entity_tag(route.response_class()) is not None
    }
    unsafe = [route for route in routes if route.verb != "GET"]
    covered = [route for route in unsafe if any(shape(route.template).startswith(t) for t in tagged)]
    assert {route.method.name for route in covered} >= {"UpdateTask", "DeleteTask", "AssignTask"}
    for route in covered:
        assert {h.lower() for h in route.header_fields} >= {"if-match", "if-none-match"}, route.endpoint


# --- authentication first ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("delete", "/api/things/0.5/", {}),  # a bad path variable
        ("get", "/api/things/?page_size=many", {}),  # a bad query parameter
        ("post", "/api/things/", {"data": "{not json", "content_type": "application/json"}),
        ("post", "/api/things/", {"data": "x", "content_type": "text/plain"}),  # 415 otherwise
        ("patch", "/api/things/5/", {"json": {"unknown": 1}}),
        ("patch", "/api/things/5/", {"json": {"name": "n"}, "headers": {"If-Match": '"1"'}}),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer not.a.token", "Basic dXNlcjpwYXNz", "Bearer"])
def test_no_valid_token_is_401_before_anything_else(client, servicer, method, path, kwargs, authorization):
    client.environ_base.pop("HTTP_AUTHORIZATION")
    headers = dict(kwargs.pop("headers", {}))
    if authorization:
        headers["Authorization"] = authorization
    before = len(servicer.requests)

    response = getattr(client, method)(path, headers=headers, **kwargs)

    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json["code"] in ("TOKEN_MISSING", "TOKEN_INVALID")
    assert len(servicer.requests) == before


def test_an_expired_token_is_401_before_validation(client, issuer):
    expired = issuer.token(1, ttl=-60)

    response = client.delete("/api/things/0.5/", headers={"Authorization": f"Bearer {expired}"})

    assert (response.status_code, response.json["code"]) == (401, "TOKEN_EXPIRED")


def test_a_public_route_validates_without_a_token(client):
    client.environ_base.pop("HTTP_AUTHORIZATION")

    response = client.post("/api/things/0.5/rename/", json={"name": "n"})

    assert response.status_code == 400
    assert "id" in response.json["errors"]


def test_signing_keys_out_of_reach_are_503_not_401(contract, issuer):
    from common.settings import Settings
    from edge_api.app import create_app
    from edge_api.authn import EdgeAuthenticator
    from edge_api.backends import Backends

    away = Backends({"user"}, {"user": "127.0.0.1:1"}, deadline=0.5)  # nothing listens there
    authenticator = EdgeAuthenticator.from_user_svc(away, Settings(grpc_call_deadline=0.5))
    app = create_app(Settings(), channels={"edgetest": None}, contract=contract, authenticator=authenticator)

    response = app.test_client().get(THING, headers={"Authorization": f"Bearer {issuer.token(1)}"})

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) >= 1
    missing = app.test_client().get(THING)  # no token at all is still 401
    assert missing.status_code == 401
