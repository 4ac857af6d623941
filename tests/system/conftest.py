"""The product started as real processes, the way `make run` starts it (tests/support/processes.py).

Every module here is marked `slow` and `xdist_group("system")`: under `--dist loadgroup`
they run on one worker, one after the other, so they never fight over ports or CPU and
the session's stack is built once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.support.processes import ProcessStack

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(scope="session")
def process_stack(tmp_path_factory) -> Iterator[ProcessStack]:
    """The embedded default (SQLite, no broker, console email): what `make run` gives a newcomer."""
    stack = ProcessStack(tmp_path_factory.mktemp("process-stack")).start()
    yield stack
    stack.stop()


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    email: str
    access: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


def register_and_login(stack: ProcessStack, hint: str = "user") -> Account:
    """A verified user, through the REST edge, with the code read from notify_svc's console."""
    username = f"{hint}_{uuid.uuid4().hex[:8]}"
    email = f"{username}@example.com"
    api = f"{stack.edge_url}/api"
    form = {"username": username, "email": email, "password": PASSWORD}
    registered = requests.post(f"{api}/users/register/", json=form, timeout=10)
    assert registered.status_code == 201, registered.text
    code = stack.verification_code(email)
    verified = requests.post(f"{api}/users/verify_otp/", json={"email": email, "otp_code": code}, timeout=10)
    assert verified.status_code == 200, verified.text
    tokens = requests.post(f"{api}/token/", json={"username": username, "password": PASSWORD}, timeout=10)
    assert tokens.status_code == 200, tokens.text
    return Account(registered.json()["id"], username, email, tokens.json()["access"])


@pytest.fixture
def new_account(process_stack: ProcessStack) -> Callable[[str], Account]:
    return lambda hint="user": register_and_login(process_stack, hint)
