"""Messages <-> JSON with the conventions of the public REST contract (rest-contract.md).

The proto3 JSON mapping differs from the contract on purpose, so this walks the
descriptors itself instead of using json_format for ordinary messages:
- snake_case proto field names;
- 64-bit integers are JSON numbers, not strings (clients compare ids as integers);
- enums are lower-case names without the enum prefix (TASK_STATUS_IN_PROGRESS ->
  "in_progress"); input also accepts the full name, in any case;
- an unset `optional` field or message field is `null`, never missing, so every key of
  the documented schema is always present.
Well-known types (Timestamp, Duration, FieldMask, Struct, ...) keep their standard JSON
form through json_format: RFC 3339 times are exactly what the contract asks for.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from edge_api.options import is_output_only

FieldErrors = dict[str, list[str]]

_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOATS = (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE)


class InvalidFields(ValueError):
    """Request values that do not fit the message; reported as a 400 with `errors`."""

    def __init__(self, errors: FieldErrors):
        super().__init__("invalid fields: " + ", ".join(sorted(errors)))
        self.errors = errors


def is_well_known(descriptor: Descriptor) -> bool:
    return descriptor.full_name.startswith("google.protobuf.")


@cache
def is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def is_nullable(field: FieldDescriptor) -> bool:
    """Whether the contract shows the field as null when unset."""
    return not field.is_repeated and field.has_presence


@cache
def enum_prefix(enum: EnumDescriptor) -> str:
    """TaskStatus -> "TASK_STATUS_", the prefix the buf style guide puts on every value."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", enum.name).upper() + "_"


@cache
def _enum_json_by_number(enum: EnumDescriptor) -> dict[int, str]:
    prefix = enum_prefix(enum)
    return {value.number: value.name.removeprefix(prefix).lower() for value in enum.values}


def enum_json_names(enum: EnumDescriptor) -> list[str]:
    return list(_enum_json_by_number(enum).values())


# --- message -> JSON ---------------------------------------------------------------
# Every response goes through here, so the descriptor walk is done once per message type:
# each type gets an encoder, a list of (field name, value -> JSON) pairs built on first use.

Encoder = Callable[[Message], dict[str, Any]]


def message_to_json(message: Message) -> dict[str, Any]:
    return _encoder(message.DESCRIPTOR)(message)


@cache
def _encoder(descriptor: Descriptor) -> Encoder:
    plan = [(field.name, _field_encoder(field)) for field in descriptor.fields]

    def encode(message: Message) -> dict[str, Any]:
        return {name: to_json(message) for name, to_json in plan}

    return encode


def _field_encoder(field: FieldDescriptor) -> Callable[[Message], Any]:
    name = field.name
    if is_map(field):
        to_json = _value_encoder(field.message_type.fields_by_name["value"])
        return lambda message: {str(key): to_json(item) for key, item in getattr(message, name).items()}
    to_json = _value_encoder(field)
    if field.is_repeated:
        return lambda message: [to_json(item) for item in getattr(message, name)]
    if field.has_presence:
        return lambda message: to_json(getattr(message, name)) if message.HasField(name) else None
    return lambda message: to_json(getattr(message, name))


def _value_encoder(field: FieldDescriptor) -> Callable[[Any], Any]:
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        if field.message_type.full_name in _JSON_STRING_TYPES:
            return lambda value: value.ToJsonString()
        if is_well_known(field.message_type):
            return json_format.MessageToDict
        return lambda value: _encoder(field.message_type)(value)  # late: types may nest
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        names = _enum_json_by_number(field.enum_type)
        # An enum value newer than this edge's contract still reaches the client.
        return lambda value: names.get(value, value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return lambda value: base64.b64encode(value).decode()
    return _identity


def _identity(value: Any) -> Any:
    return value


# Well-known types whose standard JSON form is a string their own ToJsonString gives.
_JSON_STRING_TYPES = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)


# --- JSON -> message ---------------------------------------------------------------


def json_to_message(
    data: Any, message: Message, *, location: str = "", reject_read_only: bool = True
) -> None:
    """Fills `message` from a JSON object; unknown and (optionally) read-only keys are
    errors. Raises InvalidFields naming every bad field, by its dotted path."""
    errors: FieldErrors = {}
    _fill(data, message, location, reject_read_only, errors)
    if errors:
        raise InvalidFields(errors)


def _fill(data: Any, message: Message, location: str, reject_read_only: bool, errors: FieldErrors) -> None:
    if not isinstance(data, dict):
        errors.setdefault(location or "body", []).append("must be a JSON object")
        return
    fields = message.DESCRIPTOR.fields_by_name
    for key, value in data.items():
        where = f"{location}.{key}" if location else key
        field = fields.get(key)
        if field is None:
            errors.setdefault(where, []).append("unknown field")
        elif reject_read_only and is_output_only(field):
            errors.setdefault(where, []).append("read-only")
        elif value is not None:  # null leaves the field unset: its default, or absent
            try:
                _set_json(message, field, value, where, reject_read_only, errors)
            except ValueError as exc:
                errors.setdefault(where, []).append(str(exc))


def _set_json(
    message: Message,
    field: FieldDescriptor,
    value: Any,
    where: str,
    reject_read_only: bool,
    errors: FieldErrors,
) -> None:
    target = getattr(message, field.name)
    if is_map(field):
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object")
        key_field, value_field = field.message_type.fields
        for key, item in value.items():
            converted_key = scalar_from_string(key_field, key)
            if value_field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                _fill_message(item, target[converted_key], f"{where}.{key}", reject_read_only, errors)
            else:
                target[converted_key] = _scalar_from_json(value_field, item)
    elif field.is_repeated:
        if not isinstance(value, list):
            raise ValueError("must be a JSON array")
        for index, item in enumerate(value):
            if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                _fill_message(item, target.add(), f"{where}[{index}]", reject_read_only, errors)
            else:
                target.append(_scalar_from_json(field, item))
    elif field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        _fill_message(value, target, where, reject_read_only, errors)
    else:
        setattr(message, field.name, _scalar_from_json(field, value))


def _fill_message(
    value: Any, target: Message, where: str, reject_read_only: bool, errors: FieldErrors
) -> None:
    if is_well_known(target.DESCRIPTOR):
        try:
            json_format.ParseDict(value, target)
        except json_format.ParseError as exc:
            errors.setdefault(where, []).append(_well_known_hint(target.DESCRIPTOR, exc))
        return
    target.SetInParent()  # `{}` still sets the field: presence is meaningful
    _fill(value, target, where, reject_read_only, errors)


def _well_known_hint(descriptor: Descriptor, exc: Exception) -> str:
    if descriptor.full_name == "google.protobuf.Timestamp":
        return "must be an RFC 3339 date-time, e.g. 2030-01-31T12:00:00Z"
    return f"invalid value: {exc}"


def _scalar_from_json(field: FieldDescriptor, value: Any) -> Any:
    cpp = field.cpp_type
    if cpp in _INT_RANGES:
        # The proto3 JSON mapping allows integers as strings; accept both.
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        low, high = _INT_RANGES[cpp]
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value
    if cpp in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        return float(value)
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return scalar_from_string(field, value)


def scalar_from_string(field: FieldDescriptor, text: str) -> Any:
    """A scalar from text: path variables, query parameters, headers, map keys."""
    cpp = field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        return _enum_number(field.enum_type, text)
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            try:
                return base64.b64decode(text, validate=True)
            except binascii.Error:
                raise ValueError("must be base64") from None
        return text
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError("must be true or false")
        return lowered in ("true", "1")
    if cpp in _FLOATS:
        try:
            return float(text)
        except ValueError:
            raise ValueError("must be a number") from None
    if not re.fullmatch(r"-?\d+", text.strip()):
        raise ValueError("must be an integer")
    return _scalar_from_json(field, int(text))


def _enum_number(enum: EnumDescriptor, text: str) -> int:
    wanted = text.strip().upper()
    prefix = enum_prefix(enum)
    for value in enum.values:
        if wanted in (value.name, value.name.removeprefix(prefix)):
            return value.number
    raise ValueError("must be one of: " + ", ".join(enum_json_names(enum)))
