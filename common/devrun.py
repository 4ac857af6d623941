"""`make run`: every service as a local process under honcho (the Procfile).

Prints where everything is, then hands over to honcho, which stops all processes
cleanly on Ctrl-C. Settings come from the environment and `.env` (see .env.example);
with nothing set, the embedded default runs: SQLite under var/, events handed from the
outbox relays to notify_svc over gRPC, emails printed to the console.
"""

from __future__ import annotations

import os
import shutil
import sys

from common.settings import load_settings


def main() -> None:
    settings = load_settings()
    edge = f"http://{settings.edge_host}:{settings.edge_port}"
    database = "PostgreSQL" if settings.user_svc_database_url else f"SQLite files under {settings.var_dir}/"
    transport = "RabbitMQ" if settings.amqp_url else "direct gRPC to notify_svc (no broker)"
    email = f"SMTP {settings.smtp_host}" if settings.smtp_host else "printed by notify_svc below"
    print(
        f"""
taskmgr is starting
  REST edge      {edge}/api/   (health {edge}/healthz)
  Swagger UI     {edge}/swagger/
  gRPC           user_svc :{settings.user_svc_port}  task_svc :{settings.task_svc_port}  \
notify_svc :{settings.notify_svc_port}   (grpcurl -plaintext 127.0.0.1:{settings.user_svc_port} list)
  databases      {database}
  events         {transport}
  emails         {email}
Ctrl-C stops everything.
""",
        flush=True,
    )
    honcho = shutil.which("honcho", path=os.path.dirname(sys.executable))
    if honcho is None:
        sys.exit("honcho is not installed: run `make install`")
    os.execv(honcho, [honcho, "start", "-f", "Procfile"])  # noqa: S606 - fixed argv, no shell


if __name__ == "__main__":
    main()
