"""The real document (the taskmgr protos) tells the truth and serves typed clients:
statuses, shapes, limits, examples and parameter types all come from the contract."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema_rs
import pytest
from jsonschema import ValidationError, validators
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from common.settings import Settings
from edge_api.app import create_app
from edge_api.contract import Contract
from edge_api.options import is_output_only

WRITE_VERBS = {"post", "put", "patch"}


@pytest.fixture(scope="module")
def document() -> dict:
    return create_app(Settings()).test_client().get("/swagger.json").json  # no call is made


def operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    for path, ops in document["paths"].items():
        for verb, operation in ops.items():
            yield path, verb, operation


def resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema or ("allOf" in schema and len(schema["allOf"]) == 1):
        schema = schema["allOf"][0] if "allOf" in schema else schema
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _ecma_pattern(validator, pattern: str, instance: Any, schema: dict) -> Iterator[ValidationError]:
    """`pattern` as OpenAPI reads it, an ECMA-262 regular expression (`\\p{L}` and the
    like), which Python's re does not know: matched by jsonschema_rs's engine instead."""
    if validator.is_type(instance, "string") and not _pattern_validator(pattern).is_valid(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _pattern_validator(pattern: str):  # noqa: ANN202
    return jsonschema_rs.validator_for({"type": "string", "pattern": pattern})


OAS30Ecma = validators.extend(OAS30Validator, {"pattern": _ecma_pattern})


def validator(document: dict, schema: dict) -> OAS30Validator:
    registry = Registry().with_resource("doc", Resource.from_contents(document, default_specification=DRAFT4))
    rooted = json.loads(json.dumps(schema).replace('"#/components', '"doc#/components'))
    return OAS30Ecma(rooted, registry=registry)


def test_every_status_a_method_answers_is_documented(document):
    """401 on a public method that checks a credential (it answered 401 undocumented)."""
    responses = {op["operationId"]: set(op["responses"]) for _, _, op in operations(document)}

    assert "401" in responses["login"] and "401" in responses["refresh_token"]
    # Public methods that check no credential never answer 401; the others all may.
    assert "401" not in responses["register"] | responses["get_jwks"] | responses["resend_otp"]
    assert all("401" in responses[op] for op in ("list_tasks", "change_password", "list_notifications"))
    # A service that is away is 503 on every operation, with Retry-After.
    assert all("503" in statuses for statuses in responses.values())
    assert "Retry-After" in document["components"]["responses"]["ServiceUnavailable"]["headers"]


def test_the_unspecified_placeholder_is_nowhere_on_the_surface(document):
    assert "unspecified" not in json.dumps(document).lower()
    assert document["components"]["schemas"]["TaskStatus"]["enum"] == [
        "pending",
        "in_progress",
        "done",
        "cancelled",
    ]


def test_operation_ids_are_method_names(document):
    ids = [op["operationId"] for _, _, op in operations(document)]

    assert len(ids) == len(set(ids))
    assert {"list_tasks", "create_task", "assign_task", "login", "get_profile"} <= set(ids)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", operation_id) for operation_id in ids)


def test_a_servers_entry(document):
    assert document["servers"] == [{"url": "/", "description": "This server"}]


def test_request_bodies_have_their_own_schemas_without_output_only_fields(document):
    """Posting back a fetched task works: no id, version, created_at in a request."""
    checked = set()
    for route in Contract.default().routes():
        if not route.body:
            continue
        operation = _operation_of(document, route)
        message = route.method.input_type
        if route.body != "*":
            message = message.fields_by_name[route.body].message_type
        output_only = {f.name for f in message.fields if is_output_only(f)}
        schema = resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
        assert schema["additionalProperties"] is False, route.endpoint  # unknown fields are refused
        assert not set(schema["properties"]) & output_only, route.endpoint
        checked.add(operation["operationId"])
    assert {"create_task", "update_task", "assign_task", "register", "login"} <= checked
    task_input = resolve(document, {"$ref": "#/components/schemas/TaskInput"})
    assert set(task_input["properties"]) >= {
        "title",
        "description",
        "status",
        "priority",
        "due_date",
        "assigned_to",
    }
    assert task_input["required"] == ["title"]
    assert "required" not in resolve(document, {"$ref": "#/components/schemas/TaskPatch"})


def _operation_of(document: dict, route) -> dict:  # noqa: ANN001
    path = re.sub(r"\{[a-z_.]*?([a-z_]+)(=[^}]*)?\}", r"{\1}", route.template)
    return document["paths"][path][route.verb.lower()]


def test_response_fields_are_required_and_responses_stay_open(document):
    seen: set[str] = set()
    for _, _, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith("2") and "content" in response:
                _check_response_schema(document, response["content"]["application/json"]["schema"], seen)
    assert {"Task", "User", "ListTasksResponse", "LoginResponse"} <= seen


def _check_response_schema(document: dict, schema: dict, seen: set[str]) -> None:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return
        seen.add(name)
    schema = resolve(document, schema)
    if schema.get("type") != "object":
        return
    assert schema.get("additionalProperties") is not False  # a field added later breaks no client
    assert sorted(schema.get("required", [])) == sorted(schema.get("properties", {}))
    for prop in schema.get("properties", {}).values():
        _check_response_schema(document, prop.get("items", prop), seen)


def test_limits_are_in_the_schema_not_only_in_prose(document):
    schemas = document["components"]["schemas"]
    register = schemas["RegisterRequest"]["properties"]
    assert (register["username"]["minLength"], register["username"]["maxLength"]) == (3, 150)
    assert register["username"]["pattern"] == "^[A-Za-z0-9_.-]+$"
    assert register["email"]["format"] == "email" and register["email"]["maxLength"] == 254
    assert (register["password"]["minLength"], register["password"]["maxLength"]) == (8, 128)
    assert schemas["VerifyOtpRequest"]["properties"]["otp_code"]["pattern"] == "^[0-9]{6}$"
    assert schemas["TaskInput"]["properties"]["title"]["maxLength"] == 200
    assert schemas["TaskInput"]["properties"]["description"]["maxLength"] == 10_000
    assert schemas["UpdateProfileRequest"]["properties"]["last_name"]["maxLength"] == 150
    user_id = schemas["AssignTaskRequest"]["properties"]["user_id"]
    assert (user_id["minimum"], user_id["exclusiveMinimum"]) == (0, True)


@pytest.mark.parametrize(
    ("component", "field"),
    [
        ("TaskInput", "title"), ("TaskPatch", "title"), ("ProjectInput", "name"), ("LabelPatch", "name"),
        ("AddCommentRequest", "text"), ("UpdateCommentRequest", "text"),
        ("UpdateProfileRequest", "last_name"),
    ],
)
def test_a_name_needs_a_visible_character_in_the_document(document, component, field):
    """The contract's rule (a letter, number, punctuation or symbol), as clients read it."""
    schema = {"$ref": f"#/components/schemas/{component}/properties/{field}"}
    check = validator(document, schema)
    for invisible in ("\u200b", "\u2060\ufeff", "\u202e", "\u3000\u00a0 ", "\u0301"):
        assert not check.is_valid(invisible), (component, invisible)
    for visible in ("a", "\u200bx", "7", "!", "\u20ac", "\u65e5\u672c"):
        assert check.is_valid(visible), (component, visible)


def test_filters_and_headers_are_typed(document):
    listing = {p["name"]: p["schema"] for p in document["paths"]["/api/tasks/"]["get"]["parameters"]}
    assert listing["status"] == {"$ref": "#/components/schemas/TaskStatus"}
    assert listing["priority"] == {"$ref": "#/components/schemas/TaskPriority"}
    assert listing["due_before"]["format"] == "date-time" == listing["due_after"]["format"]
    assert listing["page_size"]["minimum"] == 0
    assert listing["q"]["maxLength"] == 200
    assert "-priority" in listing["ordering"]["enum"]
    assert re.fullmatch(listing["assigned_to"]["pattern"], "none") and not re.search(
        listing["assigned_to"]["pattern"], "007"
    )
    create = document["paths"]["/api/tasks/"]["post"]
    headers = {p["name"]: p["schema"] for p in create["parameters"] if p["in"] == "header"}
    assert headers["Idempotency-Key"]["maxLength"] == 255
    assert create["responses"]["201"]["headers"]["ETag"]["schema"]["pattern"]


@pytest.mark.parametrize("value", ['"3"', 'W/"3"', '"9", "3"', "*", '"abc"'])
def test_if_match_is_documented_as_entity_tags(document, value):
    patch = document["paths"]["/api/tasks/{id}/"]["patch"]
    schema = next(p["schema"] for p in patch["parameters"] if p["name"] == "If-Match")
    assert re.fullmatch(schema["pattern"], value)


@pytest.mark.parametrize("value", ["3", '"3', "**", '"a" "b"'])
def test_if_match_refuses_what_is_no_entity_tag(document, value):
    patch = document["paths"]["/api/tasks/{id}/"]["patch"]
    schema = next(p["schema"] for p in patch["parameters"] if p["name"] == "If-Match")
    assert not re.fullmatch(schema["pattern"], value)


def test_every_write_operation_has_a_body_example_its_schema_accepts(document):
    """What Swagger UI's "Try it out" fills in: the schema's example, valid as it stands."""
    for path, verb, operation in operations(document):
        if verb not in WRITE_VERBS or "requestBody" not in operation:
            continue
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        example = resolve(document, schema).get("example")
        assert example is not None, (verb, path)
        assert "unspecified" not in json.dumps(example)
        errors = list(validator(document, schema).iter_errors(example))
        assert not errors, (verb, path, [e.message for e in errors])
    task_example = resolve(document, {"$ref": "#/components/schemas/TaskInput"})["example"]
    assert (
        task_example.items()
        >= {
            "title": "Write the README",
            "description": "Install, run, test.",
            "status": "pending",
            "priority": "high",
            "due_date": "2030-01-31T12:00:00Z",
        }.items()
    )


def _fields(message: Any, seen: frozenset = frozenset()) -> Iterator:
    if message.full_name in seen:
        return
    for field in message.fields:
        yield field
        if field.message_type is not None:
            yield from _fields(field.message_type, seen | {message.full_name})


def test_no_parameter_carries_an_example(document):
    """Swagger UI's "Try it out" sends parameter examples: a filter (assigned_to=me) or an
    If-Match nobody chose would change or refuse the call."""
    for path, verb, operation in operations(document):
        for parameter in operation["parameters"]:
            schema = parameter["schema"]
            assert "example" not in schema and "example" not in schema.get("items", {}), (
                verb,
                path,
                parameter,
            )
            assert "example" not in parameter and "examples" not in parameter, (verb, path, parameter)
