"""Input checks shared by the services: bounded strings, no control characters."""

from __future__ import annotations

import re

from common.errors import invalid

# Control characters other than tab and newlines (and NUL) make no sense in our text fields.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f]")


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
