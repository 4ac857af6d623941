from common.service_main import run_service
from task_svc.server import build

if __name__ == "__main__":
    run_service("task_svc", build)
