"""notify_svc's /metrics as `python -m notify_svc` serves it (two processes): the outcome
counters summed over the processes, and the dead letters read from the queue when scraped."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.events.broker import declare, message_count, publish_raw
from tests.integration.events.producer import otp_requested
from tests.integration.notify_svc.test_dead_letters import event_of, poison, publish
from tests.support.local import free_port, wait_for
from tests.support.processes import REPO

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq, pytest.mark.postgres]


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:  # noqa: S310
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_notify_metrics_count_outcomes_over_processes_and_the_dead_letters(notify_settings, smtp, tmp_path):
    settings = notify_settings()
    declare(settings)
    metrics_port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        VAR_DIR=str(tmp_path), NOTIFY_SVC_DATABASE_URL=settings.notify_svc_database_url,
        AMQP_URL=settings.amqp_url, EVENTS_EXCHANGE=settings.events_exchange,
        NOTIFY_QUEUE=settings.notify_queue,
        NOTIFY_SVC_PORT=str(free_port()), NOTIFY_SVC_METRICS_PORT=str(metrics_port), NOTIFY_SVC_PROCESSES="2",
        SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port), SMTP_STARTTLS="false",
        USER_SVC_ADDR=f"127.0.0.1:{free_port()}",
    )
    log = (tmp_path / "notify.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "notify_svc"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        good = [event_of(*otp_requested(80 + n)) for n in range(4)]
        for event in [poison(), *good]:
            publish(settings, event)
        publish(settings, good[0])  # a duplicate
        publish_raw(settings.amqp_url, settings.events_exchange, "user.registered", b"\xff not protobuf")
        wait_for(lambda: message_count(settings.amqp_url, f"{settings.notify_queue}.dead") == 2, timeout=30)
        wait_for(lambda: len(smtp.messages) == 4, timeout=30)

        def counted() -> dict | None:
            samples = scrape(metrics_port)
            outcome = {
                labels[0][1]: value for (name, labels), value in samples.items()
                if name == "taskmgr_notify_events_total"
            }
            return samples if outcome.get("duplicate") == 1 else None

        samples = wait_for(counted, timeout=15)
    finally:
        process.terminate()
        process.wait(30)
    assert samples[("taskmgr_notify_events_total", (("outcome", "handled"),))] == 4
    assert samples[("taskmgr_notify_events_total", (("outcome", "dead_lettered"),))] == 2
    assert samples[("taskmgr_dead_letters", (("service", "notify_svc"),))] == 2
