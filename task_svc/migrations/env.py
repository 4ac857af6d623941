from common.migrations_env import run_migrations
from task_svc.models import Base

run_migrations(Base.metadata, "task_svc")
