"""Typed settings read once from the environment (12-factor) and validated at start.

Every setting has a development default so `make run` works with nothing configured;
`ENVIRONMENT=production` refuses the development-only fallbacks (generated keys,
console email) so a deployment cannot run on them by accident, and refuses server keys
that are placeholders or shorter than 32 bytes.
"""

from __future__ import annotations

import re
import secrets
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SERVICES = ("user_svc", "task_svc", "notify_svc")
# Threads besides the gRPC workers that use a service's database: relay and consumer, or
# relay and task_svc's reminder scheduler.
BACKGROUND_DB_THREADS = 2
DEFAULT_PORTS = {"user_svc": 50051, "task_svc": 50052, "notify_svc": 50053}
# What each process must be given in production, where development would generate a key
# under var/ or print emails to the console.
PRODUCTION_NEEDS = {
    # internal_key: the edge vouches for the client's address with it (common.client_ip);
    # two processes generating their own would make every client look like the edge. The
    # services ask user_svc for its revocations with it (common.revocation).
    "user_svc": ("jwt_private_key_file", "otp_hmac_key", "page_token_key", "internal_key"),
    "task_svc": ("page_token_key", "internal_key"),
    "notify_svc": ("page_token_key", "smtp_host", "internal_key"),
    "edge_api": ("internal_key",),
}
# Server keys (HMAC and signing keys of our own). RFC 2104 section 3: an HMAC key shorter
# than the hash's output (32 bytes for SHA-256) weakens it; NIST SP 800-107 section 5.2 agrees.
SERVER_KEYS = ("otp_hmac_key", "page_token_key", "internal_key")
MIN_KEY_BYTES = 32
# Values that are templates, not keys: compared with letters and digits only, lower-cased,
# so "REPLACE_ME", "replace-me" and "<change me>" are all caught (OWASP ASVS v4 2.10.4 and
# 6.4.1: no default or sample secrets in production). Seven letters or more: a random
# 43-character key contains one by chance with odds below 1 in 10^8.
_PLACEHOLDER_WORDS = (
    "replaceme", "changeme", "changeit", "placeholder", "example", "devonly", "notsecret",
    "insecure", "yoursecret", "yourkey", "secretkey", "password",
)
# In any other setting only the unmistakable markers: "example" is a fine mail domain.
_TEMPLATE_WORDS = ("replaceme", "changeme")


class Settings(BaseSettings):
    # hide_input_in_errors: a refused value may be a secret; messages name the setting only.
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, populate_by_name=True, hide_input_in_errors=True
    )

    environment: Literal["development", "test", "production"] = "development"
    # Development keys, SQLite files and generated secrets live here.
    var_dir: Path = Path("var")
    log_level: str = "INFO"

    # Databases: one per service. Empty means a SQLite file under var_dir.
    user_svc_database_url: str = ""
    task_svc_database_url: str = ""
    notify_svc_database_url: str = ""
    # Pooled connections per process; 0: one per gRPC worker thread plus the background
    # threads (outbox relay, event consumer), so no request opens its own.
    db_pool_size: int = Field(0, ge=0, le=200)

    # gRPC servers: bind address and ports (0 picks a free port, for tests).
    grpc_host: str = "127.0.0.1"
    user_svc_port: int = Field(DEFAULT_PORTS["user_svc"], ge=0, le=65535)
    task_svc_port: int = Field(DEFAULT_PORTS["task_svc"], ge=0, le=65535)
    notify_svc_port: int = Field(DEFAULT_PORTS["notify_svc"], ge=0, le=65535)
    grpc_max_workers: int = Field(16, ge=1, le=512)
    # Processes per service sharing its port (common.grpc_server.serve_in_processes): a
    # Python process runs on one core at a time. `make run` defaults them to the CPU
    # count (common.devrun). Each has its own pool of db_pool_size connections.
    user_svc_processes: int = Field(1, ge=1, le=64)
    task_svc_processes: int = Field(1, ge=1, le=64)
    notify_svc_processes: int = Field(1, ge=1, le=64)
    # Operators' port of each service's /metrics (Prometheus; common.metrics), apart from
    # its gRPC port: only the cluster's scraper reaches it. 0: no metrics server.
    metrics_host: str = "127.0.0.1"
    user_svc_metrics_port: int = Field(9465, ge=0, le=65535)
    task_svc_metrics_port: int = Field(9466, ge=0, le=65535)
    notify_svc_metrics_port: int = Field(9467, ge=0, le=65535)
    # Calls beyond this are refused with RESOURCE_EXHAUSTED instead of queueing forever.
    grpc_max_concurrent_rpcs: int = Field(256, ge=1)
    grpc_shutdown_grace_seconds: float = 10.0
    # On SIGTERM, seconds of NOT_SERVING while still serving, before refusing new calls
    # (Kubernetes: long enough for the endpoint to leave the Service). The edge too.
    grpc_shutdown_drain_seconds: float = Field(1.0, ge=0)

    # Where services reach each other.
    user_svc_addr: str = "127.0.0.1:50051"
    task_svc_addr: str = "127.0.0.1:50052"
    notify_svc_addr: str = "127.0.0.1:50053"
    grpc_call_deadline: float = Field(5.0, gt=0)

    # Tokens. The signing key is user_svc's alone; others verify with its JWKS.
    jwt_issuer: str = "taskmgr"
    jwt_audience: str = "taskmgr"
    jwt_private_key_file: Path | None = None
    # Extra public keys (PEM files) still served in the JWKS during a key rotation.
    jwt_previous_public_key_files: Annotated[list[Path], NoDecode] = []
    access_token_ttl_seconds: int = Field(900, ge=60)
    refresh_token_ttl_seconds: int = Field(7 * 24 * 3600, ge=3600)
    refresh_reuse_grace_seconds: int = Field(10, ge=0, le=60)
    jwks_refresh_min_interval_seconds: float = 30.0

    # Secrets; empty means a development value generated under var_dir.
    otp_hmac_key: SecretStr = SecretStr("")
    page_token_key: SecretStr = SecretStr("")
    internal_key: SecretStr = SecretStr("")

    # Password hashing (argon2id). Defaults are argon2-cffi's RFC 9106 low-memory profile;
    # tests lower them, production never may.
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_cost_kib: int = Field(65536, ge=8)
    argon2_parallelism: int = Field(4, ge=1)
    # Concurrent hashes allowed, so a login flood cannot exhaust memory.
    password_hash_concurrency: int = Field(4, ge=1)
    # A hash that waits longer than this for a slot is refused (429) rather than queued.
    password_hash_queue_seconds: float = Field(2.0, gt=0)

    # Events. Without AMQP_URL the outbox relay hands events to notify_svc over gRPC.
    amqp_url: str = ""
    events_exchange: str = "taskmgr.events"
    notify_queue: str = "notify_svc.events"
    notify_delivery_limit: int = Field(5, ge=1)
    notify_prefetch: int = Field(32, ge=1)
    # Emails of one batch (a prefetch window, a relay batch) sent at once, each of these
    # threads keeping its own SMTP session.
    notify_send_threads: int = Field(8, ge=1, le=64)

    # Due-date reminders (task_svc.reminders): task.due_soon this long before a task's due
    # date, and how often the scheduler looks (a reminder is at most this late).
    task_due_soon_lead_seconds: int = Field(24 * 3600, ge=60, le=30 * 24 * 3600)
    task_reminder_interval_seconds: float = Field(60.0, gt=0, le=3600)

    # Email. Without SMTP_HOST, emails are printed to the console (development).
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "taskmgr <no-reply@taskmgr.local>"
    smtp_timeout_seconds: float = 10.0
    email_send_attempts: int = Field(3, ge=1, le=10)
    email_retry_base_seconds: float = Field(2.0, ge=0)

    # REST edge.
    edge_host: str = "127.0.0.1"
    edge_port: int = 8000
    # Operators' port for /metrics (Prometheus), apart from the public one: only the
    # cluster's scraper reaches it (never the Ingress; compose does not publish it).
    edge_metrics_host: str = "127.0.0.1"
    edge_metrics_port: int = Field(9464, ge=1, le=65535)
    edge_grpc_deadline: float = Field(5.0, gt=0)
    # granian (edge_api.server): worker processes, each running the app on its event loop.
    edge_workers: int = Field(2, ge=1, alias="WEB_CONCURRENCY")
    cors_origins: Annotated[list[str], NoDecode] = []
    ratelimit_storage_uri: str = "memory://"
    # Per-client limits of public RPCs, raised or lowered by method (JSON object, e.g.
    # {"taskmgr.user.v1.UserService/Login": "100/minute"}); the edge and the service
    # both apply them. Unnamed methods keep their contract's rate_limit option.
    rate_limits: dict[str, str] = {}
    # Proxies in front of the edge whose X-Forwarded-For may be trusted (0 = none).
    trusted_proxy_count: int = Field(0, ge=0)
    max_body_bytes: int = 64 * 1024

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits_parse(cls, value: dict[str, str]) -> dict[str, str]:
        from limits import parse_many  # the `limits` package's notation, checked at start

        for method, limit in value.items():
            if "/" not in method.strip("/"):
                raise ValueError(f"{method!r}: name a method as package.Service/Method")
            try:
                parse_many(limit)
            except ValueError as exc:
                raise ValueError(f"{method}: {exc}") from None
        return {method.strip("/"): limit for method, limit in value.items()}

    @field_validator("cors_origins", "jwt_previous_public_key_files", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _pool_fits_the_threads(self) -> Settings:
        if self.db_pool_size == 0:
            # Frozen model: set once here, while it is being built.
            object.__setattr__(self, "db_pool_size", self.grpc_max_workers + BACKGROUND_DB_THREADS)
        return self

    @model_validator(mode="after")
    def _production_keys_are_real(self) -> Settings:
        """In production, every server key that is set is a real key: not a placeholder,
        at least MIN_KEY_BYTES (32) bytes, not one character repeated; and no other
        setting (a database URL's password, SMTP credentials...) still holds a template's
        REPLACE_ME or changeme. An empty key is left to production_problems, which knows
        which service needs which key.

        Raises ValueError (so ValidationError) naming the settings, never their values."""
        if self.environment != "production":
            return self
        problems = []
        for name, value in self:
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if name in SERVER_KEYS:
                problem = key_problem(text)
            else:
                problem = "holds a placeholder" if isinstance(text, str) and _is_template(text) else None
            if problem:
                problems.append(f"{(type(self).model_fields[name].alias or name).upper()} {problem}")
        if problems:
            raise ValueError(
                "production refuses these settings: " + "; ".join(problems)
                + ". Generate keys with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return self

    def production_problems(self, service: str) -> list[str]:
        """What `service` lacks to run in production (development has fallbacks for all)."""
        if self.environment != "production":
            return []
        needed = list(PRODUCTION_NEEDS.get(service, ()))
        direct_events = not self.amqp_url and service in ("user_svc", "task_svc", "notify_svc")
        if direct_events and "internal_key" not in needed:
            needed.append("internal_key")  # the direct event transport is authenticated by it
        missing = []
        for name in needed:
            value = getattr(self, name)
            if not (value.get_secret_value() if isinstance(value, SecretStr) else value):
                missing.append(name.upper())
        return missing

    def require_production_settings(self, service: str) -> None:
        """Stops the process with a clear message when production settings are missing."""
        missing = self.production_problems(service)
        if missing:
            sys.exit(f"taskmgr {service}: production needs these settings: {', '.join(missing)}")

    def database_url(self, service: str) -> str:
        url = getattr(self, f"{service}_database_url")
        return url or f"sqlite:///{self.var_dir / f'{service}.db'}"

    def port(self, service: str) -> int:
        return getattr(self, f"{service}_port")

    def processes(self, service: str) -> int:
        """How many processes serve `service` on its port (`<SERVICE>_PROCESSES`)."""
        return getattr(self, f"{service}_processes")

    def secret(self, name: str) -> bytes:
        """A secret setting, or (outside production) one generated once under var_dir."""
        value: SecretStr = getattr(self, name)
        if value.get_secret_value():
            return value.get_secret_value().encode()
        return _development_secret(self.var_dir / f"{name}.secret")


def _is_template(value: str) -> bool:
    """Whether `value` still holds a template's fill-me-in marker (REPLACE_ME, changeme)."""
    normalized = re.sub(r"[^a-z0-9]", "", value.lower())
    return any(word in normalized for word in _TEMPLATE_WORDS)


def key_problem(value: str) -> str | None:
    """Why `value` is not acceptable as a production server key, or None ("" is None:
    absence is judged per service). Length is counted in UTF-8 bytes."""
    if not value:
        return None
    normalized = re.sub(r"[^a-z0-9]", "", value.lower())
    if any(word in normalized for word in _PLACEHOLDER_WORDS):
        return "is a placeholder"
    if len(value.encode()) < MIN_KEY_BYTES:
        return f"is shorter than {MIN_KEY_BYTES} bytes"
    if len(set(value)) < 8:
        return "is not random (fewer than 8 distinct characters)"
    return None


def _development_secret(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(32).encode()
    try:
        # O_EXCL: when several processes start at once, exactly one writes the file.
        with path.open("xb") as handle:
            handle.write(value)
        path.chmod(0o600)
        return value
    except FileExistsError:
        return path.read_bytes().strip()


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process's settings; a wrong value stops the process with a clear message."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()]
        sys.exit("taskmgr: invalid settings:\n" + "\n".join(lines))
