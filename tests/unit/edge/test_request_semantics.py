"""PATCH's update mask (AIP-134) and REQUIRED fields whose null is a value, at the edge,
on the test contract: any update method and any such field, not only the tasks'."""

from __future__ import annotations

import pytest

from edge_api.update_mask import parse_paths

THING = "/api/things/5/"
# Thing's fields that are not OUTPUT_ONLY, in field-number order.
WRITABLE = ["name", "note", "kind", "big", "due", "tags", "owner_id", "active"]


@pytest.mark.parametrize(
    ("query", "body", "paths"),
    [
        ("?update_mask=note", {"name": "x"}, ["note"]),  # named: cleared; body's name left alone
        ("?update_mask=name,owner_id", {"name": "x"}, ["name", "owner_id"]),
        ("?update_mask=ownerId,%20due%20", {}, ["owner_id", "due"]),  # proto3 JSON names too
        ("?update_mask=", {"name": "x", "note": None}, ["name", "note"]),  # empty: the body's
        ("", {"name": "x", "due": "2030-01-01T00:00:00Z"}, ["due", "name"]),  # sorted JSON keys
        ("?update_mask=*", {"name": "x"}, WRITABLE),  # full replacement
        ("?update_mask=id,name", {}, ["id", "name"]),  # output-only: the service ignores it
    ],
)
def test_the_update_mask_sent_is_the_one_asked_for(client, servicer, query, body, paths):
    response = client.patch(THING + query, json=body)

    assert response.status_code == 200, response.json
    assert list(servicer.last.update_mask.paths) == paths


@pytest.mark.parametrize("mask", ["bogus", "name,bogus", "name.first", "*,name", "na me", "Name", "a..b"])
def test_an_update_mask_naming_no_field_is_400_before_the_call(client, servicer, mask):
    before = len(servicer.requests)

    response = client.patch(f"{THING}?update_mask={mask}", json={"name": "x"})

    assert response.status_code == 400
    assert list(response.json["errors"]) == ["update_mask"]
    assert len(servicer.requests) == before


def test_parse_paths():
    assert parse_paths("title, dueDate,,a.bC") == ["title", "due_date", "a.b_c"]
    with pytest.raises(ValueError):
        parse_paths("title;drop")


@pytest.mark.parametrize("body", [None, {}])
def test_a_required_nullable_field_left_out_is_400(client, servicer, body):
    before = len(servicer.requests)

    response = client.post("/api/things/5/claim/", json=body)

    assert response.status_code == 400
    assert list(response.json["errors"]) == ["owner_id"]
    assert len(servicer.requests) == before


@pytest.mark.parametrize(("value", "owner"), [(None, None), (7, 7)])
def test_a_required_nullable_field_given_even_as_null_is_sent(client, value, owner):
    response = client.post("/api/things/5/claim/", json={"owner_id": value})

    assert response.status_code == 200
    assert response.json["owner_id"] == owner


def test_an_optional_field_that_is_not_required_may_be_left_out(client):
    assert client.post("/api/things/5/rename/", json={"name": "n"}).status_code == 200
