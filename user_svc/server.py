"""Wiring: database and migrations, signing keys, the domain objects, the gRPC server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.registry import Collector

from common.db import Database, migrate, utcnow
from common.grpc_server import GrpcServer, create_server
from common.interceptor import CallInterceptor
from common.metrics import OutboxCollector, lazy_database
from common.paging import PageTokens
from common.rate_limits import MethodRateLimits, check_overrides
from common.relay import start_outbox_relay
from common.revocation import RevocationState
from common.settings import Settings
from taskmgr.user.v1 import user_service_pb2, user_service_pb2_grpc
from user_svc import keys, otp
from user_svc.access_tokens import AccessTokens
from user_svc.accounts import Accounts
from user_svc.code_dispatch import CodeDispatcher
from user_svc.email_codes import EmailCodes
from user_svc.models import Outbox
from user_svc.notification_settings import NotificationSettings
from user_svc.passwords import Passwords
from user_svc.revocations import Broadcaster
from user_svc.service import UserService
from user_svc.sessions import Sessions

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = user_service_pb2.DESCRIPTOR.services_by_name["UserService"].full_name
GET_REVOCATIONS = f"/{SERVICE_NAME}/GetRevocations"


@dataclass(frozen=True)
class Domain:
    database: Database
    passwords: Passwords
    codes: EmailCodes
    accounts: Accounts
    sessions: Sessions
    access_tokens: AccessTokens


def signing_key(settings: Settings) -> keys.SigningKey:
    """The key file when one is configured (required in production), else the development key."""
    if settings.jwt_private_key_file is not None:
        return keys.load_private_key(settings.jwt_private_key_file)
    return keys.development_key(settings.var_dir)


def passwords_from(settings: Settings) -> Passwords:
    return Passwords(
        time_cost=settings.argon2_time_cost,
        memory_cost_kib=settings.argon2_memory_cost_kib,
        parallelism=settings.argon2_parallelism,
        concurrency=settings.password_hash_concurrency,
        queue_seconds=settings.password_hash_queue_seconds,
    )


def build_domain(settings: Settings, clock: Callable[[], dt.datetime] = utcnow) -> Domain:
    """The migrated database and the domain objects (also used by the create-staff command)."""
    database = Database(settings.database_url("user_svc"), pool_size=settings.db_pool_size)
    migrate(database, MIGRATIONS)
    passwords = passwords_from(settings)
    access_tokens = AccessTokens(
        signing_key(settings),
        previous_public_keys=keys.load_public_jwks(settings.jwt_previous_public_key_files),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    ttl = settings.access_token_ttl_seconds
    codes = EmailCodes(
        database, otp.CodeMac(settings.secret("otp_hmac_key")), passwords, clock, access_ttl_seconds=ttl
    )
    accounts = Accounts(
        database, passwords, codes, PageTokens(settings.secret("page_token_key")), clock,
        access_ttl_seconds=ttl,
    )
    sessions = Sessions(
        database,
        passwords,
        access_tokens,
        refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
        reuse_grace_seconds=settings.refresh_reuse_grace_seconds,
        successor_key=keys.derived_key(settings.secret("otp_hmac_key"), "refresh-successor"),
        clock=clock,
    )
    return Domain(database, passwords, codes, accounts, sessions, access_tokens)


def build(settings: Settings, port: int, *, clock: Callable[[], dt.datetime] = utcnow) -> GrpcServer:
    """The user service on `port` (0: any free port); tests may pass a clock they control."""
    if problems := check_overrides(settings.rate_limits):
        raise ValueError("; ".join(problems))
    domain = build_domain(settings, clock)

    # This process's revocations: loaded before it serves, then followed (user_svc.revocations).
    broadcaster = Broadcaster(domain.database, RevocationState()).start()
    internal_key = settings.secret("internal_key")

    def register(server) -> list[str]:  # noqa: ANN001
        servicer = UserService(
            domain.accounts, domain.codes, domain.sessions, domain.access_tokens, broadcaster, internal_key,
            notification_settings=NotificationSettings(domain.database, clock),
        )
        user_service_pb2_grpc.add_UserServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    server = create_server(
        register=register,
        # The edge vouches for client addresses with the internal key, and the contract's
        # per-client limits hold here too, for callers that skip the edge.
        interceptor=CallInterceptor(
            domain.access_tokens.verifier(broadcaster.state),
            internal_methods=[GET_REVOCATIONS],
            internal_key=internal_key,
            rate_limits=MethodRateLimits(settings.rate_limits, settings.ratelimit_storage_uri),
        ),
        # Each open WatchRevocations stream holds a thread: they get their own.
        settings=settings.model_copy(
            update={"grpc_max_workers": settings.grpc_max_workers + broadcaster.max_watchers}
        ),
        port=port,
    )
    server.on_stop(domain.database.dispose)
    server.on_stop(broadcaster.stop)
    server.on_drain(broadcaster.end_streams)
    server.on_stop(CodeDispatcher(domain.codes).start().stop)  # stops before dispose
    # Registered after dispose, so it stops first (on_stop callbacks run in reverse).
    server.on_stop(start_outbox_relay(domain.database, Outbox, settings).stop)
    return server


def metrics_collectors(settings: Settings) -> list[Collector]:
    """The gauges of user_svc's /metrics (common.metrics): its outbox's depth and oldest age."""
    return [OutboxCollector("user_svc", lazy_database(settings, "user_svc"), Outbox)]
