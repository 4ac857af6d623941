"""A project's labels: owners create, rename, recolour and delete them; every member
lists them (task_svc.memberships, Action.MANAGE_LABELS and READ).

- A name is 1-50 characters, not only spaces, unique in its project under Unicode
  canonical caseless matching (Unicode 15 section 3.13, D145: NFD(casefold(NFD(name)))),
  so "Bug", "BUG" and "bug" are one name, and so are composed and decomposed accents.
  The unique constraint on (project_id, name_key) holds it against a concurrent create.
- A colour is `#rrggbb` (CSS Color 4 section 5.2), stored and answered in lower case.
- Labels carry no version of their own: each change is a change of the project, whose
  version increases (as for members) and is what If-Match is checked against, in the
  writing transaction (compare-and-set: a concurrent change is ABORTED).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from common.contract_rules import string_rules
from common.db import Database, utcnow
from common.errors import Aborted, AlreadyExists, NotFound, invalid
from common.paging import PageTokens
from common.preconditions import NONE, Preconditions
from common.validation import text_problem
from task_svc.memberships import Action
from task_svc.models import Label, Project
from task_svc.permissions import Viewer
from task_svc.projects import load
from taskmgr.task.v1 import project_service_pb2 as pb

NAME_MAX = string_rules(pb.Label.DESCRIPTOR, "name").max_len
COLOR = re.compile(string_rules(pb.Label.DESCRIPTOR, "color").pattern)
UPDATABLE = ("name", "color")
OUTPUT_ONLY = ("id", "project_id", "created_at", "updated_at")


def name_key(name: str) -> str:
    """The caseless form two names are compared by (Unicode 15 section 3.13, D145)."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def check_values(values: Mapping[str, Any]) -> None:
    """INVALID_ARGUMENT naming each bad field of `values` (name, color)."""
    problems: dict[str, str] = {}
    for field, value in values.items():
        if field == "name":
            problem = "This field may not be blank." if value and not value.strip() else (
                text_problem(value, max_length=NAME_MAX, min_length=1)
            )
        else:
            problem = None if COLOR.fullmatch(value) else "A colour as #rrggbb, e.g. #d73a4a."
        if problem:
            problems[field] = problem
    if problems:
        raise invalid(problems)


def mask_fields(paths: list[str]) -> tuple[str, ...]:
    """The fields an update_mask names (`*`: both); unknown ones are INVALID_ARGUMENT."""
    if "*" in paths:
        return UPDATABLE
    unknown = [path for path in paths if path not in UPDATABLE and path not in OUTPUT_ONLY]
    if unknown:
        raise invalid({"update_mask": f"Unknown fields: {', '.join(unknown)}. Updatable: name, color."})
    return tuple(dict.fromkeys(path for path in paths if path in UPDATABLE))


def label_not_found(label_id: int) -> NotFound:
    return NotFound("LABEL_NOT_FOUND", f"No label {label_id} in this project.")


class Labels:
    def __init__(self, database: Database, page_tokens: PageTokens) -> None:
        self._db = database
        self._page_tokens = page_tokens

    def list(self, viewer: Viewer, project_id: int, page_token: str, size: int) -> tuple[list[Label], str]:
        """The project's labels in caseless name order, keyset-paged (any member)."""
        fingerprint = {"project": project_id, "labels": True}
        after = self._page_tokens.decode(page_token, fingerprint)
        query = select(Label).where(Label.project_id == project_id)
        if after is not None:
            query = query.where(Label.name_key > after)  # unique in the project: a total order
        with self._db.read() as session:
            load(session, viewer, project_id, Action.READ)
            rows = list(session.scalars(query.order_by(Label.name_key).limit(size + 1)))
        token = self._page_tokens.encode(rows[size - 1].name_key, fingerprint) if len(rows) > size else ""
        return rows[:size], token

    def create(
        self, viewer: Viewer, project_id: int, name: str, color: str, preconditions: Preconditions = NONE
    ) -> Label:
        check_values({"name": name, "color": color})
        try:
            with self._db.transaction() as session:
                project = _managed(session, viewer, project_id, preconditions)
                now = utcnow()
                label = Label(
                    project_id=project_id, name=name, name_key=name_key(name), color=color.lower(),
                    created_at=now, updated_at=now,
                )
                session.add(label)
                session.flush()
                _changed(session, project)
            return label
        except IntegrityError as exc:  # the name, taken meanwhile or before
            raise _exists(name) from exc
        except StaleDataError as exc:
            raise _conflict() from exc

    def update(
        self, viewer: Viewer, project_id: int, label_id: int, values: Mapping[str, Any],
        preconditions: Preconditions = NONE,
    ) -> Label:
        check_values(values)
        try:
            with self._db.transaction() as session:
                project = _managed(session, viewer, project_id, preconditions)
                label = self._own(session, project_id, label_id)
                if "name" in values:
                    label.name, label.name_key = values["name"], name_key(values["name"])
                if "color" in values:
                    label.color = values["color"].lower()
                if session.is_modified(label):
                    label.updated_at = utcnow()
                    session.flush()
                    _changed(session, project)
            return label
        except IntegrityError as exc:
            raise _exists(values["name"]) from exc
        except StaleDataError as exc:
            raise _conflict() from exc

    def delete(
        self, viewer: Viewer, project_id: int, label_id: int, preconditions: Preconditions = NONE
    ) -> None:
        """Deletes the label; the tasks carrying it lose it (ON DELETE CASCADE)."""
        try:
            with self._db.transaction() as session:
                project = _managed(session, viewer, project_id, preconditions)
                session.delete(self._own(session, project_id, label_id))
                session.flush()
                _changed(session, project)
        except StaleDataError as exc:
            raise _conflict() from exc

    @staticmethod
    def _own(session: Session, project_id: int, label_id: int) -> Label:
        label = session.get(Label, label_id) if label_id > 0 else None
        if label is None or label.project_id != project_id:
            raise label_not_found(label_id)
        return label


def _managed(session: Session, viewer: Viewer, project_id: int, preconditions: Preconditions) -> Project:
    """The project, if `viewer` may manage its labels and its version meets `preconditions`."""
    project = load(session, viewer, project_id, Action.MANAGE_LABELS).project
    preconditions.check(project.version)
    return project


def _changed(session: Session, project: Project) -> None:
    """The project's version increases ("WHERE version = <read>": StaleDataError if it
    changed meanwhile)."""
    project.updated_at = utcnow()
    session.flush()


def _conflict() -> Aborted:
    return Aborted("CONCURRENT_UPDATE", "The project is being changed by someone else; try again.")


def _exists(name: str) -> AlreadyExists:
    return AlreadyExists(
        "LABEL_EXISTS", f"The project has a label named {name!r} already (case-insensitive)."
    )
