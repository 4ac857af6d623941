"""`<SERVICE>_PROCESSES`: one process per CPU under `make run` unless set; read per service."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.devrun import default_addresses, default_processes
from common.settings import SERVICES, Settings


def test_make_run_defaults_every_service_to_the_cpu_count_but_keeps_what_is_set():
    environ = {"TASK_SVC_PROCESSES": "1"}
    default_processes(environ, cpus=4)
    assert environ == {"TASK_SVC_PROCESSES": "1", "USER_SVC_PROCESSES": "4", "NOTIFY_SVC_PROCESSES": "4"}
    unknown: dict[str, str] = {}
    default_processes(unknown, cpus=None)  # os.cpu_count() may not know
    assert set(unknown.values()) == {"1"}


def test_make_run_points_each_service_at_its_peers_moved_ports_but_keeps_a_set_address():
    environ = {"GRPC_HOST": "0.0.0.0", "USER_SVC_PORT": "15051"}
    environ |= {"TASK_SVC_PORT": "15052", "TASK_SVC_ADDR": "tasks:7000"}
    default_addresses(environ)
    assert environ["USER_SVC_ADDR"] == "127.0.0.1:15051"  # a bound-to-all host is reached locally
    assert environ["TASK_SVC_ADDR"] == "tasks:7000"
    assert "NOTIFY_SVC_ADDR" not in environ  # its port is the default: so is its address


def test_processes_are_read_per_service_and_refused_below_one(monkeypatch):
    monkeypatch.setenv("TASK_SVC_PROCESSES", "3")
    settings = Settings(environment="test")
    assert {service: settings.processes(service) for service in SERVICES} == {
        "user_svc": 1, "task_svc": 3, "notify_svc": 1,
    }  # fmt: skip
    with pytest.raises(ValidationError, match="task_svc_processes"):
        Settings(environment="test", task_svc_processes=0)
