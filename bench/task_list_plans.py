"""Does a page of a user's task list cost the same with 1,000 and 1,000,000 tasks?

Creates a temporary PostgreSQL database (dropped at the end), migrates task_svc's
schema, fills it with generate_series, and for 1,000 and then 1,000,000 tasks times
task_svc's own listing query (task_svc.listing, the default ordering, one non-staff
user) and prints its EXPLAIN (ANALYZE, BUFFERS). Two tasks in three belong to one of
1,000 projects; every user is a member of 20 of them, so the probe sees its personal
tasks and those of its 20 projects. One of the probe's projects is its team's busy one
(one task in fifteen of all: 67 at 1,000 tasks, 66,667 at 1,000,000), so its one-project
page and two-label page are full at both sizes and the ratio compares a page with a page
(a project holding its even share has no task at 1,000, and an empty page is cheaper
than any full one). For contrast it also times the naive
"created_by = me OR assigned_to = me OR project_id IN (my projects)" form of the
same page.

    .venv/bin/python bench/task_list_plans.py     # BENCH_PG_ADMIN_URL to use another server
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from psycopg.sql import Literal  # noqa: E402
from sqlalchemy import and_, create_engine, or_, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from common.db import Database, migrate  # noqa: E402
from task_svc.list_query import parse_list_query  # noqa: E402
from task_svc.listing import POSTGRES_SETTINGS, fetch_page, page_query  # noqa: E402
from task_svc.models import Label, ProjectMember, Task  # noqa: E402
from task_svc.permissions import Viewer  # noqa: E402
from task_svc.server import MIGRATIONS  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
USERS = 50  # each user creates ~1/50 and is assigned ~1/60 of all tasks
PROJECTS = 1_000  # two tasks in three belong to one, spread evenly
PROJECTS_PER_USER = 20
PROBE = Viewer(user_id=7, is_staff=False)
BUSY_PROJECT = 1 + PROBE.user_id * 37 % PROJECTS  # the probe owns it (k = 0 in MEMBERS_FILL)
PAGE = 20
RUNS = 400

# Projects, and user u a member of PROJECTS_PER_USER of them (owner of the first).
PROJECTS_FILL = text("""
    INSERT INTO projects (name, description, archived, created_by, created_at, updated_at, version)
    SELECT 'project ' || p, '', false, 1 + p % CAST(:users AS bigint), now(), now(), 1
    FROM generate_series(1, CAST(:projects AS bigint)) AS p
""")
MEMBERS_FILL = text("""
    INSERT INTO project_members (project_id, user_id, role, created_at)
    SELECT DISTINCT ON (project_id, u) project_id, u, CASE WHEN k = 0 THEN 'owner' ELSE 'member' END, now()
    FROM generate_series(1, CAST(:users AS bigint)) AS u,
         generate_series(0, CAST(:per_user AS bigint) - 1) AS k,
         LATERAL (SELECT 1 + (u * 37 + k * 50) % CAST(:projects AS bigint) AS project_id) AS chosen
""")

# Three labels per project (slots 0-2); a project's task g carries slot g % 3, and slot 0
# too when g div 1000 is even (a project's tasks share g mod 1000, so not g's parity):
# the label filter's probe, slots 1 and 0 together, matches about a quarter of them (in
# the busy project: half of its tasks up to 1,000, none of g 999,000-1,000,000, a half of
# each even thousand before).
LABELS_FILL = text("""
    INSERT INTO labels (project_id, name, name_key, color, created_at, updated_at)
    SELECT p.id, 'l' || s, 'l' || s, '#000000', now(), now()
    FROM projects AS p, generate_series(0, 2) AS s
""")
TASK_LABELS_FILL = text("""
    INSERT INTO task_labels (task_id, label_id)
    SELECT t.id, l.id FROM tasks AS t JOIN labels AS l ON l.project_id = t.project_id
    WHERE t.id BETWEEN :first AND :last
      AND (l.name = 'l' || (t.id % 3) OR (l.name = 'l0' AND (t.id / 1000) % 2 = 0))
""")

# Task g: creator and assignee spread over USERS, one in five unassigned, a third
# without due date, two in three in one of PROJECTS (g % 10 = 1 in the busy one), created
# one second after task g-1.
FILL = text("""
    INSERT INTO tasks (title, description, status, priority, due_date, created_by, assigned_to,
                       project_id, created_at, updated_at, version)
    SELECT 'task ' || g, 'generated task number ' || g,
           (ARRAY['pending', 'in_progress', 'done', 'cancelled'])[1 + g % 4], 1 + g % 4,
           CASE WHEN g % 3 = 0 THEN NULL ELSE timestamptz '2026-06-01' + (g % 97) * interval '1 day' END,
           1 + (g * 7919) % CAST(:users AS bigint),
           CASE WHEN g % 5 = 0 THEN NULL ELSE 1 + (g * 104729) % CAST(:users AS bigint) END,
           CASE WHEN g % 3 = 0 THEN NULL WHEN g % 10 = 1 THEN CAST(:busy AS bigint)
                ELSE 1 + (g * 7907) % CAST(:projects AS bigint) END,
           timestamptz '2026-01-01' + g * interval '1 second',
           timestamptz '2026-01-01' + g * interval '1 second', 1
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
""")


def fill(database: Database, first: int, last: int) -> float:
    """Inserts tasks first..last; the secondary indexes are rebuilt afterwards, which is
    much faster than maintaining them row by row."""
    started = time.perf_counter()
    with database.engine.connect() as connection:
        connection.execute(text("SET synchronous_commit = off"))
        connection.execute(text("SET maintenance_work_mem = '256MB'"))
        indexes = connection.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tasks' AND indexname LIKE 'ix_%'"
        )).all()
        for name, _definition in indexes:
            connection.execute(text(f'DROP INDEX "{name}"'))
        connection.execute(FILL, {
            "first": first, "last": last, "users": USERS, "projects": PROJECTS, "busy": BUSY_PROJECT,
        })
        for _name, definition in indexes:
            connection.execute(text(definition))
        connection.execute(TASK_LABELS_FILL, {"first": first, "last": last})
        connection.commit()
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE tasks"))
        connection.execute(text("VACUUM ANALYZE projects"))
        connection.execute(text("VACUUM ANALYZE project_members"))
        connection.execute(text("VACUUM ANALYZE task_labels"))
    return time.perf_counter() - started


def timed(run, runs: int = RUNS) -> tuple[float, float, float]:  # noqa: ANN001
    """Minimum, median and p95 of `run` in milliseconds, after a warm-up. On a busy
    machine the minimum is the steadiest measure of the work itself."""
    for _ in range(runs // 10):
        run()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return samples[0], statistics.median(samples), samples[int(len(samples) * 0.95)]


def explain(database: Database, statement, params: dict | None = None, *, generic: bool = False) -> list[str]:  # noqa: ANN001
    """The plan; `generic`: the parameter-independent plan task_svc runs (psycopg prepares a
    statement after its fifth execution, and POSTGRES_SETTINGS force the generic plan).
    EXPLAIN with bound parameters plans them as known values, a custom plan even under
    force_generic_plan, so the generic one is a PREPARE and an EXPLAIN EXECUTE (PostgreSQL 15
    has no EXPLAIN (GENERIC_PLAN))."""
    with database.engine.connect() as connection:
        compiled = statement.compile(dialect=connection.dialect)
        values = compiled.construct_params(params or {})
        if not generic:
            sql = "EXPLAIN (ANALYZE, BUFFERS) " + str(compiled)
            return [row[0] for row in connection.exec_driver_sql(sql, values)]
        names: list[str] = []  # the statement's parameters in order of first use: $1, $2 ...

        def numbered(match: re.Match) -> str:
            if match[1] not in names:
                names.append(match[1])
            return f"${names.index(match[1]) + 1}"

        driver = connection.connection.driver_connection
        connection.execute(text("SET plan_cache_mode = force_generic_plan"))
        connection.exec_driver_sql(
            "PREPARE bench_page AS " + re.sub(r"%\((\w+)\)s", numbered, str(compiled)).replace("%%", "%")
        )
        # EXECUTE is a utility statement: its arguments are SQL literals, not parameters.
        arguments = ", ".join(Literal(values[name]).as_string(driver) for name in names)
        sql = f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_page({arguments})".replace("%", "%%")
        plan = [row[0] for row in connection.exec_driver_sql(sql)]
        connection.exec_driver_sql("DEALLOCATE bench_page")
        return plan


def server_side(database: Database, statement, params: dict) -> tuple[float, int]:  # noqa: ANN001
    """PostgreSQL's own median execution time (ms) over RUNS runs, and the buffers touched."""
    times, buffers = [], 0
    for _ in range(RUNS // 4):
        plan = explain(database, statement, params)
        times.append(float(next(line for line in plan if line.startswith("Execution Time")).split()[2]))
        buffers = int(next(line for line in plan if "Buffers: shared" in line).split("hit=")[1].split()[0])
    return statistics.median(times), buffers


def naive_or_statement(limit: int):  # noqa: ANN201
    my_projects = select(ProjectMember.project_id).where(ProjectMember.user_id == PROBE.user_id)
    personal = Task.project_id.is_(None)
    mine = or_(
        and_(personal, or_(Task.created_by == PROBE.user_id, Task.assigned_to == PROBE.user_id)),
        Task.project_id.in_(my_projects),
    )
    return select(Task).where(mine).order_by(Task.created_at.desc(), Task.id.desc()).limit(limit)


def measure(database: Database, total: int) -> dict[str, float]:
    query = parse_list_query(PROBE, {})
    staff_query = parse_list_query(Viewer(user_id=1, is_staff=True), {})
    with database.read() as session:
        one_project = session.scalar(select(ProjectMember.project_id).where(
            ProjectMember.user_id == PROBE.user_id, ProjectMember.project_id == BUSY_PROJECT
        ))
    project_query = parse_list_query(PROBE, {"project": str(one_project)})
    with database.read() as session:
        slots = dict(session.execute(
            select(Label.name, Label.id).where(Label.project_id == one_project, Label.name.in_(["l0", "l1"]))
        ).all())
    label_query = parse_list_query(PROBE, {"label": [slots["l1"], slots["l0"]]})
    with database.read() as session:
        first_page, position = fetch_page(database, query, None, PAGE)
        assert len(first_page) == PAGE and position is not None
        for full in (project_query, label_query):  # a page, not an empty answer, at both sizes
            assert len(fetch_page(database, full, None, PAGE)[0]) == PAGE
        results = {
            "first page": timed(lambda: fetch_page(database, query, None, PAGE)),
            "next page": timed(lambda: fetch_page(database, query, position, PAGE)),
            "staff first page": timed(lambda: fetch_page(database, staff_query, None, PAGE)),
            "one project's first page": timed(lambda: fetch_page(database, project_query, None, PAGE)),
            "two labels' first page": timed(lambda: fetch_page(database, label_query, None, PAGE)),
            "naive OR first page": timed(lambda: list(session.scalars(naive_or_statement(PAGE + 1)))),
        }
    statement, params = page_query(query, None, PAGE + 1)
    executed, buffers = server_side(database, statement, params)
    print(f"\n=== {total:,} tasks ===")
    print("  round trip through SQLAlchemy (ms):")
    for name, (fastest, median, p95) in results.items():
        print(f"    {name:<26} min {fastest:6.3f}   median {median:6.3f}   p95 {p95:6.3f}")
    print(f"  first page inside PostgreSQL: median execution {executed:.3f} ms, {buffers} buffers")
    print("  EXPLAIN (ANALYZE, BUFFERS) of the first page (task_svc's query):")
    print("\n".join("    " + line for line in explain(database, statement, params)))
    if total >= 1_000_000:
        print("  the same, with the generic plan of a prepared statement:")
        print("\n".join("    " + line for line in explain(database, statement, params, generic=True)))
        for name, probe in (("one project's", project_query), ("two labels'", label_query)):
            print(f"  EXPLAIN (ANALYZE, BUFFERS) of {name} first page (generic plan):")
            probe_plan = explain(database, *page_query(probe, None, PAGE + 1), generic=True)
            print("\n".join("    " + line for line in probe_plan))
        print("  EXPLAIN (ANALYZE, BUFFERS) of the naive OR form, for contrast:")
        print("\n".join("    " + line for line in explain(database, naive_or_statement(PAGE + 1))))
    summary = {f"{name} (min)": fastest for name, (fastest, _median, _p95) in results.items()}
    return summary | {"first page in PostgreSQL": executed, "first page buffers": buffers}


def main() -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"tm_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    database = Database(url, pool_size=2, postgres_settings=POSTGRES_SETTINGS)
    try:
        migrate(database, MIGRATIONS)
        with database.engine.begin() as connection:
            sizes = {"users": USERS, "projects": PROJECTS, "per_user": PROJECTS_PER_USER}
            connection.execute(PROJECTS_FILL, sizes)
            connection.execute(MEMBERS_FILL, sizes)
            connection.execute(LABELS_FILL)
            mine = select(ProjectMember.project_id).where(ProjectMember.user_id == PROBE.user_id)
            memberships = len(connection.execute(mine).all())
        print(f"{PROJECTS:,} projects; the probe user is a member of {memberships}")
        print(f"filled 1,000 tasks in {fill(database, 1, 1_000):.1f} s")
        small = measure(database, 1_000)
        print(f"\nfilled up to 1,000,000 tasks in {fill(database, 1_001, 1_000_000):.1f} s")
        large = measure(database, 1_000_000)
        print("\n=== 1,000,000 vs 1,000 tasks (target for task_svc's first page: <= 1.2x) ===")
        for key in small:
            print(f"  {key:<32} {small[key]:8.3f} -> {large[key]:8.3f}   {large[key] / small[key]:5.2f}x")
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
