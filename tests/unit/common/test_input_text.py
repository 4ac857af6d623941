"""Control characters in any string of any request message (common.validation)."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from common.validation import message_text_problems
from taskmgr.task.v1 import task_service_pb2 as pb
from taskmgr.user.v1 import user_service_pb2 as user_pb


@pytest.mark.parametrize("bad", ["a\x00b", "\x01", "x\x1b[31m", "\x7f", "\x0b", "\x0c"])
def test_nul_and_control_characters_in_any_string_field_are_named(bad):
    assert message_text_problems(pb.ListTasksRequest(q=bad)) == {"q": "Control characters are not allowed."}
    assert message_text_problems(pb.ListTasksRequest(page_token=bad, ordering=bad)).keys() == {
        "page_token", "ordering"
    }
    nested = pb.CreateTaskRequest(task=pb.Task(title="ok", description=bad), request_id="k")
    assert message_text_problems(nested) == {"task.description": "Control characters are not allowed."}
    assert message_text_problems(user_pb.LoginRequest(username="alice", password=bad)).keys() == {"password"}


def test_repeated_and_map_values_and_keys_are_checked():
    struct = struct_pb2.Struct()
    struct.update({"fine": "ok", "bad\x00key": "ok", "nested": {"list": ["ok", "a\x00"]}})
    problems = message_text_problems(struct)
    assert "fields" in problems  # the key
    assert "fields.nested.struct_value.fields.list.list_value.values[1].string_value" in problems


@pytest.mark.parametrize("fine", ["", "plain", "tab\tand\nnew\r\nlines", "\u00e9\u4e2d\U0001f600", "\u2028"])
def test_text_without_controls_passes(fine):
    assert message_text_problems(pb.CreateTaskRequest(task=pb.Task(title=fine, description=fine))) == {}
