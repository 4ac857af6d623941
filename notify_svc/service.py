"""The gRPC servicer: proto <-> the notification log and the notifier."""

from __future__ import annotations

from google.protobuf import empty_pb2

from common.context import claims_var
from common.errors import FailedPrecondition, InvalidArgument
from common.metrics import count_notify
from common.protoconv import to_timestamp
from notify_svc.dead_letters import DeadLetters, StoredDeadLetters, require_staff
from notify_svc.models import Notification, NotificationStatus
from notify_svc.notification_log import NotificationLog
from notify_svc.notifier import Notifier
from notify_svc.rules import MalformedEvent
from taskmgr.notify.v1 import notify_service_pb2, notify_service_pb2_grpc

_STATUS = {
    NotificationStatus.SENT: notify_service_pb2.NOTIFICATION_STATUS_SENT,
    NotificationStatus.FAILED: notify_service_pb2.NOTIFICATION_STATUS_FAILED,
    NotificationStatus.SKIPPED: notify_service_pb2.NOTIFICATION_STATUS_SKIPPED,
}


class NotificationServicer(notify_service_pb2_grpc.NotificationServiceServicer):
    def __init__(
        self, notification_log: NotificationLog, notifier: Notifier, *, direct_delivery: bool,
        dead_letters: DeadLetters,
    ) -> None:
        self._log = notification_log
        self._notifier = notifier
        self._direct_delivery = direct_delivery
        self._dead_letters = dead_letters

    def ListNotifications(self, request, context):  # noqa: ANN001, N802
        page = self._log.list(
            claims_var.get(),
            requested_size=request.page_size,
            page_token=request.page_token,
            event_type=request.event_type,
        )
        return notify_service_pb2.ListNotificationsResponse(
            results=[_to_proto(entry) for entry in page.entries], next_page_token=page.next_page_token
        )

    def DeliverEvent(self, request, context):  # noqa: ANN001, N802
        if not self._direct_delivery:
            raise FailedPrecondition(
                "DIRECT_DELIVERY_OFF", "Events are delivered through the message broker."
            )
        try:
            self._notifier.handle(request)
        except MalformedEvent as exc:
            raise InvalidArgument("MALFORMED_EVENT", str(exc)) from exc
        return empty_pb2.Empty()

    def DeliverEvents(self, request, context):  # noqa: ANN001, N802
        if not self._direct_delivery:
            raise FailedPrecondition(
                "DIRECT_DELIVERY_OFF", "Events are delivered through the message broker."
            )
        try:
            outcomes = self._notifier.handle_batch(request.events)
        except Exception:
            count_notify("failed", len(request.events))
            raise
        refused = [
            notify_service_pb2.RefusedEvent(index=index, reason=str(outcome))
            for index, outcome in enumerate(outcomes)
            if isinstance(outcome, MalformedEvent)
        ]
        count_notify("handled", sum(outcome is True for outcome in outcomes))
        count_notify("duplicate", sum(outcome is False for outcome in outcomes))
        if isinstance(self._dead_letters, StoredDeadLetters):
            # Without a broker the relay drops what is refused: kept here instead.
            for item in refused:
                self._dead_letters.add(request.events[item.index], item.reason)
        return notify_service_pb2.DeliverEventsResponse(refused=refused)

    def ListSubjectNotifications(self, request, context):  # noqa: ANN001, N802
        page, addresses = self._log.for_subject(
            request.source, request.subject, requested_size=request.page_size, page_token=request.page_token
        )
        results = []
        for entry in page.entries:
            item = _traced(entry)
            if request.with_addresses and entry.recipient_user_id is not None:
                item.address = addresses.get(entry.recipient_user_id, "")
            results.append(item)
        if page.next_page_token:  # the dead letters (a few) come after, on the last page
            return notify_service_pb2.ListSubjectNotificationsResponse(
                results=results, next_page_token=page.next_page_token
            )
        for letter in self._dead_letters.list():
            if (letter.source, letter.subject) == (request.source, request.subject):
                results.append(notify_service_pb2.SubjectNotification(
                    event_id=letter.id, event_type=letter.type, channel="email",
                    status=notify_service_pb2.NOTIFICATION_STATUS_PENDING,
                    reason=f"dead-lettered after {letter.deliveries} deliveries: {letter.reason}",
                    created_at=to_timestamp(letter.first_failure_at), request_id=letter.request_id,
                ))
        return notify_service_pb2.ListSubjectNotificationsResponse(results=results)

    def ListDeadLetters(self, request, context):  # noqa: ANN001, N802
        require_staff(claims_var.get())
        return notify_service_pb2.ListDeadLettersResponse(results=[
            notify_service_pb2.DeadLetter(
                id=letter.id, type=letter.type, reason=letter.reason, deliveries=letter.deliveries,
                first_failure_at=to_timestamp(letter.first_failure_at),
                last_failure_at=to_timestamp(letter.last_failure_at), request_id=letter.request_id,
            )
            for letter in self._dead_letters.list()
        ])

    def ReplayDeadLetters(self, request, context):  # noqa: ANN001, N802
        require_staff(claims_var.get())
        done = self._dead_letters.replay(list(request.ids))
        return notify_service_pb2.ReplayDeadLettersResponse(replayed=done.replayed, not_found=done.not_found)


def _to_proto(entry: Notification) -> notify_service_pb2.Notification:
    message = notify_service_pb2.Notification(
        id=entry.id,
        event_id=entry.event_id,
        event_type=entry.event_type,
        channel=entry.channel,
        subject=entry.subject,
        status=_STATUS[entry.status],
        attempts=entry.attempts,
        created_at=to_timestamp(entry.created_at),
        sent_at=to_timestamp(entry.sent_at),
        error=entry.error,
    )
    if entry.recipient_user_id is not None:
        message.recipient_user_id = entry.recipient_user_id
    return message


# A SKIPPED entry without a recipient: the rules (notify_svc.rules) name nobody.
NOBODY_TO_TELL = "nobody is to be told of this event"


def _traced(entry: Notification) -> notify_service_pb2.SubjectNotification:
    message = notify_service_pb2.SubjectNotification(
        event_id=entry.event_id,
        event_type=entry.event_type,
        channel=entry.channel,
        status=_STATUS[entry.status],
        reason=entry.error or (NOBODY_TO_TELL if entry.status == NotificationStatus.SKIPPED else ""),
        attempts=entry.attempts,
        created_at=to_timestamp(entry.created_at),
        sent_at=to_timestamp(entry.sent_at),
        request_id=entry.request_id,
    )
    if entry.recipient_user_id is not None:
        message.recipient_user_id = entry.recipient_user_id
    return message
