"""Instant revocation of access tokens: what every token verifier knows, and how it learns it.

Access tokens live 15 minutes and are verified without asking user_svc (common.auth). To
end them sooner, user_svc publishes two kinds of revocation (events.proto), each through
its outbox and its revocations log:

- `SessionRevoked`: one session ended (logout, a refresh token presented twice). Access
  tokens carry their session, the refresh family, as the `sid` claim (as OpenID Connect's
  `sid`, RFC 9068 section 2.2 allows such claims); the session's tokens are refused.
- `SessionsEnded`: the user's security epoch rose (password changed or reset, account
  deactivated). Tokens carry the epoch they were issued in (`epoch`); lower ones are refused.

Every verifier keeps a `RevocationState` and checks every token against it, also the
tokens it remembers as verified (common.auth caches signatures, not this answer: the
check is two dictionary lookups). An entry is forgotten at its `expires_at`, when the last
access token it refuses has expired, so the state holds about 15 minutes of revocations.

Delivery, to every process of every service (each keeps its own state):

- RabbitMQ (`AMQP_URL`): `AmqpRevocationFeed`, an exclusive auto-delete queue per process
  bound to the two routing keys on the topic exchange: a fan-out, where notify_svc's
  consumers compete for one queue.
- No broker (and always at the edge, which must not reach the broker):
  `WatchRevocationsFeed`, user_svc's server-streaming `WatchRevocations`. An
  open stream costs nothing while idle and brings a revocation as soon as user_svc sees
  it; polling `GetRevocations` would trade latency against load (processes x polls/s,
  each a query).

Both learn the current state on every (re)connect before they count as ready (the
stream's first message is a snapshot; with RabbitMQ the queue is bound first and then
`GetRevocations` is asked, so nothing falls between), so a process that starts late or
lost its connection learns what it missed. Until its first snapshot a verifier answers
UNAVAILABLE rather than accept tokens it cannot judge; while a connection is down it keeps
what it knows and reconnects with a backoff capped at 1 s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol

import grpc
import pika
from google.protobuf.message import DecodeError
from pika.exceptions import AMQPError

from common.errors import Unauthenticated, Unavailable
from common.events import routing_key
from taskmgr.events.v1 import events_pb2
from taskmgr.user.v1 import user_service_pb2, user_service_pb2_grpc

log = logging.getLogger(__name__)

SESSION_REVOKED = "taskmgr.user.session_revoked"
SESSIONS_ENDED = "taskmgr.user.sessions_ended"
ROUTING_KEYS = (routing_key(SESSION_REVOKED), routing_key(SESSIONS_ENDED))
# How long a call waits for a verifier's first snapshot (a service just started) before
# it is answered UNAVAILABLE.
READY_WAIT_SECONDS = 2.0
_PRUNE_EVERY_SECONDS = 10.0


class RevocationState:
    """Revoked sessions and raised epochs, as known by one process; thread-safe.

    Applying a revocation twice, or an older one after a newer one, changes nothing:
    sessions are a set and epochs only rise, so snapshots and events may overlap.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._sessions: dict[str, float] = {}  # session id -> expires_at (Unix seconds)
        self._epochs: dict[int, tuple[int, float]] = {}  # user id -> (epoch, expires_at)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._next_prune = 0.0

    def revoke_session(self, session_id: str, expires_at: float) -> None:
        with self._lock:
            self._sessions[session_id] = max(expires_at, self._sessions.get(session_id, 0.0))
            self._prune_if_due()

    def raise_epoch(self, user_id: int, epoch: int, expires_at: float) -> None:
        with self._lock:
            known, known_expiry = self._epochs.get(user_id, (0, 0.0))
            if epoch > known or (epoch == known and expires_at > known_expiry):
                self._epochs[user_id] = (epoch, expires_at)
            self._prune_if_due()

    def apply(self, revocations: user_service_pb2.Revocations) -> None:
        for session in revocations.sessions:
            self.revoke_session(session.session_id, _seconds(session.expires_at))
        for ended in revocations.epochs:
            self.raise_epoch(ended.user_id, ended.epoch, _seconds(ended.expires_at))

    def apply_event(self, event: events_pb2.Event) -> bool:
        """Applies a session_revoked or sessions_ended event; False for any other."""
        if event.type == SESSION_REVOKED:
            session = events_pb2.SessionRevoked()
            if event.data.Unpack(session):
                self.revoke_session(session.session_id, _seconds(session.expires_at))
                return True
        elif event.type == SESSIONS_ENDED:
            ended = events_pb2.SessionsEnded()
            if event.data.Unpack(ended):
                self.raise_epoch(ended.user_id, ended.epoch, _seconds(ended.expires_at))
                return True
        return False

    def mark_ready(self) -> None:
        """The state holds a snapshot: from now on its answers count."""
        self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def is_revoked(self, *, user_id: int, session_id: str, epoch: int) -> bool:
        """Whether a token of `user_id`, session `session_id` ("" when the token names
        none) and epoch `epoch` is revoked. An expired entry still answers True: the token
        it names has expired too, and the signature check refuses it anyway."""
        if session_id and session_id in self._sessions:
            return True
        known = self._epochs.get(user_id)
        return known is not None and epoch < known[0]

    def check(self, *, user_id: int, session_id: str, epoch: int) -> None:
        """Raises UNAUTHENTICATED TOKEN_REVOKED (401) for a revoked token, UNAVAILABLE
        REVOCATIONS_UNKNOWN (503) when no snapshot arrived within READY_WAIT_SECONDS."""
        if not self._ready.is_set() and not self._ready.wait(READY_WAIT_SECONDS):
            raise Unavailable(
                "REVOCATIONS_UNKNOWN", "Access tokens cannot be checked now; try again.", retry_after=1
            )
        if self.is_revoked(user_id=user_id, session_id=session_id, epoch=epoch):
            raise Unauthenticated("TOKEN_REVOKED", "The access token was revoked; log in again.")

    def counts(self) -> tuple[int, int]:
        """(revoked sessions, raised epochs) held now."""
        return len(self._sessions), len(self._epochs)

    def _prune_if_due(self) -> None:
        now = self._clock()
        if now < self._next_prune:
            return
        self._next_prune = now + _PRUNE_EVERY_SECONDS
        # New dicts swapped in whole: lock-free readers see the old or the new one.
        self._sessions = {sid: exp for sid, exp in self._sessions.items() if exp > now}
        self._epochs = {uid: known for uid, known in self._epochs.items() if known[1] > now}


def _seconds(timestamp) -> float:  # noqa: ANN001 (google.protobuf.Timestamp)
    return timestamp.seconds + timestamp.nanos / 1e9


class Feed(Protocol):
    def start(self) -> Feed: ...
    def stop(self) -> None: ...


class _Reconnecting:
    """A daemon thread running `_session()` again and again, with a jittered backoff
    (0.1 s doubling to 1 s) after failures, until stopped."""

    name = "revocations"

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> _Reconnecting:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._interrupt()
        self._thread.join(5)

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._session()
            except Exception as exc:  # a peer away: keep what is known, reconnect
                if self._stopping.is_set():
                    return
                # Once per streak: user_svc starting after us is not worth a line a second.
                level = logging.WARNING if failures == 0 else logging.DEBUG
                log.log(level, "revocation feed: %s; reconnecting", _brief(exc))
            # A session that lasted is not a failure streak: the next connect is prompt.
            failures = 0 if time.monotonic() - started > 10 else failures + 1
            ceiling = min(1.0, 0.1 * 2 ** min(failures, 10))
            self._stopping.wait(random.uniform(ceiling / 2, ceiling))  # noqa: S311 (jitter)

    def _session(self) -> None:
        raise NotImplementedError

    def _interrupt(self) -> None:
        raise NotImplementedError


def _brief(exc: Exception) -> str:
    if isinstance(exc, grpc.RpcError):
        return f"{exc.code().name} {exc.details()}"  # type: ignore[attr-defined]
    return repr(exc)


class WatchRevocationsFeed(_Reconnecting):
    """Without a broker: user_svc's WatchRevocations stream (first message a snapshot)."""

    name = "revocations-watch"

    def __init__(
        self, state: RevocationState, channel: Callable[[], grpc.Channel], internal_key: bytes
    ) -> None:
        """`channel()` gives the process's channel to user_svc (called on each connect)."""
        super().__init__()
        self._state = state
        self._channel = channel
        self._metadata = [("x-internal-key", internal_key.decode())]
        self._call: grpc.Future | None = None

    def _session(self) -> None:
        stub = user_service_pb2_grpc.UserServiceStub(self._channel())
        self._call = stub.WatchRevocations(user_service_pb2.GetRevocationsRequest(), metadata=self._metadata)
        if self._stopping.is_set():
            self._call.cancel()
        for revocations in self._call:
            self._state.apply(revocations)
            self._state.mark_ready()
        raise ConnectionError("user_svc ended the revocations stream")

    def _interrupt(self) -> None:
        if self._call is not None:
            self._call.cancel()


class AmqpRevocationFeed(_Reconnecting):
    """With RabbitMQ: this process's own exclusive auto-delete queue, bound to the
    revocation routing keys, and `snapshot()` (GetRevocations) after each binding."""

    name = "revocations-amqp"

    def __init__(
        self,
        state: RevocationState,
        url: str,
        *,
        exchange: str,
        snapshot: Callable[[], user_service_pb2.Revocations],
    ) -> None:
        super().__init__()
        self._state = state
        self._url = url
        self._exchange = exchange
        self._snapshot = snapshot
        # Shown by the broker (rabbitmqctl list_connections client_properties).
        self.connection_name = f"taskmgr revocations pid {os.getpid()} {id(self):x}"

    def _session(self) -> None:
        from common.amqp import connection_parameters

        parameters = connection_parameters(self._url)
        parameters.client_properties = {"connection_name": self.connection_name}
        connection = pika.BlockingConnection(parameters)
        try:
            channel = connection.channel()
            channel.exchange_declare(self._exchange, exchange_type="topic", durable=True)
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            for key in ROUTING_KEYS:
                channel.queue_bind(queue, self._exchange, routing_key=key)
            # Bound before the snapshot: what commits from now on is queued for us.
            self._state.apply(self._snapshot())
            self._state.mark_ready()
            channel.basic_consume(queue, self._on_message, auto_ack=True)
            while not self._stopping.is_set():
                connection.process_data_events(time_limit=0.25)
        finally:
            with contextlib.suppress(AMQPError):
                connection.close()

    def _on_message(self, _channel, _method, _properties, body: bytes) -> None:  # noqa: ANN001
        try:
            event = events_pb2.Event.FromString(body)
        except DecodeError:
            log.error("revocation feed: a message that is not an Event (%d bytes): dropped", len(body))
            return
        if not self._state.apply_event(event):
            log.error("revocation feed: unexpected event %s (%s): dropped", event.id, event.type)

    def _interrupt(self) -> None:
        pass  # the consuming loop looks at `_stopping` every 0.25 s


def revocations_from_user_svc(
    channel: Callable[[], grpc.Channel], *, internal_key: bytes, deadline: float
) -> Callable[[], user_service_pb2.Revocations]:
    """A GetRevocations caller (the snapshot) for `channel()`, user_svc's channel."""
    metadata = [("x-internal-key", internal_key.decode())]

    def snapshot() -> user_service_pb2.Revocations:
        stub = user_service_pb2_grpc.UserServiceStub(channel())
        request = user_service_pb2.GetRevocationsRequest()
        return stub.GetRevocations(request, timeout=deadline, metadata=metadata)

    return snapshot


def start_feed(state: RevocationState, channel: Callable[[], grpc.Channel], settings) -> Feed:  # noqa: ANN001
    """Starts the feed `settings` call for (RabbitMQ with AMQP_URL, else user_svc's
    stream) into `state`; `channel()` gives the process's channel to user_svc."""
    internal_key = settings.secret("internal_key")
    feed: _Reconnecting
    if settings.amqp_url:
        snapshot = revocations_from_user_svc(
            channel, internal_key=internal_key, deadline=settings.grpc_call_deadline
        )
        feed = AmqpRevocationFeed(
            state, settings.amqp_url, exchange=settings.events_exchange, snapshot=snapshot
        )
    else:
        feed = WatchRevocationsFeed(state, channel, internal_key)
    return feed.start()

