import datetime as dt

from user_svc import refresh_rules
from user_svc.refresh_rules import TokenState, Verdict

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
GRACE = dt.timedelta(seconds=10)
WEEK = dt.timedelta(days=7)


def state(*, rotated_ago: float | None = None, revoked: bool = False, expires_in=WEEK) -> TokenState:
    return TokenState(
        expires_at=NOW + expires_in,
        rotated_at=None if rotated_ago is None else NOW - dt.timedelta(seconds=rotated_ago),
        revoked_at=NOW if revoked else None,
    )


def test_tokens_are_long_random_and_stored_as_sha256():
    token = refresh_rules.new_token()
    assert len(token) >= 43  # 32 bytes, base64url
    assert token != refresh_rules.new_token()
    assert len(refresh_rules.digest(token)) == 64
    assert refresh_rules.digest(token) == refresh_rules.digest(token)
    assert token not in refresh_rules.digest(token)


def test_a_live_token_rotates():
    assert refresh_rules.judge(state(), NOW, GRACE) is Verdict.ROTATE


def test_a_rotated_token_within_the_grace_answers_again():
    assert refresh_rules.judge(state(rotated_ago=3), NOW, GRACE) is Verdict.GRACE
    assert refresh_rules.judge(state(rotated_ago=10), NOW, GRACE) is Verdict.GRACE


def test_a_rotated_token_after_the_grace_is_reuse():
    assert refresh_rules.judge(state(rotated_ago=10.5), NOW, GRACE) is Verdict.REUSED
    assert refresh_rules.judge(state(rotated_ago=3600), NOW, GRACE) is Verdict.REUSED


def test_with_no_grace_any_second_use_is_reuse():
    assert refresh_rules.judge(state(rotated_ago=0.001), NOW, dt.timedelta(0)) is Verdict.REUSED


def test_revoked_or_expired_tokens_are_invalid_even_within_the_grace():
    assert refresh_rules.judge(state(revoked=True), NOW, GRACE) is Verdict.INVALID
    assert refresh_rules.judge(state(rotated_ago=1, revoked=True), NOW, GRACE) is Verdict.INVALID
    assert refresh_rules.judge(state(expires_in=dt.timedelta(0)), NOW, GRACE) is Verdict.INVALID
