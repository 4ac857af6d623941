"""Page tokens of ListTasks: bound to the viewer, the filters and the ordering."""

from __future__ import annotations

import pytest

from common.errors import InvalidArgument
from common.paging import PageTokens
from task_svc.list_query import parse_list_query
from task_svc.permissions import Viewer

TOKENS = PageTokens(b"k" * 32)
ME = Viewer(user_id=7, is_staff=False)
POSITION = ["2026-01-01T00:00:00+00:00", 41]


def test_round_trip() -> None:
    query = parse_list_query(ME, {"status": "done", "ordering": "updated_at"})
    token = TOKENS.encode(POSITION, query.fingerprint())
    again = parse_list_query(ME, {"status": "done", "ordering": "updated_at"})
    assert TOKENS.decode(token, again.fingerprint()) == POSITION


def test_a_tampered_token_is_refused() -> None:
    query = parse_list_query(ME, {})
    token = TOKENS.encode(POSITION, query.fingerprint())
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(InvalidArgument) as error:
        TOKENS.decode(tampered, query.fingerprint())
    assert error.value.reason == "INVALID_PAGE_TOKEN"


@pytest.mark.parametrize(
    ("viewer", "other"),
    [
        (ME, {"status": "pending"}),
        (ME, {"ordering": "created_at"}),
        (ME, {"q": "other"}),
        (Viewer(user_id=8, is_staff=False), {}),
        (Viewer(user_id=7, is_staff=True), {}),
    ],
)
def test_a_token_of_another_query_is_refused(viewer: Viewer, other: dict) -> None:
    token = TOKENS.encode(POSITION, parse_list_query(ME, {}).fingerprint())
    with pytest.raises(InvalidArgument):
        TOKENS.decode(token, parse_list_query(viewer, other).fingerprint())
