"""The C1 control characters (U+0080 to U+009F: NEL, CSI, ...) are control characters
too (Unicode general category Cc), refused wherever the C0 ones are: the contract says
"NUL and control characters (other than tab and newlines) are refused in every string".
Before, a title of "\\x85" alone was a task, "x\\x9b31m" (an 8-bit terminal escape) was
stored and emailed, and a first name could hold NEL, a line break to some readers."""

from __future__ import annotations

import unicodedata

import pytest

from common.validation import message_text_problems, text_problem
from taskmgr.task.v1 import task_service_pb2 as pb
from taskmgr.user.v1 import user_service_pb2 as user_pb

C1 = [chr(code) for code in range(0x80, 0xA0)]


def test_every_c1_character_is_a_control_character():
    assert {unicodedata.category(char) for char in C1} == {"Cc"}


@pytest.mark.parametrize("char", C1, ids=[f"U+{ord(c):04X}" for c in C1])
def test_a_c1_control_in_any_request_string_is_refused(char):
    task = pb.CreateTaskRequest(task=pb.Task(title=f"a{char}b", description=f"x{char}"), request_id="k")
    assert message_text_problems(task) == {
        "task.title": "Control characters are not allowed.",
        "task.description": "Control characters are not allowed.",
    }
    assert message_text_problems(pb.ListTasksRequest(q=char)).keys() == {"q"}
    profile = user_pb.UpdateProfileRequest(first_name=f"Al{char}ice")
    assert message_text_problems(profile).keys() == {"first_name"}


@pytest.mark.parametrize("multiline", [False, True])
@pytest.mark.parametrize("char", ["\x80", "\x85", "\x9b", "\x9f"])
def test_a_services_own_text_rule_refuses_c1_too(char, multiline):
    problem = text_problem(f"a{char}", max_length=10, multiline=multiline)
    assert problem == "Control characters are not allowed."


@pytest.mark.parametrize("fine", ["\u00a0", "\u00e9t\u00e9", "\u00ff", "caf\u00e9 \u00bd"])
def test_latin_1_letters_and_signs_past_c1_stay_allowed(fine):
    assert message_text_problems(pb.ListTasksRequest(q=fine)) == {}
    assert text_problem(fine, max_length=10) is None
