"""notify_svc emails no deactivated account, from its own copy of user_svc's
active_changed events (PostgreSQL and SQLite): each email to one is a SKIPPED entry with
the reason, codes included; a reactivation applies to the events after it, in a batch
too; an older event arriving late (or twice) never undoes a newer one."""

from __future__ import annotations

from notify_svc.account_states import REASON
from notify_svc.models import NotificationStatus
from taskmgr.events.v1 import events_pb2
from tests.integration.notify_svc import test_notification_preferences as preferences_test
from tests.integration.notify_svc.test_notification_preferences import (
    ANN,
    BOB,
    assigned,
    due_soon,
    entries,
    event,
    member_added,
    otp,
    settings,
)

# The same database (each engine), outbox and notifier fixtures.
database, outbox, notifier = preferences_test.database, preferences_test.outbox, preferences_test.notifier
SKIPPED, SENT = NotificationStatus.SKIPPED, NotificationStatus.SENT


def active_changed(user_id: int, active: bool, version: int) -> events_pb2.Event:
    payload = events_pb2.UserActiveChanged(user_id=user_id, active=active, version=version)
    return event("taskmgr.user.active_changed", payload, "user_svc")


def test_a_deactivated_account_is_emailed_nothing_with_the_reason(database, notifier, outbox) -> None:
    notifier.handle(settings(BOB, 1, assignment=False))  # the deactivation's reason wins
    deactivation = active_changed(BOB, False, 2)
    notifier.handle(deactivation)
    assert entries(database, deactivation.id) == [(None, SKIPPED, "")]  # nobody is emailed of it
    to_bob = [assigned(BOB), member_added(BOB), otp(BOB)]
    to_ann = due_soon(ANN)
    notifier.handle_batch([*to_bob, to_ann])
    for sent in to_bob:
        assert entries(database, sent.id) == [(BOB, SKIPPED, REASON)]
    assert entries(database, to_ann.id) == [(ANN, SENT, "")]
    assert [to for to, _ in outbox.sent] == ["user1@example.com"]


def test_a_reactivation_applies_to_the_events_after_it_in_one_batch(database, notifier) -> None:
    before, after, again = member_added(BOB), member_added(BOB), member_added(BOB)
    notifier.handle_batch([before, active_changed(BOB, False, 2), after])
    notifier.handle_batch([active_changed(BOB, True, 3), again])
    assert [entries(database, e.id)[0][1] for e in (before, after, again)] == [SENT, SKIPPED, SENT]


def test_an_older_state_never_undoes_a_newer_one(database, notifier) -> None:
    newer, older = active_changed(BOB, False, 4), active_changed(BOB, True, 3)
    notifier.handle(newer)
    notifier.handle_batch([older, newer])  # late, and again (a redelivered copy)
    late = member_added(BOB)
    notifier.handle_batch([active_changed(BOB, True, 1), late])  # late within a batch
    assert entries(database, late.id) == [(BOB, SKIPPED, REASON)]
    back = member_added(BOB)
    notifier.handle_batch([active_changed(BOB, True, 5), back])
    assert entries(database, back.id)[0][1] == SENT
