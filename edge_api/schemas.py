"""JSON Schemas (OpenAPI 3.0 dialect) of messages and enums, as edge_api.json_codec
writes and reads them: integers for int64, lower-case enum strings, `nullable` for
fields that are null when unset, readOnly for OUTPUT_ONLY, required for REQUIRED."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from edge_api import options
from edge_api.json_codec import enum_json_names, is_map, is_nullable, is_well_known

Schema = dict[str, Any]

_SCALARS: dict[int, Schema] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_FIXED64: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
# Well-known types in their JSON mapping form.
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "example": "1.5s"},
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated paths."},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
}


class Schemas:
    """Component schemas for the messages and enums the operations reach."""

    def __init__(self, comments: dict[str, str]):
        self.comments = comments
        self.components: dict[str, Schema] = {}
        self._names: dict[str, str] = {}  # full proto name -> component name

    def ref(self, descriptor: Descriptor | EnumDescriptor) -> Schema:
        name = self._names.get(descriptor.full_name)
        if name is None:
            taken = descriptor.name in self._names.values()
            name = descriptor.full_name if taken else descriptor.name
            self._names[descriptor.full_name] = name
            self.components[name] = {}  # placeholder first: messages may be recursive
            if isinstance(descriptor, EnumDescriptor):
                self.components[name] = self._enum(descriptor)
            else:
                self.components[name] = self.object(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def partial_ref(self, message: Descriptor) -> Schema:
        """The message with no field required, as a PATCH body is."""
        name = f"{self.ref(message)['$ref'].rsplit('/', 1)[1]}Patch"
        if name not in self.components:
            self.components[name] = {
                key: value for key, value in self.object(message).items() if key != "required"
            }
        return {"$ref": f"#/components/schemas/{name}"}

    def query(self, field: FieldDescriptor) -> Schema:
        """A query parameter's schema: absent rather than null, repeated as a list."""
        if field.is_repeated:
            return {"type": "array", "items": self.value(field)}
        return self.value(field)

    def description(self, field: FieldDescriptor) -> str:
        return self.comments.get(field.full_name, "")

    def object(self, message: Descriptor, exclude: set[str] = frozenset()) -> Schema:
        fields = [f for f in message.fields if f.name not in exclude]
        schema: Schema = {
            "type": "object",
            "properties": {f.name: self.field(f) for f in fields},
            # Unknown fields are refused (400), so the schema says so.
            "additionalProperties": False,
        }
        required = [f.name for f in fields if options.is_required(f)]
        if required:
            schema["required"] = required
        if self.comments.get(message.full_name):
            schema["description"] = self.comments[message.full_name]
        return schema

    def field(self, field: FieldDescriptor, with_docs: bool = True) -> Schema:
        if is_map(field):
            schema = {
                "type": "object",
                "additionalProperties": self.value(field.message_type.fields_by_name["value"]),
            }
        elif field.is_repeated:
            schema = {"type": "array", "items": self.value(field)}
        else:
            schema = self.value(field)
            if is_nullable(field):
                schema = _with(schema, nullable=True)
        if with_docs and self.description(field):
            schema = _with(schema, description=self.description(field))
        if with_docs and options.is_output_only(field):
            schema = _with(schema, readOnly=True)
        return schema

    def value(self, field: FieldDescriptor) -> Schema:
        """The schema of one value of the field (an item, if the field is repeated)."""
        if field.enum_type is not None:
            return self.ref(field.enum_type)
        message = field.message_type
        if message is None:
            return dict(_SCALARS[field.type])
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        if is_well_known(message):  # wrappers: the wrapped value, or null
            return _with(self.value(message.fields_by_name["value"]), nullable=True)
        return self.ref(message)

    def _enum(self, enum: EnumDescriptor) -> Schema:
        schema: Schema = {"type": "string", "enum": enum_json_names(enum)}
        if self.comments.get(enum.full_name):
            schema["description"] = self.comments[enum.full_name]
        return schema


def _with(schema: Schema, **extra: Any) -> Schema:
    """Adds keywords to a schema; a $ref ignores its siblings in 3.0, so it is wrapped."""
    if "$ref" in schema:
        return {"allOf": [schema], **extra}
    return {**schema, **extra}
