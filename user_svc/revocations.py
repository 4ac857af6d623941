"""user_svc's side of instant revocation (common.revocation is the verifiers' side).

Recording: `revoke_session` (logout, a refresh token presented twice) and `end_sessions`
(password changed or reset, account deactivated: the security epoch rises) write, in the
caller's transaction, a row of the revocations log and the matching event in the outbox
(for RabbitMQ's fan-out), so a revocation commits with its cause or not at all.

Serving: `snapshot()` (GetRevocations, and the first message of WatchRevocations) reads
the rows not yet expired. A `Broadcaster` per process follows the log: woken by this
process's commits, and polling every `poll_interval` (0.2 s) for those of the service's
other processes and replicas, it applies what is new to the process's own
RevocationState (user_svc's verifier) and hands it to every open WatchRevocations stream.
The process that commits a revocation applies it to its own state at the commit, so
user_svc itself refuses the tokens before the revoking call has answered.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Iterator

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from common.db import Database, utcnow
from common.protoconv import to_timestamp
from common.revocation import SESSION_REVOKED, SESSIONS_ENDED, RevocationState
from taskmgr.events.v1 import events_pb2
from taskmgr.user.v1 import user_service_pb2 as pb
from user_svc.models import Outbox, Revocation, User

log = logging.getLogger(__name__)

SOURCE = "user_svc"
# A revocation is kept until the last access token it refuses has expired: the token
# lifetime after it, plus a margin for a token signed just as it committed and for clocks.
MARGIN = dt.timedelta(seconds=60)
# Rows are read again for this long after their creation: on PostgreSQL a transaction
# may commit after a later one (ids and times are not commit order).
_OVERLAP = dt.timedelta(seconds=10)
_WROTE_REVOCATION = "taskmgr.wrote_revocation"


def revoke_session(
    session: Session, user_id: int, session_id: str, reason: str, access_ttl_seconds: int
) -> None:
    """Records that the session (refresh family) `session_id` ended ("logout", "reused")."""
    now = utcnow()  # the wall clock: token exp and iat are wall-clock times
    expires_at = now + dt.timedelta(seconds=access_ttl_seconds) + MARGIN
    session.add(Revocation(
        user_id=user_id, session_id=session_id, epoch=None, reason=reason, created_at=now,
        expires_at=expires_at,
    ))
    payload = events_pb2.SessionRevoked(
        user_id=user_id, session_id=session_id, expires_at=to_timestamp(expires_at)
    )
    Outbox.record(session, source=SOURCE, event_type=SESSION_REVOKED, subject=str(user_id), payload=payload)
    session.info.setdefault(_WROTE_REVOCATION, pb.Revocations()).sessions.append(payload)


def end_sessions(session: Session, user_id: int, reason: str, access_ttl_seconds: int) -> int:
    """Raises the user's security epoch (in one statement, so concurrent raises each
    count) and records it; returns the new epoch. Every access token of the user issued
    before is refused from then on."""
    epoch = session.execute(
        update(User)
        .where(User.id == user_id)
        .values(security_epoch=User.security_epoch + 1)
        .returning(User.security_epoch)
        .execution_options(synchronize_session="fetch")
    ).scalar_one()
    now = utcnow()
    expires_at = now + dt.timedelta(seconds=access_ttl_seconds) + MARGIN
    session.add(Revocation(
        user_id=user_id, session_id=None, epoch=epoch, reason=reason, created_at=now, expires_at=expires_at
    ))
    payload = events_pb2.SessionsEnded(
        user_id=user_id, epoch=epoch, expires_at=to_timestamp(expires_at), reason=reason
    )
    Outbox.record(session, source=SOURCE, event_type=SESSIONS_ENDED, subject=str(user_id), payload=payload)
    session.info.setdefault(_WROTE_REVOCATION, pb.Revocations()).epochs.append(payload)
    return epoch


def _message(rows: list[Revocation]) -> pb.Revocations:
    message = pb.Revocations()
    for row in rows:
        if row.session_id is not None:
            message.sessions.append(events_pb2.SessionRevoked(
                user_id=row.user_id, session_id=row.session_id, expires_at=to_timestamp(row.expires_at)
            ))
        else:
            message.epochs.append(events_pb2.SessionsEnded(
                user_id=row.user_id, epoch=row.epoch or 0, expires_at=to_timestamp(row.expires_at),
                reason=row.reason,
            ))
    return message


class Broadcaster:
    """Follows the revocations log for one process (see the module doc).

    `watch()` is a WatchRevocations stream's source: a snapshot, then what is new. At
    most `max_watchers` streams at once (each holds a server thread; the server is given
    that many more): more are refused, RESOURCE_EXHAUSTED.
    """

    def __init__(
        self,
        database: Database,
        state: RevocationState,
        *,
        poll_interval: float = 0.2,
        max_watchers: int = 64,
    ) -> None:
        self._db = database
        self.state = state
        self._poll_interval = poll_interval
        self.max_watchers = max_watchers
        self._watchers: set[queue.SimpleQueue[pb.Revocations | None]] = set()
        self._lock = threading.Lock()
        self._seen: dict[int, dt.datetime] = {}
        self._since = utcnow()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._streams_ended = threading.Event()
        self._thread = threading.Thread(target=self._run, name="revocations-log", daemon=True)
        self._next_prune = utcnow()

    def start(self) -> Broadcaster:
        """Loads the snapshot into the state (so the process serves knowing it), then follows."""
        from sqlalchemy import event

        snapshot = self.snapshot()
        self.state.apply(snapshot)
        self.state.mark_ready()
        event.listen(self._db.sessions, "after_commit", self._wake_if_recorded)
        event.listen(self._db.sessions, "after_rollback", self._forget_recorded)
        self._thread.start()
        return self

    def end_streams(self) -> None:
        """Ends the open streams and refuses new ones (UNAVAILABLE: the watchers reconnect,
        to another replica); this process's own state is still followed until `stop`."""
        self._streams_ended.set()
        with self._lock:
            for watcher in self._watchers:
                watcher.put(None)

    def stop(self) -> None:
        from sqlalchemy import event

        event.remove(self._db.sessions, "after_commit", self._wake_if_recorded)
        event.remove(self._db.sessions, "after_rollback", self._forget_recorded)
        self._stopping.set()
        self._wakeup.set()
        self._thread.join(5)
        self.end_streams()

    def snapshot(self) -> pb.Revocations:
        """Every revocation not yet expired."""
        with self._db.read() as session:
            rows = list(session.scalars(
                select(Revocation).where(Revocation.expires_at > utcnow()).order_by(Revocation.id)
            ))
        return _message(rows)

    def watch(self, is_active) -> Iterator[pb.Revocations]:  # noqa: ANN001 (Callable[[], bool])
        """A snapshot, then each new revocation, while `is_active()`."""
        from common.errors import ResourceExhausted, Unavailable

        inbox: queue.SimpleQueue[pb.Revocations | None] = queue.SimpleQueue()
        with self._lock:
            if self._streams_ended.is_set():
                raise Unavailable("SHUTTING_DOWN", "This server is stopping.", retry_after=1)
            if len(self._watchers) >= self.max_watchers:
                raise ResourceExhausted("TOO_MANY_WATCHERS", "Too many revocation streams.", retry_after=1)
            self._watchers.add(inbox)  # before the snapshot: nothing falls between
        try:
            yield self.snapshot()
            while is_active() and not self._streams_ended.is_set():
                try:
                    message = inbox.get(timeout=1.0)
                except queue.Empty:
                    continue
                if message is None:
                    return
                yield message
        finally:
            with self._lock:
                self._watchers.discard(inbox)

    def poll(self) -> None:
        """Reads the rows created since the last poll (with the overlap), applies and
        hands on those not seen before."""
        now = utcnow()
        since, self._since = self._since - _OVERLAP, now
        with self._db.read() as session:
            rows = list(session.scalars(
                select(Revocation).where(Revocation.created_at >= since).order_by(Revocation.id)
            ))
        new = [row for row in rows if row.id not in self._seen]
        for row in new:
            self._seen[row.id] = row.created_at
        if len(self._seen) > 1000:
            self._seen = {key: at for key, at in self._seen.items() if at >= since - _OVERLAP}
        if new:
            message = _message(new)
            self.state.apply(message)
            with self._lock:
                for watcher in self._watchers:
                    watcher.put(message)
        if now >= self._next_prune:
            self._next_prune = now + dt.timedelta(minutes=1)
            with self._db.transaction() as session:
                session.execute(delete(Revocation).where(Revocation.expires_at < now - MARGIN))

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                self.poll()
            except Exception:  # the database away: keep serving what is known, try again
                log.warning("revocations log: poll failed", exc_info=True)
            self._wakeup.wait(self._poll_interval)

    def _wake_if_recorded(self, session: Session) -> None:
        recorded = session.info.pop(_WROTE_REVOCATION, None)
        if recorded is not None:
            # This process refuses the tokens before the revoking call answers; the poll
            # (woken now) hands them to the streams.
            self.state.apply(recorded)
            self._wakeup.set()

    def _forget_recorded(self, session: Session) -> None:
        session.info.pop(_WROTE_REVOCATION, None)
