"""Plain rules of comments and watchers: which `@username`s a text mentions, and who of
a task's watchers (and mentioned users) is told."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from task_svc.memberships import Role
from task_svc.mentions import MAX_MENTIONS, mentioned_names
from task_svc.watchers import Candidate, who_is_told

ALICE, BOB, CAROL, DAVE = 1, 2, 3, 4


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("@bob please", ["bob"]),
        ("thanks, @Bob.", ["bob"]),  # a sentence's full stop; names compare case-insensitively
        ("@bob @BOB @bob", ["bob"]),
        ("ask @carol.smith-2, then @al_x", ["carol.smith-2", "al_x"]),
        ("mail bob@example.com or x.@bob", []),  # an address, and @ inside a word
        ("(@bob) [@carol] \"@dave\"", ["bob", "carol", "dave"]),
        ("@al is too short, @ alone nothing", []),
        ("@" + "x" * 151, []),  # longer than any username
        ("", []),
    ],
)
def test_mentioned_names(text: str, names: list[str]) -> None:
    assert mentioned_names(text) == names


def test_a_text_mentions_at_most_a_bounded_number_of_names() -> None:
    text = " ".join(f"@user{n}" for n in range(MAX_MENTIONS + 5))
    assert mentioned_names(text) == [f"user{n}" for n in range(MAX_MENTIONS)]


@dataclass
class FakeTask:
    id: int = 1
    created_by: int = ALICE
    assigned_to: int | None = BOB
    project_id: int | None = None


def test_watchers_of_a_personal_task_who_can_see_it_are_told_never_the_actor() -> None:
    watchers = [Candidate(ALICE), Candidate(BOB), Candidate(CAROL), Candidate(DAVE, staff=True)]
    # Carol watched once (she was the assignee) and can no longer see it; Dave is staff.
    assert who_is_told(FakeTask(), BOB, watchers, {}) == [ALICE, DAVE]
    assert who_is_told(FakeTask(), ALICE, watchers, {}) == [BOB, DAVE]


def test_a_project_task_tells_its_members_of_any_role_only() -> None:
    task = FakeTask(project_id=7, assigned_to=None)
    watchers = [Candidate(ALICE), Candidate(BOB), Candidate(CAROL)]
    roles = {BOB: Role.VIEWER, CAROL: Role.MEMBER}  # Alice, its creator, left the project
    assert who_is_told(task, DAVE, watchers, roles) == [BOB, CAROL]


def test_always_told_and_excluded_and_each_once() -> None:
    watchers = [Candidate(ALICE), Candidate(ALICE), Candidate(CAROL)]
    # The previous assignee (Bob) is told though he cannot see it; Carol has another event.
    told = who_is_told(FakeTask(assigned_to=DAVE), DAVE, watchers, {}, always=[BOB, None], exclude=[CAROL])
    assert told == [ALICE, BOB]
    assert who_is_told(FakeTask(), ALICE, watchers, {}, always=[ALICE]) == []  # never the actor
