"""The fields of a task a client may set, their allowed values, and their checks.

Creates and updates share these checks; the servicer hands in plain Python values
(enum names in lower case, aware datetimes, ints, None for "unset").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.contract_rules import string_rules
from common.errors import invalid
from common.validation import text_problem
from taskmgr.task.v1 import task_service_pb2 as pb

# The limits are the contract's (task_service.proto); the edge documents the same ones.
TITLE_MAX = string_rules(pb.Task.DESCRIPTOR, "title").max_len
DESCRIPTION_MAX = string_rules(pb.Task.DESCRIPTOR, "description").max_len

STATUSES = ("pending", "in_progress", "done", "cancelled")
# Priorities are stored as their rank, so ordering by priority is ordering by rank.
PRIORITY_RANKS = {"low": 1, "medium": 2, "high": 3, "urgent": 4}
PRIORITY_NAMES = {rank: name for name, rank in PRIORITY_RANKS.items()}
DEFAULT_STATUS = "pending"
DEFAULT_PRIORITY = "medium"

# What UpdateTask's update_mask may name.
UPDATABLE = (
    "title", "description", "status", "priority", "due_date", "assigned_to", "project_id", "label_ids",
)
# Output-only fields a client may echo back (AIP-203: ignored, not an error).
OUTPUT_ONLY = ("id", "created_by", "created_at", "updated_at", "version")


def check_values(values: Mapping[str, Any]) -> None:
    """Raises INVALID_ARGUMENT naming every field of `values` that is not acceptable."""
    problems: dict[str, str] = {}
    for name, value in values.items():
        problem = _problem(name, value)
        if problem:
            problems[name] = problem
    if problems:
        raise invalid(problems)


def _problem(name: str, value: Any) -> str | None:
    if name == "title":
        if value and not value.strip():
            return "This field may not be blank."
        return text_problem(value, max_length=TITLE_MAX, min_length=1)
    if name == "description":
        return text_problem(value, max_length=DESCRIPTION_MAX, multiline=True)
    if name == "status" and value not in STATUSES:
        return f"One of: {', '.join(STATUSES)}."
    if name == "priority" and value not in PRIORITY_RANKS:
        return f"One of: {', '.join(PRIORITY_RANKS)}."
    if name == "assigned_to" and value is not None and value <= 0:
        return "A user id, or null to unassign."
    if name == "project_id" and value is not None and value <= 0:
        return "A project id, or null for a personal task."
    return None


def mask_fields(paths: Iterable[str]) -> tuple[str, ...]:
    """The fields an update_mask names; unknown paths are INVALID_ARGUMENT."""
    fields: list[str] = []
    unknown: list[str] = []
    for path in paths:
        if path in UPDATABLE:
            if path not in fields:
                fields.append(path)
        elif path not in OUTPUT_ONLY:
            unknown.append(path)
    if unknown:
        raise invalid(
            {"update_mask": f"Unknown fields: {', '.join(unknown)}. Updatable: {', '.join(UPDATABLE)}."}
        )
    return tuple(fields)
