"""ListTasks' filters and ordering, parsed from the request's strings."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from common.errors import InvalidArgument
from task_svc.list_query import Ordering, parse_list_query
from task_svc.permissions import Viewer

ME = Viewer(user_id=7, is_staff=False)


def test_no_filters_is_everything_visible_newest_first() -> None:
    query = parse_list_query(ME, {})
    assert query.ordering == Ordering("created_at", descending=True)
    assert (query.status, query.priority, query.assigned_to, query.created_by, query.q) == (None,) * 5
    assert not query.unassigned


def test_every_filter() -> None:
    query = parse_list_query(
        ME,
        {
            "status": "In_Progress", "priority": "urgent", "assigned_to": "12", "created_by": "me",
            "q": " 50%_off ", "due_before": "2026-02-01T00:00:00Z", "due_after": "2026-01-01T01:00:00+01:00",
            "ordering": "priority",
        },
    )
    assert query.status == "in_progress"
    assert query.priority == 4
    assert query.assigned_to == 12
    assert query.created_by == 7
    assert query.q == "50%_off"
    assert query.due_before == dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    assert query.due_after == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert query.ordering == Ordering("priority", descending=False)


@pytest.mark.parametrize(
    ("text", "expected"), [("me", (7, False)), ("none", (None, True)), ("3", (3, False))]
)
def test_assigned_to_is_an_id_me_or_none(text: str, expected: tuple) -> None:
    query = parse_list_query(ME, {"assigned_to": text})
    assert (query.assigned_to, query.unassigned) == expected


@pytest.mark.parametrize("ordering", ["created_at", "-created_at", "updated_at", "-due_date", "priority"])
def test_orderings(ordering: str) -> None:
    assert str(parse_list_query(ME, {"ordering": ordering}).ordering) == ordering


def test_every_bad_value_is_named() -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_list_query(
            ME,
            {
                "status": "open", "priority": "1", "assigned_to": "someone", "created_by": "none",
                "q": "x" * 201, "due_before": "yesterday", "due_after": "2026-01-01T00:00:00",
                "ordering": "title",
            },
        )
    assert set(error.value.fields) == {
        "status", "priority", "assigned_to", "created_by", "q", "due_before", "due_after", "ordering",
    }


@pytest.mark.parametrize("user_id", ["0", "-1", "1.5", "99999999999999999999", "١"])
def test_user_ids_are_positive_64_bit_integers(user_id: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_list_query(ME, {"created_by": user_id})


def test_me_is_resolved_so_the_fingerprint_differs_per_viewer() -> None:
    mine = parse_list_query(ME, {"assigned_to": "me"}).fingerprint()
    theirs = parse_list_query(Viewer(user_id=8, is_staff=False), {"assigned_to": "me"}).fingerprint()
    assert mine != theirs


def test_the_fingerprint_is_every_field_of_the_query_so_old_page_tokens_stay_valid() -> None:
    query = parse_list_query(ME, {
        "ordering": "-due_date", "status": "done", "label": [3, 5], "q": "abc",
        "due_before": "2030-01-01T00:00:00+00:00", "project": "none",
    })
    expected = dataclasses.asdict(query) | {"ordering": "-due_date"}  # the form tokens were signed over
    assert query.fingerprint() == expected
