"""/asyncapi.json: the events' contract, generated from protos/taskmgr/events/v1/, valid
AsyncAPI 3.0.0 (the official JSON Schema, vendored in tests/unit/edge/asyncapi/), and
true to what the producers publish and the broker is given."""

from __future__ import annotations

import json
import re
from pathlib import Path

import google.api.annotations_pb2
import grpc_tools
import jsonschema
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, timestamp_pb2
from grpc_tools import protoc
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from common import amqp
from common.amqp import Topology
from common.events import build_event
from common.settings import Settings
from edge_api import asyncapi
from edge_api.contract import DEFAULT_DESCRIPTOR_SET, load_comments
from edge_api.json_codec import message_to_json
from taskmgr.events.v1 import events_pb2
from taskmgr.task.v1 import task_service_pb2

HERE = Path(__file__).parent
REPO = HERE.parents[2]
ASYNCAPI_SCHEMA = json.loads((HERE / "asyncapi" / "asyncapi-3.0.0.json").read_text())
TOPOLOGY = Topology("taskmgr.events", "notify_svc.events", 5)
COMMENTS = load_comments(DEFAULT_DESCRIPTOR_SET)


@pytest.fixture(scope="module")
def document() -> dict:
    return asyncapi.default_document(Settings(environment="test"))


@pytest.fixture(scope="module")
def widget_file(tmp_path_factory):
    """tests/unit/edge/protos/eventtest.proto compiled like `make proto`, in a pool of its
    own: (its FileDescriptor, its comments)."""
    out = tmp_path_factory.mktemp("eventtest")
    descriptor_set = out / "eventtest.pb"
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
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={descriptor_set}",
            str(HERE / "protos" / "eventtest.proto"),
        ]
    )
    assert status == 0
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file:
        pool.Add(file)
    return pool.FindFileByName("eventtest.proto"), load_comments(descriptor_set)


def payload_validator(document: dict, message: str) -> jsonschema.Draft7Validator:
    registry = Registry().with_resource(
        "urn:doc", Resource.from_contents(document, default_specification=DRAFT7)
    )
    pointer = f"urn:doc#/components/messages/{message}/payload"
    return jsonschema.Draft7Validator({"$ref": pointer}, registry=registry)


def event_json(event: events_pb2.Event, payload) -> dict:  # noqa: ANN001
    """An event in the JSON form the document describes: the envelope with `data` as the
    proto3 JSON mapping writes an Any (the packed message's fields beside "@type")."""
    envelope = events_pb2.Event()
    envelope.CopyFrom(event)
    envelope.ClearField("data")
    return {**message_to_json(envelope), "data": {"@type": event.data.type_url, **message_to_json(payload)}}


# --- the document is valid AsyncAPI 3.0.0 -------------------------------------------------


def test_the_document_is_valid_asyncapi_3_0_0(document):
    jsonschema.Draft7Validator(ASYNCAPI_SCHEMA).validate(document)
    assert document["asyncapi"] == "3.0.0"


def test_the_official_schema_is_applied_down_to_the_amqp_bindings(document):
    # A negative control: the validator really reaches the AMQP binding schema (0.3.0).
    broken = json.loads(json.dumps(document))
    broken["channels"]["task.assigned"]["bindings"]["amqp"]["is"] = "exchange"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(ASYNCAPI_SCHEMA).validate(broken)


def test_every_ref_resolves_in_the_document(document):
    refs = set(re.findall(r'"\$ref": "(#[^"]*)"', json.dumps(document)))
    assert refs
    for ref in refs:
        node = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert isinstance(node, dict), ref


def test_every_schema_is_a_valid_draft_07_schema(document):
    schemas = [*document["components"]["schemas"].values()]
    for message in document["components"]["messages"].values():
        schemas += [message["payload"], message["headers"]]
    for schema in schemas:
        jsonschema.Draft7Validator.check_schema(schema)
    assert "nullable" not in json.dumps(document)  # OpenAPI 3.0's keyword, not JSON Schema's


# --- every event, and only events, from the protos ---------------------------------------


def test_every_type_a_producer_records_is_a_channel_with_its_payload(document):
    """The producers' own type strings (user_svc, task_svc, common), read from their source."""
    literal = re.compile(r"[\"'](taskmgr\.[a-z_]+\.[a-z_]+)[\"']")
    sources = [
        *(REPO / "user_svc").glob("*.py"),
        *(REPO / "task_svc").glob("*.py"),
        REPO / "common" / "revocation.py",
    ]
    recorded = {name for source in sources for name in literal.findall(source.read_text())}
    assert {"taskmgr.user.registered", "taskmgr.task.assigned", "taskmgr.user.sessions_ended"} <= recorded
    titles = {channel.get("title") for channel in document["channels"].values()}
    assert recorded <= titles
    for event_type in recorded:
        channel = document["channels"][event_type.removeprefix("taskmgr.")]
        assert channel["address"] == event_type.removeprefix("taskmgr.")
        [message] = channel["messages"].values()
        name = message["$ref"].rsplit("/", 1)[-1]
        assert document["components"]["messages"][name]["name"] == event_type


def test_every_message_of_the_events_package_is_envelope_event_or_part_of_one(document):
    """A payload message without its type in its comment would be silently left out: here
    it fails instead."""
    messages = {m.full_name: m for f in asyncapi.event_files() for m in f.message_types_by_name.values()}
    events = {e.payload.full_name for e in asyncapi.event_types(asyncapi.event_files(), COMMENTS)}
    reached: set[str] = set()

    def reach(message) -> None:  # noqa: ANN001
        for field in message.fields:
            nested = field.message_type
            if nested is not None and nested.full_name in messages and nested.full_name not in reached:
                reached.add(nested.full_name)
                reach(nested)

    for name in events:
        reach(messages[name])
    assert set(messages) == events | reached | {"taskmgr.events.v1.Event"}
    assert len(document["components"]["messages"]) == len(events)


def test_a_new_event_message_appears_with_no_code(widget_file):
    file, comments = widget_file
    document = asyncapi.build_document(TOPOLOGY, [file], {**COMMENTS, **comments})
    jsonschema.Draft7Validator(ASYNCAPI_SCHEMA).validate(document)

    channel = document["channels"]["widget.polished"]
    assert channel["bindings"]["amqp"]["exchange"]["name"] == "taskmgr.events"
    assert document["operations"]["publish.widget.polished"]["action"] == "send"
    message = document["components"]["messages"]["WidgetPolished"]
    assert message["description"] == "taskmgr.widget.polished: a widget was polished."
    assert message["summary"] == "a widget was polished"
    assert message["headers"]["properties"]["type"]["const"] == "taskmgr.widget.polished"
    assert {"$ref": "#/components/messages/WidgetPolished"} in document["channels"]["notify_svc.events"][
        "messages"
    ].values()
    schemas = document["components"]["schemas"]
    widget = schemas["WidgetPolished"]
    assert widget["properties"]["dried_at"] == {
        "type": ["string", "null"],
        "format": "date-time",
        "description": "When the polish dried; null while wet.",
    }
    assert widget["properties"]["example"] == {
        "type": "string",
        "description": "A field named like a schema keyword stays a property.",
    }
    assert schemas["WidgetFinish"] == {"type": "string", "enum": ["matte", "gloss"]}
    assert "Polisher" in schemas and "Polisher" not in document["components"]["messages"]


def test_two_messages_claiming_one_type_stop_the_generator(widget_file):
    file, comments = widget_file
    clash = {**COMMENTS, **comments, "taskmgr.events.v1.Polisher": "taskmgr.widget.polished again"}
    with pytest.raises(ValueError, match="taskmgr.widget.polished"):
        asyncapi.build_document(TOPOLOGY, [file], clash)


# --- payloads and headers say what is on the wire ----------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        events_pb2.TaskAssigned(task_id=3, title="t", people=events_pb2.TaskPeople(created_by=1, actor=1)),
        events_pb2.TaskAssigned(
            task_id=3,
            title="t",
            people=events_pb2.TaskPeople(created_by=1, assigned_to=2, actor=1),
            previous_assignee=4,
            project_id=9,
        ),
        events_pb2.TaskUpdated(
            task_id=3,
            old_status=task_service_pb2.TASK_STATUS_PENDING,
            new_status=task_service_pb2.TASK_STATUS_DONE,
            changed_fields=["status"],
        ),
        events_pb2.OtpRequested(
            user_id=1, username="a", email="a@example.com", code="123456", lifetime_seconds=600
        ),
        events_pb2.SessionsEnded(
            user_id=1, epoch=2, expires_at=timestamp_pb2.Timestamp(seconds=1), reason="deactivated"
        ),
    ],
)
def test_a_real_event_matches_its_payload_schema_and_no_other(document, payload):
    event_type = document["components"]["messages"][payload.DESCRIPTOR.name]["name"]
    event = build_event(source="task_svc", event_type=event_type, subject="3", payload=payload)
    body = event_json(event, payload)

    payload_validator(document, payload.DESCRIPTOR.name).validate(body)
    other = "UserVerified"
    with pytest.raises(jsonschema.ValidationError):
        payload_validator(document, other).validate(body)


def test_a_payload_that_breaks_its_schema_is_refused(document):
    payload = events_pb2.TaskDeleted(task_id=3, title="t")
    body = event_json(
        build_event(source="task_svc", event_type="taskmgr.task.deleted", subject="3", payload=payload),
        payload,
    )
    check = payload_validator(document, "TaskDeleted")
    check.validate(body)
    for broken in (
        {**body, "data": {**body["data"], "task_id": "3"}},
        {**body, "data": {**body["data"], "@type": "type.googleapis.com/taskmgr.events.v1.UserVerified"}},
        {**body, "type": "taskmgr.task.created"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            check.validate(broken)


def test_headers_are_the_amqp_properties_the_publisher_sets(document):
    headers = document["components"]["messages"]["TaskAssigned"]["headers"]["properties"]
    assert set(amqp.PROPERTIES_FROM_ENVELOPE) <= set(headers)
    assert headers["message_id"]["description"].startswith("The envelope's `id`. UUID, unique per event")
    assert headers["content_type"] == {"const": "application/protobuf"}
    assert headers["delivery_mode"]["const"] == 2
    assert amqp.DEAD_REASON_HEADER in headers


def test_the_dead_reason_header_is_the_one_notify_svc_sets():
    from notify_svc import consumer

    assert consumer.DEAD_REASON_HEADER == amqp.DEAD_REASON_HEADER


# --- the topology ------------------------------------------------------------------------


def test_the_bindings_state_the_configured_topology():
    settings = Settings(
        environment="test",
        events_exchange="ex",
        notify_queue="q",
        notify_delivery_limit=7,
        amqp_url="amqp://guest:guest@broker:5672/prod%2Fone",
    )
    document = asyncapi.default_document(settings)
    queue = document["channels"]["q"]["bindings"]["amqp"]
    assert queue["queue"] == {
        "name": "q",
        "durable": True,
        "exclusive": False,
        "autoDelete": False,
        "vhost": "prod/one",
    }
    assert queue["x-arguments"] == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 7,
        "x-dead-letter-exchange": "ex.dlx",
    }
    assert queue["x-binding"] == {"exchange": "ex", "routingKey": "#"}
    dead = document["channels"]["q.dead"]["bindings"]["amqp"]
    assert dead["x-binding"] == {"exchange": "ex.dlx", "exchangeType": "fanout"}
    exchange = document["channels"]["task.created"]["bindings"]["amqp"]["exchange"]
    assert exchange == {
        "name": "ex",
        "type": "topic",
        "durable": True,
        "autoDelete": False,
        "vhost": "prod/one",
    }
    assert "7 times" in document["channels"]["q"]["description"]
    assert document["operations"]["consume.q"]["bindings"]["amqp"]["ack"] is True


@pytest.mark.parametrize(
    ("url", "vhost"),
    [("", "/"), ("amqp://h", "/"), ("amqp://h/", "/"), ("amqp://h/%2F", "/"), ("amqp://h/v", "v")],
)
def test_vhost_of_an_amqp_url(url, vhost):
    assert asyncapi.vhost_of(url) == vhost


# --- OpenAPI 3.0 -> JSON Schema ----------------------------------------------------------


def test_openapi_keywords_become_json_schema_ones():
    convert = asyncapi.to_json_schema
    assert convert({"type": "integer", "nullable": True}) == {"type": ["integer", "null"]}
    assert convert({"type": "string", "enum": ["a"], "nullable": True}) == {
        "type": ["string", "null"],
        "enum": ["a", None],
    }
    assert convert({"allOf": [{"$ref": "#/x"}], "nullable": True, "description": "d"}) == {
        "anyOf": [{"allOf": [{"$ref": "#/x"}], "description": "d"}, {"type": "null"}]
    }
    assert convert({"minimum": 1, "exclusiveMinimum": True, "maximum": 9, "exclusiveMaximum": False}) == {
        "exclusiveMinimum": 1,
        "maximum": 9,
    }
    assert convert({"type": "string", "example": "x"}) == {"type": "string", "examples": ["x"]}
    # Data is data: an enum value or an example named like a keyword is left alone.
    assert convert({"enum": ["nullable"], "example": {"nullable": True}}) == {
        "enum": ["nullable"],
        "examples": [{"nullable": True}],
    }
    assert convert({"type": "array", "items": {"type": "integer", "nullable": True}}) == {
        "type": "array",
        "items": {"type": ["integer", "null"]},
    }


# --- served by the edge ------------------------------------------------------------------


def test_served_at_asyncapi_json_without_a_token(client, document):
    response = client.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.json == json.loads(json.dumps(document))


def test_a_wrong_method_is_problem_json(client):
    response = client.post("/asyncapi.json")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
