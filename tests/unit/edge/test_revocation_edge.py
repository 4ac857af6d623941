"""The edge refuses revoked tokens itself (edge_api.authn): 401 TOKEN_REVOKED before any
backend is asked, 503 until its first snapshot; one feed per process, a new one after
a fork (granian forks its workers after the app is built)."""

from __future__ import annotations

import time

import pytest
from werkzeug.exceptions import ServiceUnavailable

from common import revocation
from common.revocation import RevocationState
from edge_api import authn
from edge_api.authn import EdgeAuthenticator
from edge_api.errors import EdgeProblem
from tests.support.tokens import TestIssuer


class _Route:
    public = False


class _Feed:
    def __init__(self, state: RevocationState) -> None:
        self.state = state


def test_one_feed_per_process_and_a_new_one_after_fork(monkeypatch) -> None:
    started: list[_Feed] = []
    process = authn._ProcessRevocations(lambda state: started.append(_Feed(state)) or started[-1])
    first = process.state()
    assert process.state() is first and len(started) == 1
    monkeypatch.setattr(authn.os, "getpid", lambda: -1)  # as in a forked worker
    assert process.state() is not first and len(started) == 2
    assert started[-1].state is process.state()


def _authenticator(state: RevocationState) -> tuple[EdgeAuthenticator, TestIssuer]:
    issuer = TestIssuer()
    process = authn._ProcessRevocations(lambda _state: None)  # type: ignore[arg-type, return-value]
    process.state()
    process._state = state
    return EdgeAuthenticator(issuer.verifier(), process), issuer


def test_a_revoked_token_is_401_token_revoked_at_the_edge(app_context) -> None:  # noqa: ANN001
    state = RevocationState()
    state.mark_ready()
    edge, issuer = _authenticator(state)
    token = issuer.token(7)
    with app_context(token):
        edge.check(_Route())  # accepted, and remembered
    state.raise_epoch(7, 1, time.time() + 900)
    with app_context(token), pytest.raises(EdgeProblem) as refused:
        edge.check(_Route())
    assert (refused.value.status, refused.value.code) == (401, "TOKEN_REVOKED")


def test_no_snapshot_yet_is_503(app_context, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(revocation, "READY_WAIT_SECONDS", 0.01)
    edge, issuer = _authenticator(RevocationState())
    with app_context(issuer.token(7)), pytest.raises(ServiceUnavailable):
        edge.check(_Route())


@pytest.fixture
def app_context():  # noqa: ANN201
    from flask import Flask

    app = Flask(__name__)
    return lambda token: app.test_request_context(headers={"Authorization": f"Bearer {token}"})
