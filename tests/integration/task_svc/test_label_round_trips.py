"""A task's labels come with its read: GetTask and a ListTasks page (the label filter
too) stay one PostgreSQL round trip, counted on the wire."""

# ruff: noqa: F811 (the fixture imported from test_round_trips is a parameter here)
from __future__ import annotations

import pytest

from task_svc.labels import Labels
from task_svc.list_query import parse_list_query
from task_svc.models import Project, ProjectMember
from task_svc.permissions import Viewer
from task_svc.task_labels import parse
from task_svc.tasks import NewTask
from tests.integration.task_svc.test_round_trips import (  # noqa: F401 (a fixture)
    ALICE,
    NO_FILTERS,
    counted,
    round_trips,
)

pytestmark = pytest.mark.postgres


def test_labels_come_with_the_read_in_one_round_trip(counted) -> None:
    tasks, counter = counted
    with tasks._db.transaction() as session:
        project = Project(name="p", created_by=ALICE.user_id)
        session.add(project)
        session.flush()
        session.add(ProjectMember(project_id=project.id, user_id=ALICE.user_id, role="owner"))
    labels = Labels(tasks._db, tasks._page_tokens)
    bug, ui = (labels.create(ALICE, project.id, name, "#000000").id for name in ("bug", "ui"))
    tagged = tasks.create(ALICE, NewTask(title="tagged", project_id=project.id, label_ids=(bug, ui)))
    tasks.create(ALICE, NewTask(title="plain", project_id=project.id))
    tasks.create(ALICE, NewTask(title="personal"))

    row, trips, queries = round_trips(counter, lambda: tasks.get(ALICE, tagged.id))
    assert (parse(row.label_ids), trips) == (sorted([bug, ui]), 1), queries
    for filters, staff in (({}, False), ({"label": [ui, bug]}, False), ({"label": [bug]}, True)):
        viewer = Viewer(user_id=ALICE.user_id, is_staff=staff)
        query = parse_list_query(viewer, NO_FILTERS | filters)
        (page, _token), trips, queries = round_trips(counter, lambda query=query: tasks.list(query, "", 10))
        assert trips == 1, queries
        carried = {row.title: parse(row.label_ids) for row in page}
        assert carried["tagged"] == sorted([bug, ui])
        if not filters:
            assert carried == {"tagged": sorted([bug, ui]), "plain": [], "personal": []}
        else:
            assert list(carried) == ["tagged"]
