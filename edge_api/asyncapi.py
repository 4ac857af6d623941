"""The AsyncAPI 3.0.0 document of the events, generated from protos/taskmgr/events/v1/.

What it states, and where each part comes from:
- channels: one per event type, its address the routing key on the topic exchange
  (common.events.routing_key), plus notify_svc's queue and its dead-letter queue, with
  their AMQP bindings 0.3.0 (exchange, queue, delivery limit, dead-letter exchange) from
  common.amqp.Topology, the description `declare_topology` declares;
- messages: one per payload message of the package, found by the convention
  events.proto states: a payload message's leading comment begins with its event type
  (`// taskmgr.task.assigned ...`). A new such message is in the document with no
  code here;
- payloads: the envelope `taskmgr.events.v1.Event` with `data` holding the typed
  payload, as JSON Schema (draft-07, AsyncAPI's default schema format) converted from
  edge_api.schemas' OpenAPI 3.0 schemas: one mapping of messages to JSON for REST and
  events (docs/rest-contract.md: int64 as integers, lower-case enum names, null when
  unset). On the wire the body is the binary protobuf (`application/protobuf`);
- headers: the AMQP properties copied from the envelope
  (common.amqp.PROPERTIES_FROM_ENVELOPE), described by the envelope fields' comments.

Served at /asyncapi.json (public, like /swagger.json). Built once at start: a proto that
does not fit the convention stops the edge rather than serving a document that says less.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Flask, jsonify
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FileDescriptor

from common.amqp import CONTENT_TYPE, DEAD_REASON_HEADER, DELIVERY_MODE, PROPERTIES_FROM_ENVELOPE, Topology
from common.events import TYPE_PREFIX, routing_key
from common.settings import Settings
from edge_api.contract import DEFAULT_DESCRIPTOR_SET, load_comments
from edge_api.schemas import Schema, Schemas
from taskmgr.events.v1 import events_pb2

ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"
EVENTS_PACKAGE = "taskmgr.events.v1"
ENVELOPE: Descriptor = events_pb2.Event.DESCRIPTOR
ANY_TYPE_URL_PREFIX = "type.googleapis.com/"
# The event type at the start of a payload message's comment: taskmgr.<domain>.<name>.
_EVENT_TYPE = re.compile(re.escape(TYPE_PREFIX) + r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*(?![\w.])")
_SCHEMAS_REF = "#/components/schemas/"
# Keywords whose value holds schemas (JSON Schema validation draft-07 sections 6.4-6.7).
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_VALUES = ("items", "additionalProperties", "not")


@dataclass(frozen=True)
class EventType:
    """One event: its type (`taskmgr.task.assigned`) and its payload message."""

    type: str
    payload: Descriptor

    @property
    def routing_key(self) -> str:
        return routing_key(self.type)


def event_files(descriptor_set: Path = DEFAULT_DESCRIPTOR_SET) -> list[FileDescriptor]:
    """Every proto file of the events package in the descriptor set (`make proto`), as the
    generated modules register them: a new file there needs no change here."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    names = [file.name.removesuffix(".proto") for file in files if file.package == EVENTS_PACKAGE]
    return [importlib.import_module(name.replace("/", ".") + "_pb2").DESCRIPTOR for name in names]


def event_types(files: Iterable[FileDescriptor], comments: dict[str, str]) -> list[EventType]:
    """The payload messages of `files`: those whose comment begins with an event type.
    Raises ValueError when two messages claim one type."""
    found: dict[str, EventType] = {}
    for file in files:
        for message in file.message_types_by_name.values():
            match = _EVENT_TYPE.match(comments.get(message.full_name, ""))
            if match is None or message is ENVELOPE:
                continue
            if match[0] in found:
                other = found[match[0]].payload.full_name
                raise ValueError(f"{message.full_name} and {other} are both {match[0]}")
            found[match[0]] = EventType(match[0], message)
    return sorted(found.values(), key=lambda event: event.type)


def build_document(
    topology: Topology,
    files: Sequence[FileDescriptor],
    comments: dict[str, str],
    *,
    vhost: str = "/",
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document (a JSON-ready dict) of the events in `files`, carried
    on `topology`. `comments` are the protos' leading comments by full name."""
    events = event_types(files, comments)
    schemas = Schemas(comments)
    schemas.ref(ENVELOPE)
    envelope = schemas.components[ENVELOPE.name]
    envelope["properties"]["data"] = _any_schema(comments.get(ENVELOPE.fields_by_name["data"].full_name, ""))
    messages = {event.payload.name: _message(event, schemas, comments) for event in events}
    exchange = {
        "name": topology.exchange, "type": "topic", "durable": True, "autoDelete": False, "vhost": vhost
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event in events:
        name = event.payload.name
        channels[event.routing_key] = {
            "address": event.routing_key,
            "title": event.type,
            "description": f"Events of type {event.type}, published to the topic exchange "
                           f"{topology.exchange} with this routing key.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {"amqp": {"is": "routingKey", "exchange": exchange,
                                  "bindingVersion": AMQP_BINDING_VERSION}},
        }
        operations[f"publish.{event.routing_key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{event.routing_key}"},
            "messages": [{"$ref": f"#/channels/{event.routing_key}/messages/{name}"}],
            "summary": f"The producing service's outbox relay publishes {event.type}.",
            "description": "Published after the change it reports has committed (transactional "
                           "outbox), with publisher confirms and `mandatory`: at least once, "
                           "so a consumer deduplicates on the envelope's `id`.",
            "bindings": {"amqp": {"deliveryMode": DELIVERY_MODE, "mandatory": True,
                                  "bindingVersion": AMQP_BINDING_VERSION}},
        }
    every_message = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    channels[topology.queue] = {
        "address": topology.queue,
        "title": "notify_svc's queue",
        "description": (
            f"A quorum queue bound to {topology.exchange} with `{topology.binding_key}`: every "
            f"event. A message redelivered more than {topology.delivery_limit} times "
            f"(`x-delivery-limit`), or rejected as one that can never be handled, goes "
            f"through the dead-letter exchange {topology.dead_exchange} to {topology.dead_queue}."
        ),
        "messages": every_message,
        "bindings": {"amqp": {
            "is": "queue",
            "queue": _queue(topology.queue, vhost),
            "bindingVersion": AMQP_BINDING_VERSION,
            "x-binding": {"exchange": topology.exchange, "routingKey": topology.binding_key},
            "x-arguments": topology.queue_arguments,
        }},
    }
    channels[topology.dead_queue] = {
        "address": topology.dead_queue,
        "title": "Dead letters",
        "description": (
            f"Events notify_svc could not handle, kept for inspection and replay; bound to the "
            f"fanout exchange {topology.dead_exchange}. The consumer's reason is in the header "
            f"`{DEAD_REASON_HEADER}`, the broker's account in `x-death`."
        ),
        "messages": every_message,
        "bindings": {"amqp": {
            "is": "queue",
            "queue": _queue(topology.dead_queue, vhost),
            "bindingVersion": AMQP_BINDING_VERSION,
            "x-binding": {"exchange": topology.dead_exchange, "exchangeType": "fanout"},
            "x-arguments": topology.dead_queue_arguments,
        }},
    }
    operations[f"consume.{topology.queue}"] = {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{topology.queue}"},
        "summary": "notify_svc handles every event (those without a rule are acknowledged).",
        "description": "Acknowledged after the handling committed; a redelivered event id is "
                       "acknowledged without a second notification.",
        "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "taskmgr events",
            "version": EVENTS_PACKAGE.rsplit(".", 1)[-1],
            "description": "Generated from the proto contracts in protos/taskmgr/events/. "
                           + comments.get(ENVELOPE.full_name, "")
                           + " With no broker configured (AMQP_URL empty) the producers' relays hand "
                           "the same envelopes to notify_svc over gRPC instead.",
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {name: to_json_schema(schema) for name, schema in schemas.components.items()},
        },
    }


def _message(event: EventType, schemas: Schemas, comments: dict[str, str]) -> dict[str, Any]:
    description = comments.get(event.payload.full_name, "")
    # The comment after its leading type ("taskmgr.user.otp_requested: a code to email. ...").
    said = description.removeprefix(event.type).lstrip(":").strip()
    payload_ref = schemas.ref(event.payload)
    return {
        "name": event.type,
        "title": event.payload.name,
        "summary": said.split(". ")[0].rstrip(".") or f"A {event.type} event.",
        "description": description,
        "contentType": CONTENT_TYPE,
        "headers": _headers(event, comments),
        "payload": {
            "allOf": [{"$ref": _SCHEMAS_REF + ENVELOPE.name}],
            "properties": {
                "type": {"const": event.type},
                "data": {
                    "allOf": [payload_ref],
                    "properties": {"@type": {"const": ANY_TYPE_URL_PREFIX + event.payload.full_name}},
                },
            },
        },
        "correlationId": {
            "description": "The request id of the call that caused the event.",
            "location": "$message.header#/correlation_id",
        },
        "x-protobuf": {"envelope": ENVELOPE.full_name, "payload": event.payload.full_name},
    }


def _headers(event: EventType, comments: dict[str, str]) -> Schema:
    """The AMQP properties and headers a consumer sees with every event of this type."""
    properties: Schema = {}
    for name, field in PROPERTIES_FROM_ENVELOPE.items():
        description = comments.get(ENVELOPE.fields_by_name[field].full_name, "")
        described = f"The envelope's `{field}`. {description}".strip()
        properties[name] = {"type": "string", "description": described}
    properties["type"]["const"] = event.type
    properties["content_type"] = {"const": CONTENT_TYPE}
    properties["delivery_mode"] = {"const": DELIVERY_MODE, "description": "Persistent."}
    properties[DEAD_REASON_HEADER] = {
        "type": "string",
        "description": "Only on a dead letter the consumer rejected: why it can never be handled.",
    }
    required = [name for name in properties if name not in ("correlation_id", DEAD_REASON_HEADER)]
    return {"type": "object", "properties": properties, "required": required}


def _queue(name: str, vhost: str) -> dict[str, Any]:
    return {"name": name, "durable": True, "exclusive": False, "autoDelete": False, "vhost": vhost}


def _any_schema(description: str) -> Schema:
    # google.protobuf.Any in the proto3 JSON mapping: the packed message's fields beside "@type".
    schema: Schema = {
        "type": "object",
        "required": ["@type"],
        "properties": {"@type": {"type": "string", "description": "type.googleapis.com/<full name>."}},
    }
    return {**schema, "description": description} if description else schema


def to_json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema (edge_api.schemas) as JSON Schema draft-07: `nullable` becomes a
    "null" type (or an anyOf with it, beside a $ref), the boolean exclusive bounds of
    draft-04 the numeric ones of draft-06+, `example` becomes `examples`. Nested schemas are
    converted too; everything else is the same in both dialects."""
    if not isinstance(schema, dict):
        return schema
    out: Schema = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS:
            out[key] = {name: to_json_schema(item) for name, item in value.items()}
        elif key in _SCHEMA_LISTS:
            out[key] = [to_json_schema(item) for item in value]
        elif key in _SCHEMA_VALUES and isinstance(value, dict):
            out[key] = to_json_schema(value)
        else:
            out[key] = value  # a keyword's data (enum, example, required...): as it is
    if "example" in out:
        out["examples"] = [out.pop("example")]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(bound) is True:
            out[bound] = out.pop(limit)
        elif out.get(bound) is False:
            del out[bound]
    if out.pop("nullable", False):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            # allOf [$ref] beside other keywords (edge_api.schemas._with): the value, or null.
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def vhost_of(amqp_url: str) -> str:
    """The virtual host an AMQP URL names (RabbitMQ's URI spec: the path, unquoted; "/" when
    there is none)."""
    path = urlsplit(amqp_url).path if amqp_url else ""
    return unquote(path[1:]) if len(path) > 1 else "/"


def default_document(settings: Settings) -> dict[str, Any]:
    """The document of the taskmgr events on the topology these settings configure."""
    topology = Topology(settings.events_exchange, settings.notify_queue, settings.notify_delivery_limit)
    return build_document(
        topology, event_files(), load_comments(DEFAULT_DESCRIPTOR_SET), vhost=vhost_of(settings.amqp_url)
    )


def register_document(app: Flask, document: dict[str, Any]) -> None:
    """GET /asyncapi.json, public: the events' contract, beside /swagger.json."""

    @app.get("/asyncapi.json")
    def asyncapi_json():  # noqa: ANN202
        return jsonify(document)
