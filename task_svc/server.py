"""Wiring: database and migrations, the user_svc channel (tokens' keys, assignee
checks), the task operations, and the gRPC server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prometheus_client.registry import Collector

from common.auth import TokenVerifier, verifier_from_user_svc
from common.db import Database, migrate
from common.grpc_client import make_channel
from common.grpc_server import GrpcServer, create_server
from common.interceptor import CallInterceptor
from common.metrics import OutboxCollector, lazy_database
from common.paging import PageTokens
from common.rate_limits import MethodRateLimits
from common.relay import start_outbox_relay
from common.settings import Settings
from task_svc.assignees import GrpcUserDirectory, UserDirectory
from task_svc.collaboration import Collaboration
from task_svc.collaboration_service import CollaborationServicer
from task_svc.labels import Labels
from task_svc.listing import POSTGRES_SETTINGS
from task_svc.models import Outbox
from task_svc.notifications import notifications_from
from task_svc.project_members import Members
from task_svc.project_service import ProjectServicer
from task_svc.projects import Projects
from task_svc.reminders import Reminders, ReminderScheduler
from task_svc.service import TaskServicer
from task_svc.tasks import Tasks
from taskmgr.task.v1 import (
    collaboration_service_pb2,
    collaboration_service_pb2_grpc,
    project_service_pb2,
    project_service_pb2_grpc,
    task_service_pb2,
    task_service_pb2_grpc,
)

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name
PROJECT_SERVICE_NAME = project_service_pb2.DESCRIPTOR.services_by_name["ProjectService"].full_name
COLLABORATION_SERVICE_NAME = (
    collaboration_service_pb2.DESCRIPTOR.services_by_name["CollaborationService"].full_name
)


def build(
    settings: Settings,
    port: int,
    *,
    verifier: TokenVerifier | None = None,
    user_directory: UserDirectory | None = None,
) -> GrpcServer:
    """The task service on `port` (0: any free port); tests may replace the verifier
    and the user directory."""
    database = Database(
        settings.database_url("task_svc"),
        pool_size=settings.db_pool_size,
        postgres_settings=POSTGRES_SETTINGS,
    )
    migrate(database, MIGRATIONS)

    user_svc = make_channel(settings.user_svc_addr)
    own_verifier = verifier is None  # ours follows user_svc's revocations until stopped
    verifier = verifier or verifier_from_user_svc(user_svc, settings)
    if user_directory is None:
        user_directory = GrpcUserDirectory(user_svc, settings.grpc_call_deadline)

    page_tokens = PageTokens(settings.secret("page_token_key"))
    tasks = Tasks(database, user_directory, page_tokens)
    notifications, notify_svc = notifications_from(settings, database, tasks, page_tokens)
    members = Members(database, user_directory, page_tokens)
    projects = ProjectServicer(Projects(database, page_tokens), members, Labels(database, page_tokens))
    collaboration = CollaborationServicer(Collaboration(database, user_directory, page_tokens))

    def register(server) -> list[str]:  # noqa: ANN001
        task_service_pb2_grpc.add_TaskServiceServicer_to_server(TaskServicer(tasks, notifications), server)
        project_service_pb2_grpc.add_ProjectServiceServicer_to_server(projects, server)
        collaboration_service_pb2_grpc.add_CollaborationServiceServicer_to_server(collaboration, server)
        return [SERVICE_NAME, PROJECT_SERVICE_NAME, COLLABORATION_SERVICE_NAME]

    server = create_server(
        register=register,
        # The contract's limits on the methods that email someone else (per user,
        # common.rate_limits) hold for callers that skip the edge too.
        interceptor=CallInterceptor(
            verifier, rate_limits=MethodRateLimits(settings.rate_limits, settings.ratelimit_storage_uri)
        ),
        settings=settings,
        port=port,
    )
    server.on_stop(database.dispose)
    server.on_stop(user_svc.close)
    server.on_stop(notify_svc.close)
    if own_verifier:
        server.on_stop(verifier.close)  # before the channel closes
    reminders = Reminders(database, lead=dt.timedelta(seconds=settings.task_due_soon_lead_seconds))
    scheduler = ReminderScheduler(reminders, interval=settings.task_reminder_interval_seconds)
    server.on_stop(scheduler.start().stop)
    # Registered last, so it stops first (on_stop callbacks run in reverse).
    server.on_stop(start_outbox_relay(database, Outbox, settings).stop)
    return server


def metrics_collectors(settings: Settings) -> list[Collector]:
    """The gauges of task_svc's /metrics (common.metrics): its outbox's depth and oldest age."""
    return [OutboxCollector("task_svc", lazy_database(settings, "task_svc"), Outbox)]
