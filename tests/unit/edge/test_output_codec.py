"""Replies as JSON (edge_api.json_codec): every key of the schema, unset ones null or
zero, whatever is set in the message; Timestamps exactly as protobuf writes them."""

from __future__ import annotations

import json

from google.protobuf import struct_pb2, timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st

from edge_api.json_codec import message_to_json, message_to_json_bytes, timestamp_json
from taskmgr.task.v1 import task_service_pb2 as pb

SECONDS = st.integers(-62_135_596_800, 253_402_300_799)  # 0001-01-01 .. 9999-12-31
NANOS = st.one_of(
    st.integers(0, 999_999_999),
    st.integers(0, 999).map(lambda n: n * 1_000_000),  # 3 digits
    st.integers(0, 999_999).map(lambda n: n * 1000),  # 6 digits
)


@given(SECONDS, NANOS)
def test_timestamps_are_written_as_protobuf_writes_them(seconds, nanos):
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    assert timestamp_json(stamp) == stamp.ToJsonString()


def test_a_timestamp_out_of_range_is_refused_as_protobuf_refuses_it():
    for seconds, nanos in ((253_402_300_800, 0), (-62_135_596_801, 0), (0, -1), (0, 1_000_000_000)):
        stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
        try:
            stamp.ToJsonString()
        except ValueError:
            pass
        else:
            raise AssertionError("protobuf accepted it")
        try:
            timestamp_json(stamp)
        except ValueError:
            continue
        raise AssertionError(f"{seconds}, {nanos} accepted")


def reference(task: pb.Task) -> dict:
    """The contract's form, field by field (rest-contract.md): unset optional fields and
    messages null, proto3 scalars their value (zero included), enums lower-case names."""

    def stamp(name):
        return getattr(task, name).ToJsonString() if task.HasField(name) else None

    def enum(kind, prefix, value):
        return kind.Name(value).removeprefix(prefix).lower()

    answer = {
        "id": task.id, "title": task.title, "description": task.description,
        "status": enum(pb.TaskStatus, "TASK_STATUS_", task.status),
        "priority": enum(pb.TaskPriority, "TASK_PRIORITY_", task.priority),
        "due_date": stamp("due_date"), "created_by": task.created_by,
        "assigned_to": task.assigned_to if task.HasField("assigned_to") else None,
        "created_at": stamp("created_at"), "updated_at": stamp("updated_at"), "version": task.version,
    }  # fmt: skip
    for field in pb.Task.DESCRIPTOR.fields:  # fields added since: same rules
        if field.name not in answer:
            answer[field.name] = getattr(task, field.name) if not field.has_presence or task.HasField(
                field.name) else None  # fmt: skip
    return answer


@given(
    ident=st.integers(0, 2**63 - 1),
    title=st.text(max_size=10),
    status=st.sampled_from(list(pb.TaskStatus.values())),
    priority=st.sampled_from(list(pb.TaskPriority.values())),
    assigned_to=st.none() | st.integers(0, 2**63 - 1),
    stamps=st.lists(st.none() | st.tuples(SECONDS, NANOS), min_size=3, max_size=3),
    version=st.integers(0, 2**31),
)
def test_a_task_has_every_key_with_what_is_set_and_null_or_zero_for_the_rest(
    ident, title, status, priority, assigned_to, stamps, version
):
    task = pb.Task(
        id=ident, title=title, status=status, priority=priority, assigned_to=assigned_to, version=version
    )
    for name, value in zip(("due_date", "created_at", "updated_at"), stamps, strict=True):
        if value is not None:
            getattr(task, name).seconds, getattr(task, name).nanos = value
    assert message_to_json(task) == reference(task)
    assert json.loads(message_to_json_bytes(task)) == reference(task)


def test_lists_are_fresh_per_answer_and_nested_messages_encoded():
    empty = message_to_json(pb.ListTasksResponse())
    assert empty == {"results": [], "next_page_token": ""}
    empty["results"].append("changed")
    assert message_to_json(pb.ListTasksResponse())["results"] == []
    page = pb.ListTasksResponse(results=[pb.Task(id=1, title="a"), pb.Task(id=2)], next_page_token="n")
    assert [task["id"] for task in message_to_json(page)["results"]] == [1, 2]
    assert message_to_json(page)["results"][1]["title"] == ""


def test_well_known_values_keep_their_json_form():
    value = struct_pb2.Value(string_value="x")
    assert message_to_json(struct_pb2.Struct(fields={"a": value})) == {"fields": {"a": "x"}}
