"""The verifier's revocation rules (common.revocation.RevocationState, common.auth)."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import revocation
from common.auth import JwksCache, TokenVerifier
from common.errors import Unauthenticated, Unavailable
from common.events import build_event
from common.revocation import RevocationState
from taskmgr.events.v1 import events_pb2
from taskmgr.user.v1 import user_service_pb2 as pb


def ready_state(clock=time.time) -> RevocationState:  # noqa: ANN001
    state = RevocationState(clock)
    state.mark_ready()
    return state


def test_a_revoked_session_refuses_its_tokens_only() -> None:
    state = ready_state()
    state.revoke_session("fam-a", time.time() + 900)
    assert state.is_revoked(user_id=1, session_id="fam-a", epoch=0)
    assert not state.is_revoked(user_id=1, session_id="fam-b", epoch=0)
    assert not state.is_revoked(user_id=1, session_id="", epoch=0)  # a token naming no session


def test_a_raised_epoch_refuses_lower_epochs_of_that_user_only() -> None:
    state = ready_state()
    state.raise_epoch(7, 3, time.time() + 900)
    assert state.is_revoked(user_id=7, session_id="x", epoch=2)
    assert state.is_revoked(user_id=7, session_id="", epoch=0)  # a token from before epochs
    assert not state.is_revoked(user_id=7, session_id="x", epoch=3)  # issued after the raise
    assert not state.is_revoked(user_id=8, session_id="x", epoch=0)


def test_epochs_only_rise_and_repeats_change_nothing() -> None:
    state = ready_state()
    state.raise_epoch(7, 3, time.time() + 900)
    state.raise_epoch(7, 2, time.time() + 900)  # an old event after a newer one
    state.raise_epoch(7, 3, time.time() + 900)
    assert state.is_revoked(user_id=7, session_id="", epoch=2)
    assert not state.is_revoked(user_id=7, session_id="", epoch=3)


def test_entries_are_forgotten_once_their_tokens_have_expired() -> None:
    now = [1000.0]
    state = ready_state(lambda: now[0])
    state.revoke_session("old", 1100.0)
    state.raise_epoch(1, 1, 1100.0)
    now[0] = 1200.0
    state.revoke_session("new", 2000.0)  # applying prunes what expired
    assert state.counts() == (1, 0)


def test_the_check_answers_401_token_revoked_and_503_before_a_snapshot(monkeypatch) -> None:
    state = RevocationState()
    monkeypatch.setattr(revocation, "READY_WAIT_SECONDS", 0.01)
    with pytest.raises(Unavailable) as unknown:
        state.check(user_id=1, session_id="s", epoch=0)
    assert unknown.value.reason == "REVOCATIONS_UNKNOWN"
    state.mark_ready()
    state.check(user_id=1, session_id="s", epoch=0)
    state.revoke_session("s", time.time() + 60)
    with pytest.raises(Unauthenticated) as revoked:
        state.check(user_id=1, session_id="s", epoch=0)
    assert revoked.value.reason == "TOKEN_REVOKED"


def test_snapshots_and_events_apply_alike() -> None:
    state = ready_state()
    expires = int(time.time()) + 900
    snapshot = pb.Revocations()
    snapshot.sessions.add(user_id=1, session_id="s1").expires_at.seconds = expires
    snapshot.epochs.add(user_id=2, epoch=1).expires_at.seconds = expires
    state.apply(snapshot)
    ended = events_pb2.SessionsEnded(user_id=3, epoch=4, reason="deactivated")
    ended.expires_at.seconds = expires
    event = build_event(source="t", event_type=revocation.SESSIONS_ENDED, subject="3", payload=ended)
    assert state.apply_event(event)
    other = build_event(
        source="t", event_type="taskmgr.user.verified", subject="3", payload=events_pb2.UserVerified()
    )
    assert not state.apply_event(other)
    assert state.is_revoked(user_id=1, session_id="s1", epoch=0)
    assert state.is_revoked(user_id=2, session_id="", epoch=0)
    assert state.is_revoked(user_id=3, session_id="", epoch=3)


def _verifier(state: RevocationState) -> tuple[TokenVerifier, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    jwks = [{**jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1"}]
    return TokenVerifier(JwksCache(lambda: jwks), issuer="i", audience="a", revocations=state), key


def _token(key: Ed25519PrivateKey, **claims: object) -> str:
    now = int(time.time())
    payload = {"sub": "5", "iss": "i", "aud": "a", "iat": now, "exp": now + 900, "jti": "j", **claims}
    return jwt.encode(payload, key, algorithm="EdDSA", headers={"kid": "k1"})


def test_a_remembered_token_is_refused_once_revoked() -> None:
    """The verifier caches verified tokens until they expire: a revocation defeats it."""
    state = ready_state()
    verifier, key = _verifier(state)
    token = _token(key, sid="fam", epoch=2)
    claims = verifier.verify(token)
    assert (claims.session_id, claims.epoch) == ("fam", 2)
    assert verifier.verify(token) == claims  # remembered
    state.raise_epoch(5, 3, time.time() + 900)
    with pytest.raises(Unauthenticated) as refused:
        verifier.verify(token)
    assert refused.value.reason == "TOKEN_REVOKED"
    other_session = _token(key, sid="other", epoch=3)
    verifier.verify(other_session)
    state.revoke_session("other", time.time() + 900)
    with pytest.raises(Unauthenticated):
        verifier.verify(other_session)
