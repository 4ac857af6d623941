from common.service_main import run_service
from notify_svc.server import build, metrics_collectors

if __name__ == "__main__":
    run_service("notify_svc", build, metrics_collectors)
