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
form through json_format, except that a Timestamp is read by the one strict RFC 3339
parser (common.rfc3339) the services use too.

Input is untrusted: `decode_json` and the converters below are total. Whatever bytes or
values arrive, they raise only MalformedJson or InvalidFields (both a 400 problem), never
RecursionError, OverflowError, UnicodeError or a protobuf error (a 500 before).

What a value looks like on the wire, decided once here (rest-contract.md, RFC 8259):
- a body is UTF-8 JSON text (RFC 8259 section 8.1), nested at most MAX_DEPTH deep, with
  unique member names (section 4), no NaN or Infinity, no lone surrogate escapes (8.2);
- an integer is a JSON integer, a JSON number with an integral value below 2**53 (from
  there on 2**53 + 1 reads as 2**53), or text `-?(0|[1-9][0-9]*)` in ASCII digits: no `+`,
  spaces, `_`, leading zeros or other scripts' digits (Python's int() takes all those);
- a number as text follows the JSON number grammar and is finite;
- a boolean is JSON true/false, or the text `true`/`false`;
- an enum is its lower-case name or its full proto name, in ASCII, any case;
- bytes are canonical base64 (RFC 4648 section 4: padded, zero padding bits);
- a date-time is RFC 3339 section 5.6 with an offset (common.rfc3339).
AIP-158: a `page_size` above its type's range is clamped to it (the service then
clamps it to its own maximum), never refused; a negative one is refused by the service.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from common import rfc3339
from edge_api import update_mask
from edge_api.options import is_output_only

FieldErrors = dict[str, list[str]]

_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOATS = (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE)
MAX_DEPTH = 32  # arrays and objects inside each other; `{}` alone is depth 1
_MAX_EXACT_FLOAT_INT = 2**53  # below it, a double that reads as an integer is that integer
_INTEGER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]{0,19})")  # 20 digits: all of uint64
_NUMBER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# AIP-158 fields: larger than the maximum is clamped, not refused.
_CLAMPED_ABOVE = frozenset({"page_size"})


def is_clamped_above(field: FieldDescriptor) -> bool:
    """Whether any integer above the field's range is accepted (and clamped): its
    document then states no maximum or integer format (AIP-158 page sizes)."""
    return field.name in _CLAMPED_ABOVE
# What a converter of untrusted values may raise (json_format, protobuf setters, int(),
# float(), datetime): each becomes a field error, never a 500.
CONVERSION_ERRORS = (ValueError, TypeError, OverflowError, RecursionError, json_format.ParseError)


class MalformedJson(ValueError):
    """A body that is not JSON text we accept (see the module docstring); a 400."""


def decode_json(data: bytes) -> Any:
    """The JSON value of a request body. Raises MalformedJson, and nothing else, for
    anything RFC 8259 does not allow or this module refuses (depth, duplicates, ...).

    The standard library's parser (C scanner) with hooks, not orjson: its depth limit is
    fixed at 1024 with no option for ours (32), it does not report duplicate names (nor
    does msgspec), and a request body (64 KiB at most) is no hot spot. Measured (timeit,
    best of 5): a 300-byte create body 9 us against json.loads' 3 us; an 18 KB body of
    600 objects and arrays 1.0 ms against 0.15 ms (the hooks and the depth walk).
    """
    try:
        text = data.decode("utf-8")  # RFC 8259 section 8.1; json.loads would guess UTF-16/32
        # The C scanner stops at the interpreter's recursion limit with RecursionError;
        # the walk below then holds the depth to MAX_DEPTH.
        value = json.loads(
            text,
            object_pairs_hook=_unique_members,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedJson(f"The body is nested more than {MAX_DEPTH} levels deep.") from None
    except UnicodeDecodeError:
        raise MalformedJson("The body is not UTF-8 text.") from None
    except _Refused as exc:
        raise MalformedJson(f"The body is not acceptable JSON: {exc}") from None
    except (ValueError, OverflowError):  # int() of more than 4300 digits, for one
        raise MalformedJson("The body is not acceptable JSON: a number is too long.") from None
    # Fewer brackets than the limit cannot nest deeper than it (counted at C speed).
    if isinstance(value, dict | list) and text.count("[") + text.count("{") > MAX_DEPTH:
        _check_depth(value)
    _check_surrogates(text, value)
    return value


class _Refused(ValueError):
    """A JSON value the hooks below refuse, with a message for the client."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        # RFC 8259 section 4: with duplicate names, implementations disagree on the value.
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _Refused(f"the member name {name[:100]!r} occurs twice")
            seen.add(name)
    return members


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:40]} is too large")
    return value


def _check_depth(value: Any) -> None:
    """Arrays and objects at most MAX_DEPTH inside each other, without recursion."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise MalformedJson(f"The body is nested more than {MAX_DEPTH} levels deep.")
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def _check_surrogates(text: str, value: Any) -> None:
    """No lone surrogate (RFC 8259 section 8.2) in any string or name: text that decoded as
    UTF-8 can only get one from a \\uD800-\\uDFFF escape, so the value is only re-encoded
    (at C speed) when the text has such an escape."""
    if not _SURROGATE_ESCAPE.search(text):
        return
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedJson("The body has a lone surrogate (\\uD800-\\uDFFF) in a string.") from None


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
    """The values a client may send and see: never the `*_UNSPECIFIED` placeholder, which
    only means "not set" in proto3 (buf style guide, ENUM_ZERO_VALUE_SUFFIX)."""
    names = _enum_json_by_number(enum)
    return [names[value.number] for value in enum.values if not is_placeholder(value)]


def is_placeholder(value) -> bool:  # noqa: ANN001 (an EnumValueDescriptor)
    return value.number == 0 and value.name.endswith("_UNSPECIFIED")


# --- message -> JSON ---------------------------------------------------------------
# Every response goes through here, so the descriptor walk is done once per message type.
# An encoder starts from the JSON of the type's empty message (every key of the schema,
# unset ones at their default or null) and writes over it only the fields that are set,
# as ListFields (in C) finds them: a reply pays for its values, not for its schema.

Encoder = Callable[[Message], dict[str, Any]]


def message_to_json(message: Message) -> dict[str, Any]:
    return _encoder(message.DESCRIPTOR)(message)


def message_to_json_bytes(message: Message) -> bytes:
    """The JSON text (UTF-8) of `message` in the contract's form (orjson: RFC 8259; a
    NaN or infinite double is null, as JSON has no such numbers)."""
    return orjson.dumps(message_to_json(message))


@cache
def _encoder(descriptor: Descriptor) -> Encoder:
    plan = {field: (field.name, _set_field_encoder(field)) for field in descriptor.fields}
    # Unset: a field with presence is null; one without is its type's zero value.
    empty = descriptor._concrete_class()
    defaults = {
        field.name: None if is_nullable(field) else to_json(getattr(empty, field.name))
        for field, (_name, to_json) in plan.items()
    }
    # A fresh [] or {} per answer for unset repeated fields and maps: callers may change them.
    containers = [(f.name, dict if is_map(f) else list) for f in descriptor.fields if f.is_repeated]

    def encode(message: Message) -> dict[str, Any]:
        answer = defaults.copy()
        for name, container in containers:
            answer[name] = container()
        for field, value in message.ListFields():
            name, to_json = plan[field]
            answer[name] = to_json(value)
        return answer

    return encode


def _set_field_encoder(field: FieldDescriptor) -> Callable[[Any], Any]:
    """The JSON of a field's value (as ListFields gives it: a container when repeated)."""
    if is_map(field):
        to_json = _value_encoder(field.message_type.fields_by_name["value"])
        return lambda value: {str(key): to_json(item) for key, item in value.items()}
    to_json = _value_encoder(field)
    if field.is_repeated:
        return lambda value: [to_json(item) for item in value]
    return to_json


def _value_encoder(field: FieldDescriptor) -> Callable[[Any], Any]:
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return timestamp_json
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


_EPOCH = dt.datetime(1970, 1, 1)


def timestamp_json(stamp: Message) -> str:
    """A google.protobuf.Timestamp in its JSON form (the proto3 JSON mapping: RFC 3339
    in UTC with "Z", 0, 3, 6 or 9 fractional digits), exactly as its ToJsonString writes
    it, in less time (every task has two or three). ValueError outside its range."""
    seconds, nanos = stamp.seconds, stamp.nanos
    if not (rfc3339.MIN_SECONDS <= seconds <= rfc3339.MAX_SECONDS and 0 <= nanos <= 999_999_999):
        return stamp.ToJsonString()  # raises ValueError, naming the problem
    text = (_EPOCH + dt.timedelta(seconds=seconds)).isoformat()
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if nanos % 1000 == 0:
        return f"{text}.{nanos // 1000:06d}Z"
    return f"{text}.{nanos:09d}Z"


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


NOT_NULL = "This field may not be null."


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
        elif value is None:
            # null leaves a nullable field unset (absent); any other field is documented
            # as never null, so null is refused as DRF's "may not be null" was, not read
            # as the field's zero value (negative schemathesis: {"description": null}).
            if not is_nullable(field):
                errors.setdefault(where, []).append(NOT_NULL)
        else:
            try:
                _set_json(message, field, value, where, reject_read_only, errors)
            except CONVERSION_ERRORS as exc:
                errors.setdefault(where, []).append(conversion_problem(exc))


def conversion_problem(exc: BaseException) -> str:
    """The field error for a conversion failure: our own messages as they are; another
    library's (protobuf, int(), datetime) are no contract, so a generic sentence."""
    if type(exc) is ValueError:
        return str(exc)
    return "invalid value"


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
            well_known_from_json(value, target)
        except CONVERSION_ERRORS as exc:
            errors.setdefault(where, []).append(_well_known_hint(target.DESCRIPTOR, exc))
        return
    target.SetInParent()  # `{}` still sets the field: presence is meaningful
    _fill(value, target, where, reject_read_only, errors)


def well_known_from_json(value: Any, target: Message) -> None:
    """Fills a well-known type from its JSON form; a Timestamp strictly (common.rfc3339)."""
    if target.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
        if not isinstance(value, str):
            raise ValueError(rfc3339.PROBLEM)
        target.seconds, target.nanos = rfc3339.parse(value)
        return
    if target.DESCRIPTOR.full_name == "google.protobuf.FieldMask" and isinstance(value, str):
        target.paths.extend(update_mask.parse_paths(value))  # snake_case, as the REST surface
        return
    json_format.ParseDict(value, target)


def _well_known_hint(descriptor: Descriptor, exc: BaseException) -> str:
    if descriptor.full_name == "google.protobuf.Timestamp":
        return str(exc) if type(exc) is ValueError else rfc3339.PROBLEM
    return f"invalid {descriptor.name} value"


def _scalar_from_json(field: FieldDescriptor, value: Any) -> Any:
    cpp = field.cpp_type
    if cpp in _INT_RANGES:
        if isinstance(value, str):
            return _integer_from_text(field, value)  # the proto3 JSON mapping allows strings
        if isinstance(value, float) and value.is_integer() and abs(value) < _MAX_EXACT_FLOAT_INT:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        return _in_range(field, value)
    if cpp in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        try:
            return _finite(float(value))
        except OverflowError:  # an integer past 1.8e308
            raise ValueError("must be a finite number") from None
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return scalar_from_string(field, value)


def scalar_from_string(field: FieldDescriptor, text: str) -> Any:
    """A scalar from text: path variables, query parameters, headers, map keys, in the
    forms the module docstring lists. Raises ValueError with the field error."""
    cpp = field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        return _enum_number(field.enum_type, text)
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            return _base64(text)
        return text
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        if text not in ("true", "false"):
            raise ValueError("must be true or false")
        return text == "true"
    if cpp in _FLOATS:
        if not _NUMBER_TEXT.fullmatch(text):
            raise ValueError("must be a number")
        return _finite(float(text))
    return _integer_from_text(field, text)


def _integer_from_text(field: FieldDescriptor, text: str) -> int:
    if not _INTEGER_TEXT.fullmatch(text) or text == "-0":
        raise ValueError("must be an integer")
    return _in_range(field, int(text))


def _in_range(field: FieldDescriptor, value: int) -> int:
    low, high = _INT_RANGES[field.cpp_type]
    if low <= value <= high:
        return value
    if value > high and is_clamped_above(field):
        return high
    raise ValueError(f"must be between {low} and {high}")


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _base64(text: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64") from None
    if base64.b64encode(data).decode() != text:  # padding bits set, or padding missing
        raise ValueError("must be canonical base64 (RFC 4648 section 4)")
    return data


def _enum_number(enum: EnumDescriptor, text: str) -> int:
    # ASCII only: str.upper() maps "ı" to "I" and "ß" to "SS", which would let other
    # spellings through.
    wanted = text.upper() if text.isascii() else ""
    prefix = enum_prefix(enum)
    for value in enum.values:
        if wanted in (value.name, value.name.removeprefix(prefix)) and not is_placeholder(value):
            return value.number
    raise ValueError("must be one of: " + ", ".join(enum_json_names(enum)))
