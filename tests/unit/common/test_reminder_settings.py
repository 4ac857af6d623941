"""The reminder settings: 24 h and a minute by default, refused (by name, at start) when
they make no sense: a lead under a minute or over 30 days, an interval of 0 or over an hour."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.settings import Settings


def test_defaults() -> None:
    settings = Settings(environment="test")
    assert (settings.task_due_soon_lead_seconds, settings.task_reminder_interval_seconds) == (86400, 60.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TASK_DUE_SOON_LEAD_SECONDS", "0"),
        ("TASK_DUE_SOON_LEAD_SECONDS", "-3600"),
        ("TASK_DUE_SOON_LEAD_SECONDS", str(31 * 86400)),
        ("TASK_DUE_SOON_LEAD_SECONDS", "a day"),
        ("TASK_REMINDER_INTERVAL_SECONDS", "0"),
        ("TASK_REMINDER_INTERVAL_SECONDS", "7200"),
    ],
)
def test_nonsense_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        Settings(environment="test")
    assert name.lower() in str(refused.value)


def test_an_hour_ahead_every_ten_seconds_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASK_DUE_SOON_LEAD_SECONDS", "3600")
    monkeypatch.setenv("TASK_REMINDER_INTERVAL_SECONDS", "10")
    settings = Settings(environment="test")
    assert (settings.task_due_soon_lead_seconds, settings.task_reminder_interval_seconds) == (3600, 10.0)
