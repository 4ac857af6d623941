"""Requests and responses through the edge for a proto the edge has no code for."""

from __future__ import annotations

import json

import pytest


def test_path_variable_and_response_conventions(client, servicer):
    response = client.get("/api/things/5/")

    assert response.status_code == 200
    assert servicer.last.id == 5
    assert response.json == {
        "id": 5,
        "name": "kettle",
        "note": None,  # unset optional: null, never missing
        "kind": "very_big",  # THING_KIND_VERY_BIG without its prefix
        "big": 2**53 + 1,  # an integer, not the string proto3 JSON would give
        "due": None,  # unset message field
        "created_at": "2030-01-31T12:00:00Z",
        "version": 3,
        "tags": ["a", "b"],
        "owner_id": None,
        "active": False,
    }
    assert response.headers["ETag"] == '"3"'
    assert json.loads(response.data)["big"] == 9007199254740993  # exact in the raw JSON


def test_paths_with_and_without_trailing_slash(client):
    assert client.get("/api/things/5").status_code == 200
    assert client.get("/api/things/5/").status_code == 200


def test_path_variable_of_the_wrong_type_is_a_field_error(client):
    response = client.get("/api/things/abc/")

    assert response.status_code == 400
    assert response.json["errors"] == {"id": ["must be an integer"]}


def test_query_parameters_fill_the_remaining_fields(client, servicer):
    response = client.get(
        "/api/things/?page_size=5&kind=small&tags=x&tags=y&active=true&due_before=2030-01-01T00:00:00Z"
    )

    assert response.status_code == 200
    assert response.json == {
        "results": [response.json["results"][0]],
        "next_page_token": "next",
    }
    request = servicer.last
    assert request.page_size == 5
    assert request.kind == 1
    assert list(request.tags) == ["x", "y"]
    assert request.active is True
    assert request.due_before.ToJsonString() == "2030-01-01T00:00:00Z"


def test_enums_are_accepted_by_full_name_in_any_case(client, servicer):
    assert client.get("/api/things/?kind=THING_KIND_VERY_BIG").status_code == 200
    assert servicer.last.kind == 2
    assert client.get("/api/things/?kind=Very_Big").status_code == 200
    assert servicer.last.kind == 2


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("kind=huge", {"kind": ["must be one of: small, very_big"]}),
        ("page_size=many", {"page_size": ["must be an integer"]}),
        ("page_size=-99999999999", {"page_size": ["must be between -2147483648 and 2147483647"]}),
        ("colour=red", {"colour": ["unknown query parameter"]}),
    ],
)
def test_bad_query_parameters_are_field_errors(client, query, errors):
    response = client.get(f"/api/things/?{query}")

    assert response.status_code == 400
    assert response.json["code"] == "INVALID_ARGUMENT"
    assert response.json["errors"] == errors


def test_body_field_and_header_binding_with_success_status(client, servicer):
    response = client.post(
        "/api/things/",
        json={"name": "lamp", "kind": "small", "due": "2030-02-01T08:00:00Z", "owner_id": 9},
        headers={"Idempotency-Key": "key-1"},
    )

    assert response.status_code == 201
    assert response.json["id"] == 7
    assert response.json["owner_id"] == 9
    assert response.headers["ETag"] == '"1"'
    request = servicer.last
    assert request.request_id == "key-1"
    assert request.thing.name == "lamp"
    assert request.thing.kind == 1
    assert request.thing.due.ToJsonString() == "2030-02-01T08:00:00Z"


def test_null_leaves_an_optional_field_unset(client, servicer):
    client.post("/api/things/", json={"name": "lamp", "owner_id": None})

    assert not servicer.last.thing.HasField("owner_id")


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"name": "x", "colour": "red"}, {"colour": ["unknown field"]}),
        ({"name": "x", "id": 3}, {"id": ["read-only"]}),
        ({"name": "x", "version": 3}, {"version": ["read-only"]}),
        ({"name": 5}, {"name": ["must be a string"]}),
        ({"name": "x", "big": True}, {"big": ["must be an integer"]}),
        ({"name": "x", "kind": "huge"}, {"kind": ["must be one of: small, very_big"]}),
        ({"name": "x", "tags": "a"}, {"tags": ["must be a JSON array"]}),
        ({"name": "x", "active": "yes"}, {"active": ["must be true or false"]}),
        (
            {"name": "x", "due": "tomorrow"},
            {"due": ["must be an RFC 3339 date-time, e.g. 2030-01-31T12:00:00Z"]},
        ),
    ],
)
def test_bad_body_fields_are_400_with_field_errors(client, servicer, body, errors):
    calls = len(servicer.requests)

    response = client.post("/api/things/", json=body)

    assert response.status_code == 400
    assert response.json["errors"] == errors
    assert len(servicer.requests) == calls  # refused at the edge


def test_patch_infers_the_update_mask_from_the_body(client, servicer):
    response = client.patch("/api/things/5/", json={"name": "new", "note": None})

    assert response.status_code == 200
    request = servicer.last
    assert request.thing.id == 5
    assert request.thing.name == "new"
    assert sorted(request.update_mask.paths) == ["name", "note"]
    assert response.headers["ETag"] == '"4"'


def test_body_star_with_a_path_variable(client, servicer):
    response = client.post("/api/things/5/rename", json={"name": "n", "note": "hi"})

    assert response.status_code == 200
    assert (servicer.last.id, servicer.last.name, servicer.last.note) == (5, "n", "hi")


def test_body_star_refuses_a_field_bound_to_the_path(client):
    response = client.post("/api/things/5/rename/", json={"name": "n", "id": 6})

    assert response.status_code == 400
    assert response.json["errors"] == {"id": ["given in the path, not the body"]}


def test_empty_response_is_204_without_a_body(client, servicer):
    response = client.delete("/api/things/5/")

    assert response.status_code == 204
    assert response.data == b""
    # No media type for no content (RFC 9110 section 15.3.5), as OPTIONS: Flask's
    # default labelled every DELETE's answer text/html.
    assert "Content-Type" not in response.headers
    assert servicer.last.id == 5


def test_missing_body_means_no_fields(client, servicer):
    response = client.post("/api/things/5/rename/")

    assert response.status_code == 200
    assert servicer.last.name == ""  # the service, not the edge, says name is required


def test_unannotated_rpc_is_not_exposed(client):
    rules = {rule.rule for rule in client.application.url_map.iter_rules()}

    assert not any("ping" in rule.lower() for rule in rules)
    assert {"/api/things/<id>/", "/api/things/<id>", "/api/things/<thing__id>/"} <= rules
