from common.migrations_env import run_migrations
from user_svc.models import Base

run_migrations(Base.metadata, "user_svc")
