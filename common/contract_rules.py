"""The field rules of the contract, enforced for every request and read by the edge's
OpenAPI document: one source, so the document and the services cannot disagree.

Two kinds of annotation on a request message's fields count:
- `google.api.field_behavior` REQUIRED (AIP-203): the field must be set; for a proto3
  scalar without presence, set means not its zero value ("" / 0 / false / enum 0). A
  REQUIRED proto3 `optional` scalar is the exception (see `_null_is_a_value`). A number
  at 0 that its own rules refuse is named by those rules ("Must be greater than 0."), not
  as missing: 0 is a value a client writes (`GET /api/tasks/0/`), and the rule says what
  it must be instead, which holds as well when a gRPC caller left it out.
- `buf.validate.field` rules (protovalidate: lengths, patterns, `email`, bounds, `in`,
  `defined_only` ...), evaluated by the protovalidate library.

An update request (AIP-134: a message field plus a `google.protobuf.FieldMask
update_mask`) changes only the masked paths of its resource, so a rule on any other path
of the resource does not apply: PATCH {"status": "done"} needs no title.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import protovalidate
from buf.validate import validate_pb2
from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from common.errors import invalid

REQUIRED_MESSAGE = "This field is required."
_NUMBERS = frozenset({
    FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT32,
    FieldDescriptor.CPPTYPE_UINT64, FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE,
})


def field_rules(field: FieldDescriptor) -> validate_pb2.FieldRules | None:
    """The field's `(buf.validate.field)` rules, or None when it has none."""
    options = field.GetOptions()
    if not options.HasExtension(validate_pb2.field):
        return None
    return options.Extensions[validate_pb2.field]


def string_rules(message: Descriptor, field: str) -> validate_pb2.StringRules:
    """The string rules of `message.field`, for a domain module that names a limit
    (`string_rules(pb.Task.DESCRIPTOR, "title").max_len`): the contract states it once.
    KeyError for an unknown field, ValueError when the field has no string rules."""
    rules = field_rules(message.fields_by_name[field])
    if rules is None or rules.WhichOneof("type") != "string":
        raise ValueError(f"{message.full_name}.{field} has no buf.validate string rules")
    return rules.string


def is_required(field: FieldDescriptor) -> bool:
    """REQUIRED by field_behavior (AIP-203), or `(buf.validate.field).required`."""
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    rules = field_rules(field)
    return field_behavior_pb2.REQUIRED in behaviors or bool(rules and rules.required)


def check_request(request: Message) -> None:
    """Raises INVALID_ARGUMENT (common.errors.invalid) naming every field of `request`
    that breaks a rule of the contract, by dotted path ("task.title"); returns None when
    the request keeps them all."""
    problems = request_problems(request)
    if problems:
        raise invalid(problems)


def request_problems(request: Message) -> dict[str, list[str]]:
    """{dotted field path: [messages]} for every broken rule; {} when there is none."""
    problems: dict[str, list[str]] = {}
    numbers = set()  # missing paths that are a number at 0: its rules, if any, say more
    for path, field in _missing(request, ""):
        problems.setdefault(path, []).append(REQUIRED_MESSAGE)
        if field.cpp_type in _NUMBERS and not field.is_repeated:
            numbers.add(path)
    if _has_rules(request.DESCRIPTOR):
        try:
            protovalidate.validate(request)
        except protovalidate.ValidationError as error:
            for violation in error.violations:
                path = ".".join(e.field_name for e in violation.proto.field.elements)
                if path in numbers:  # 0 is a value: the rule it breaks replaces "required"
                    numbers.discard(path)
                    problems[path] = []
                elif path in problems:
                    continue  # a missing field needs no second message
                problems.setdefault(path or "body", []).append(_violation_text(violation.proto))
    scope = _update_scope(request)
    if scope is not None:
        resource, masked = scope
        problems = {
            path: texts for path, texts in problems.items()
            if not path.startswith(resource + ".") or _in_mask(path[len(resource) + 1:], masked)
        }
    return problems


def _missing(message: Message, prefix: str) -> Iterator[tuple[str, FieldDescriptor]]:
    """(dotted path, field) of every REQUIRED field that is not set."""
    for field, required, nested in _required_plan(message.DESCRIPTOR):
        name = field.name
        if nested:
            if message.HasField(name):
                yield from _missing(getattr(message, name), f"{prefix}{name}.")
            elif required:
                yield prefix + name, field
        elif not _is_set(message, field):
            yield prefix + name, field


@cache
def _required_plan(descriptor: Descriptor) -> tuple[tuple[FieldDescriptor, bool, bool], ...]:
    """(field, REQUIRED, nested message to look into) for the fields worth a look, once
    per message type: reading options on every request cost more than the check."""
    plan = []
    for field in descriptor.fields:
        required = is_required(field)
        if field.message_type is not None and not field.is_repeated:
            if required or _reaches_required(field.message_type, frozenset({descriptor.full_name})):
                plan.append((field, required, True))
        elif required and not _null_is_a_value(field):
            plan.append((field, True, False))
    return tuple(plan)


def _reaches_required(descriptor: Descriptor, seen: frozenset[str]) -> bool:
    if descriptor.full_name in seen:
        return False
    seen = seen | {descriptor.full_name}
    return any(
        is_required(f) or (f.message_type is not None and _reaches_required(f.message_type, seen))
        for f in descriptor.fields
    )


def _null_is_a_value(field: FieldDescriptor) -> bool:
    """A REQUIRED proto3 `optional` scalar (AssignTaskRequest.user_id: null unassigns) must
    be named by the client, null included; unset and null are one state in a message, so
    the REST edge checks it in the JSON body (edge_api/explicit_null.py), not here."""
    return field.has_presence and field.message_type is None and not field.is_repeated


def _is_set(message: Message, field: FieldDescriptor) -> bool:
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.has_presence:
        return message.HasField(field.name)
    return bool(getattr(message, field.name))


def _update_scope(request: Message) -> tuple[str, list[str]] | None:
    """(resource field, masked paths) of an AIP-134 update request, else None. An empty
    mask updates the fields that are set (AIP-134), so they are the mask."""
    fields = request.DESCRIPTOR.fields_by_name
    mask = fields.get("update_mask")
    if mask is None or getattr(mask.message_type, "full_name", "") != "google.protobuf.FieldMask":
        return None
    # AIP-134: the resource is the request's REQUIRED message field.
    resources = [f for f in request.DESCRIPTOR.fields
                 if f.message_type is not None and f.name != "update_mask" and is_required(f)]
    if len(resources) != 1:
        return None
    resource = resources[0].name
    paths = list(request.update_mask.paths)
    if not paths:
        paths = [f.name for f, _ in getattr(request, resource).ListFields()]
    return resource, paths


def _in_mask(path: str, masked: list[str]) -> bool:
    return any(path == m or path.startswith(m + ".") or m.startswith(path + ".") for m in masked)


@cache
def _has_rules(descriptor: Descriptor) -> bool:
    """Whether protovalidate has anything to check: most messages have no rules, and
    skipping them keeps the hot path free of the call."""
    return _reaches_rules(descriptor, frozenset())


def _reaches_rules(descriptor: Descriptor, seen: frozenset[str]) -> bool:
    if descriptor.full_name in seen:
        return False
    seen = seen | {descriptor.full_name}
    if descriptor.GetOptions().HasExtension(validate_pb2.message):
        return True
    for field in descriptor.fields:
        if field_rules(field) is not None:
            return True
        if field.message_type is not None and _reaches_rules(field.message_type, seen):
            return True
    return False


# The contract's rule for human-visible names and texts (titles, names, comments): at
# least one letter, number, punctuation or symbol (Unicode general categories L, N, P, S),
# so nothing made only of spaces, zero-width or bidi controls or lone combining marks is
# stored (docs/security.md says where the rule comes from). Its message in words, since
# the regular expression says nothing to a reader.
VISIBLE_CHARACTER = r"[\p{L}\p{N}\p{P}\p{S}]"
VISIBLE_MESSAGE = "Must contain a visible character (a letter, number, punctuation or symbol)."


def _violation_text(violation) -> str:  # noqa: ANN001 (buf.validate.Violation)
    if violation.rule_id == "string.pattern" and VISIBLE_CHARACTER in violation.message:
        return VISIBLE_MESSAGE
    return _sentence(violation.message)


def _sentence(text: str) -> str:
    """protovalidate's "must be at most 200 characters" as our messages are written."""
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else "Invalid value."
