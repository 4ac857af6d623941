"""The OpenAPI document: valid 3.0, complete, and honest about each operation."""

from __future__ import annotations

import importlib
import re

import pytest
from google.api import annotations_pb2
from openapi_spec_validator import validate

from common.settings import Settings
from edge_api.app import create_app
from edge_api.contract import DEFAULT_PROTO_MODULES


@pytest.fixture
def document(client) -> dict:
    return client.get("/swagger.json").json


def test_test_proto_document_is_valid_openapi_3_0(document):
    assert document["openapi"] == "3.0.3"
    validate(document)


def test_every_annotated_rpc_of_the_test_proto_has_an_operation(document):
    operations = {(path, verb) for path, ops in document["paths"].items() for verb in ops}

    assert operations == {
        ("/api/things/{id}/", "get"),
        ("/api/things/", "get"),
        ("/api/things/", "post"),
        ("/api/things/{id}/", "patch"),
        ("/api/things/{id}/", "delete"),
        ("/api/things/{id}/rename/", "post"),
        ("/api/things/{id}/claim/", "post"),
        ("/api/fail/", "post"),
    }


def test_message_schema_follows_the_json_conventions(document):
    thing = document["components"]["schemas"]["Thing"]
    props = thing["properties"]

    assert thing["description"] == "A thing."
    # A response always carries every key (null when unset), and may gain fields.
    assert sorted(thing["required"]) == sorted(props)
    assert "additionalProperties" not in thing
    assert props["big"] == {
        "type": "integer",
        "format": "int64",
        "description": "A number beyond what a JSON double holds exactly.",
    }
    assert props["note"]["nullable"] is True
    assert props["owner_id"]["nullable"] is True
    assert props["due"]["format"] == "date-time" and props["due"]["nullable"] is True
    assert props["id"]["readOnly"] is True
    assert props["kind"] == {"$ref": "#/components/schemas/ThingKind"}
    assert document["components"]["schemas"]["ThingKind"]["enum"] == [
        "small",
        "very_big",
    ]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}


def test_parameters_from_path_query_and_headers(document):
    get = document["paths"]["/api/things/{id}/"]["get"]
    listing = document["paths"]["/api/things/"]["get"]
    patch = document["paths"]["/api/things/{id}/"]["patch"]

    assert get["parameters"] == [
        {
            "name": "id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "format": "int64"},
        }
    ]
    query = {p["name"]: p for p in listing["parameters"]}
    assert set(query) == {"page_size", "page_token", "kind", "tags", "due_before", "active"}
    assert query["page_size"]["description"] == "Results per page."
    assert query["tags"]["schema"] == {"type": "array", "items": {"type": "string"}}
    headers = [p["name"] for p in patch["parameters"] if p["in"] == "header"]
    assert headers == ["If-Match", "If-None-Match"]


def test_bodies_success_statuses_and_headers(document):
    create = document["paths"]["/api/things/"]["post"]
    patch = document["paths"]["/api/things/{id}/"]["patch"]
    rename = document["paths"]["/api/things/{id}/rename/"]["post"]
    delete = document["paths"]["/api/things/{id}/"]["delete"]

    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ThingInput"
    }
    thing_input = document["components"]["schemas"]["ThingInput"]
    assert thing_input["required"] == ["name"] and thing_input["additionalProperties"] is False
    assert "id" not in thing_input["properties"]  # OUTPUT_ONLY: not in a request
    assert "201" in create["responses"] and "200" not in create["responses"]
    assert "ETag" in create["responses"]["201"]["headers"]
    patch_schema = document["components"]["schemas"]["ThingPatch"]
    assert "required" not in patch_schema  # a PATCH body is any subset
    assert patch["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("ThingPatch")
    rename_ref = rename["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    rename_body = document["components"]["schemas"][rename_ref.rsplit("/", 1)[1]]
    assert set(rename_body["properties"]) == {"name", "note"}  # id is in the path
    assert "content" not in delete["responses"]["204"]


def test_error_responses_per_operation(document):
    def statuses(path, verb):
        return set(document["paths"][path][verb]["responses"]) - {"default"}

    assert statuses("/api/things/{id}/", "get") == {
        "200", "400", "401", "403", "404", "414", "429", "431", "503"
    }
    assert statuses("/api/things/", "post") == {
        "201", "400", "401", "403", "409", "413", "414", "415", "422", "429", "431", "503"
    }
    assert "412" in statuses("/api/things/{id}/", "patch")
    assert "401" not in statuses("/api/things/{id}/rename/", "post")  # public
    problem = document["components"]["responses"]["NotFound"]["content"]
    assert problem == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert "Retry-After" in document["components"]["responses"]["TooManyRequests"]["headers"]


def test_bearer_scheme_globally_and_public_operations_need_none(document):
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["security"] == [{"bearerAuth": []}]
    assert document["paths"]["/api/things/{id}/rename/"]["post"]["security"] == []
    assert "security" not in document["paths"]["/api/things/{id}/"]["get"]


def test_comments_become_descriptions_and_services_tags(document):
    get = document["paths"]["/api/things/{id}/"]["get"]

    assert get["summary"] == "One thing by id"
    assert get["tags"] == ["ThingService"]
    assert document["tags"] == [{"name": "ThingService", "description": "Things, for testing the edge."}]


def test_swagger_ui_is_served(client):
    response = client.get("/swagger/")

    assert response.status_code == 200
    assert "text/html" in response.content_type
    assert b"SwaggerUIBundle" in response.data
    assert b"/swagger.json" in response.data


def test_real_document_is_valid_and_holds_every_annotated_path():
    client = create_app(Settings()).test_client()  # channels open lazily: no call is made
    document = client.get("/swagger.json").json

    validate(document)
    annotated = set()
    for name in DEFAULT_PROTO_MODULES:
        for service in importlib.import_module(name).DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if options.HasExtension(annotations_pb2.http):
                    rule = options.Extensions[annotations_pb2.http]
                    verb = rule.WhichOneof("pattern")
                    # a nested path variable is named by its leaf field: {task.id} -> {id}
                    annotated.add((re.sub(r"\{[a-z_.]*?([a-z_]+)\}", r"{\1}", getattr(rule, verb)), verb))
    documented = {(path, verb) for path, ops in document["paths"].items() for verb in ops}
    assert documented == annotated
    # 22 + ProjectService's 11 + the dead letters' 2 + notification settings' 2 + a task's
    # notifications 1 + CollaborationService's 8 + ProjectService's labels 4
    assert len(annotated) == 50
    assert document["paths"]["/api/token/"]["post"]["security"] == []
    assert document["paths"]["/api/tasks/"]["post"]["responses"]["201"]
    assert "results" in document["components"]["schemas"]["ListTasksResponse"]["properties"]


def test_a_clamped_page_size_documents_no_maximum():
    """AIP-158: any page_size above the maximum is accepted and clamped, so the document
    may not promise a refusal (an int32 format or a maximum) that the edge never gives."""
    document = create_app(Settings()).test_client().get("/swagger.json").json
    page_sizes = [
        parameter["schema"]
        for operations in document["paths"].values()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "page_size"
    ]
    assert page_sizes
    assert all("format" not in schema and "maximum" not in schema for schema in page_sizes), page_sizes


def test_a_filter_whose_rules_skip_the_empty_value_documents_it_as_accepted():
    """`?assigned_to=` is unset (buf.validate IGNORE_IF_ZERO_VALUE) and answered 200, so the
    document may not promise a 400 for it (negative schemathesis sends exactly that)."""
    document = create_app(Settings()).test_client().get("/swagger.json").json
    parameters = {p["name"]: p["schema"] for p in document["paths"]["/api/tasks/"]["get"]["parameters"]}
    assert re.search(parameters["assigned_to"]["pattern"], "")
    assert re.search(parameters["assigned_to"]["pattern"], "me")
    assert not re.search(parameters["assigned_to"]["pattern"], "-1")
    assert "" in parameters["ordering"]["enum"]
