"""ENVIRONMENT=production refuses server keys that are placeholders or too short
(RFC 2104 section 3; OWASP ASVS v4 2.10.4), and a template's REPLACE_ME in any other
setting, with a message naming the setting only."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest
from pydantic import ValidationError

from common.settings import MIN_KEY_BYTES, SERVER_KEYS, Settings, key_problem

GOOD = secrets.token_urlsafe(32)


@pytest.mark.parametrize("name", SERVER_KEYS)
@pytest.mark.parametrize(
    "value",
    [
        "REPLACE_ME",
        "replace-me-with-a-long-random-value-of-48-bytes!",  # long, still a template
        "changeme",
        "<Change Me>",
        "CHANGEIT",
        "dev-only-not-secret-page-token-key",  # compose's development value
        "your-secret-key-goes-here-and-it-is-long-enough",
        "a" * 64,  # long, one character
        "0123456789abcdef0123456789abcde",  # 31 bytes
        "k",
    ],
)
def test_production_refuses_placeholders_and_short_keys(name, value):
    with pytest.raises(ValidationError) as caught:
        Settings(environment="production", **{name: value})
    message = str(caught.value)
    assert name.upper() in message
    if len(value) > 4:  # shorter ones occur in any sentence
        assert value not in message, "the message must not echo the value"


def test_every_bad_key_is_named_at_once():
    with pytest.raises(ValidationError) as caught:
        Settings(
            environment="production", otp_hmac_key="REPLACE_ME", internal_key="short", page_token_key=GOOD
        )
    message = str(caught.value)
    assert "OTP_HMAC_KEY is a placeholder" in message
    assert f"INTERNAL_KEY is shorter than {MIN_KEY_BYTES} bytes" in message
    assert "PAGE_TOKEN_KEY" not in message


def test_length_counts_bytes_not_characters():
    # 15 two-byte characters are 30 bytes; 16 are 32.
    assert key_problem("éàüöçñøß" + "é" * 7) == f"is shorter than {MIN_KEY_BYTES} bytes"
    assert key_problem("éàüöçñøß" * 2) is None


@pytest.mark.parametrize(
    "make_key",
    [secrets.token_urlsafe, secrets.token_hex, lambda n: secrets.token_hex(n // 2)],
    ids=["urlsafe", "hex", "hex16"],
)
def test_production_accepts_random_keys(make_key):
    value = make_key(32)
    keys = dict.fromkeys(SERVER_KEYS, value)
    settings = Settings(environment="production", **keys)
    assert settings.secret("otp_hmac_key") == value.encode()


@pytest.mark.parametrize("environment", ["development", "test"])
def test_other_environments_keep_their_development_values(environment):
    Settings(environment=environment, page_token_key="dev-only-not-secret-page-token-key", internal_key="x")


def test_an_empty_key_is_left_to_the_per_service_check():
    settings = Settings(environment="production")
    assert "PAGE_TOKEN_KEY" in settings.production_problems("task_svc")


def test_the_process_stops_with_a_clear_message():
    env = {"ENVIRONMENT": "production", "OTP_HMAC_KEY": "REPLACE_ME", "PATH": ""}
    code = "from common.settings import load_settings; load_settings()"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "taskmgr: invalid settings" in result.stderr
    assert "OTP_HMAC_KEY is a placeholder" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("USER_SVC_DATABASE_URL", "postgresql://user_svc:REPLACE_ME@db.internal/user_svc"),
        ("AMQP_URL", "amqps://taskmgr:changeme@mq.internal/taskmgr"),
        ("SMTP_PASSWORD", "REPLACE_ME"),
        ("SMTP_USERNAME", "<replace me>"),
    ],
)
def test_production_refuses_a_template_marker_in_any_setting(monkeypatch, variable, value):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert f"{variable} holds a placeholder" in str(caught.value)
    assert value not in str(caught.value)


def test_ordinary_values_that_mention_example_are_fine():
    settings = Settings(environment="production", smtp_from="taskmgr <no-reply@example.com>")
    assert settings.smtp_from.endswith("@example.com>")
