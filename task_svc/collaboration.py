"""Comments, activity and watching of a task: each operation a transaction that first
applies the task's visibility rule (task_svc.permissions, with the caller's role in
the task's project read in the same transaction).

- Whoever can see the task (project viewers included) reads and adds comments, reads
  its activity and watches or unwatches it; anyone else gets NOT_FOUND, as for a task
  that does not exist.
- A comment is 1-10,000 characters (collaboration_service.proto), not only spaces.
  Its author edits it; its author, an owner of the task's project (the role that
  manages the project: task_svc.memberships) or staff delete it.
- `@username` mentions are resolved by user_svc outside the writing transaction (on
  SQLite that holds the one write lock); the mentioned users who can see the task are
  told (task_svc.events.task_commented), nobody else.
- Lists are oldest first, keyset-paged by id (AIP-158 tokens bound to the task).
- Changes take preconditions on the task's version (If-Match, RFC 9110 section 13.1),
  checked in the writing transaction; none of them changes the task or its version.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.contract_rules import string_rules
from common.db import RESULT_UNREAD, Database, utcnow
from common.errors import Aborted, NotFound, PermissionDenied, invalid
from common.paging import PageTokens
from common.preconditions import NONE, Preconditions
from common.validation import text_problem
from task_svc import activity, events, locked_task, watchers
from task_svc.assignees import UserDirectory
from task_svc.locked_task import Lock
from task_svc.memberships import Action, allowed
from task_svc.mentions import mentioned_names
from task_svc.models import Activity, Comment
from task_svc.permissions import Viewer, task_not_found
from task_svc.projects import visible_task
from task_svc.watchers import Candidate
from taskmgr.task.v1 import collaboration_service_pb2 as pb

TEXT_MAX = string_rules(pb.Comment.DESCRIPTOR, "text").max_len

# A new comment's row, built once: on PostgreSQL its id comes from its sequence with the
# task's read and the INSERT's result is not read (it goes with the COMMIT: pipelined,
# common.db); on SQLite the INSERT answers the id.
_NEXT_COMMENT_ID = func.nextval(func.pg_get_serial_sequence(Comment.__tablename__, "id"))
_INSERT_COMMENT = insert(Comment.__table__).inline().execution_options(**{RESULT_UNREAD: True})
_INSERT_COMMENT_RETURNING_ID = insert(Comment.__table__).returning(Comment.id)


def check_text(text: str) -> None:
    problem = "This field may not be blank." if text and not text.strip() else (
        text_problem(text, max_length=TEXT_MAX, min_length=1, multiline=True)
    )
    if problem:
        raise invalid({"text": problem})


class Collaboration:
    def __init__(self, database: Database, directory: UserDirectory, page_tokens: PageTokens) -> None:
        self._db = database
        self._directory = directory
        self._page_tokens = page_tokens

    def comments(self, viewer: Viewer, task_id: int, page_token: str, size: int) -> tuple[list[Comment], str]:
        after = self._page_tokens.decode(page_token, {"comments": task_id}) or 0
        with self._db.read() as session:
            visible_task(session, viewer, task_id)
            rows = list(session.scalars(
                select(Comment).where(Comment.task_id == task_id, Comment.id > after)
                .order_by(Comment.id).limit(size + 1)
            ))
        return self._page(rows, size, {"comments": task_id})

    def add_comment(
        self, viewer: Viewer, task_id: int, text: str, preconditions: Preconditions = NONE
    ) -> Comment:
        """The new comment (in no session). On PostgreSQL two round trips with its
        activity and event: the task and its watchers read, and the comment's id taken
        from its sequence, with BEGIN; its rows with the COMMIT. Mentions add the read of
        the task before user_svc is asked (one round trip), and of the roles of the
        mentioned who do not watch a project task (one)."""
        check_text(text)
        names = mentioned_names(text)
        if names:
            with self._db.read() as session:
                locked_task.read(session, viewer, task_id, lock=Lock.NONE)  # before asking user_svc anything
        mentioned = self._users(names)
        with _deleted_meanwhile(task_id), self._db.transaction(pipelined=True) as session:
            connection = session.connection()
            # PostgreSQL: the id with the read, so the INSERT's result is not awaited.
            allocated = connection.dialect.name == "postgresql"
            locked = locked_task.read(
                session, viewer, task_id, lock=Lock.NONE, extra=(_NEXT_COMMENT_ID,) if allocated else (),
            )
            task = locked.task
            preconditions.check(task.version)
            now = utcnow()
            values = {
                "task_id": task.id, "author": viewer.user_id, "text": text,
                "created_at": now, "updated_at": now,
            }
            if allocated:
                values["id"] = locked.extra[0]
                connection.execute(_INSERT_COMMENT, values)
            else:
                values["id"] = connection.execute(_INSERT_COMMENT_RETURNING_ID, values).scalar_one()
            comment = Comment(**values)
            events.task_commented(session, task, comment, mentioned, watching=locked.watching())
        return comment

    def edit_comment(
        self, viewer: Viewer, task_id: int, comment_id: int, text: str, preconditions: Preconditions = NONE
    ) -> Comment:
        check_text(text)
        with self._db.read() as session:
            visible_task(session, viewer, task_id)
            before = _comment(session, task_id, comment_id).text
        # Only a name the text did not mention before is news (user_svc asked outside
        # the writing transaction); the transaction checks the text is still `before`.
        added = [name for name in mentioned_names(text) if name not in set(mentioned_names(before))]
        mentioned = self._users(added)
        with self._db.transaction() as session:
            task, _role = visible_task(session, viewer, task_id)
            preconditions.check(task.version)
            comment = _comment(session, task_id, comment_id, lock=True)
            if comment.author != viewer.user_id:
                raise PermissionDenied("NOT_COMMENT_AUTHOR", "Only its author may edit a comment.")
            if comment.text != text:
                if comment.text != before:  # edited meanwhile: the new names are not these
                    raise Aborted("CONCURRENT_UPDATE", "The comment is being changed; try again.")
                comment.text = text
                comment.updated_at = utcnow()
                session.flush()
                events.task_commented(session, task, comment, mentioned, edited=True)
        return comment

    def delete_comment(
        self, viewer: Viewer, task_id: int, comment_id: int, preconditions: Preconditions = NONE
    ) -> None:
        with self._db.transaction() as session:
            task, role = visible_task(session, viewer, task_id)
            preconditions.check(task.version)
            comment = _comment(session, task_id, comment_id)
            manages = task.project_id is not None and allowed(role, Action.MANAGE)
            if not (comment.author == viewer.user_id or manages or viewer.is_staff):
                raise PermissionDenied(
                    "NOT_COMMENT_AUTHOR",
                    "Only its author, an owner of the task's project or staff may delete a comment.",
                )
            activity.record(
                session, task.id, viewer.user_id, activity.Kind.COMMENT_DELETED, comment_id=comment.id
            )
            session.delete(comment)

    def activity(
        self, viewer: Viewer, task_id: int, page_token: str, size: int
    ) -> tuple[list[Activity], str]:
        after = self._page_tokens.decode(page_token, {"activity": task_id}) or 0
        with self._db.read() as session:
            visible_task(session, viewer, task_id)
            rows = activity.page(session, task_id, after, size)
        return self._page(rows, size, {"activity": task_id})

    def watch(
        self, viewer: Viewer, task_id: int, watching: bool, preconditions: Preconditions = NONE
    ) -> bool:
        with _deleted_meanwhile(task_id), self._db.transaction() as session:
            task, _role = visible_task(session, viewer, task_id)
            preconditions.check(task.version)
            if watching:
                watchers.watch(session, task_id, viewer.user_id, staff=viewer.is_staff)
            else:
                watchers.unwatch(session, task_id, viewer.user_id)
        return watching

    def is_watching(self, viewer: Viewer, task_id: int) -> bool:
        with self._db.read() as session:
            visible_task(session, viewer, task_id)
            return watchers.is_watching(session, task_id, viewer.user_id)

    def _users(self, names: list[str]) -> list[Candidate]:
        """The users of `names` who exist (user_svc's LookupUser, by name)."""
        found = []
        for name in names:
            user = self._directory.find(name)
            if user is not None:
                found.append(Candidate(*user))  # staff see every task
        return found

    def _page(self, rows: list, size: int, fingerprint: dict) -> tuple[list, str]:  # noqa: ANN001
        token = self._page_tokens.encode(rows[size - 1].id, fingerprint) if len(rows) > size else ""
        return rows[:size], token


@contextmanager
def _deleted_meanwhile(task_id: int) -> Iterator[None]:
    """A row that refers to a task deleted by another transaction between our read and
    our insert breaks the foreign key (PostgreSQL, READ COMMITTED): the task is gone."""
    try:
        yield
    except IntegrityError as exc:
        raise task_not_found(task_id) from exc


def _comment(session: Session, task_id: int, comment_id: int, *, lock: bool = False) -> Comment:
    """`lock`: the row is held until the transaction ends (FOR UPDATE on PostgreSQL;
    SQLite's writer holds the database), so the text it compares is the one it replaces."""
    comment = session.get(Comment, comment_id, with_for_update=lock) if comment_id > 0 else None
    if comment is None or comment.task_id != task_id:
        raise NotFound("COMMENT_NOT_FOUND", f"No comment {comment_id} on task {task_id}.")
    return comment
