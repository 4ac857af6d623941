"""Wiring: database and migrations, token verification, the notifier, the log, the
RabbitMQ consumer (when AMQP_URL is set) and the gRPC server."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.registry import Collector

from common.auth import TokenVerifier, verifier_from_user_svc
from common.db import Database, migrate
from common.grpc_client import make_channel
from common.grpc_server import GrpcServer, create_server
from common.interceptor import CallInterceptor
from common.metrics import DeadLetterCollector, lazy_database
from common.paging import PageTokens
from common.settings import Settings
from notify_svc.consumer import EventConsumer
from notify_svc.dead_letters import BrokerDeadLetters, DeadLetters, StoredDeadLetters, stored_count
from notify_svc.mailer import Mailer, mailer_from
from notify_svc.notification_log import NotificationLog
from notify_svc.notifier import Notifier
from notify_svc.service import NotificationServicer
from taskmgr.notify.v1 import notify_service_pb2, notify_service_pb2_grpc

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = notify_service_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name
DELIVER_EVENT = f"/{SERVICE_NAME}/DeliverEvent"
DELIVER_EVENTS = f"/{SERVICE_NAME}/DeliverEvents"
LIST_SUBJECT_NOTIFICATIONS = f"/{SERVICE_NAME}/ListSubjectNotifications"


def build(
    settings: Settings,
    port: int,
    *,
    verifier: TokenVerifier | None = None,
    mailer: Mailer | None = None,
    start_consumer: bool = True,
) -> GrpcServer:
    """notify_svc on `port` (0: any free port). With AMQP_URL it consumes the event queue
    (unless `start_consumer` is false) and refuses DeliverEvent; without, events arrive
    through DeliverEvent. Tests may replace the verifier and the mailer."""
    database = Database(settings.database_url("notify_svc"), pool_size=settings.db_pool_size)
    migrate(database, MIGRATIONS)

    user_svc = make_channel(settings.user_svc_addr)
    own_verifier = verifier is None  # ours follows user_svc's revocations until stopped
    verifier = verifier or verifier_from_user_svc(user_svc, settings)

    mailer = mailer or mailer_from(settings)
    notifier = Notifier(
        database,
        mailer,
        send_attempts=settings.email_send_attempts,
        retry_base_seconds=settings.email_retry_base_seconds,
        send_threads=settings.notify_send_threads,
    )
    servicer = NotificationServicer(
        NotificationLog(database, PageTokens(settings.secret("page_token_key"))),
        notifier,
        direct_delivery=not settings.amqp_url,
        dead_letters=dead_letters_of(settings, database, notifier),
    )

    def register(server) -> list[str]:  # noqa: ANN001
        notify_service_pb2_grpc.add_NotificationServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    server = create_server(
        register=register,
        interceptor=CallInterceptor(
            verifier,
            internal_methods=[DELIVER_EVENT, DELIVER_EVENTS, LIST_SUBJECT_NOTIFICATIONS],
            internal_key=settings.secret("internal_key"),
        ),
        settings=settings,
        port=port,
    )
    server.on_stop(database.dispose)
    if hasattr(mailer, "close"):
        server.on_stop(mailer.close)  # runs after the notifier's senders have finished
    server.on_stop(notifier.close)
    server.on_stop(user_svc.close)
    if own_verifier:
        server.on_stop(verifier.close)  # before the channel closes
    if settings.amqp_url and start_consumer:
        # Registered last, so it stops first: no message is handled after the database closes.
        server.on_stop(EventConsumer(settings, notifier).start().stop)
    return server


def dead_letters_of(settings: Settings, database: Database, notifier: Notifier) -> DeadLetters:
    """The dead-letter queue with a broker, notify_svc's table without (dead_letters)."""
    if settings.amqp_url:
        return BrokerDeadLetters(settings)
    return StoredDeadLetters(database, notifier)


def metrics_collectors(settings: Settings) -> list[Collector]:
    """The gauges of notify_svc's /metrics (common.metrics): its dead letters now."""
    if settings.amqp_url:
        dead_letters: DeadLetters = BrokerDeadLetters(settings)
        return [DeadLetterCollector("notify_svc", dead_letters.depth)]
    database = lazy_database(settings, "notify_svc")
    return [DeadLetterCollector("notify_svc", lambda: stored_count(database()))]
