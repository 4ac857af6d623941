"""Reading the notification log: a user sees their own entries, staff see all."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from common.auth import Claims
from common.db import Database
from common.paging import PageTokens, page_size
from common.validation import check_text
from notify_svc.models import Notification, Recipient


@dataclass(frozen=True)
class LogPage:
    entries: list[Notification]
    next_page_token: str


class NotificationLog:
    def __init__(self, database: Database, tokens: PageTokens) -> None:
        self._database = database
        self._tokens = tokens

    def list(self, viewer: Claims, *, requested_size: int, page_token: str, event_type: str) -> LogPage:
        """Newest first, keyset-paged by id."""
        size = page_size(requested_size)
        check_text("event_type", event_type, max_length=100)
        # The token is bound to who asks and what they filter on.
        query = {"viewer": "staff" if viewer.is_staff else viewer.user_id, "event_type": event_type}
        after_id = self._tokens.decode(page_token, query)

        statement = select(Notification).order_by(Notification.id.desc()).limit(size + 1)
        if not viewer.is_staff:
            statement = statement.where(Notification.recipient_user_id == viewer.user_id)
        if event_type:
            statement = statement.where(Notification.event_type == event_type)
        if after_id is not None:
            statement = statement.where(Notification.id < int(after_id))
        with self._database.read() as session:
            rows = list(session.scalars(statement))
        more = len(rows) > size
        entries = rows[:size]
        return LogPage(entries, self._tokens.encode(entries[-1].id, query) if more else "")

    def for_subject(
        self, source: str, subject: str, *, requested_size: int, page_token: str
    ) -> tuple[LogPage, dict[int, str]]:
        """One page of the entries caused by the events of `source`/`subject`, oldest
        first, keyset-paged by id (AIP-158; the token bound to source and subject:
        INVALID_PAGE_TOKEN otherwise), and the addresses of their recipients as the
        directory knows them now."""
        size = page_size(requested_size)
        check_text("source", source, max_length=50)
        check_text("subject", subject, max_length=100)
        query = {"source": source, "subject": subject}
        after_id = self._tokens.decode(page_token, query)
        statement = (
            select(Notification)
            .where(Notification.event_source == source, Notification.event_subject == subject)
            .order_by(Notification.id)
            .limit(size + 1)
        )
        if after_id is not None:
            statement = statement.where(Notification.id > int(after_id))
        with self._database.read() as session:
            rows = list(session.scalars(statement))
            entries = rows[:size]
            users = {entry.recipient_user_id for entry in entries if entry.recipient_user_id is not None}
            known = select(Recipient.user_id, Recipient.email).where(Recipient.user_id.in_(users))
            addresses = {row.user_id: row.email for row in session.execute(known)} if users else {}
        token = self._tokens.encode(entries[-1].id, query) if len(rows) > size else ""
        return LogPage(entries, token), addresses
