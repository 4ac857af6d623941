"""taskmgr.project.member_added: the member added is told (never the one who added
themselves), and the email names the project and the role."""

from __future__ import annotations

from notify_svc import rules
from notify_svc.messages import render
from notify_svc.rules import Contact
from taskmgr.events.v1 import events_pb2
from taskmgr.task.v1 import project_service_pb2 as project


def added(user_id: int, actor: int, role: int = project.PROJECT_ROLE_VIEWER) -> events_pb2.ProjectMemberAdded:
    return events_pb2.ProjectMemberAdded(
        project_id=3, project_name="Website relaunch", user_id=user_id, role=role, actor=actor
    )


def test_the_member_added_is_told() -> None:
    assert rules.recipients(rules.PROJECT_MEMBER_ADDED, added(user_id=7, actor=1)) == [7]


def test_nobody_is_told_of_adding_themselves() -> None:
    assert rules.recipients(rules.PROJECT_MEMBER_ADDED, added(user_id=7, actor=7)) == []


def test_the_email_names_the_project_and_the_role() -> None:
    email = render(rules.PROJECT_MEMBER_ADDED, added(7, 1), Contact(7, "bob", "bob@example.com"))
    assert email.to == "bob@example.com"
    assert email.subject == "You were added to project #3"
    assert "You are now a viewer of project #3: Website relaunch" in email.body


def test_an_unknown_role_number_still_renders() -> None:
    email = render(rules.PROJECT_MEMBER_ADDED, added(7, 1, role=42), Contact(7, "bob", "bob@example.com"))
    assert "a member of project #3" in email.body
