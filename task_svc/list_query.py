"""ListTasks' filters and ordering: parsed from the request's strings, checked, and
turned into the canonical form that page tokens are bound to."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from common import rfc3339
from common.contract_rules import field_rules, string_rules
from common.errors import invalid
from common.validation import text_problem
from task_svc.fields import PRIORITY_RANKS, STATUSES
from task_svc.permissions import Viewer
from taskmgr.task.v1 import task_service_pb2 as pb

ORDER_FIELDS = ("created_at", "updated_at", "due_date", "priority")
DEFAULT_ORDERING = "-created_at"
Q_MAX = string_rules(pb.ListTasksRequest.DESCRIPTOR, "q").max_len
LABELS_MAX = field_rules(pb.ListTasksRequest.DESCRIPTOR.fields_by_name["label"]).repeated.max_items


@dataclass(frozen=True)
class Ordering:
    field: str
    descending: bool

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.field


@dataclass(frozen=True)
class ListQuery:
    """What a page of ListTasks is drawn from (`me` already resolved to the viewer)."""

    viewer: Viewer
    ordering: Ordering
    status: str | None = None
    priority: int | None = None  # the rank
    assigned_to: int | None = None
    unassigned: bool = False
    created_by: int | None = None
    project: int | None = None
    personal: bool = False  # project=none: personal tasks only
    q: str | None = None
    due_before: dt.datetime | None = None
    due_after: dt.datetime | None = None
    labels: tuple[int, ...] = ()  # tasks carrying all of them; ascending, each once

    def fingerprint(self) -> dict:
        """The canonical query a page token is bound to (so it fits no other query)."""
        # Field by field: dataclasses.asdict deep-copies every value, a twentieth of a
        # list's CPU in task_svc. The same dict as asdict's, so tokens stay valid.
        canonical = {field.name: getattr(self, field.name) for field in _QUERY_FIELDS}
        canonical["viewer"] = dict(vars(self.viewer))
        canonical["ordering"] = str(self.ordering)
        return canonical


_QUERY_FIELDS = fields(ListQuery)


def parse_list_query(viewer: Viewer, raw: Mapping[str, Any]) -> ListQuery:
    """The query from ListTasksRequest's string fields and `label` (a list of ids);
    every bad one is a field error."""
    problems: dict[str, str] = {}
    values: dict = {}

    def take(name: str, parse) -> None:  # noqa: ANN001
        text = raw.get(name, "").strip()
        if not text:
            return
        # Filters are text from a query string: the same checks as a title (NUL, control
        # characters, length), before any reaches the database (PostgreSQL refuses NUL).
        problem = text_problem(text, max_length=Q_MAX)
        if problem:
            problems[name] = problem
            return
        try:
            values.update(parse(text))
        except ValueError as exc:
            problems[name] = str(exc)

    take("status", lambda text: {"status": _one_of(text, STATUSES)})
    take("priority", lambda text: {"priority": PRIORITY_RANKS[_one_of(text, tuple(PRIORITY_RANKS))]})
    take("assigned_to", lambda text: _assignee_filter(text, viewer))
    take("created_by", lambda text: {"created_by": _user_filter(text, viewer, "an id or me")})
    take("project", _project_filter)
    take("q", lambda text: {"q": _bounded(text, Q_MAX)})
    take("due_before", lambda text: {"due_before": _rfc3339(text)})
    take("due_after", lambda text: {"due_after": _rfc3339(text)})
    take("ordering", lambda text: {"ordering": _ordering(text)})
    labels = sorted(set(raw.get("label") or ()))
    if any(label <= 0 or label >= 2**63 for label in labels) or len(labels) > LABELS_MAX:
        problems["label"] = f"At most {LABELS_MAX} label ids, each a positive integer."
    elif labels:
        values["labels"] = tuple(labels)
    if problems:
        raise invalid(problems, "Invalid list filters.")
    values.setdefault("ordering", _ordering(DEFAULT_ORDERING))
    return ListQuery(viewer=viewer, **values)


def _one_of(text: str, allowed: tuple[str, ...]) -> str:
    if text.lower() not in allowed:
        raise ValueError(f"One of: {', '.join(allowed)}.")
    return text.lower()


def _user_filter(text: str, viewer: Viewer, accepted: str) -> int:
    if text.lower() == "me":
        return viewer.user_id
    if not text.isascii() or not text.isdigit() or int(text) <= 0 or int(text) >= 2**63:
        raise ValueError(f"Must be {accepted}.")
    return int(text)


def _assignee_filter(text: str, viewer: Viewer) -> dict:
    if text.lower() == "none":
        return {"unassigned": True}
    return {"assigned_to": _user_filter(text, viewer, "an id, me or none")}


def _project_filter(text: str) -> dict:
    if text.lower() == "none":
        return {"personal": True}
    if not text.isascii() or not text.isdigit() or int(text) <= 0 or int(text) >= 2**63:
        raise ValueError("Must be a project id or none.")
    return {"project": int(text)}


def _bounded(text: str, max_length: int) -> str:
    if len(text) > max_length:
        raise ValueError(f"At most {max_length} characters.")
    return text


def _rfc3339(text: str) -> dt.datetime:
    # The one strict parser the edge uses too: the same value means the same everywhere.
    try:
        return rfc3339.parse_datetime(text)
    except ValueError as exc:
        raise ValueError(f"Must be an RFC 3339 date-time: {exc}.") from None


def _ordering(text: str) -> Ordering:
    field = text.removeprefix("-")
    if field not in ORDER_FIELDS:
        allowed = ", ".join(ORDER_FIELDS)
        raise ValueError(f"One of: {allowed}, each optionally prefixed with '-'.")
    return Ordering(field=field, descending=text.startswith("-"))
