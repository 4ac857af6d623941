"""The edge's JSON codec on untrusted input: total (only MalformedJson or InvalidFields
ever escape), strict about the wire forms, and a lossless round trip for messages."""

from __future__ import annotations

import contextlib
import json

import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_api.json_codec import (
    MAX_DEPTH,
    InvalidFields,
    MalformedJson,
    decode_json,
    json_to_message,
    message_to_json,
    scalar_from_string,
)
from taskmgr.task.v1 import task_service_pb2 as pb

FIELDS = {field.name: field for field in pb.Task.DESCRIPTOR.fields}
PAGE_SIZE = pb.ListTasksRequest.DESCRIPTOR.fields_by_name["page_size"]


# --- decode_json -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1000,  # RecursionError in json.loads: a 500 before
        b"[" * 100_000,
        b'{"a":' * 500 + b"1" + b"}" * 500,
        b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
        b'{"title": "a", "title": "b"}',  # duplicate names: which one wins is a guess
        b"NaN",
        b'{"x": -Infinity}',
        b"1e400",  # float('inf')
        b"1" * 5000,  # int() refuses more than 4300 digits
        b"\xff\xfe{\x00}\x00",  # UTF-16: RFC 8259 section 8.1 is UTF-8 only
        b"\xef\xbb\xbf{}",  # a byte order mark
        b'{"title": "\xc3"}',  # a broken UTF-8 sequence
        b'"\\ud800"',  # a lone surrogate
        b'{"\\udfff": 1}',
        b"{",
        b"",
    ],
)
def test_bodies_that_are_not_acceptable_json_are_malformed(body):
    with pytest.raises(MalformedJson):
        decode_json(body)


def test_the_depth_limit_itself_is_fine():
    nested = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert decode_json(nested) == json.loads(nested)


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
JSON_VALUES = st.recursive(
    _SCALARS | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
_JSONISH = st.text(alphabet='[]{}":,0123456789.eE-+ \\untrfalse', max_size=200).map(str.encode)


@given(JSON_VALUES)
def test_any_json_value_decodes_to_itself(value):
    assert decode_json(json.dumps(value).encode()) == value


@given(st.binary(max_size=200) | _JSONISH)
def test_any_bytes_decode_or_are_malformed(data):
    with contextlib.suppress(MalformedJson):  # anything else fails the test
        decode_json(data)


# --- JSON -> message ---------------------------------------------------------------------


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(FIELDS)) | st.text(max_size=5), JSON_VALUES, max_size=6))
def test_any_json_object_fills_a_message_or_names_its_bad_fields(body):
    try:
        json_to_message(body, pb.Task(), reject_read_only=False)
    except InvalidFields as exc:
        assert exc.errors and set(exc.errors) <= set(body) | {"body"}
        assert all(isinstance(text, str) and text for texts in exc.errors.values() for text in texts)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x", "due_date": "0001-01-01T00:00:00+01:00"}, "due_date"),  # OverflowError before
        ({"title": "x", "due_date": "2030-01-01T00:00:00+00:90"}, "due_date"),  # stored as 22:30 before
        ({"title": "x", "due_date": "\uff12\uff10\uff13\uff10-01-01T00:00:00Z"}, "due_date"),
        ({"title": "x", "due_date": 5}, "due_date"),
        ({"title": "x", "due_date": ["2030-01-01T00:00:00Z"]}, "due_date"),
        ({"title": "x", "assigned_to": 10**400}, "assigned_to"),
        ({"title": "x", "assigned_to": 2.0**63}, "assigned_to"),
        ({"title": "x", "assigned_to": 9007199254740993.0}, "assigned_to"),  # not exact as a double
        ({"title": "x", "assigned_to": "\u0661\u0662"}, "assigned_to"),  # int() takes Arabic digits
        ({"title": "x", "assigned_to": "1_000"}, "assigned_to"),
        ({"title": "x", "assigned_to": " 7 "}, "assigned_to"),
        ({"title": "x", "assigned_to": "+7"}, "assigned_to"),
        ({"title": "x", "assigned_to": "007"}, "assigned_to"),
        ({"title": "x", "assigned_to": "-0"}, "assigned_to"),
        ({"title": "x", "assigned_to": True}, "assigned_to"),
        ({"title": "x", "status": " done"}, "status"),
        ({"title": "x", "status": "D\u0131ne"}, "status"),  # dotless i upper-cases to I
        ({"title": "x", "status": {}}, "status"),
    ],
)
def test_values_not_in_their_wire_form_are_field_errors(body, field):
    with pytest.raises(InvalidFields) as caught:
        json_to_message(body, pb.Task())

    assert set(caught.value.errors) == {field}


def test_values_in_their_wire_form_are_accepted():
    task = pb.Task()
    json_to_message(
        {"title": "x", "assigned_to": "12", "status": "IN_PROGRESS", "priority": "task_priority_high",
         "due_date": "2030-01-01T05:30:00.5+05:30"},
        task,
    )
    assert (task.assigned_to, task.status, task.priority) == (12, pb.TASK_STATUS_IN_PROGRESS, 3)
    assert task.due_date.ToJsonString() == "2030-01-01T00:00:00.500Z"
    json_to_message({"assigned_to": 12.0}, task)
    assert task.assigned_to == 12


@pytest.mark.parametrize("field", ["title", "description", "status", "priority", "label_ids"])
def test_null_for_a_field_documented_as_never_null_is_refused(field):
    # The document types these without `nullable`: null was read as "" / 0 / [] instead.
    with pytest.raises(InvalidFields) as caught:
        json_to_message({"title": "x"} | {field: None}, pb.Task())

    assert caught.value.errors == {field: ["This field may not be null."]}


def test_null_for_a_nullable_field_leaves_it_unset():
    task = pb.Task()
    json_to_message({"title": "x", "assigned_to": None, "due_date": None, "project_id": None}, task)
    assert not any(task.HasField(name) for name in ("assigned_to", "due_date", "project_id"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("5", 5), ("100", 100), ("2147483647", 2147483647), ("10000000000", 2**31 - 1),
     ("99999999999999999999", 2**31 - 1)],
)
def test_page_size_above_its_range_is_clamped(text, expected):
    assert scalar_from_string(PAGE_SIZE, text) == expected


@pytest.mark.parametrize("text", ["-1x", "1e3", "5.0", " 5", "+5", "05", "\u0665", "1" * 25])
def test_page_size_that_is_no_integer_is_refused(text):
    with pytest.raises(ValueError):  # noqa: PT011
        scalar_from_string(PAGE_SIZE, text)


def test_booleans_and_numbers_as_text():
    active = struct_pb2.Value.DESCRIPTOR.fields_by_name["bool_value"]
    number = struct_pb2.Value.DESCRIPTOR.fields_by_name["number_value"]
    assert scalar_from_string(active, "true") is True
    assert scalar_from_string(active, "false") is False
    assert scalar_from_string(number, "-1.5e3") == -1500.0
    for text in ("True", "1", "yes", " true"):
        with pytest.raises(ValueError):  # noqa: PT011
            scalar_from_string(active, text)
    for text in ("nan", "inf", "1e999", "0x10", "1_0", "\u0661", ".5"):
        with pytest.raises(ValueError):  # noqa: PT011
            scalar_from_string(number, text)


# --- message -> JSON -> message ----------------------------------------------------------

_TIMESTAMPS = st.integers(-62_135_596_800, 253_402_300_799).flatmap(
    lambda seconds: st.builds(
        lambda nanos: {"seconds": seconds, "nanos": nanos}, st.integers(0, 999_999_999)
    )
)


@given(
    title=st.text(max_size=20),
    status=st.sampled_from(list(pb.TaskStatus.values())[1:]),  # 0 is "not set", not a value
    priority=st.sampled_from(list(pb.TaskPriority.values())[1:]),
    assigned_to=st.none() | st.integers(-(2**63), 2**63 - 1),
    due=st.none() | _TIMESTAMPS,
    version=st.integers(-(2**63), 2**63 - 1),
)
def test_message_to_json_to_message_is_lossless(title, status, priority, assigned_to, due, version):
    task = pb.Task(title=title, status=status, priority=priority, version=version, assigned_to=assigned_to)
    if due is not None:
        task.due_date.seconds, task.due_date.nanos = due["seconds"], due["nanos"]

    wire = json.dumps(message_to_json(task)).encode()
    back = pb.Task()
    json_to_message(decode_json(wire), back, reject_read_only=False)

    assert back == task
