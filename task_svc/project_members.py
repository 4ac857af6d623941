"""The membership operations of a project: list, add, change a role, remove or leave.

- Owners (and staff) add members, change roles and remove members; any member may
  leave (remove themselves). The role rules are task_svc.memberships'.
- A member is a user with a verified email and an active account (task_svc.assignees),
  named by id or by username; user_svc is asked outside the writing transaction (on
  SQLite that holds the one write lock).
- Membership changes are changes of the project: each increases the project's version
  (its ETag), and If-Match / If-None-Match are checked against it in the writing
  transaction, whose UPDATE requires it (compare-and-set).
- The last owner can be neither demoted nor removed: the owners are counted and the
  change made while the project's memberships are serialized (common.db.serialize_on),
  so two owners demoting each other at once cannot leave none.
- A removed member's assignments in the project are undone in the same transaction:
  the assignee of a project task is always a member. Assignments take the member's row
  FOR SHARE (projects.role_of), so no assignment commits past a concurrent removal.
- Adding a member records taskmgr.project.member_added (they are emailed).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from common.db import Database, serialize_on, utcnow
from common.errors import Aborted, AlreadyExists, InvalidArgument, NotFound, invalid
from common.paging import PageTokens
from common.preconditions import NONE, Preconditions
from task_svc import events
from task_svc.assignees import UserDirectory
from task_svc.memberships import DEFAULT_ROLE, Action, Role, check_keeps_an_owner
from task_svc.models import Project, ProjectMember, Task
from task_svc.permissions import Viewer
from task_svc.projects import load

CONFLICT_ATTEMPTS = 3


class Members:
    def __init__(self, database: Database, directory: UserDirectory, page_tokens: PageTokens) -> None:
        self._db = database
        self._directory = directory
        self._page_tokens = page_tokens

    def list(
        self, viewer: Viewer, project_id: int, page_token: str, size: int
    ) -> tuple[list[ProjectMember], str]:
        """The project's members in user id order, keyset-paged (any member may read)."""
        fingerprint = {"project": project_id}
        after = self._page_tokens.decode(page_token, fingerprint) or 0
        with self._db.read() as session:
            load(session, viewer, project_id, Action.READ)
            rows = list(session.scalars(
                select(ProjectMember)
                .where(ProjectMember.project_id == project_id, ProjectMember.user_id > after)
                .order_by(ProjectMember.user_id).limit(size + 1)
            ))
        token = self._page_tokens.encode(rows[size - 1].user_id, fingerprint) if len(rows) > size else ""
        return rows[:size], token

    def add(
        self, viewer: Viewer, project_id: int, user_id: int | None, username: str, role: Role | None,
        preconditions: Preconditions = NONE,
    ) -> ProjectMember:
        """Adds the user named by `user_id` or `username` (exactly one) with `role`
        (default member)."""
        if (user_id is None) == (not username):
            raise invalid({"user_id": "Give a user_id or a username (one of the two)."})
        with self._db.read() as session:
            load(session, viewer, project_id, Action.MANAGE)  # before telling anything of users
        user_id = self._verified_user(user_id, username)
        try:
            with self._db.transaction() as session:
                view = load(session, viewer, project_id, Action.MANAGE)
                preconditions.check(view.project.version)
                if session.get(ProjectMember, (project_id, user_id)) is not None:
                    raise _exists(user_id)
                member = ProjectMember(
                    project_id=project_id, user_id=user_id, role=(role or DEFAULT_ROLE).value,
                    created_at=utcnow(),
                )
                session.add(member)
                session.flush()  # a concurrent add of the same user fails here (primary key)
                _changed(session, view.project)
                events.member_added(session, view.project, user_id, member.role, viewer.user_id)
            return member
        except IntegrityError as exc:
            raise _exists(user_id) from exc
        except StaleDataError as exc:
            raise _conflict() from exc

    def change_role(
        self, viewer: Viewer, project_id: int, user_id: int, role: Role, preconditions: Preconditions = NONE
    ) -> ProjectMember:
        try:
            with self._db.transaction() as session:
                view = load(session, viewer, project_id, Action.MANAGE)
                preconditions.check(view.project.version)
                member = _member(session, project_id, user_id)
                check_keeps_an_owner(_owners(session, project_id), user_id, role)
                if member.role != role.value:
                    member.role = role.value
                    _changed(session, view.project)
            return member
        except StaleDataError as exc:
            raise _conflict() from exc

    def remove(
        self, viewer: Viewer, project_id: int, user_id: int, preconditions: Preconditions = NONE
    ) -> None:
        """Removes `user_id` (owners), or the caller leaves (their own id)."""
        action = Action.LEAVE if user_id == viewer.user_id else Action.MANAGE
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                with self._db.transaction() as session:
                    view = load(session, viewer, project_id, action)
                    preconditions.check(view.project.version)
                    member = _member(session, project_id, user_id)
                    check_keeps_an_owner(_owners(session, project_id), user_id, None)
                    session.delete(member)
                    _unassign(session, project_id, user_id, viewer.user_id)
                    _changed(session, view.project)
                return
            except StaleDataError:
                continue  # the project or one of their tasks changed meanwhile: all again
        raise _conflict()

    def _verified_user(self, user_id: int | None, username: str) -> int:
        if user_id is not None:
            field, problem = "user_id", self._directory.check_assignable(user_id)
        else:
            field, (user_id, problem) = "username", self._directory.lookup(username)
        if problem or user_id is None:
            raise InvalidArgument(
                "MEMBER_INVALID", "This user cannot join a project.", fields={field: problem or ""}
            )
        return user_id


def _owners(session: Session, project_id: int) -> list[int]:
    """The project's owners, read while its memberships are serialized."""
    serialize_on(session, f"task_svc.project_members.{project_id}")
    return list(session.scalars(
        select(ProjectMember.user_id).where(
            ProjectMember.project_id == project_id, ProjectMember.role == Role.OWNER.value
        )
    ))


def _member(session: Session, project_id: int, user_id: int) -> ProjectMember:
    member = session.get(ProjectMember, (project_id, user_id))
    if member is None:
        raise NotFound("MEMBER_NOT_FOUND", f"User {user_id} is not a member of project {project_id}.")
    return member


def _unassign(session: Session, project_id: int, user_id: int, actor: int) -> None:
    tasks = session.scalars(select(Task).where(Task.project_id == project_id, Task.assigned_to == user_id))
    for task in tasks:
        task.assigned_to = None
        task.updated_at = utcnow()
        session.flush()  # the version check: StaleDataError if the task changed meanwhile
        events.task_assigned(session, task, actor, previous_assignee=user_id)


def _changed(session: Session, project: Project) -> None:
    """The project's version increases (StaleDataError if it changed meanwhile)."""
    project.updated_at = utcnow()
    session.flush()


def _conflict() -> Aborted:
    return Aborted("CONCURRENT_UPDATE", "The project is being changed by someone else; try again.")


def _exists(user_id: int) -> AlreadyExists:
    return AlreadyExists("MEMBER_EXISTS", f"User {user_id} is a member of this project already.")
