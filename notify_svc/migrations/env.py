from common.migrations_env import run_migrations
from notify_svc.models import Base

run_migrations(Base.metadata, "notify_svc")
