-- Runs once, when the postgres container starts on an empty data volume
-- (/docker-entrypoint-initdb.d). Each service owns its own database and migrates it
-- itself at start (Alembic upgrade head).
CREATE DATABASE user_svc;
CREATE DATABASE task_svc;
CREATE DATABASE notify_svc;
