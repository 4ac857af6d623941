"""JSON Schemas (OpenAPI 3.0 dialect) of messages and enums, as edge_api.json_codec
writes and reads them: integers for int64, lower-case enum strings without the
`*_UNSPECIFIED` placeholder, `nullable` for fields that are null when unset.

Every message has two shapes, because typed clients generate one model per schema:
- a response schema (`Task`): every field `required`, since the codec always writes
  every key (null when unset); no `additionalProperties: false`, so a field added
  later does not break a strict client;
- a request schema (`TaskInput`, `TaskPatch`, `RegisterRequest`): no OUTPUT_ONLY
  field (AIP-203), `required` from REQUIRED, the limits of the field's buf.validate
  rules (`minLength`, `maxLength`, `pattern`, `format`, `minimum`, `maximum`, `enum`)
  and an `example` built from the rules' examples, and `additionalProperties: false`
  because the edge refuses unknown fields (400).
The rules are the ones the services enforce (common.contract_rules): one source.
"""

from __future__ import annotations

from typing import Any

from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from common.contract_rules import field_rules, is_required
from edge_api import options
from edge_api.json_codec import (
    enum_json_names,
    enum_prefix,
    is_clamped_above,
    is_map,
    is_nullable,
    is_placeholder,
    is_well_known,
)

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
# buf.validate string formats that JSON Schema names (OpenAPI 3.0 section 4.7.13.4 and
# JSON Schema validation draft section 7.3).
_STRING_FORMATS = {"email": "email", "uri": "uri", "uuid": "uuid", "hostname": "hostname",
                   "ipv4": "ipv4", "ipv6": "ipv6"}
# Rule fields that say nothing a schema can: how to evaluate, not what is valid.
_NEUTRAL_RULES = {"ignore", "required", "defined_only", "example"}


class Schemas:
    """Component schemas for the messages and enums the operations reach."""

    def __init__(self, comments: dict[str, str]):
        self.comments = comments
        self.components: dict[str, Schema] = {}
        self._names: dict[tuple, str] = {}  # (proto full name, shape...) -> component name

    # --- components ---------------------------------------------------------------

    def ref(self, descriptor: Descriptor | EnumDescriptor) -> Schema:
        """The response shape of a message, or an enum."""
        if isinstance(descriptor, EnumDescriptor):
            return self._component((descriptor.full_name,), descriptor.name, lambda: self._enum(descriptor))
        return self._component((descriptor.full_name,), descriptor.name, lambda: self._output(descriptor))

    def input_ref(
        self, message: Descriptor, exclude: frozenset[str] = frozenset(), partial: bool = False
    ) -> Schema:
        """The request shape of a message: named after it when it is a request message,
        `<Name>Input` (or `<Name>Patch`, with nothing required, for PATCH) otherwise."""
        suffix = "Patch" if partial else ("" if message.name.endswith("Request") else "Input")
        key = (message.full_name, "input", partial, tuple(sorted(exclude)))
        return self._component(key, message.name + suffix, lambda: self._input(message, exclude, partial))

    def _component(self, key: tuple, wanted: str, build) -> Schema:  # noqa: ANN001
        name = self._names.get(key)
        if name is None:
            name = wanted
            while name in self.components:  # two shapes or packages with one name
                name += "_"
            self._names[key] = name
            self.components[name] = {}  # placeholder first: messages may be recursive
            self.components[name] = build()
        return {"$ref": f"#/components/schemas/{name}"}

    # --- objects ------------------------------------------------------------------

    def _output(self, message: Descriptor) -> Schema:
        schema: Schema = {
            "type": "object",
            "properties": {f.name: self._output_field(f) for f in message.fields},
            "required": [f.name for f in message.fields],
        }
        if not message.fields:
            del schema["required"]  # 3.0 wants a non-empty list
        return self._described(schema, message.full_name)

    def _input(self, message: Descriptor, exclude: frozenset[str], partial: bool) -> Schema:
        fields = [f for f in message.fields if f.name not in exclude and not options.is_output_only(f)]
        schema: Schema = {
            "type": "object",
            "properties": {f.name: self.input_field(f) for f in fields},
            "additionalProperties": False,  # unknown fields are refused (400)
        }
        required = [] if partial else [f.name for f in fields if is_required(f)]
        if required:
            schema["required"] = required
        # What Swagger UI's "Try it out" sends: only values the contract vouches for (its
        # own fill-ins, "string" and 0, may break a rule), so {} when there are none.
        examples = {f.name: example for f in fields if (example := self._example(f)) is not None}
        if all(name in examples for name in required):
            schema["example"] = examples
        return self._described(schema, message.full_name)

    def _described(self, schema: Schema, full_name: str) -> Schema:
        if self.comments.get(full_name):
            schema["description"] = self.comments[full_name]
        return schema

    # --- fields -------------------------------------------------------------------

    def _output_field(self, field: FieldDescriptor) -> Schema:
        schema = self._shape(field, self._output_value)
        if options.is_output_only(field):
            schema = _with(schema, readOnly=True)
        return self._documented(schema, field)

    def input_field(self, field: FieldDescriptor) -> Schema:
        """A request field: its value's schema with the field's rules, null if unset."""
        return self._documented(self._shape(field, self.input_value), field)

    def query(self, field: FieldDescriptor) -> Schema:
        """A query, path or header parameter's schema: absent rather than null, a list
        when repeated, with the field's rules. No example: Swagger UI's "Try it out" fills
        parameters in with theirs, and a filter nobody chose changes the answer."""
        value = {key: item for key, item in self.input_value(field).items() if key != "example"}
        if field.is_repeated:
            return {"type": "array", "items": value}
        return value

    def description(self, field: FieldDescriptor) -> str:
        return self.comments.get(field.full_name, "")

    def _shape(self, field: FieldDescriptor, value) -> Schema:  # noqa: ANN001
        if is_map(field):
            values = value(field.message_type.fields_by_name["value"])
            return {"type": "object", "additionalProperties": values}
        if field.is_repeated:
            return {"type": "array", "items": value(field), **_repeated_limits(field)}
        schema = value(field)
        return _with(schema, nullable=True) if is_nullable(field) else schema

    def _documented(self, schema: Schema, field: FieldDescriptor) -> Schema:
        return _with(schema, description=self.description(field)) if self.description(field) else schema

    def _output_value(self, field: FieldDescriptor) -> Schema:
        message = field.message_type
        if message is not None and not is_well_known(message):
            return self.ref(message)
        return self._plain_value(field)

    def input_value(self, field: FieldDescriptor) -> Schema:
        """One value of a request field (an item, if repeated), with its rules."""
        message = field.message_type
        if message is not None and not is_well_known(message):
            return self.input_ref(message)
        schema = self._plain_value(field)
        limits = _limits(field)
        if is_clamped_above(field):  # any larger integer is accepted, clamped
            schema.pop("format", None)
            limits.pop("maximum", None)
        if limits and "$ref" in schema:
            return {"allOf": [schema], **limits}
        return {**schema, **limits}

    def _plain_value(self, field: FieldDescriptor) -> Schema:
        if field.enum_type is not None:
            return self.ref(field.enum_type)
        message = field.message_type
        if message is None:
            return dict(_SCALARS[field.type])
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        # wrappers: the wrapped value, or null
        return _with(self._plain_value(message.fields_by_name["value"]), nullable=True)

    def _example(self, field: FieldDescriptor) -> Any:
        """The field's first buf.validate example in its JSON form, or None."""
        rules = field_rules(field)
        kind = rules.WhichOneof("type") if rules else None
        if kind is None or kind == "repeated" or not getattr(rules, kind).example:
            return None
        example = getattr(rules, kind).example[0]
        if kind == "enum":
            numbers = (value.number for value in field.enum_type.values)
            return dict(zip(numbers, _all_json_names(field.enum_type), strict=True)).get(example)
        if kind == "timestamp":
            return example.ToJsonString()
        return example

    def _enum(self, enum: EnumDescriptor) -> Schema:
        schema: Schema = {"type": "string", "enum": enum_json_names(enum)}
        return self._described(schema, enum.full_name)


def _all_json_names(enum: EnumDescriptor) -> list[str]:
    return [value.name.removeprefix(enum_prefix(enum)).lower() for value in enum.values]


def _limits(field: FieldDescriptor) -> Schema:
    """The JSON Schema keywords of the field's buf.validate rules. A rule the document
    cannot state is an error at start: the document never silently says less than the
    services enforce."""
    rules = field_rules(field)
    kind = rules.WhichOneof("type") if rules else None
    if kind is None or kind == "repeated":
        return {}
    typed = getattr(rules, kind)
    limits: Schema = {}
    for rule, value in typed.ListFields():
        name = rule.name
        if name in _NEUTRAL_RULES:
            continue
        if name == "min_len":
            limits["minLength"] = value
        elif name == "max_len":
            limits["maxLength"] = value
        elif name == "len":
            limits["minLength"] = limits["maxLength"] = value
        elif name == "pattern":
            limits["pattern"] = value
        elif name in _STRING_FORMATS and value is True:
            limits["format"] = _STRING_FORMATS[name]
        elif name == "in":
            limits["enum"] = _enum_values(field, kind, value)
        elif name == "not_in":
            excluded = _enum_values(field, kind, value)
            if excluded:  # an enum's placeholder is never offered anyway
                limits["not"] = {"enum": excluded}
        elif name == "const":
            limits["enum"] = _enum_values(field, kind, [value])
        elif name in ("gte", "gt"):
            limits["minimum"] = value
            if name == "gt":
                limits["exclusiveMinimum"] = True
        elif name in ("lte", "lt"):
            limits["maximum"] = value
            if name == "lt":
                limits["exclusiveMaximum"] = True
        else:
            raise ValueError(f"{field.full_name}: buf.validate rule {kind}.{name} has no OpenAPI form")
    if kind == "string" and rules.ignore == validate_pb2.IGNORE_IF_ZERO_VALUE:
        _admit_empty(limits)
    example = typed.example[0] if kind not in ("enum", "timestamp") and len(typed.example) else None
    if example is not None:
        limits["example"] = example
    return limits


def _admit_empty(limits: Schema) -> None:
    """A string whose rules are skipped when it is empty (IGNORE_IF_ZERO_VALUE): `""` is
    accepted as unset (`?assigned_to=` filters nothing), so the document admits it too."""
    if "pattern" in limits:
        limits["pattern"] = "^$|" + limits["pattern"]
    if "enum" in limits and "" not in limits["enum"]:
        limits["enum"] = [*limits["enum"], ""]
    limits.pop("minLength", None)


def _enum_values(field: FieldDescriptor, kind: str, values) -> list:  # noqa: ANN001
    """Rule values as JSON shows them: an enum's numbers as its lower-case names, without
    the `*_UNSPECIFIED` placeholder, which the surface never shows."""
    if kind != "enum":
        return list(values)
    enum = field.enum_type
    names = {v.number: name for v, name in zip(enum.values, _all_json_names(enum), strict=True)
             if not is_placeholder(v)}
    return [names[number] for number in values if number in names]


def _repeated_limits(field: FieldDescriptor) -> Schema:
    rules = field_rules(field)
    if rules is None or rules.WhichOneof("type") != "repeated":
        return {}
    limits: Schema = {}
    if rules.repeated.HasField("min_items"):
        limits["minItems"] = rules.repeated.min_items
    if rules.repeated.HasField("max_items"):
        limits["maxItems"] = rules.repeated.max_items
    if rules.repeated.unique:
        limits["uniqueItems"] = True
    return limits


def _with(schema: Schema, **extra: Any) -> Schema:
    """Adds keywords to a schema; a $ref ignores its siblings in 3.0, so it is wrapped."""
    if "$ref" in schema:
        return {"allOf": [schema], **extra}
    return {**schema, **extra}

