"""Dead letters seen and replayed by staff (issue 14, section 4), through notify_svc's gRPC
methods (the REST routes are generated from them): real RabbitMQ, PostgreSQL and the test
SMTP server (tests/support/mailbox.py), and the embedded default without a broker."""

from __future__ import annotations

import grpc
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, text

from common.db import Database
from common.events import build_event, routing_key
from notify_svc import consumer
from notify_svc.models import Notification
from notify_svc.server import build
from taskmgr.events.v1 import events_pb2
from taskmgr.notify.v1 import notify_service_pb2, notify_service_pb2_grpc
from tests.integration.events.broker import declare, message_count, publish_raw
from tests.integration.events.producer import otp_requested, user_registered
from tests.support.local import free_port, wait_for
from tests.support.mailbox import Inbox

pytestmark = [pytest.mark.postgres]


def event_of(event_type: str, payload) -> events_pb2.Event:  # noqa: ANN001
    return build_event(source="test_svc", event_type=event_type, subject="1", payload=payload)


def publish(settings, event: events_pb2.Event) -> None:  # noqa: ANN001
    publish_raw(settings.amqp_url, settings.events_exchange, routing_key(event.type),
                event.SerializeToString(), message_id=event.id)


def entries(settings, event_id: str) -> list[Notification]:  # noqa: ANN001
    database = Database(settings.database_url("notify_svc"))
    try:
        with database.read() as session:
            return list(session.scalars(select(Notification).where(Notification.event_id == event_id)))
    finally:
        database.dispose()


def widen_usernames(settings) -> None:  # noqa: ANN001
    """The operator's fix for the poison: a column wide enough for the value it refused."""
    database = Database(settings.database_url("notify_svc"))
    try:
        with database.transaction() as session:
            session.execute(text("ALTER TABLE recipients ALTER COLUMN username TYPE varchar(300)"))
    finally:
        database.dispose()


class Notify:
    """A stub and the tokens of a staff member and of a user."""

    def __init__(self, server, issuer) -> None:  # noqa: ANN001
        self.channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        self.stub = notify_service_pb2_grpc.NotificationServiceStub(self.channel)
        self.staff = issuer.metadata(1, is_staff=True)
        self.user = issuer.metadata(2)

    def listed(self) -> dict[str, notify_service_pb2.DeadLetter]:
        answer = self.stub.ListDeadLetters(notify_service_pb2.ListDeadLettersRequest(), metadata=self.staff)
        return {letter.id: letter for letter in answer.results}

    def replay(self, *ids: str) -> notify_service_pb2.ReplayDeadLettersResponse:
        return self.stub.ReplayDeadLetters(
            notify_service_pb2.ReplayDeadLettersRequest(ids=ids), metadata=self.staff
        )


def poison() -> events_pb2.Event:
    event_type, payload = user_registered(71)
    payload.username = "u" * 200  # recipients.username is VARCHAR(150): refused by PostgreSQL
    return event_of(event_type, payload)


@pytest.mark.rabbitmq
def test_a_poison_event_and_an_smtp_outage_past_the_delivery_limit_are_listed_and_replayed_once(
    notify_settings, issuer, monkeypatch
):
    # The consumer waits this long in place for a dependency before returning a message.
    monkeypatch.setattr(consumer, "_MAX_WAIT_IN_PLACE", 0.2)
    smtp_port = free_port()  # the mail server is away until the fix
    settings = notify_settings(
        smtp_port=smtp_port, notify_delivery_limit=3, email_send_attempts=1, notify_svc_metrics_port=0
    )
    declare(settings)
    dead_queue = f"{settings.notify_queue}.dead"
    server = build(settings, 0, verifier=issuer.verifier()).start()
    notify = Notify(server, issuer)
    bad, otp = poison(), event_of(*otp_requested(72))
    inbox = Inbox()
    mail_server = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    try:
        publish(settings, bad)
        publish(settings, otp)
        wait_for(lambda: message_count(settings.amqp_url, dead_queue) == 2, timeout=60)

        with pytest.raises(grpc.RpcError) as refused:
            notify.stub.ListDeadLetters(notify_service_pb2.ListDeadLettersRequest(), metadata=notify.user)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        listed = notify.listed()
        assert notify.listed() == listed  # listing removes nothing
        assert message_count(settings.amqp_url, dead_queue) == 2
        assert set(listed) == {bad.id, otp.id}
        assert "StringDataRightTruncation" in listed[bad.id].reason
        assert (listed[bad.id].type, listed[bad.id].deliveries) == ("taskmgr.user.registered", 1)
        outage = listed[otp.id]
        assert outage.deliveries == 3, outage
        assert "failed on 3 deliveries" in outage.reason and "ConnectionRefusedError" in outage.reason
        assert outage.first_failure_at.ToDatetime() < outage.last_failure_at.ToDatetime()
        assert inbox.messages == [] and entries(settings, otp.id) == []

        # The fixes: the mail server is back, the column is wide enough.
        mail_server.start()
        widen_usernames(settings)
        first = notify.replay(otp.id, "no-such-id")
        assert (list(first.replayed), list(first.not_found)) == ([otp.id], ["no-such-id"])
        wait_for(lambda: inbox.to("user72@example.com"))
        rest = notify.replay()
        assert list(rest.replayed) == [bad.id]
        wait_for(lambda: entries(settings, bad.id))
        again = notify.replay(otp.id, bad.id)  # safe to repeat
        assert (list(again.replayed), sorted(again.not_found)) == ([], sorted([otp.id, bad.id]))
        # A copy that reaches the queue again (a replay raced by another) is a no-op.
        publish(settings, otp)
        wait_for(lambda: message_count(settings.amqp_url, settings.notify_queue) == 0)
        assert notify.listed() == {}
    finally:
        notify.channel.close()
        server.stop(0)
        mail_server.stop(no_assert=True)
    assert len(inbox.to("user72@example.com")) == 1
    assert [entry.status for entry in entries(settings, otp.id)] == ["sent"]
    assert [entry.status for entry in entries(settings, bad.id)] == ["skipped"]


def test_without_a_broker_refused_events_are_the_dead_letters_and_replay_once(notify_settings, smtp, issuer):
    settings = notify_settings(amqp_url="", notify_svc_metrics_port=0)
    server = build(settings, 0, verifier=issuer.verifier()).start()
    notify = Notify(server, issuer)
    bad, good = poison(), event_of(*otp_requested(73))
    internal = [("x-internal-key", settings.secret("internal_key").decode())]
    try:
        answer = notify.stub.DeliverEvents(
            notify_service_pb2.DeliverEventsRequest(events=[bad, good]), metadata=internal
        )
        assert [refused.index for refused in answer.refused] == [0]
        # Refused again by a relay's retry: one dead letter, two deliveries.
        notify.stub.DeliverEvents(notify_service_pb2.DeliverEventsRequest(events=[bad]), metadata=internal)
        with pytest.raises(grpc.RpcError) as refused:
            notify.stub.ReplayDeadLetters(notify_service_pb2.ReplayDeadLettersRequest(), metadata=notify.user)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        [letter] = notify.listed().values()
        assert (letter.id, letter.type, letter.deliveries) == (bad.id, "taskmgr.user.registered", 2)
        assert "StringDataRightTruncation" in letter.reason and letter.request_id == bad.correlation_id

        unfixed = notify.replay()  # still refused: stays, one more delivery
        assert list(unfixed.replayed) == [] and notify.listed()[bad.id].deliveries == 3
        widen_usernames(settings)
        assert list(notify.replay(bad.id).replayed) == [bad.id]
        assert list(notify.replay(bad.id).not_found) == [bad.id]
        assert notify.listed() == {}
    finally:
        notify.channel.close()
        server.stop(0)
    assert [entry.status for entry in entries(settings, bad.id)] == ["skipped"]
    assert len(smtp.to("user73@example.com")) == 1
