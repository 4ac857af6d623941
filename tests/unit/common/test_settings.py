import pytest
from pydantic import SecretStr, ValidationError

from common.settings import Settings


def test_development_defaults_need_nothing(tmp_path):
    settings = Settings(var_dir=tmp_path)
    assert settings.database_url("task_svc") == f"sqlite:///{tmp_path}/task_svc.db"
    assert settings.port("notify_svc") == 50053


def test_generated_development_secret_is_stable(tmp_path):
    settings = Settings(var_dir=tmp_path)
    first = settings.secret("internal_key")
    assert len(first) >= 32
    assert Settings(var_dir=tmp_path).secret("internal_key") == first
    assert (tmp_path / "internal_key.secret").stat().st_mode & 0o077 == 0


def test_configured_secret_wins(tmp_path):
    assert Settings(var_dir=tmp_path, page_token_key="configured").secret("page_token_key") == b"configured"


def test_production_refuses_development_fallbacks_per_service():
    settings = Settings(environment="production")
    assert settings.production_problems("user_svc") == [
        "JWT_PRIVATE_KEY_FILE", "OTP_HMAC_KEY", "PAGE_TOKEN_KEY", "INTERNAL_KEY"
    ]
    assert settings.production_problems("notify_svc") == ["PAGE_TOKEN_KEY", "SMTP_HOST", "INTERNAL_KEY"]
    # The edge vouches for client addresses with the internal key (common.client_ip).
    assert settings.production_problems("edge_api") == ["INTERNAL_KEY"]
    with pytest.raises(SystemExit, match="task_svc: production needs these settings: PAGE_TOKEN_KEY"):
        settings.require_production_settings("task_svc")


def test_a_broker_still_needs_the_internal_key_for_the_revocation_snapshot():
    key = "0123456789abcdef" * 2  # production refuses keys under 32 bytes
    settings = Settings(environment="production", amqp_url="amqp://broker", page_token_key=key)
    # task_svc asks user_svc's internal GetRevocations at start (common.revocation).
    assert settings.production_problems("task_svc") == ["INTERNAL_KEY"]
    settings = settings.model_copy(update={"internal_key": SecretStr(key[::-1])})
    assert settings.production_problems("task_svc") == []


def test_development_needs_nothing_in_production_terms():
    assert Settings(environment="development").production_problems("user_svc") == []


def test_lists_come_comma_separated_from_the_environment(monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


def test_bad_values_are_refused():
    with pytest.raises(ValidationError):
        Settings(user_svc_port=70000)
