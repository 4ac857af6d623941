""""Was the assignee told?": the notifications one task's events caused (issue 14 §2).

task_svc decides who may see them, by the task's own rule (whoever may see the task;
else NOT_FOUND, as GET /api/tasks/{id}/), then asks notify_svc, over its internal
ListSubjectNotifications (the internal key), for what the events whose source is
task_svc and whose subject is the task id caused. Neither reads the other's tables:
task_svc adds what only it knows, the task's events still in its outbox (PENDING: not
yet handed to notify_svc), and notify_svc adds its dead letters (PENDING too).
Paged (AIP-158; ~316 bytes an entry, a whole list of a busy task would pass gRPC's 8 MB):
notify_svc pages its log by id, oldest first, its dead letters on its last page, and
the outbox's events (the newest) come on the last page of all.
Personal data goes only to those who need it (OWASP ASVS v4 8.3.1): whoever sees the
task sees of every notification its status, event type, times and recipient; its
`reason` (a SKIPPED one names the recipient's notification settings, a FAILED one their
delivery trouble) and `request_id` (the request of whoever caused it) only when they are
the recipient, or when it has none (told nobody, or PENDING: not yet known). Staff see
everything, and alone the addresses (asked of notify_svc only for them).
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from sqlalchemy import select

from common.db import Database
from common.grpc_client import make_channel
from common.paging import PageTokens
from common.settings import Settings
from task_svc.events import SOURCE
from task_svc.models import Outbox
from task_svc.permissions import Viewer
from task_svc.tasks import Tasks
from taskmgr.events.v1 import events_pb2
from taskmgr.notify.v1 import notify_service_pb2, notify_service_pb2_grpc
from taskmgr.task.v1 import task_service_pb2 as pb

# notify_svc's statuses, in the task's contract (the same names).
_STATUS = {
    notify_service_pb2.NOTIFICATION_STATUS_PENDING: pb.TASK_NOTIFICATION_STATUS_PENDING,
    notify_service_pb2.NOTIFICATION_STATUS_SENT: pb.TASK_NOTIFICATION_STATUS_SENT,
    notify_service_pb2.NOTIFICATION_STATUS_FAILED: pb.TASK_NOTIFICATION_STATUS_FAILED,
    notify_service_pb2.NOTIFICATION_STATUS_SKIPPED: pb.TASK_NOTIFICATION_STATUS_SKIPPED,
}
IN_OUTBOX = "committed; not yet handed to notify_svc"
# task_svc's events about a task. Its project events (taskmgr.project.*) share the source
# and have the project id as subject, which may be a task's id too: not that task's.
TASK_EVENTS = "taskmgr.task."
_FIELDS = ("event_id", "event_type", "address", "channel", "reason", "attempts", "request_id")


class TaskNotifications:
    def __init__(
        self,
        database: Database,
        check_visible: Callable[[Viewer, int], object],
        notify: notify_service_pb2_grpc.NotificationServiceStub,
        page_tokens: PageTokens,
        *,
        internal_key: bytes,
        deadline: float,
    ) -> None:
        """`check_visible(viewer, task_id)` raises NOT_FOUND when the viewer may not see
        the task (Tasks.get); `notify` is notify_svc's stub."""
        self._database = database
        self._check_visible = check_visible
        self._notify = notify
        self._page_tokens = page_tokens
        self._metadata = [("x-internal-key", internal_key.decode())]
        self._deadline = deadline

    def list(
        self, viewer: Viewer, task_id: int, page_token: str, size: int
    ) -> tuple[list[pb.TaskNotification], str]:
        """One page (AIP-158), oldest first: what notify_svc has handled or holds dead,
        paged by notify_svc (`size` a page of its; the project's events sharing the
        subject are left out after, so a page may hold fewer), then, on the last page
        only, what is still in the outbox (the newest). The token wraps notify_svc's,
        signed again and bound to the task here, so a tampered one is INVALID_PAGE_TOKEN
        before notify_svc is asked. NOT_FOUND for a task the viewer may not see;
        UNAVAILABLE (a dependency away) when notify_svc does not answer. Returns the page
        and the next page's token ("" on the last)."""
        fingerprint = {"notifications": task_id}
        notify_token = self._page_tokens.decode(page_token, fingerprint) or ""
        self._check_visible(viewer, task_id)
        # Read before notify_svc is asked: an event relayed meanwhile is then in both
        # (dropped below), never in neither.
        pending = self._in_outbox(task_id)
        answer = self._notify.ListSubjectNotifications(
            notify_service_pb2.ListSubjectNotificationsRequest(
                source=SOURCE, subject=str(task_id), with_addresses=viewer.is_staff,
                page_size=size, page_token=notify_token,
            ),
            timeout=self._deadline,
            metadata=self._metadata,
        )
        results = [_from_notify(item) for item in answer.results if item.event_type.startswith(TASK_EVENTS)]
        if not answer.next_page_token:
            known = {item.event_id for item in results}
            results += [_pending(event) for event in pending if event.id not in known]
        if not viewer.is_staff:
            for message in results:
                _withhold_others(message, viewer.user_id)
        following = answer.next_page_token
        return results, self._page_tokens.encode(following, fingerprint) if following else ""

    def _in_outbox(self, task_id: int) -> list[events_pb2.Event]:
        """The task's events not yet relayed. The outbox holds only what the relay has not
        delivered yet (a few rows, unless notify_svc or the broker is away), so its rows
        of task events are read and their subjects compared here."""
        statement = (
            select(Outbox.payload).where(Outbox.event_type.like(f"{TASK_EVENTS}%")).order_by(Outbox.id)
        )
        with self._database.read() as session:
            payloads = list(session.scalars(statement))
        events = (events_pb2.Event.FromString(payload) for payload in payloads)
        return [event for event in events if event.source == SOURCE and event.subject == str(task_id)]


def _from_notify(item: notify_service_pb2.SubjectNotification) -> pb.TaskNotification:
    message = pb.TaskNotification(status=_STATUS.get(item.status, pb.TASK_NOTIFICATION_STATUS_UNSPECIFIED))
    for name in _FIELDS:
        setattr(message, name, getattr(item, name))
    if item.HasField("recipient_user_id"):
        message.recipient_user_id = item.recipient_user_id
    for name in ("created_at", "sent_at"):
        if item.HasField(name):
            getattr(message, name).CopyFrom(getattr(item, name))
    return message


def _withhold_others(message: pb.TaskNotification, user_id: int) -> None:
    """Clears `reason` and `request_id` of a notification of somebody other than
    `user_id` (the module's rule)."""
    if message.HasField("recipient_user_id") and message.recipient_user_id != user_id:
        message.ClearField("reason")
        message.ClearField("request_id")


def _pending(event: events_pb2.Event) -> pb.TaskNotification:
    message = pb.TaskNotification(
        event_id=event.id, event_type=event.type, channel="email",
        status=pb.TASK_NOTIFICATION_STATUS_PENDING, reason=IN_OUTBOX, request_id=event.correlation_id,
    )
    message.created_at.CopyFrom(event.time)
    return message


def notifications_from(
    settings: Settings, database: Database, tasks: Tasks, page_tokens: PageTokens
) -> tuple[TaskNotifications, grpc.Channel]:
    """The service's TaskNotifications and its channel to notify_svc (close it on stop)."""
    channel = make_channel(settings.notify_svc_addr)
    notifications = TaskNotifications(
        database,
        tasks.get,
        notify_service_pb2_grpc.NotificationServiceStub(channel),
        page_tokens,
        internal_key=settings.secret("internal_key"),
        deadline=settings.grpc_call_deadline,
    )
    return notifications, channel
