"""Input checks shared by the services: bounded strings, no control characters."""

from __future__ import annotations

import re

from google.protobuf.message import Message

from common.errors import invalid

# Control characters other than tab and newlines (and NUL) make no sense in our text
# fields: Unicode's category Cc, the C0 set, DEL and the C1 set (U+0080-U+009F: NEL is a
# line break to some readers, CSI an 8-bit terminal escape).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def text_problem(value: str, *, max_length: int, min_length: int = 0, multiline: bool = False) -> str | None:
    """Why `value` is not acceptable text, or None when it is."""
    if len(value) < min_length:
        return "This field is required." if min_length == 1 else f"At least {min_length} characters."
    if len(value) > max_length:
        return f"At most {max_length} characters."
    if (_CONTROL if multiline else _CONTROL_SINGLE_LINE).search(value):
        return "Control characters are not allowed."
    return None


def check_text(
    field: str, value: str, *, max_length: int, min_length: int = 0, multiline: bool = False
) -> str:
    problem = text_problem(value, max_length=max_length, min_length=min_length, multiline=multiline)
    if problem:
        raise invalid({field: problem})
    return value


def message_text_problems(message: Message, prefix: str = "") -> dict[str, str]:
    """Every string field of `message` (nested, repeated and map values too) holding a
    character that no text field accepts: NUL and the control characters (C0, DEL, C1)
    other than tab and newlines. Keys are dotted field paths ("task.title", "tags[2]").

    Run on every request before its handler (common.interceptor), so a string from a
    body, a path, a query string or a header, sent through the edge or by a direct gRPC
    caller, is refused the same way (INVALID_ARGUMENT) before any reaches a database:
    PostgreSQL cannot hold NUL in text (a 500 before). Per-field rules (lengths, single
    lines) stay with the service that owns the field. OWASP ASVS v4 5.1.4 (allow-list
    validation of structured data).
    """
    problems: dict[str, str] = {}
    for field, value in message.ListFields():
        where = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items = [(f"{where}.{key}", item) for key, item in value.items()]
            if any(isinstance(key, str) and _CONTROL.search(key) for key in value):
                problems[where] = "Control characters are not allowed."
        elif field.is_repeated:
            items = [(f"{where}[{index}]", item) for index, item in enumerate(value)]
        else:
            items = [(where, value)]
        for path, item in items:
            if isinstance(item, Message):
                problems.update(message_text_problems(item, f"{path}."))
            elif isinstance(item, str) and _CONTROL.search(item):
                problems[path] = "Control characters are not allowed."
    return problems
