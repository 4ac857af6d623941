"""ListTasks on PostgreSQL: every filter and ordering, paged in small pages and compared
with the same query answered in Python; paging while tasks are being inserted."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from common.db import Database
from common.settings import Settings
from task_svc.server import build
from taskmgr.task.v1 import task_service_pb2 as pb
from taskmgr.task.v1 import task_service_pb2_grpc
from tests.integration.task_svc.support import (
    ALICE,
    BOB,
    CAROL,
    STAFF,
    bulk_insert,
    field_violations,
    grpc_error,
    reason,
)
from tests.support.engines import ENGINES, database_url
from tests.support.tokens import TestIssuer

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TITLES = ["Report", "report card", "50% off", "100_percent", "plain", "Quarterly REPORTING", "misc"]
STATUSES = ["pending", "in_progress", "done", "cancelled"]


def sample_rows() -> list[dict]:
    """60 tasks of four users, with ties in every ordering column."""
    rows = []
    for n in range(60):
        rows.append({
            "title": TITLES[n % len(TITLES)],
            "description": "see the REPORT" if n % 11 == 0 else "",
            "status": STATUSES[n % 4],
            "priority": 1 + n % 4,
            "created_by": (ALICE, BOB, CAROL, STAFF)[(n // 2) % 4],
            "assigned_to": (None, ALICE, BOB, CAROL, STAFF)[n % 5],
            # Three tasks per instant, so the id has to break the ties.
            "created_at": BASE + dt.timedelta(minutes=n // 3),
            "updated_at": BASE + dt.timedelta(hours=1, minutes=(n * 7) % 20),
            "due_date": None if n % 6 == 0 else BASE + dt.timedelta(days=n % 9),
        })
    return rows


@dataclass
class Sample:
    """A task_svc holding sample_rows(), shared by the read-only tests of this module."""

    stub: task_service_pb2_grpc.TaskServiceStub
    rows: list[dict]
    issuer: TestIssuer

    def metadata(self, user_id: int) -> list[tuple[str, str]]:
        return self.issuer.metadata(user_id, is_staff=user_id == STAFF)

    def visible_to(self, user_id: int) -> list[dict]:
        if user_id == STAFF:
            return self.rows
        return [r for r in self.rows if user_id in (r["created_by"], r["assigned_to"])]


@pytest.fixture(scope="module", params=ENGINES)
def sample(request, tmp_path_factory) -> Iterator[Sample]:  # noqa: ANN001
    directory = tmp_path_factory.mktemp("task_svc")
    settings = Settings(
        environment="test", var_dir=directory,
        task_svc_database_url=database_url(request, request.param, directory, "task_svc"),
        user_svc_addr="127.0.0.1:1",  # never asked: these tests assign nobody
    )
    issuer = TestIssuer()
    server = build(settings, 0, verifier=issuer.verifier()).start()
    database = Database(settings.task_svc_database_url, pool_size=1)
    rows = sample_rows()
    for row, task_id in zip(rows, bulk_insert(database, rows), strict=True):
        row["id"] = task_id
    database.dispose()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield Sample(task_service_pb2_grpc.TaskServiceStub(channel), rows, issuer)
    server.stop(0)


def page_through(stub, metadata, page_size: int = 7, **filters) -> list[int]:  # noqa: ANN001
    ids, token = [], ""
    while True:
        page = stub.ListTasks(
            pb.ListTasksRequest(page_size=page_size, page_token=token, **filters), metadata=metadata
        )
        ids.extend(task.id for task in page.results)
        token = page.next_page_token
        if not token:
            return ids
        assert len(page.results) == page_size


def expected_order(rows: list[dict], ordering: str) -> list[int]:
    field = ordering.removeprefix("-")
    descending = ordering.startswith("-")
    dated = sorted(
        (r for r in rows if r[field] is not None), key=lambda r: (r[field], r["id"]), reverse=descending
    )
    undated = sorted((r for r in rows if r[field] is None), key=lambda r: r["id"], reverse=descending)
    return [r["id"] for r in dated + undated]  # NULL due dates last, in both directions


@pytest.mark.parametrize("field", ["created_at", "updated_at", "due_date", "priority"])
@pytest.mark.parametrize("direction", ["", "-"])
@pytest.mark.parametrize("user_id", [ALICE, STAFF])
def test_every_ordering_pages_in_a_total_order(
    sample: Sample, field: str, direction: str, user_id: int
) -> None:
    ordering = direction + field
    expected = expected_order(sample.visible_to(user_id), ordering)
    assert page_through(sample.stub, sample.metadata(user_id), ordering=ordering) == expected


def test_default_ordering_is_newest_first(sample: Sample) -> None:
    expected = expected_order(sample.visible_to(ALICE), "-created_at")
    assert page_through(sample.stub, sample.metadata(ALICE)) == expected


def due(row: dict, *, before: int | None = None, after: int | None = None) -> bool:
    """Whether the row is due before / after BASE plus that many days."""
    if row["due_date"] is None:
        return False
    if before is not None:
        return row["due_date"] < BASE + dt.timedelta(days=before)
    return row["due_date"] > BASE + dt.timedelta(days=after)


def at(text: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromJsonString(text)
    return stamp


# Each filter, and the same filter in Python: matches(row, viewer id).
FILTERS = [
    ({"status": pb.TASK_STATUS_DONE}, lambda r, me: r["status"] == "done"),
    ({"priority": pb.TASK_PRIORITY_URGENT}, lambda r, me: r["priority"] == 4),
    ({"assigned_to": "me"}, lambda r, me: r["assigned_to"] == me),
    ({"assigned_to": str(BOB)}, lambda r, me: r["assigned_to"] == BOB),
    ({"assigned_to": "none"}, lambda r, me: r["assigned_to"] is None),
    ({"created_by": "me"}, lambda r, me: r["created_by"] == me),
    ({"created_by": str(CAROL)}, lambda r, me: r["created_by"] == CAROL),
    ({"q": "report"}, lambda r, me: "report" in (r["title"] + r["description"]).lower()),
    ({"q": "%"}, lambda r, me: "%" in r["title"]),  # a literal %, not a wildcard
    ({"q": "_"}, lambda r, me: "_" in r["title"]),
    ({"due_before": at("2026-01-04T00:00:00Z")}, lambda r, me: due(r, before=3)),
    ({"due_after": at("2026-01-07T00:00:00+00:00")}, lambda r, me: due(r, after=6)),
    ({"status": pb.TASK_STATUS_PENDING, "priority": pb.TASK_PRIORITY_LOW, "assigned_to": "none"},
     lambda r, me: (r["status"], r["priority"], r["assigned_to"]) == ("pending", 1, None)),
]


@pytest.mark.parametrize(("filters", "matches"), FILTERS, ids=[str(f) for f, _ in FILTERS])
@pytest.mark.parametrize("user_id", [ALICE, STAFF])
def test_every_filter(sample: Sample, filters: dict, matches, user_id: int) -> None:  # noqa: ANN001
    rows = sample.visible_to(user_id)
    expected = expected_order([r for r in rows if matches(r, user_id)], "-created_at")
    assert expected, "the sample data should give every filter something to find"
    assert page_through(sample.stub, sample.metadata(user_id), page_size=5, **filters) == expected


def test_bad_filters_are_field_errors(sample: Sample) -> None:
    # The contract's rules (common.contract_rules), checked before the handler runs.
    request = pb.ListTasksRequest(status=99, priority=-1, ordering="title", assigned_to="x", created_by="0")
    error = grpc_error(sample.stub.ListTasks, request, metadata=sample.metadata(ALICE))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(error)) == {"status", "priority", "ordering", "assigned_to", "created_by"}
    # A Timestamp outside 0001..9999 cannot be a datetime: the handler's field error.
    request = pb.ListTasksRequest(due_before=Timestamp(seconds=-(10**12)))
    error = grpc_error(sample.stub.ListTasks, request, metadata=sample.metadata(ALICE))
    assert set(field_violations(error)) == {"due_before"}


def test_a_token_fits_only_its_own_query(sample: Sample) -> None:
    stub, as_user = sample.stub, sample.metadata
    done, pending = pb.TASK_STATUS_DONE, pb.TASK_STATUS_PENDING
    first = stub.ListTasks(pb.ListTasksRequest(page_size=2, status=done), metadata=as_user(ALICE))
    for request in [
        pb.ListTasksRequest(page_size=2, page_token=first.next_page_token, status=pending),
        pb.ListTasksRequest(page_size=2, page_token=first.next_page_token[:-3] + "abc", status=done),
    ]:
        error = grpc_error(stub.ListTasks, request, metadata=as_user(ALICE))
        assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
    # Nor does it fit someone else's listing.
    request = pb.ListTasksRequest(page_size=2, page_token=first.next_page_token, status=pb.TASK_STATUS_DONE)
    assert reason(grpc_error(stub.ListTasks, request, metadata=as_user(BOB))) == "INVALID_PAGE_TOKEN"


def test_page_size_is_bounded(stub, as_user, database) -> None:
    bulk_insert(database, [{"title": f"t{n}", "created_by": ALICE} for n in range(120)])
    assert len(stub.ListTasks(pb.ListTasksRequest(), metadata=as_user(ALICE)).results) == 20
    assert len(stub.ListTasks(pb.ListTasksRequest(page_size=500), metadata=as_user(ALICE)).results) == 100
    error = grpc_error(stub.ListTasks, pb.ListTasksRequest(page_size=-1), metadata=as_user(ALICE))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_paging_while_tasks_are_inserted_has_no_duplicates_or_gaps(stub, as_user, database) -> None:
    rows = [
        {"title": f"old {n}", "created_by": ALICE if n % 2 else BOB, "assigned_to": None if n % 2 else ALICE,
         "created_at": BASE + dt.timedelta(seconds=n // 2)}
        for n in range(400)
    ]
    existing = set(bulk_insert(database, rows))
    stop = threading.Event()
    inserted: list[int] = []

    def keep_inserting() -> None:
        while not stop.is_set():
            new = stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(title="new")), metadata=as_user(ALICE))
            inserted.append(new.id)

    writer = threading.Thread(target=keep_inserting)
    writer.start()
    try:
        seen = page_through(stub, as_user(ALICE), page_size=25)
    finally:
        stop.set()
        writer.join()
    assert inserted, "the writer should have inserted while the pages were read"
    assert len(seen) == len(set(seen))
    assert existing <= set(seen)
