"""notify_svc over gRPC: the embedded event transport (DeliverEvent) and the log API."""

from __future__ import annotations

import re

import grpc
import pytest

from common.relay import NotifyServiceTransport, start_outbox_relay
from notify_svc.server import build
from taskmgr.notify.v1 import notify_service_pb2 as notify
from taskmgr.notify.v1 import notify_service_pb2_grpc
from tests.integration.events.producer import (
    ProducerOutbox,
    otp_requested,
    pending,
    producer_database,
    record,
    user_registered,
)
from tests.support.local import wait_for
from tests.support.tokens import TestIssuer

pytestmark = pytest.mark.postgres
ANN, BOB, STAFF = 1, 2, 99


@pytest.fixture
def embedded(notify_settings, issuer):
    """notify_svc without a broker: events arrive through DeliverEvent."""
    settings = notify_settings(amqp_url="")
    server = build(settings, 0, verifier=issuer.verifier()).start()
    settings = settings.model_copy(update={"notify_svc_addr": f"127.0.0.1:{server.port}"})
    channel = grpc.insecure_channel(settings.notify_svc_addr)
    yield settings, notify_service_pb2_grpc.NotificationServiceStub(channel)
    channel.close()
    server.stop(0)


@pytest.fixture
def producer(tmp_path):
    database = producer_database(f"sqlite:///{tmp_path / 'producer.db'}")
    yield database
    database.dispose()


def test_the_relay_delivers_through_deliver_event_without_a_broker(embedded, producer, smtp, issuer):
    settings, stub = embedded
    relay = start_outbox_relay(producer, ProducerOutbox, settings)
    try:
        record(producer, [user_registered(ANN), otp_requested(ANN, code="551904")])
        wait_for(lambda: pending(producer) == 0)
    finally:
        relay.stop()
    [message] = smtp.to(f"user{ANN}@example.com")
    assert "551904" in message.get_content()
    entries = stub.ListNotifications(notify.ListNotificationsRequest(), metadata=issuer.metadata(ANN)).results
    assert [entry.event_type for entry in entries] == ["taskmgr.user.otp_requested"]


def test_deliver_event_needs_the_internal_key(embedded, producer):
    settings, _ = embedded
    transport = NotifyServiceTransport(settings.notify_svc_addr, internal_key=b"wrong", deadline=5)
    try:
        with pytest.raises(ConnectionError, match="UNAUTHENTICATED"):
            transport.deliver(record(producer, [user_registered(ANN)]))
    finally:
        transport.close()


def test_deliver_event_is_off_when_rabbitmq_carries_events(notify_settings, issuer, producer):
    settings = notify_settings()
    server = build(settings, 0, verifier=issuer.verifier(), start_consumer=False).start()
    transport = NotifyServiceTransport(
        f"127.0.0.1:{server.port}", internal_key=settings.secret("internal_key"), deadline=5
    )
    try:
        with pytest.raises(ConnectionError, match="FAILED_PRECONDITION"):
            transport.deliver(record(producer, [user_registered(ANN)]))
    finally:
        transport.close()
        server.stop(0)


@pytest.fixture
def filled_log(embedded, producer, issuer: TestIssuer):
    """Ann has 2 otp + 1 welcome-less registration; Bob has 3 otp entries; 25 skipped."""
    settings, stub = embedded
    transport = NotifyServiceTransport(
        settings.notify_svc_addr, internal_key=settings.secret("internal_key"), deadline=5
    )
    events = [otp_requested(ANN, code="100001"), otp_requested(ANN, code="100002")]
    events += [otp_requested(BOB, code=f"20000{i}") for i in range(3)]
    events += [user_registered(1000 + i) for i in range(25)]
    assert all(transport.deliver(record(producer, events)))
    transport.close()
    return stub


def list_all(stub, metadata, **query) -> list[notify.Notification]:
    entries, token = [], ""
    while True:
        page = stub.ListNotifications(
            notify.ListNotificationsRequest(page_size=4, page_token=token, **query), metadata=metadata
        )
        entries += page.results
        token = page.next_page_token
        if not token:
            return entries


def test_a_user_sees_only_their_own_entries_newest_first(filled_log, issuer):
    entries = list_all(filled_log, issuer.metadata(ANN))
    assert [entry.recipient_user_id for entry in entries] == [ANN, ANN]
    assert entries[0].id > entries[1].id
    assert all(entry.status == notify.NOTIFICATION_STATUS_SENT for entry in entries)


def test_staff_see_every_entry_across_pages(filled_log, issuer):
    entries = list_all(filled_log, issuer.metadata(STAFF, is_staff=True))
    assert len(entries) == 30 and len({entry.id for entry in entries}) == 30
    skipped = [entry for entry in entries if entry.status == notify.NOTIFICATION_STATUS_SKIPPED]
    assert len(skipped) == 25 and not any(entry.HasField("recipient_user_id") for entry in skipped)


def test_the_event_type_filter(filled_log, issuer):
    staff = issuer.metadata(STAFF, is_staff=True)
    entries = list_all(filled_log, staff, event_type="taskmgr.user.otp_requested")
    assert len(entries) == 5
    assert list_all(filled_log, staff, event_type="taskmgr.task.assigned") == []


def test_no_entry_holds_a_code(filled_log, issuer):
    entries = list_all(filled_log, issuer.metadata(STAFF, is_staff=True))
    text = "".join(str(entry) for entry in entries)
    # Whole numbers only: a code's digits may occur inside a timestamp's nanos or a UUID.
    codes = ("100001", "100002", "200000", "200001", "200002")
    assert not [code for code in codes if re.search(rf"\b{code}\b", text)]


def test_a_page_token_from_another_user_is_refused(filled_log, issuer):
    page = filled_log.ListNotifications(
        notify.ListNotificationsRequest(page_size=1), metadata=issuer.metadata(BOB)
    )
    with pytest.raises(grpc.RpcError) as error:
        filled_log.ListNotifications(
            notify.ListNotificationsRequest(page_token=page.next_page_token), metadata=issuer.metadata(ANN)
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_listing_needs_a_token(filled_log):
    with pytest.raises(grpc.RpcError) as error:
        filled_log.ListNotifications(notify.ListNotificationsRequest())
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
