"""ListTasks' plans on PostgreSQL: the generic plan task_svc runs (POSTGRES_SETTINGS force
it) reads a page from an index in the page's order and stops at the page size, however
many tasks match. bench/task_list_plans.py measures the same with 1,000,000 tasks."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from psycopg.sql import Literal
from sqlalchemy import Select, text

from common.db import Database, migrate
from task_svc.list_query import parse_list_query
from task_svc.listing import POSTGRES_SETTINGS, page_query
from task_svc.models import Label, Project, ProjectMember
from task_svc.permissions import Viewer
from task_svc.server import MIGRATIONS

pytestmark = pytest.mark.postgres

ALICE = Viewer(user_id=1, is_staff=False)
NO_FILTERS = dict.fromkeys(("assigned_to", "created_by", "q", "ordering", "status", "priority"), "")


@pytest.fixture
def database(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url, pool_size=1, postgres_settings=POSTGRES_SETTINGS)
    migrate(database, MIGRATIONS)
    yield database
    database.dispose()


def generic_plan(database: Database, statement: Select, params: dict) -> str:
    """EXPLAIN of `statement`'s generic plan. EXPLAIN with bound parameters plans them as
    known values (a custom plan, whatever plan_cache_mode says), so: PREPARE, then EXPLAIN
    EXECUTE with the values as literals (PostgreSQL 15 has no EXPLAIN (GENERIC_PLAN))."""
    with database.engine.connect() as connection:
        compiled = statement.compile(dialect=connection.dialect)
        values = compiled.construct_params(params)
        names: list[str] = []

        def numbered(match: re.Match) -> str:
            if match[1] not in names:
                names.append(match[1])
            return f"${names.index(match[1]) + 1}"

        sql = re.sub(r"%\((\w+)\)s", numbered, str(compiled)).replace("%%", "%")
        connection.exec_driver_sql(f"PREPARE page AS {sql}")
        driver = connection.connection.driver_connection
        arguments = ", ".join(Literal(values[name]).as_string(driver) for name in names)
        plan = connection.exec_driver_sql(f"EXPLAIN EXECUTE page({arguments})".replace("%", "%%")).all()
        connection.exec_driver_sql("DEALLOCATE page")
        return "\n".join(row[0] for row in plan)


def test_a_label_page_walks_the_projects_index_and_checks_each_rows_labels(database: Database) -> None:
    # 20 projects of 200 tasks; every task of Alice's carries both of its labels: a join
    # from the labels' side reads and sorts all of them (148 ms for 33,667 tasks in the
    # bench), the walk reads a page.
    with database.transaction() as session:
        projects = [Project(name=f"p{n}", created_by=ALICE.user_id + n) for n in range(20)]
        session.add_all(projects)
        session.flush()
        project_id = projects[0].id
        session.add(ProjectMember(project_id=project_id, user_id=ALICE.user_id, role="owner"))
        labels = [Label(project_id=project_id, name=name, name_key=name, color="#000000") for name in "ab"]
        session.add_all(labels)
        session.flush()
        label_ids = [label.id for label in labels]
    with database.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO tasks (title, description, status, priority, created_by, project_id,"
            " created_at, updated_at, version)"
            " SELECT 't' || g, '', 'pending', 1, 1, :first + g % 20,"
            " now() + g * interval '1 second', now(), 1"
            " FROM generate_series(1, 4000) AS g"
        ), {"first": project_id})
        connection.execute(text(
            "INSERT INTO task_labels (task_id, label_id)"
            " SELECT tasks.id, labels.id FROM tasks JOIN labels ON labels.project_id = tasks.project_id"
        ))
        for table in ("tasks", "task_labels", "labels", "projects", "project_members"):
            connection.execute(text(f"ANALYZE {table}"))

    for filters in ({"label": label_ids}, {"label": label_ids[:1], "project": str(project_id)}):
        query = parse_list_query(ALICE, NO_FILTERS | filters)
        plan = generic_plan(database, *page_query(query, None, 21))
        assert "Index Scan Backward using ix_tasks_project_created_at on tasks" in plan, plan
        # Each label an EXISTS per row read (a subplan of the scan), not a join or a sort.
        assert not re.search(r"Join|Nested Loop|Sort|Hash|Seq Scan on tasks", plan), plan
