from common.service_main import run_service
from task_svc.server import build, metrics_collectors

if __name__ == "__main__":
    run_service("task_svc", build, metrics_collectors)
